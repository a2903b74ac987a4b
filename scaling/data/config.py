"""Corpus configurations: presets (``default``, ``demo``, ``demo-bpe384``, ``tiny``) or a YAML file.

A corpus is everything that determines the built speech data: which sentences, which espeak-ng
voices speak them (training voices and held-out voices), and how speech becomes units. Its
content hash (:func:`corpus_recipe`) names the built corpus in the cache, so two runs that name the
same corpus share one build, and changing any field (including the unit extractor or its
codebook source) builds a new one.

Which utterances are synthesised: every sentence in ``voices_per_sentence`` of the training voices
(chosen per sentence by a hash), and every test sentence also in every held-out voice, so that
multi-speaker evaluation has voices never heard in training. New sentences in any voice go through
the same pipeline with :class:`scaling.data.corpus.SpeechPipeline`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from scaling.data.sources import SourceConfig, parse_sources, validate_sources
from scaling.errors import UserError, unknown_choice
from scaling.reading import read_text

EXTRACTORS = ("logmel", "hubert")


@dataclass(frozen=True)
class UnitConfig:
    """How speech becomes discrete units.

    extractor: ``logmel`` (offline: 80-bin log-mel at 16 kHz, 4 frames stacked to 25 Hz, k-means
    fitted on the corpus' training split) or ``hubert`` (transformers ``HubertModel`` from local
    weights ``hubert_model``, hidden layer ``hubert_layer``, k-means codebook ``codebook``: a
    ``.npy`` of centroids [k, dim], a ``.npz`` saved by the toolkit, or a scikit-learn / joblib
    k-means file as published HuBERT tokenizers ship it, which is only loaded with
    ``trust_codebook_pickle: true`` because unpickling runs code; fitted on the corpus when empty).
    k: codebook size. kmeans_frames: frames sampled from training utterances to fit k-means.
    seed: seeds the k-means fit and the frame sample. batch_seconds: audio per HuBERT forward pass
    (utterances are batched up to this many seconds, padded, on a GPU when there is one).
    """

    extractor: str = "logmel"
    k: int = 500
    kmeans_frames: int = 60_000
    seed: int = 0
    hubert_model: str = ""
    hubert_layer: int = 11
    codebook: str = ""
    trust_codebook_pickle: bool = False
    batch_seconds: float = 200.0


@dataclass(frozen=True)
class CorpusConfig:
    """An offline speech-text corpus built from sentences with espeak-ng.

    sentences: a text file with one sentence per line ("" = the shipped WordNet sentences).
    max_sentences: keep the first N sentences (0 = all). voices: espeak-ng voices used in
    training (``language`` or ``language+variant``, e.g. ``en-us+m3``); heldout_voices: voices
    only in the test split. voices_per_sentence: training voices per train/val sentence.
    rate: speaking rate in words per minute. workers: build processes (0 = one per CPU).

    sources: the corpora to prepare (see :mod:`scaling.data.sources`); empty means what it always
    meant: the ``sentences`` spoken by espeak-ng (source ``espeak``, synthetic) and written (source
    ``wordnet``, the text stream). The fields above then describe the espeak source, and
    ``sentences`` is also what offline benchmarks are built from. tokenizer: local Hugging Face
    tokenizer that ``scaling data build`` tokenises text with ("" = the toolkit's default BPE; a
    run whose text LM has another tokenizer prepares its own tokens on first use). text_vocab: rows
    of the default BPE (specials included; at least 258, the 256 bytes and pad and end-of-sequence):
    the output layer of a small model is mostly these rows, so a small study uses a small BPE.
    seed: seeds the offline choices (which words of an interleaved sample are spoken). version:
    free text hashed into the prepared corpus' name: corpora are named by their config, so bump it
    after changing files under a source's path. In a config with ``sources``, relative paths (sources, units,
    tokenizer, sentences) are taken from the config file's directory.
    """

    name: str = "default"
    sentences: str = ""
    max_sentences: int = 0
    voices: tuple[str, ...] = ("en-us+m3", "en-us+f3", "en+m1", "en-gb-x-rp+f2")
    heldout_voices: tuple[str, ...] = ("en-gb-scotland+m4", "en-029+f4")
    voices_per_sentence: int = 1
    rate: int = 175
    workers: int = 0
    units: UnitConfig = field(default_factory=UnitConfig)
    sources: tuple[SourceConfig, ...] = ()
    tokenizer: str = ""
    text_vocab: int = 1024
    seed: int = 0
    version: str = ""


PRESETS: dict[str, CorpusConfig] = {
    "default": CorpusConfig(),
    "demo": CorpusConfig(name="demo", units=UnitConfig(k=100, kmeans_frames=30_000)),
    # the embedded demo's corpus: the same speech, a 384-row text BPE (a preset's meaning never
    # changes, since stores name corpora by preset: this is a new name, not a new "demo")
    "demo-bpe384": CorpusConfig(name="demo-bpe384", units=UnitConfig(k=100, kmeans_frames=30_000), text_vocab=384),
    "tiny": CorpusConfig(name="tiny", max_sentences=40, voices=("en-us+m3", "en+f3"), heldout_voices=("en-gb-scotland+m4",), units=UnitConfig(k=32, kmeans_frames=5000)),
}


def resolve_corpus(name_or_path: str) -> CorpusConfig:
    """A preset by name, or a YAML file whose keys are :class:`CorpusConfig` fields (strict)."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
        raise unknown_choice("corpus (preset name, or path of an existing .yaml/.json corpus config)", name_or_path, PRESETS)
    import yaml

    from scaling.spec import from_dict

    try:
        data = yaml.safe_load(read_text(path, "corpus config")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"corpus config {str(path)!r}: not valid YAML ({str(exc).splitlines()[0]})") from None

    sources = data.pop("sources", None) if isinstance(data, dict) else None
    config = from_dict(CorpusConfig, data, "corpus")
    if sources is not None:
        config = _relative_to(replace(config, sources=parse_sources(sources, path.parent)), path.parent)
    if "name" not in data:
        config = replace(config, name=path.stem)
    return validate(config)


