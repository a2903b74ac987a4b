"""``prepare_data``: a run's DataSpec → vocabulary + windows read from memory-mapped token shards.

The corpus is prepared once per (corpus config, vocabulary) into token shards
(:mod:`scaling.data.build`; ``scaling data build`` does it ahead of time, otherwise the first run
that needs it does). A run opens the prepared set's manifest and reads window ``i`` as a pure
function of (prepared shards, seed, i) (:mod:`scaling.data.reader`): nothing is packed in memory,
so RSS and start-up do not grow with the corpus, and resuming at a window index is exact.

Streams by mode: ``text`` reads the text stream, ``speech`` the speech stream (unit-only
vocabulary), ``interleaved`` all three. The mix is ``data.mix_tokens`` (token shares) or, without
it, ``data.mix`` (stream probabilities turned into the token shares they give); see
:mod:`scaling.data.mixing`. Validation windows come from the ``val`` split, in order, blended by
the same shares, so every run of a sweep is validated on the same tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from scaling.data.build import effective_sources, find_prepared, jobs_of, prepare, prepare_jobs, source_streams
from scaling.data.cache import cached_dir
from scaling.data.config import CorpusConfig, resolve_corpus
from scaling.data.corpus import SpeechPipeline
from scaling.data.interleave import RULES
from scaling.data.mixing import PoolInfo, resolve_shares
from scaling.data.reader import TokenPool, TrainWindows, ValWindows, pool_key, read_manifest
from scaling.data.units import Codebook
from scaling.data.vocab import DEFAULT_TEXT_VOCAB, LAYOUT_FILE, Vocabulary, build_vocabulary, train_text_tokenizer
from scaling.data.wordnet import load_sentences, split_of
from scaling.errors import UserError, unknown_choice

#: the streams each mode reads
MODE_STREAMS = {"text": ("text",), "interleaved": ("text", "interleaved", "speech"), "speech": ("speech",)}
#: files of a model directory that no tokenizer reads (the layout file is rewritten for every vocabulary)
_MODEL_ONLY_FILES = {"generation_config.json", LAYOUT_FILE}
_WEIGHT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx"}


def _pools(manifest: dict, cache_root: Path, stream: str, split: str) -> dict[str, TokenPool]:
    """{source name: pool} of one stream and split of a prepared set."""
    names = [s["name"] for s in manifest["sources"]]
    parts: dict[str, list] = {}
    for shard in manifest["shards"]:
        entry = shard["streams"].get(stream)
        if entry is not None:
            parts.setdefault(names[shard["source"]], []).append(
                (cache_root / shard["dir"], stream, entry[split]["start"], entry[split]["end"]))
    return {name: TokenPool(p) for name, p in parts.items()}


def _read_windows(val: ValWindows, context: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` (None: all) windows of ``val`` as arrays [M, context+1] (ids int64, modality int8)."""
    n = val.n if limit is None else min(limit, val.n)
    ids = np.empty((n, context + 1), dtype=np.int64)
    mod = np.empty((n, context + 1), dtype=np.int8)
    for i in range(n):
        val.read(i, ids[i], mod[i])
    return ids, mod


