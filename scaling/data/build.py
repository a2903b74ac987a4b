"""Preparing a corpus once: plan → codebook → shards (units, then tokens) → manifest.

1. plan: each source's items cut into shards (:mod:`scaling.data.sources.plan`), cached by the
   corpus config, so later builds and runs do not list or count inputs again.
2. codebook: ``units.codebook`` if given; else the espeak source's (fitted on its training
   sentences); else k-means fitted on frames of the first audio source's training utterances.
3. shards, in worker processes (or SLURM array tasks, :mod:`scaling.data.slurm`): a speech shard
   becomes a corpus directory of units (:mod:`scaling.data.speech_shard`), then a token shard
   (:mod:`scaling.data.tokenize`); a text shard becomes a token shard. Each is content-addressed
   and renamed into place only when complete (:mod:`scaling.data.cache`), so a build killed at any
   moment leaves no shard a later run would take as complete, and a rerun skips finished shards.
4. manifest: the prepared set (``<cache>/prepared/<key>/manifest.json``) lists every token shard
   with its token ranges per stream and split, the counts per source, and every skipped item by
   reason. A run opens the manifest only (:mod:`scaling.data.reader`).

Same config, vocabulary and seed → byte-identical shards and manifest, whatever the number of
processes (each shard is built by one single-threaded process from its own inputs).

Without ``sources:``, a corpus config is what it always was: its sentences written (source
``wordnet``) and spoken by espeak-ng (source ``espeak``, built by :mod:`scaling.data.corpus`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from scaling.data.cache import cached_dir, cached_path, content_key
from scaling.data.config import CorpusConfig, corpus_recipe, corpus_sentences
from scaling.data.reader import MANIFEST
from scaling.data.records import Corpus
from scaling.data.shards import STREAMS, read_shard_meta
from scaling.data.sources import AUDIO_FORMATS, SPEECH_FORMATS, SourceConfig, default_fields
from scaling.errors import UserError

#: bump when the layout of shards or manifests changes
PREPARED_VERSION = 1
#: the legacy text source: the corpus' own sentences
TEXT_SOURCE = "wordnet"


class CannotSpeak(UserError):
    """A corpus of pre-extracted units only: it has no extractor and codebook to speak new
    sentences with (speech benchmarks are unavailable for it)."""


def effective_sources(config: CorpusConfig) -> tuple[SourceConfig, ...]:
    """``config.sources``, or for a config without them its sentences written (``wordnet``,
    real) and spoken by espeak-ng (``espeak``, synthetic)."""
    if config.sources:
        return config.sources
    return (SourceConfig(name=TEXT_SOURCE, format="text", path=config.sentences, real=True),
            SourceConfig(name="espeak", format="espeak", path=config.sentences, real=False))


def is_speech(source: SourceConfig) -> bool:
    """Whether ``source`` holds speech (its shards hold units; the others hold text)."""
    return source.format in SPEECH_FORMATS


def source_streams(source: SourceConfig, streams: tuple[str, ...]) -> tuple[str, ...]:
    """The streams of ``streams`` that ``source`` feeds."""
    own = ("interleaved", "speech") if is_speech(source) else ("text",)
    return tuple(s for s in streams if s in own)


def corpus_key(config: CorpusConfig) -> str:
    """Content key of a corpus config (what its shards and plan are named by)."""
    sentences = corpus_sentences(config) if not config.sources or any(s.format == "espeak" for s in config.sources) else []
    return content_key({"corpus": corpus_recipe(config, sentences), "version": PREPARED_VERSION})


def _espeak_config(config: CorpusConfig, source: SourceConfig) -> CorpusConfig:
    """The CorpusConfig that builds an espeak source (its sentences, the corpus' voices and units:
    its own fitted codebook unless ``units.codebook`` is given)."""
    return replace(config, sources=(), sentences=source.path, tokenizer="", seed=0, version="")


# ----------------------------------------------------------------------------------- plan
def plan(config: CorpusConfig, cache_root: Path, progress: bool = True) -> list[list[dict]]:
    """Shards of every source (see module doc), cached by the corpus config."""
    from scaling.data.sources.plan import plan_source

    sources = effective_sources(config)

    def build(out: Path) -> None:
        shards = []
        for s in sources:
            if s.format == "espeak":
                shards.append([{"espeak": True}])
            elif not config.sources:
                sentences = corpus_sentences(config)
                shards.append([{"sentences": hashlib.sha256("\n".join(sentences).encode()).hexdigest()}])
            else:
                _say(progress, f"planning source {s.name!r} ({s.format}: {s.path})")
                shards.append(plan_source(s))
                if not shards[-1]:
                    raise UserError(f"source {s.name!r}: {s.path} holds no items; expected {s.format} data")
        (out / "plan.json").write_text(json.dumps(shards, sort_keys=True) + "\n")

    directory = cached_dir(cache_root, "plan", {"corpus": corpus_key(config)}, build)
    return json.loads((directory / "plan.json").read_text())


# ------------------------------------------------------------------------------- codebook
def codebook_path(config: CorpusConfig, shards: list[list[dict]], cache_root: Path, progress: bool) -> str | None:
    """Path of the corpus codebook (``codebook.npz``), or None when no source has audio."""
    from scaling.data.units import Codebook

    sources = effective_sources(config)
    audio = [i for i, s in enumerate(sources) if s.format in AUDIO_FORMATS]
    if not audio:
        return None
    u = config.units
    if u.codebook:
        path = Path(u.codebook).expanduser()
        if not path.is_file():
            raise UserError(f"corpus.units.codebook = {u.codebook!r} does not exist; expected a .npy of centroids [k, dim], a .npz or a joblib k-means")
        codebook = Codebook.load(path, u.trust_codebook_pickle)
        if codebook.k != u.k:
            raise UserError(f"corpus.units.codebook {u.codebook!r} has {codebook.k} centroids; expected corpus.units.k = {u.k}")
        recipe = {"file": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        return str(cached_dir(cache_root, "codebook", recipe, lambda d: codebook.save(d / "codebook.npz")) / "codebook.npz")
    espeak = next((s for s in sources if s.format == "espeak"), None)
    if espeak is not None:
        return str(espeak_corpus(config, espeak, cache_root, progress) / "codebook.npz")
    first = sources[audio[0]]
    recipe = {"fit": asdict(u), "source": asdict(first), "shards": shards[audio[0]]}
    return str(cached_dir(cache_root, "codebook", recipe, lambda d: _fit(config, first, shards[audio[0]], d, progress)) / "codebook.npz")


def _fit(config: CorpusConfig, source: SourceConfig, shards: list[dict], out: Path, progress: bool) -> None:
    """k-means on frames of the training utterances of ``source``, shard by shard until
    ``units.kmeans_frames`` frames."""
    import numpy as np

    from scaling.data.sources.items import Skipped
    from scaling.data.sources.plan import read_shard
    from scaling.data.speech_shard import split_for
    from scaling.data.units import fit_codebook, make_extractor

    u = config.units
    extractor = make_extractor(u)
    _say(progress, f"fitting a k={u.k} codebook on {u.kmeans_frames} frames of source {source.name!r}")
    chunks, total = [], 0
    for shard in shards:
        for item in read_shard(source, shard):
            if isinstance(item, Skipped) or split_for(source, item.split, item.text or item.id) != "train":
                continue
            try:
                chunks.append(extractor.features(item.audio()))
            except Skipped:
                continue
            total += len(chunks[-1])
            if total >= u.kmeans_frames:
                break
        if total >= u.kmeans_frames:
            break
    if not chunks:
        raise UserError(f"source {source.name!r}: no training utterance with readable audio to fit the codebook; expected audio files in {source.path}")
    fit_codebook(np.concatenate(chunks)[: u.kmeans_frames], u.k, u.seed).save(out / "codebook.npz")


def espeak_corpus(config: CorpusConfig, source: SourceConfig, cache_root: Path, progress: bool) -> Path:
    """The corpus directory of the espeak source (synthesised once, cached)."""
    from scaling.data.corpus import build_corpus

    return build_corpus(_espeak_config(config, source), cache_root, progress)


# --------------------------------------------------------------------------------- shards
@dataclass(frozen=True)
class ShardJob:
    """Everything one shard's build needs (picklable: it travels to workers and SLURM tasks)."""

    config: CorpusConfig
    cache_root: str
    source_index: int
    shard_index: int
    shard: dict
    vocab_dir: str
    streams: tuple[str, ...]
    interleave: dict
    codebook: str | None

    @property
    def source(self) -> SourceConfig:
        return effective_sources(self.config)[self.source_index]