def _relative_to(config: CorpusConfig, base: Path) -> CorpusConfig:
    """A config with ``sources`` names every path relative to its own file's directory."""
    def resolve(value: str) -> str:
        return str(base / value) if value and not Path(value).expanduser().is_absolute() else value

    units = replace(config.units, hubert_model=resolve(config.units.hubert_model), codebook=resolve(config.units.codebook))
    return replace(config, units=units, tokenizer=resolve(config.tokenizer), sentences=resolve(config.sentences))


def validate(config: CorpusConfig) -> CorpusConfig:
    """Check values that do not need espeak; voices are checked when the corpus is built."""
    u = config.units
    if u.extractor not in EXTRACTORS:
        raise unknown_choice("value for corpus.units.extractor:", u.extractor, EXTRACTORS)
    if not 2 <= u.k <= 65536:
        raise UserError(f"corpus.units.k = {u.k}: expected a codebook size between 2 and 65536")
    if not 258 <= config.text_vocab <= 262144:
        raise UserError(f"corpus.text_vocab = {config.text_vocab}: expected 258 (the 256 bytes, pad and end-of-sequence) "
                        "to 262144 rows of the default BPE")
    if u.extractor == "hubert" and not u.hubert_model:
        raise UserError("corpus.units.hubert_model is empty: the hubert extractor needs a local HubertModel directory")
    if config.sources:

        validate_sources(config)
    if not config.voices:
        raise UserError("corpus.voices is empty: expected at least one espeak-ng training voice")
    if set(config.voices) & set(config.heldout_voices):
        raise UserError(f"corpus.heldout_voices {sorted(set(config.voices) & set(config.heldout_voices))} are also training voices; expected disjoint lists")
    if not 1 <= config.voices_per_sentence <= len(config.voices):
        raise UserError(f"corpus.voices_per_sentence = {config.voices_per_sentence}: expected 1..{len(config.voices)} (the number of training voices)")
    if config.max_sentences < 0 or not 80 <= config.rate <= 450:
        raise UserError(f"corpus.max_sentences = {config.max_sentences}, corpus.rate = {config.rate}: expected max_sentences >= 0 and 80 <= rate <= 450 words per minute")
    return config


def corpus_sentences(config: CorpusConfig) -> list[str]:
    """The corpus' sentences in file order, deduplicated. With ``max_sentences`` = N, the first
    ``max(2, round(N * share))`` sentences of each split (train / val / test) are kept, so that even
    a tiny corpus has sentences in every split."""
    from scaling.data.wordnet import SPLIT_SHARES, SPLITS, load_sentences, split_of

    sentences = list(dict.fromkeys(load_sentences(Path(config.sentences) if config.sentences else None)))
    if config.max_sentences:
        quota = {s: max(2, round(config.max_sentences * share)) for s, share in zip(SPLITS, SPLIT_SHARES)}
        kept = []
        for sentence in sentences:
            split = split_of(sentence)
            if quota[split] > 0:
                quota[split] -= 1
                kept.append(sentence)
        sentences = kept
    if not sentences:
        raise UserError(f"corpus {config.name!r}: no sentences; expected a file with one sentence per line")
    return sentences


def corpus_recipe(config: CorpusConfig, sentences: list[str]) -> dict:
    """Everything that determines a built corpus (hashed into its cache key). ``name`` and
    ``workers`` are excluded: they change neither the content nor the result."""
    import hashlib

    recipe = asdict(config)
    recipe.pop("name")
    recipe.pop("workers")
    recipe.pop("text_vocab")  # the speech is the same; the vocabulary names the prepared sets
    for key in ("sources", "tokenizer", "seed", "version"):  # fields added later: hashed only when set
        if recipe[key] == asdict(CorpusConfig())[key]:
            recipe.pop(key)
    for key in ("trust_codebook_pickle", "batch_seconds"):
        if recipe["units"][key] == asdict(UnitConfig())[key]:
            recipe["units"].pop(key)
    recipe["sentences"] = hashlib.sha256("\n".join(sentences).encode()).hexdigest()
    return recipe
