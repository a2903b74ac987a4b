"""``prepare_data``: a run's DataSpec → vocabulary + deterministic training and validation windows.

Training data order is a function of (seed, global window index) only. Epoch ``e`` is a stream of
documents drawn by :func:`scaling.data.streams.mixture` with (seed, e), packed and cut into
exactly :meth:`PreparedData.n_train_windows` windows of ``context + 1`` tokens (see
:mod:`scaling.data.packing`). The number of windows per epoch is fixed by epoch 0: the windows that
one pass of ``draws`` documents fills, where ``draws`` is the size of the largest stream drawn
from (training sentences in text mode, training utterances otherwise). In interleaved mode each
draw picks the text, interleaved or speech stream with probabilities ``data.mix``. Later epochs
draw documents until they fill the same number of windows. Validation windows come from the ``val`` split with a fixed
seed, so every run of a sweep is validated on the same tokens.

Everything expensive (tokenizers, the built corpus) is cached under ``cache_root`` by content hash.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from scaling.data import PAD
from scaling.data.cache import cached_dir
from scaling.data.config import CorpusConfig, corpus_sentences, resolve_corpus
from scaling.data.corpus import SpeechPipeline, open_corpus
from scaling.data.interleave import RULES
from scaling.data.packing import Document, concat, pack_stream, windows_of
from scaling.data.records import Corpus
from scaling.data.streams import AlignedUtterance, InterleavedStream, Stream, mixture, speech_stream, text_stream
from scaling.data.units import Codebook
from scaling.data.vocab import DEFAULT_TEXT_VOCAB, Vocabulary, build_vocabulary, train_text_tokenizer
from scaling.data.wordnet import load_sentences, split_of
from scaling.errors import UserError, unknown_choice

#: seed of the validation mixture (fixed so every run validates on the same tokens)
VAL_SEED = 1234
#: source names: the text stream's sentences
TEXT_SOURCE = "wordnet"
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx"}


class PreparedData:
    """A run's data: vocabulary facts and random access to training / validation windows.

    Attributes: ``tokenizer_dir`` (local HF tokenizer directory), ``vocab_size`` (embedding rows),
    ``n_text_vocab`` (rows of the base text vocabulary; 0 for speech mode), ``n_added_vocab`` (unit,
    marker and added special rows), ``pad_id``, ``context`` (tokens read per window), ``mode``,
    ``corpus`` (the opened speech corpus, None in text mode), ``voices`` / ``heldout_voices``.
    """

    def __init__(self, data_spec, vocab: Vocabulary, seed: int, corpus_config: CorpusConfig,
                 sentences: dict[str, list[str]], corpus: Corpus | None, resample_interleave: bool = True,
                 cache_root: Path | None = None):
        self.spec = data_spec
        self.cache_root = cache_root
        self.mode = data_spec.mode
        self.vocab = vocab
        lay = vocab.layout
        self.tokenizer_dir = vocab.dir
        self.vocab_size = lay.vocab_size
        self.n_text_vocab = lay.n_text_vocab
        self.n_added_vocab = lay.n_added_vocab
        self.pad_id = lay.pad_id
        self.context = int(data_spec.context)
        self.seed = int(seed)
        self.probs = {"text": (1.0, 0.0, 0.0), "speech": (0.0, 0.0, 1.0)}.get(self.mode, tuple(data_spec.mix))
        self.corpus_config = corpus_config
        self.corpus = corpus
        self.voices = tuple(corpus_config.voices)
        self.heldout_voices = tuple(corpus_config.heldout_voices)
        self.resample_interleave = resample_interleave
        self._sentences = sentences
        self._word_tokens: dict[int, list[list[int]]] = {}
        self._train = self._streams("train", (), self.seed)
        self._epochs: OrderedDict[int, Document] = OrderedDict()
        self._val: dict[tuple[str, ...], Document] = {}
        self._n_windows = self._count_windows()

    def _streams(self, split: str, exclude_sources: tuple[str, ...], seed: int) -> list[Stream]:
        """[text, interleaved, speech] streams of ``split`` (empty where the mode has none)."""
        lay = self.vocab.layout
        use_text = self.mode != "speech" and TEXT_SOURCE not in exclude_sources
        sentences = self._sentences[split] if use_text else []
        text = text_stream(self._encode(sentences) if sentences else [], lay.eos_id)
        records = self.corpus.select(split, exclude_sources=exclude_sources) if self.corpus is not None else []
        speech = speech_stream([self._unit_tokens(r) for r in records], lay.eos_id)
        aligned = [r for r in records if r.groups is not None] if self.mode == "interleaved" else []
        inter = InterleavedStream([self._aligned(r) for r in aligned], self.spec.interleave, self.spec.span_lambda,
                                  self.spec.speech_ratio, lay.speech_marker, lay.text_marker, lay.eos_id, seed,
                                  self.resample_interleave)
        return [text, inter, speech]

    def _unit_tokens(self, record) -> np.ndarray:
        return self.corpus.units(record) + self.vocab.layout.unit_offset

    def _aligned(self, record) -> AlignedUtterance:
        if record.sentence not in self._word_tokens:
            self._encode_sentence_words()
        pieces = self._word_tokens[record.sentence]
        groups = record.groups
        return AlignedUtterance(
            group_tokens=[np.asarray(sum(pieces[a: b + 1], []), dtype=np.int64) for a, b, _, _ in groups],
            group_start=np.array([g[2] for g in groups]), group_end=np.array([g[3] for g in groups]),
            unit_tokens=self._unit_tokens(record), unit_start=self.corpus.unit_starts(record))

    def _encode_sentence_words(self) -> None:
        """Token pieces of every word of every corpus sentence, in one batched tokenizer call."""
        by_sentence = {r.sentence: r.words for r in self.corpus.records if r.groups is not None}
        keys = sorted(by_sentence)
        prefix = self.vocab.layout.word_prefix
        words = [list(by_sentence[k]) for k in keys]
        flat = self._encode([w if i == 0 else prefix + w for ws in words for i, w in enumerate(ws)])
        pos = 0
        for key, ws in zip(keys, words):
            self._word_tokens[key] = flat[pos: pos + len(ws)]
            pos += len(ws)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        """``vocab.encode_batch(texts)``, memoised on disk under the cache (tokenizing the corpus is
        most of a run's data preparation, and every run of a sweep asks for the same tokens)."""
        if self.cache_root is None:
            return self.vocab.encode_batch(texts)

        def build(directory: Path) -> None:
            ids = self.vocab.encode_batch(texts)
            np.savez(directory / "tokens.npz", flat=np.fromiter((t for x in ids for t in x), dtype=np.int64),
                     lengths=np.array([len(x) for x in ids], dtype=np.int64))

        recipe = {"vocab": self.vocab.dir.name, "texts": hashlib.sha256("\n".join(texts).encode()).hexdigest()}
        with np.load(cached_dir(self.cache_root, "tokens", recipe, build) / "tokens.npz") as data:
            flat, ends = data["flat"].tolist(), np.cumsum(data["lengths"]).tolist()
        return [flat[a:b] for a, b in zip([0] + ends[:-1], ends)]

    def _draws(self, streams: list[Stream]) -> int:
        """Documents in one pass: the size of the largest stream that is drawn from."""
        return max(len(s) for s, p in zip(streams, self.probs) if p > 0)

    def _count_windows(self) -> int:
        draws = self._draws(self._train)
        docs = mixture(self._train, self.probs, self.seed, 0)
        total = sum(len(next(docs)[0]) for _ in range(draws))
        return max(1, (total - 1) // self.context)

    def n_train_windows(self, epoch: int = 0) -> int:
        """Windows per epoch (the same for every epoch; see module doc)."""
        return self._n_windows

    def _epoch(self, epoch: int) -> Document:
        if epoch not in self._epochs:
            docs = mixture(self._train, self.probs, self.seed, epoch)
            self._epochs[epoch] = pack_stream(docs, self._n_windows * self.context + 1)
            while len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return self._epochs[epoch]

    def train_window(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Global window ``index`` → (ids int64 [context+1], modality int8 [context+1]).
        Epoch ``index // n_train_windows()``; a pure function of (seed, index)."""
        if index < 0:
            raise ValueError(f"window index {index} < 0")
        epoch, i = divmod(int(index), self._n_windows)
        ids, mod = self._epoch(epoch)
        lo = i * self.context
        return ids[lo: lo + self.context + 1].copy(), mod[lo: lo + self.context + 1].copy()

    def val_windows(self, exclude_sources: tuple[str, ...] = (), limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Validation windows [M, context+1] (ids int64, modality int8) from the ``val`` split, with
        the training mixture of this mode and a fixed seed; the tail is padded with PAD.
        ``exclude_sources``: source names to leave out (see :meth:`sources`); ``limit``: at most
        that many windows (the first ones)."""
        key = tuple(sorted(set(exclude_sources)))
        unknown = sorted(set(key) - set(self.sources()) - {TEXT_SOURCE})  # a textless run has no text to leave out
        if unknown:
            raise UserError(f"data.val_exclude = {list(exclude_sources)}: no source {unknown[0]!r} in this run's data; expected some of {self.sources()}")
        if key not in self._val:
            streams = self._streams("val", key, VAL_SEED)
            if not any(len(s) and p > 0 for s, p in zip(streams, self.probs)):
                raise UserError(f"validation split is empty after excluding sources {list(key)}; expected some of {self.sources()}")
            docs = mixture(streams, self.probs, VAL_SEED, 0)
            self._val[key] = windows_of(concat(next(docs) for _ in range(self._draws(streams))), self.context, self.pad_id, PAD)
        ids, mod = self._val[key]
        return (ids.copy(), mod.copy()) if limit is None else (ids[:limit].copy(), mod[:limit].copy())

    def stream_stats(self) -> dict:
        """Token accounting of the training data: per stream (text, interleaved, speech) its
        documents, mean tokens per document (eos included), probability and expected token share;
        per modality the tokens of one epoch's training targets (``ids[1:]`` of every window, as the
        trainer counts them); and the probabilities that would give equal token shares."""
        from scaling.data import MODALITY_NAMES
        from scaling.data.streams import probabilities_for_token_shares

        names = ("text", "interleaved", "speech")
        mean = [float(np.mean([len(s.document(i, 0)[0]) for i in range(len(s))])) if len(s) else 0.0 for s in self._train]
        expected = np.array([p * m for p, m in zip(self.probs, mean)])
        share = expected / expected.sum()
        _, mod = self._epoch(0)
        counts = np.bincount(mod[1:], minlength=len(MODALITY_NAMES))
        equal = [1.0 if len(s) else 0.0 for s in self._train]
        return {
            "streams": {n: {"documents": len(s), "mean_tokens": m, "probability": p, "token_share": float(sh)}
                        for n, s, m, p, sh in zip(names, self._train, mean, self.probs, share)},
            "epoch_target_tokens": {MODALITY_NAMES[c]: int(counts[c]) for c in MODALITY_NAMES},
            "probabilities_for_equal_token_shares": probabilities_for_token_shares([m or 1.0 for m in mean], equal),
        }

    def sources(self) -> list[str]:
        """Source names present in this mode's data (for ``exclude_sources``)."""
        text = [] if self.mode == "speech" else [TEXT_SOURCE]
        return text + (list(self.corpus.meta["sources"]) if self.corpus is not None else [])

    def speech_pipeline(self) -> SpeechPipeline:
        """The corpus' speech pipeline (espeak-ng → features → this corpus' codebook), for
        encoding new sentences in any voice exactly as the corpus was encoded."""
        if self.corpus is None:
            raise UserError("data.mode = 'text' has no speech corpus; expected 'speech' or 'interleaved'")
        cfg = self.corpus_config
        return SpeechPipeline(cfg.units, Codebook.load(self.corpus.dir / "codebook.npz"), cfg.rate)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` in this vocabulary (no markers, no eos)."""
        return self.vocab.encode_text(text)

    def encode_units(self, units) -> list[int]:
        """Token ids of unit ids (each in ``[0, k)``); UserError for ids outside the codebook."""
        return self.vocab.encode_units(units)

    def marker_id(self, modality: str) -> int:
        """Id of the ``<speech>`` / ``<text>`` marker (interleaved vocabularies only)."""
        return self.vocab.marker_id(modality)

    @property
    def eos_id(self) -> int:
        """End-of-sequence id that closes every document."""
        return self.vocab.layout.eos_id


def prepare_data(data_spec, cache_root: Path, seed: int, tokenizer_dir: str | None = None,
                 resample_interleave: bool | None = None, progress: bool = True) -> PreparedData:
    """Build (or load from ``cache_root``) everything a run reads, for ``data_spec`` (a DataSpec).

    ``tokenizer_dir``: local HF tokenizer of the text LM a run starts from; it is extended with
    unit tokens and markers for ``interleaved`` mode. None: the toolkit's default byte-level BPE
    (text / interleaved) or a unit-only vocabulary (speech). ``resample_interleave``: draw new
    spoken spans every epoch (True) or reuse epoch 0's (None: ``data_spec.resample_interleave``). ``progress``: report corpus building on
    stderr.
    """
    mode = data_spec.mode
    if mode not in ("text", "interleaved", "speech"):
        raise UserError(f"data.mode = {mode!r}: expected one of text, interleaved, speech")
    if mode == "speech" and tokenizer_dir:
        raise UserError("data.mode = 'speech' with a text tokenizer: textless runs use a unit-only vocabulary; expected no tokenizer_dir")
    if data_spec.interleave not in RULES:
        raise unknown_choice("value for data.interleave:", data_spec.interleave, RULES)
    if not 0 < data_spec.speech_ratio <= 1 or not data_spec.span_lambda > 0:
        raise UserError(f"data.speech_ratio = {data_spec.speech_ratio}, data.span_lambda = {data_spec.span_lambda}: expected 0 < speech_ratio <= 1 and span_lambda > 0")
    cache_root = Path(cache_root)
    config = resolve_corpus(data_spec.corpus)
    all_sentences = corpus_sentences(config)
    sentences = {s: [x for x in all_sentences if split_of(x) == s] for s in ("train", "val", "test")}
    corpus = open_corpus(config, cache_root, progress) if mode != "text" else None
    kind = {"text": "text", "interleaved": "extended", "speech": "units"}[mode]
    vocab = _vocabulary(cache_root, kind, corpus.k if corpus else 0, tokenizer_dir)
    if resample_interleave is None:
        resample_interleave = getattr(data_spec, "resample_interleave", True)
    return PreparedData(data_spec, vocab, seed, config, sentences, corpus, resample_interleave, cache_root)


def _vocabulary(cache_root: Path, kind: str, n_units: int, tokenizer_dir: str | None) -> Vocabulary:
    if kind == "units":
        base, base_key = None, None
    elif tokenizer_dir:
        base = Path(tokenizer_dir)
        if not base.is_dir():
            raise UserError(f"tokenizer_dir = {tokenizer_dir!r}: no such directory; expected a local Hugging Face tokenizer directory")
        base_key = _fingerprint(base)
    else:
        base = default_tokenizer(cache_root)
        base_key = base.name
    recipe = {"kind": kind, "n_units": n_units, "base": base_key}
    return Vocabulary(cached_dir(cache_root, "vocab", recipe, lambda d: build_vocabulary(d, kind, n_units, base)))


def default_tokenizer(cache_root: Path) -> Path:
    """The toolkit's default text tokenizer: a byte-level BPE of :data:`DEFAULT_TEXT_VOCAB` rows
    trained on the training split of the shipped WordNet sentences (whatever the corpus), cached."""
    train = [s for s in load_sentences() if split_of(s) == "train"]
    recipe = {"kind": "default-bpe", "vocab": DEFAULT_TEXT_VOCAB, "sentences": hashlib.sha256("\n".join(train).encode()).hexdigest()}
    return cached_dir(Path(cache_root), "tokenizer", recipe, lambda d: train_text_tokenizer(train, d))


def _fingerprint(directory: Path) -> str:
    """Hash of a tokenizer directory's small files (weights are skipped), so edits invalidate caches."""
    h = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix not in _WEIGHT_SUFFIXES and path.stat().st_size < 200_000_000:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()