def speech_corpus(config: CorpusConfig, cache_root: Path, progress: bool = True) -> Path:
    """The corpus directory that speaks new sentences as ``config`` encodes speech (evaluation):
    the espeak source's, or for audio sources a directory holding the codebook, the unit frame
    and the voices. :class:`CannotSpeak` for a corpus of pre-extracted units only."""
    import numpy as np

    from scaling.data.units import Codebook, make_extractor

    sources = effective_sources(config)
    espeak = next((s for s in sources if s.format == "espeak"), None)
    if espeak is not None:
        return espeak_corpus(config, espeak, Path(cache_root), progress)
    if not any(s.format in AUDIO_FORMATS for s in sources):
        raise CannotSpeak(f"corpus {config.name!r} holds pre-extracted units only; speaking new sentences (speech benchmarks) needs "
                        "corpus.units.extractor and corpus.units.codebook: the ones its units were made with")
    codebook = codebook_path(config, plan(config, Path(cache_root), progress), Path(cache_root), progress)

    def build(out: Path) -> None:
        from scaling.data.records import write_corpus

        Codebook.load(Path(codebook)).save(out / "codebook.npz")
        meta = {"name": config.name, "k": config.units.k, "frame_s": make_extractor(config.units).frame_s,
                "voices": list(config.voices), "heldout_voices": list(config.heldout_voices), "sources": [s.name for s in sources],
                "codebook": Path(codebook).parent.name, "skipped": {}}
        write_corpus(out, [], np.zeros(0, np.int64), np.zeros(0, np.int64), meta)

    return cached_dir(Path(cache_root), "corpus", {"speaks": corpus_key(config), "codebook": Path(codebook).parent.name}, build)