class PreparedData:
    """A run's data: vocabulary facts and random access to training / validation windows.

    Attributes: ``tokenizer_dir`` (local HF tokenizer directory), ``vocab_size`` (embedding rows),
    ``n_text_vocab`` (rows of the base text vocabulary; 0 for speech mode), ``n_added_vocab`` (unit,
    marker and added special rows), ``pad_id``, ``context`` (tokens read per window), ``mode``,
    ``manifest`` (the prepared set), ``corpus`` (the speech corpus evaluation speaks with; None in
    text mode), ``voices`` / ``heldout_voices``.
    """

    def __init__(self, data_spec, vocab: Vocabulary, seed: int, corpus_config: CorpusConfig, prepared_dir: Path,
                 cache_root: Path, resample_interleave: bool = True, progress: bool = True):
        self.spec = data_spec
        self.cache_root = Path(cache_root)
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
        self.corpus_config = corpus_config
        self.voices = tuple(corpus_config.voices)
        self.heldout_voices = tuple(corpus_config.heldout_voices)
        self.resample_interleave = resample_interleave
        self.progress = progress
        self.prepared_dir = Path(prepared_dir)
        self.manifest = read_manifest(self.prepared_dir)
        self.source_names = [s["name"] for s in self.manifest["sources"]]
        self._corpus = None
        self._draws: dict[int, dict[str, TokenPool]] = {}
        self._draw_jobs = None
        self.train_pools = self._pool_infos("train", ())
        shares = self._shares(self.train_pools)
        self._train_shares = shares
        opened = {(p.source, p.stream): pool for p, pool in self._open(self.train_pools, "train")}
        getters = [self._getter(p, opened[(p.source, p.stream)]) for p in self.train_pools]
        windows = [max(1, (p.tokens - 1) // self.context) for p in self.train_pools]
        keys = [pool_key(p.source, p.stream) for p in self.train_pools]
        self._train = TrainWindows(getters, windows, keys, shares, self.seed, self.context)
        self._val: dict[tuple[str, ...], ValWindows] = {}

    # ------------------------------------------------------------------ pools and mix
    def _pool_infos(self, split: str, exclude: tuple[str, ...]) -> list[PoolInfo]:
        out = []
        for source, streams in self.manifest["tokens"].items():
            if source in exclude:
                continue
            for stream in MODE_STREAMS[self.mode]:
                c = streams.get(stream, {}).get(split)
                if c and c["tokens"] > 0:
                    out.append(PoolInfo(source, stream, c["tokens"], c["documents"]))
        return out

    def _open(self, infos: list[PoolInfo], split: str) -> list[tuple[PoolInfo, TokenPool]]:
        by_stream = {st: _pools(self.manifest, self.cache_root, st, split) for st in {p.stream for p in infos}}
        return [(p, by_stream[p.stream][p.source]) for p in infos]

    def _shares(self, infos: list[PoolInfo]) -> list[float]:
        mix = dict(getattr(self.spec, "mix_tokens", ()) or ())
        probs = tuple(self.spec.mix) if self.mode == "interleaved" else None
        return resolve_shares(infos, mix, probs, self.source_names)

    def _getter(self, info: PoolInfo, fixed: TokenPool):
        """Pool of an epoch: the prepared spans, or (resample_interleave) from the second epoch
        of the pool on, that epoch's own draw."""
        if info.stream != "interleaved" or not self.resample_interleave:
            return lambda epoch: fixed
        return lambda epoch: fixed if epoch == 0 else self._draw(epoch)[info.source]

    def _draw(self, epoch: int) -> dict[str, TokenPool]:
        """Interleaved pools whose spans were drawn with (run seed, epoch), prepared on first use."""
        if epoch not in self._draws:
            if self._draw_jobs is None:
                self._draw_jobs = jobs_of(self.corpus_config, self.cache_root, self.vocab.dir, ("interleaved",),
                                          self.manifest["interleave"], progress=False)
            interleave = {**self.manifest["interleave"], "seed": self.seed, "draw": int(epoch)}
            directory = prepare_jobs([replace(j, interleave=interleave) for j in self._draw_jobs], progress=False, workers=1)
            self._draws[epoch] = _pools(read_manifest(directory), self.cache_root, "interleaved", "train")
            for old in [e for e in self._draws if e != epoch][:-1]:  # keep this epoch's and one other
                del self._draws[old]
        return self._draws[epoch]

    # ------------------------------------------------------------------ windows
    def n_train_windows(self, epoch: int = 0) -> int:
        """Windows in one pass over every training pool that the mix draws from."""
        return sum(w for w, s in zip(self._train.windows, self._train_shares) if s > 0)

    def train_window(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Global window ``index`` → (ids int64 [context+1], modality int8 [context+1]); a pure
        function of (prepared shards, seed, index)."""
        if index < 0:
            raise ValueError(f"window index {index} < 0")
        ids = np.empty(self.context + 1, dtype=np.int64)
        mod = np.empty(self.context + 1, dtype=np.int8)
        self._train.read(int(index), ids, mod)
        return ids, mod

    def train_batch(self, start: int, count: int, rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``start … start+count-1`` as arrays [count, context+1] (ids int64, modality
        int8). ``rows = (lo, hi)``: only those rows' ids are read (the others hold ``pad_id``); the
        modality codes of every row are read, so a data-parallel rank can count the global batch's
        label tokens while reading the ids of its own windows only."""
        ids = np.full((count, self.context + 1), self.pad_id, dtype=np.int64)
        mod = np.empty((count, self.context + 1), dtype=np.int8)
        lo, hi = rows if rows is not None else (0, count)
        scratch = np.empty(self.context + 1, dtype=np.int64)
        for r in range(count):
            self._train.read(start + r, ids[r] if lo <= r < hi else scratch, mod[r])
        return ids, mod

    def val_windows(self, exclude_sources: tuple[str, ...] = (), limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Validation windows [M, context+1] (ids int64, modality int8) from the ``val`` split (see
        module doc); the last window of each pool is padded with PAD. ``exclude_sources``: source
        names to leave out (see :meth:`sources`); ``limit``: at most that many windows."""
        key = tuple(sorted(set(exclude_sources)))
        unknown = sorted(set(key) - set(self.source_names))
        if unknown:
            raise UserError(f"data.val_exclude = {list(exclude_sources)}: no source {unknown[0]!r} in this run's data; expected some of {self.sources()}")
        if key not in self._val:
            infos = self._pool_infos("val", key)
            if not infos:
                raise UserError(f"validation split is empty after excluding sources {list(key)}; expected some of {self.sources()}")
            opened = self._open(infos, "val")
            self._val[key] = ValWindows([pool for _, pool in opened], self._shares(infos), self.context, self.pad_id)
        return _read_windows(self._val[key], self.context, limit)

    def speech_val_windows(self, exclude_sources: tuple[str, ...] = (), limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Validation windows [M, context+1] (ids int64, modality int8) of the **speech stream**
        alone, whatever the mode: each source's ``val`` speech documents (its units shifted by the
        vocabulary's unit offset, then eos, in corpus order), sources blended by their token
        counts, the last window of each pool padded. Token counts and unit order are the same in
        every vocabulary, so runs of any mode read the same units at the same positions. Empty
        arrays where the prepared set has no speech stream (text mode) or every speech source is
        excluded; ``limit``: at most that many windows."""
        infos = [PoolInfo(source, "speech", c["tokens"], c["documents"]) for source, streams in self.manifest["tokens"].items()
                 if source not in exclude_sources and (c := streams.get("speech", {}).get("val")) and c["tokens"] > 0]
        if self.mode == "text" or not infos:
            return np.empty((0, self.context + 1), np.int64), np.empty((0, self.context + 1), np.int8)
        total = sum(p.tokens for p in infos)
        val = ValWindows([pool for _, pool in self._open(infos, "val")], [p.tokens / total for p in infos], self.context, self.pad_id)
        return _read_windows(val, self.context, limit)

    def mix_stats(self) -> list[dict]:
        """Per training pool: source, stream, real, tokens, documents, windows per epoch,
        requested token share and the share the blend realises."""
        real = {s["name"]: s["real"] for s in self.manifest["sources"]}
        return [{"source": p.source, "stream": p.stream, "real": real[p.source], "tokens": p.tokens, "documents": p.documents,
                 "windows": w, "requested_share": req, "realised_share": got}
                for p, w, req, got in zip(self.train_pools, self._train.windows, self._train_shares, self._train.blend.realised())]

    def sources(self) -> list[str]:
        """Source names present in this mode's data (for ``exclude_sources``)."""
        return sorted({p.source for p in self.train_pools} | {p.source for p in self._pool_infos("val", ())},
                      key=self.source_names.index)

    # ------------------------------------------------------------------ speech and vocabulary
    @property
    def corpus(self):
        """The speech corpus that evaluation speaks new sentences with (its codebook, voices,
        unit frame); None in text mode and for a corpus of pre-extracted units only."""
        from scaling.data.build import CannotSpeak
        from scaling.data.build import open_corpus

        if self.mode == "text":
            return None
        if self._corpus is None:
            try:
                self._corpus = open_corpus(self.corpus_config, self.cache_root, self.progress)
            except CannotSpeak:
                return None
        return self._corpus

    def speech_pipeline(self) -> SpeechPipeline:
        """The corpus' speech pipeline (espeak-ng → features → this corpus' codebook), for
        encoding new sentences in any voice exactly as the corpus was encoded."""
        if self.corpus is None:
            raise UserError(f"data.mode = {self.mode!r} with corpus {self.corpus_config.name!r} has no speech pipeline; expected "
                            "'speech' or 'interleaved' mode on a corpus with audio (or units.extractor and units.codebook)")
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


def run_vocabulary(cache_root: Path, mode: str, n_units: int, tokenizer_dir: str | None,
                   text_vocab: int = DEFAULT_TEXT_VOCAB) -> Vocabulary:
    """The vocabulary of a run of ``mode`` (built once, cached): ``tokenizer_dir`` (or the default
    BPE) extended with ``n_units`` unit tokens and markers (interleaved), as is (text), or units
    only (speech)."""
    kind = {"text": "text", "interleaved": "extended", "speech": "units"}[mode]
    return _vocabulary(Path(cache_root), kind, n_units if mode != "text" else 0, tokenizer_dir, text_vocab)


def interleave_params(data_spec, config: CorpusConfig) -> dict:
    """The offline interleaving of a run's prepared set: the spec's rule and span sizes, the
    corpus' seed, draw 0."""
    return {"rule": data_spec.interleave, "span_lambda": float(data_spec.span_lambda),
            "speech_ratio": float(data_spec.speech_ratio), "seed": int(config.seed), "draw": 0}


def prepare_data(data_spec, cache_root: Path, seed: int, tokenizer_dir: str | None = None,
                 resample_interleave: bool | None = None, progress: bool = True) -> PreparedData:
    """Prepare (or find in ``cache_root``) everything a run reads, for ``data_spec`` (a DataSpec).

    ``tokenizer_dir``: local HF tokenizer of the text LM a run starts from; it is extended with
    unit tokens and markers for ``interleaved`` mode. None: the toolkit's default byte-level BPE
    (text / interleaved) or a unit-only vocabulary (speech). ``resample_interleave``: draw new
    spoken spans every epoch after the first (True) or read the prepared ones in every epoch
    (False; None: ``data_spec.resample_interleave``).
    ``progress``: report preparation on stderr.
    """
    mode = data_spec.mode
    if mode not in MODE_STREAMS:
        raise UserError(f"data.mode = {mode!r}: expected one of text, interleaved, speech")
    if mode == "speech" and tokenizer_dir:
        raise UserError("data.mode = 'speech' with a text tokenizer: textless runs use a unit-only vocabulary; expected no tokenizer_dir")
    if data_spec.interleave not in RULES:
        raise unknown_choice("value for data.interleave:", data_spec.interleave, RULES)
    if not 0 < data_spec.speech_ratio <= 1 or not data_spec.span_lambda > 0:
        raise UserError(f"data.speech_ratio = {data_spec.speech_ratio}, data.span_lambda = {data_spec.span_lambda}: expected 0 < speech_ratio <= 1 and span_lambda > 0")
    cache_root = Path(cache_root)
    config = resolve_corpus(data_spec.corpus)
    vocab = run_vocabulary(cache_root, mode, config.units.k, tokenizer_dir, config.text_vocab)
    streams = MODE_STREAMS[mode]
    if not any(source_streams(s, streams) for s in effective_sources(config)):
        raise UserError(f"data.mode = {mode!r}: corpus {config.name!r} has no source for the {', '.join(streams)} stream; expected "
                        f"{'a text source' if mode == 'text' else 'a speech source'}")
    interleave = interleave_params(data_spec, config)
    found = find_prepared(config, cache_root, vocab.dir, streams, interleave)
    directory = found or prepare(config, cache_root, vocab.dir, streams, interleave, progress)
    if resample_interleave is None:
        resample_interleave = getattr(data_spec, "resample_interleave", True)
    return PreparedData(data_spec, vocab, seed, config, directory, cache_root, resample_interleave, progress)


def _vocabulary(cache_root: Path, kind: str, n_units: int, tokenizer_dir: str | None, text_vocab: int) -> Vocabulary:
    if kind == "units":
        base, base_key = None, None
    elif tokenizer_dir:
        base = Path(tokenizer_dir)
        if not base.is_dir():
            raise UserError(f"tokenizer_dir = {tokenizer_dir!r}: no such directory; expected a local Hugging Face tokenizer directory")
        base_key = _fingerprint(base)
    else:
        base = default_tokenizer(cache_root, text_vocab)
        base_key = base.name
    recipe = {"kind": kind, "n_units": n_units, "base": base_key}
    return Vocabulary(cached_dir(cache_root, "vocab", recipe, lambda d: build_vocabulary(d, kind, n_units, base)))


def default_tokenizer(cache_root: Path, vocab_size: int = DEFAULT_TEXT_VOCAB) -> Path:
    """The toolkit's default text tokenizer: a byte-level BPE of ``vocab_size`` rows (a corpus'
    ``text_vocab``) trained on the training split of the shipped WordNet sentences (whatever the
    corpus), cached."""
    train = [s for s in load_sentences() if split_of(s) == "train"]
    recipe = {"kind": "default-bpe", "vocab": vocab_size, "sentences": hashlib.sha256("\n".join(train).encode()).hexdigest()}
    return cached_dir(Path(cache_root), "tokenizer", recipe, lambda d: train_text_tokenizer(train, d, vocab_size))


def _fingerprint(directory: Path) -> str:
    """Hash of what a directory's tokenizer is made of, so that edits invalidate caches: its small
    files (weights skipped), but of ``config.json`` only the keys that choose a tokenizer, and not
    the files only a model reads. The text LMs of one tokenizer (one per size, from
    ``pretrain:<tokens>``) share one vocabulary and one prepared set."""
    h = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix in _WEIGHT_SUFFIXES or path.name in _MODEL_ONLY_FILES or path.name.endswith(".index.json"):
            continue
        if path.stat().st_size >= 200_000_000:
            continue
        data = path.read_bytes()
        if path.name == "config.json":
            try:
                config = json.loads(data)
            except ValueError:
                pass  # not JSON: hashed whole, as any other file
            else:
                data = json.dumps({k: config.get(k) for k in ("model_type", "tokenizer_class")}, sort_keys=True).encode()
        h.update(path.name.encode())
        h.update(data)
    return h.hexdigest()