def _units_recipe(job: ShardJob) -> dict:
    s = job.source
    src = {k: v for k, v in asdict(s).items() if k not in default_fields(s)}
    units = {"k": job.config.units.k}
    if s.format in AUDIO_FORMATS:
        from scaling.data.units import make_extractor

        units.update(extractor=make_extractor(job.config.units).source(), codebook=_file_key(job.codebook))
    return {"source": src, "shard": job.shard, "units": units, "version": PREPARED_VERSION}


def _file_key(path: str | None) -> str | None:
    return Path(path).parent.name if path else None


def units_dir(job: ShardJob) -> Path:
    """The corpus directory (units aligned with words) of a speech shard, built if missing."""
    from scaling.data.speech_shard import build_speech_shard

    cache = Path(job.cache_root)
    if job.source.format == "espeak":
        return espeak_corpus(job.config, job.source, cache, progress=False)
    name = f"{job.source.name}-{job.shard_index:05d}"
    return cached_dir(cache, "units", _units_recipe(job),
                      lambda d: build_speech_shard(d, job.source, job.shard, job.config.units, job.codebook, name))


def _token_recipe(job: ShardJob, corpus_name: str | None) -> dict:
    streams = source_streams(job.source, job.streams)
    if is_speech(job.source):
        return {"units": corpus_name, "vocab": Path(job.vocab_dir).name, "streams": list(streams),
                "interleave": job.interleave if "interleaved" in streams else None, "source_index": job.source_index,
                "shard_index": job.shard_index, "version": PREPARED_VERSION}
    return {"text": _units_recipe(job) if job.config.sources else {"sentences": job.shard}, "vocab": Path(job.vocab_dir).name,
            "source_index": job.source_index, "version": PREPARED_VERSION}


def built_shard(job: ShardJob) -> str | None:
    """A job's token shard directory if it is already built (reads no input), else None."""
    cache = Path(job.cache_root)
    corpus_name = None
    if job.source.format == "espeak":
        return None  # the espeak corpus is keyed by its synthesis; build_shard finds it at once
    if is_speech(job.source):
        corpus = cached_path(cache, "units", _units_recipe(job))
        if corpus is None:
            return None
        corpus_name = corpus.name
    found = cached_path(cache, "tokens", _token_recipe(job, corpus_name))
    return str(found) if found is not None else None


def build_shard(job: ShardJob) -> str:
    """Build one shard (units, then tokens) unless built; returns its token shard directory."""
    from scaling.data.tokenize import speech_token_shard

    cache = Path(job.cache_root)
    streams = source_streams(job.source, job.streams)
    if is_speech(job.source):
        corpus = units_dir(job)
        built = cached_dir(cache, "tokens", _token_recipe(job, corpus.name), lambda d: speech_token_shard(
            d, corpus, job.source_index, job.shard_index, Path(job.vocab_dir), streams, job.interleave))
    else:
        built = cached_dir(cache, "tokens", _token_recipe(job, None), lambda d: _text_shard(d, job))
    return str(built)


def _text_shard(out: Path, job: ShardJob) -> None:
    from scaling.data.sources.items import TextDoc
    from scaling.data.sources.plan import read_shard
    from scaling.data.speech_shard import split_for
    from scaling.data.tokenize import text_token_shard

    source = job.source
    if job.config.sources:
        docs = read_shard(source, job.shard)
    else:
        docs = (TextDoc(str(i), s) for i, s in enumerate(corpus_sentences(job.config)))
    text_token_shard(out, docs, lambda d: split_for(source, d.split, d.text), source.name, job.source_index, Path(job.vocab_dir))


# ------------------------------------------------------------------------------ prepared
def prepared_recipe(config: CorpusConfig, vocab_dir: Path, streams: tuple[str, ...], interleave: dict) -> dict:
    """What names a prepared set: corpus, vocabulary, streams and the interleaving draw."""
    return {"corpus": corpus_key(config), "vocab": Path(vocab_dir).name, "streams": list(streams),
            "interleave": interleave if "interleaved" in streams else None, "version": PREPARED_VERSION}


def find_prepared(config: CorpusConfig, cache_root: Path, vocab_dir: Path, streams: tuple[str, ...], interleave: dict) -> Path | None:
    """The prepared set's directory if it is built, else None (cheap: no input is read)."""
    return cached_path(Path(cache_root), "prepared", prepared_recipe(config, vocab_dir, streams, interleave))


def jobs_of(config: CorpusConfig, cache_root: Path, vocab_dir: Path, streams: tuple[str, ...], interleave: dict,
            progress: bool = True) -> list[ShardJob]:
    """Every shard job of a prepared set (plans the sources and finds or fits the codebook)."""
    shards = plan(config, Path(cache_root), progress)
    sources = effective_sources(config)
    needs_speech = any(s in streams for s in ("interleaved", "speech"))
    codebook = codebook_path(config, shards, Path(cache_root), progress) if needs_speech else None
    jobs = []
    for i, (source, source_shards) in enumerate(zip(sources, shards)):
        if not source_streams(source, streams):
            continue
        for j, shard in enumerate(source_shards):
            jobs.append(ShardJob(config, str(cache_root), i, j, shard, str(vocab_dir), tuple(streams), dict(interleave), codebook))
    return jobs


def prepare(config: CorpusConfig, cache_root: Path, vocab_dir: Path, streams: tuple[str, ...], interleave: dict,
            progress: bool = True, workers: int | None = None) -> Path:
    """Build (or find) the prepared set of ``config`` in vocabulary ``vocab_dir`` for ``streams``;
    ``interleave``: rule, span_lambda, speech_ratio, seed, draw. Returns its directory."""
    cache_root = Path(cache_root)
    found = find_prepared(config, cache_root, vocab_dir, streams, interleave)
    if found is not None:
        return found
    jobs = jobs_of(config, cache_root, vocab_dir, streams, interleave, progress)
    return prepare_jobs(jobs, progress, workers)


def prepare_jobs(jobs: list[ShardJob], progress: bool = True, workers: int | None = None) -> Path:
    """Build the shards of ``jobs`` (all of one prepared set) and write its manifest."""
    config, cache_root = jobs[0].config, Path(jobs[0].cache_root)
    found = find_prepared(config, cache_root, Path(jobs[0].vocab_dir), jobs[0].streams, jobs[0].interleave)
    if found is not None:
        return found
    dirs = run_jobs(jobs, workers if workers is not None else config.workers, progress)
    recipe = prepared_recipe(config, Path(jobs[0].vocab_dir), jobs[0].streams, jobs[0].interleave)
    return cached_dir(cache_root, "prepared", recipe, lambda d: write_manifest(d, config, jobs, dirs, cache_root))


def run_jobs(jobs: list[ShardJob], workers: int, progress: bool) -> list[str]:
    """Token shard directories of ``jobs``, built in ``workers`` processes (0 = one per CPU)."""
    import multiprocessing

    todo = [j for j in jobs if built_shard(j) is None]
    n = min(len(todo), workers or (os.cpu_count() or 1))
    if todo:
        _say(progress, f"building {len(todo)} of {len(jobs)} shards with {max(1, n)} process(es)")
    if n > 1:
        linux = sys.platform.startswith("linux")
        method = ("forkserver" if "torch" in sys.modules else "fork") if linux else "spawn"
        with multiprocessing.get_context(method).Pool(n) as pool:
            for done, (job, path) in enumerate(zip(todo, pool.imap(build_shard, todo)), 1):
                _report(progress, job, path, done, len(todo))
    else:
        for done, job in enumerate(todo, 1):
            _report(progress, job, build_shard(job), done, len(todo))
    return [build_shard(j) for j in jobs]


def _report(progress: bool, job: ShardJob, path: str, done: int, total: int) -> None:
    if progress:
        meta = read_shard_meta(Path(path))
        tokens = sum(e["train"]["end"] - e["train"]["start"] + e["val"]["end"] - e["val"]["start"] + e["test"]["end"] - e["test"]["start"]
                     for e in meta["streams"].values())
        _say(True, f"[{done}/{total}] source {meta['source']} shard {job.shard_index}: {tokens:,} tokens")


def write_manifest(out: Path, config: CorpusConfig, jobs: list[ShardJob], dirs: list[str], cache_root: Path) -> None:
    """manifest.json of a prepared set (see module doc); UserError for a source with nothing usable."""
    sources = effective_sources(config)
    shards, skipped, examples, seconds = [], {}, {}, {}
    counts: dict[str, dict] = {}
    for job, d in zip(jobs, dirs):
        meta = read_shard_meta(Path(d))
        name = sources[job.source_index].name
        entry = {"source": job.source_index, "shard": job.shard_index, "dir": os.path.relpath(d, cache_root), "streams": meta["streams"]}
        shards.append(entry)
        own, first = skipped.setdefault(name, {}), examples.setdefault(name, {})
        for split, sec in meta.get("seconds", {}).items():
            seconds.setdefault(name, {"train": 0.0, "val": 0.0, "test": 0.0})[split] += sec
        found = [meta]
        if is_speech(sources[job.source_index]):
            found.append(json.loads((units_dir(job) / "corpus.json").read_text()))
        for m in found:
            for reason, n in m.get("skipped", {}).items():
                own[reason] = own.get(reason, 0) + n
            for reason, detail in m.get("examples", {}).items():
                first.setdefault(reason, detail)
        for stream, e in meta["streams"].items():
            c = counts.setdefault(name, {}).setdefault(stream, {s: {"tokens": 0, "documents": 0} for s in ("train", "val", "test")})
            for split in ("train", "val", "test"):
                c[split]["tokens"] += e[split]["end"] - e[split]["start"]
                c[split]["documents"] += e[split]["documents"]
    for i, s in enumerate(sources):
        if any(j.source_index == i for j in jobs):
            total = sum(c[split]["documents"] for c in counts.get(s.name, {}).values() for split in ("train", "val", "test"))
            if total == 0:
                why = ", ".join(f"{r}: {n}" for r, n in skipped.get(s.name, {}).items()) or "no items"
                first = next(iter(examples.get(s.name, {}).values()), "")
                raise UserError(f"source {s.name!r} ({s.format}, {s.path or 'shipped sentences'}): nothing usable ({why}"
                                f"{'; first: ' + first if first else ''}); expected {s.format} data with "
                                f"{'audio and transcripts' if is_speech(s) else 'text'}")
    manifest = {
        "format": PREPARED_VERSION, "corpus": config.name,
        "sources": [{"name": s.name, "format": s.format, "real": s.real, "kind": "speech" if is_speech(s) else "text", "path": s.path}
                    for s in sources],
        "streams": sorted({st for j in jobs for st in source_streams(j.source, j.streams)}, key=STREAMS.index),
        "vocab": os.path.relpath(jobs[0].vocab_dir, cache_root) if jobs else "",
        "interleave": jobs[0].interleave if jobs and "interleaved" in jobs[0].streams else None,
        "k": config.units.k, "codebook": os.path.relpath(jobs[0].codebook, cache_root) if jobs and jobs[0].codebook else None,
        "shards": shards, "tokens": counts, "skipped": skipped, "examples": examples,
        "hours": {name: {split: round(v / 3600, 4) for split, v in by.items()} for name, by in seconds.items()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)


def open_corpus(config: CorpusConfig, cache_root: Path, progress: bool = True) -> Corpus:
    """The corpus that speaks as ``config`` does (its codebook, voices, unit frame), built or found
    in the cache: the espeak corpus, or for a config with ``sources`` the one
    :func:`speech_corpus` names."""
    from scaling.data.corpus import build_corpus

    if config.sources:
        return Corpus(speech_corpus(config, cache_root, progress))
    return Corpus(build_corpus(config, cache_root, progress))
