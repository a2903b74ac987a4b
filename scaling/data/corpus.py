"""The offline corpus builder: sentences → espeak-ng speech with word timings → units.

Stages (each timed and recorded in ``corpus.json["build_seconds"]``):

1. plan: which (sentence, voice) pairs to speak (see :mod:`scaling.data.config`);
2. codebook: k-means on features of training utterances (cached on its own, keyed by its source:
   extractor, weights, k, seed, and the training plan; or a given codebook file and its hash);
3. units: synthesise, resample to 16 kHz, extract features, assign units, deduplicate; run in
   worker processes (each holds its own espeak-ng instance);
4. write: the corpus directory (:mod:`scaling.data.records`).

An utterance whose audio is empty or silent is skipped and counted; one whose word events cannot
be aligned keeps its units (speech stream) with ``groups = null`` and is counted as skipped for the
interleaved stream. A voice espeak-ng does not know is an error before anything is built.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scaling.data.cache import cached_dir, cached_path, content_key
from scaling.data.config import CorpusConfig, corpus_recipe, corpus_sentences, validate
from scaling.data.espeak import SAMPLE_RATE as SYNTH_RATE
from scaling.data.espeak import SilentAudio, align_groups, set_voice, speak, synthesis_fingerprint
from scaling.data.records import UtteranceRecord, write_corpus
from scaling.data.features import SAMPLE_RATE as FEATURE_RATE, resample
from scaling.data.units import Codebook, dedup, fit_codebook, make_extractor
from scaling.data.wordnet import split_of
from scaling.errors import UserError

#: source name of synthesised utterances
SOURCE = "espeak"
_INLINE_BELOW = 200  # utterances; with workers = 0 (auto), fewer are synthesised in this process


@dataclass(frozen=True)
class PlannedUtterance:
    """One (sentence, voice) pair to speak."""

    id: str
    sentence: int
    text: str
    voice: str
    split: str


@dataclass(frozen=True)
class Spoken:
    """A sentence through the speech pipeline: deduplicated units, their durations (frames), the
    aligned word groups (None when alignment failed, with ``problem`` saying why), audio seconds."""

    units: np.ndarray
    durations: np.ndarray
    groups: tuple[tuple[int, int, float, float], ...] | None
    seconds: float
    problem: str = ""


class SpeechPipeline:
    """Text + voice → units: espeak-ng, resampling to 16 kHz, features, codebook, dedup.

    The same pipeline builds a corpus and encodes new sentences for evaluation (:meth:`speak`)."""

    def __init__(self, units_config, codebook: Codebook | None, rate: int):
        self.units_config = units_config
        self.extractor = make_extractor(units_config)
        self.codebook = codebook
        self.rate = rate

    def audio(self, text: str, voice: str):
        """(16 kHz audio, word groups or None, problem) of ``text`` spoken by ``voice``."""
        """(16 kHz audio, word groups or None, why not) of ``text`` spoken by ``voice``;
        :class:`scaling.data.espeak.SilentAudio` (a ValueError) for empty or silent audio."""
        audio, events = speak(text, voice, self.rate)
        try:
            groups, problem = align_groups(text, events, audio, SYNTH_RATE), ""
        except SilentAudio:
            raise
        except ValueError as exc:
            groups, problem = None, str(exc)
        return resample(audio, SYNTH_RATE), groups, problem

    def features(self, text: str, voice: str) -> np.ndarray:
        """Frame features [T, D] of ``text`` spoken by ``voice``. ValueError for silent audio."""
        return self.extractor.features(self.audio(text, voice)[0])

    def speak(self, text: str, voice: str) -> Spoken:
        """Units of ``text`` spoken by ``voice``. Raises ValueError for empty or silent audio."""
        audio, groups, problem = self.audio(text, voice)
        units, durations = dedup(self.codebook.assign(self.extractor.features(audio)))
        return Spoken(units, durations, groups, len(audio) / FEATURE_RATE, problem)


def plan_utterances(config: CorpusConfig, sentences: list[str]) -> list[PlannedUtterance]:
    """Every sentence in ``voices_per_sentence`` training voices (picked by a hash of the
    sentence); test sentences also in every held-out voice."""
    plan = []
    n_voices = len(config.voices)
    for i, text in enumerate(sentences):
        split = split_of(text)
        first = int.from_bytes(hashlib.sha256(f"voice:{text}".encode()).digest()[:4], "big") % n_voices
        voices = [config.voices[(first + j) % n_voices] for j in range(config.voices_per_sentence)]
        if split == "test":
            voices += list(config.heldout_voices)
        plan.extend(PlannedUtterance(f"{i:05d}-{v}", i, text, v, split) for v in voices)
    return plan


def check_voices(voices) -> None:
    """UserError naming the first voice espeak-ng does not know."""
    for v in voices:
        set_voice(v, 175)


def build_corpus(config: CorpusConfig, cache_root: Path, progress: bool = True) -> Path:
    """Build ``config`` (or find it in the cache) and return the corpus directory."""
    config = validate(config)
    cache_root = Path(cache_root)
    sentences = corpus_sentences(config)
    t0 = time.perf_counter()
    plan = plan_utterances(config, sentences)
    source = make_extractor(config.units).source()
    codebook_recipe = _codebook_recipe(config, plan, source)
    recipe = {"corpus": corpus_recipe(config, sentences), "codebook": content_key(codebook_recipe), "synthesis": synthesis_fingerprint()}
    found = cached_path(cache_root, "corpus", recipe)
    if found is not None:
        return found
    check_voices(list(config.voices) + list(config.heldout_voices))
    t_plan = time.perf_counter() - t0
    workers = config.workers or ((os.cpu_count() or 1) if len(plan) >= _INLINE_BELOW else 1)
    with _Workers(config, workers) as pool:
        t0 = time.perf_counter()
        codebook_dir = _codebook(config, plan, codebook_recipe, cache_root, pool, progress)
        t_codebook = time.perf_counter() - t0

        def build(out: Path) -> None:
            t1 = time.perf_counter()
            records, units, durations, skipped = _encode_all(plan, codebook_dir / "codebook.npz", pool, progress, config.name)
            t_units = time.perf_counter() - t1
            t1 = time.perf_counter()
            codebook = Codebook.load(codebook_dir / "codebook.npz")
            codebook.save(out / "codebook.npz")
            meta = {
                "name": config.name, "config": asdict(config), "k": codebook.k, "frame_s": make_extractor(config.units).frame_s,
                "voices": list(config.voices), "heldout_voices": list(config.heldout_voices), "sources": [SOURCE],
                "codebook": codebook_dir.name, "n_sentences": len(sentences), "n_planned": len(plan),
                "n_utterances": len(records), "skipped": skipped, "workers": pool.workers,
                "build_seconds": {"plan": t_plan, "codebook": t_codebook, "units": t_units},
            }
            write_corpus(out, records, units, durations, meta)
            meta["build_seconds"]["write"] = time.perf_counter() - t1
            write_corpus_meta(out, meta)

        return cached_dir(cache_root, "corpus", recipe, build)


def write_corpus_meta(directory: Path, meta: dict) -> None:
    """Rewrite corpus.json of a corpus directory being built."""
    (Path(directory) / "corpus.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _codebook_recipe(config: CorpusConfig, plan: list[PlannedUtterance], source: dict) -> dict:
    """What determines the codebook: a given file (by content), or the fit (extractor, k, seed,
    frames, synthesis and the training utterances it samples)."""
    u = config.units
    if u.codebook:
        path = Path(u.codebook)
        if not path.is_file():
            raise UserError(f"corpus.units.codebook = {u.codebook!r} does not exist; expected a .npy of centroids [k, dim] or a saved .npz")
        return {"file": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "extractor": source}
    train = [p for p in plan if p.split == "train"]
    return {"extractor": source, "k": u.k, "seed": u.seed, "frames": u.kmeans_frames, "rate": config.rate,
            "synthesis": synthesis_fingerprint(),
            "train": hashlib.sha256("\n".join(f"{p.id}\t{p.text}" for p in train).encode()).hexdigest()}


def _codebook(config: CorpusConfig, plan: list[PlannedUtterance], recipe: dict, cache_root: Path, pool: "_Workers", progress: bool) -> Path:
    u = config.units
    if u.codebook:
        codebook = Codebook.load(Path(u.codebook), u.trust_codebook_pickle)
        if codebook.k != u.k:
            raise UserError(f"corpus.units.codebook {u.codebook!r} has {codebook.k} centroids; expected corpus.units.k = {u.k}")
        return cached_dir(cache_root, "codebook", recipe, lambda d: codebook.save(d / "codebook.npz"))
    train = [p for p in plan if p.split == "train"]

    def build(out: Path) -> None:
        order = [train[i] for i in np.random.default_rng(u.seed).permutation(len(train))]
        chunks, total, done = [], 0, 0
        _say(progress, f"corpus {config.name}: fitting a k={u.k} codebook on {u.kmeans_frames} frames of training speech")
        while total < u.kmeans_frames and done < len(order):
            # about 60 frames per utterance; ask for a little more than needed, then top up
            batch = order[done: done + max(8, (u.kmeans_frames - total) // 45)]
            done += len(batch)
            for feats in pool.map(_features_task, batch):
                if feats is not None:  # silent utterances have no frames
                    chunks.append(feats)
                    total += len(feats)
        if not chunks:
            raise UserError(f"corpus {config.name!r}: no training utterance produced audio; expected speakable sentences")
        sample = np.concatenate(chunks)[: u.kmeans_frames]
        fit_codebook(sample, u.k, u.seed).save(out / "codebook.npz")

    return cached_dir(cache_root, "codebook", recipe, build)


def _encode_all(plan, codebook_path: Path, pool: "_Workers", progress: bool, name: str):
    records, unit_chunks, dur_chunks, skipped, offset = [], [], [], {}, 0
    _say(progress, f"corpus {name}: synthesising and encoding {len(plan)} utterances with {pool.workers} worker(s)")
    tasks = [(p, str(codebook_path)) for p in plan]
    for p, result in zip(plan, pool.map(_units_task, tasks, bar=progress)):
        if isinstance(result, str):
            skipped[f"utterance: {result}"] = skipped.get(f"utterance: {result}", 0) + 1
            continue
        if result.groups is None:
            skipped[f"interleaved: {result.problem}"] = skipped.get(f"interleaved: {result.problem}", 0) + 1
        records.append(UtteranceRecord(
            id=p.id, sentence=p.sentence, words=tuple(p.text.split()),
            groups=tuple((int(a), int(b), round(float(s), 4), round(float(e), 4)) for a, b, s, e in result.groups) if result.groups else None,
            voice=p.voice, source=SOURCE, split=p.split, offset=offset, n_units=len(result.units), seconds=round(result.seconds, 6)))
        offset += len(result.units)
        unit_chunks.append(result.units)
        dur_chunks.append(result.durations)
    if not records:
        raise UserError(f"corpus {name}: every utterance was skipped ({skipped}); expected speakable sentences")
    return records, np.concatenate(unit_chunks), np.concatenate(dur_chunks), skipped


_PIPELINE: SpeechPipeline | None = None
_CODEBOOKS: dict[str, Codebook] = {}


def _init_worker(units_config, rate: int) -> None:
    """Set up a worker process: one BLAS thread (per-utterance matrices are small, and the
    workers share the cores), then the speech pipeline."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if units_config.extractor == "hubert":
        import torch

        torch.set_num_threads(1)
    _set_pipeline(units_config, rate)


def _set_pipeline(units_config, rate: int) -> None:
    global _PIPELINE
    _PIPELINE = SpeechPipeline(units_config, None, rate)


def _features_task(p: PlannedUtterance) -> np.ndarray | None:
    try:
        return _PIPELINE.features(p.text, p.voice)
    except ValueError:
        return None


def _units_task(task) -> Spoken | str:
    p, codebook_path = task
    if codebook_path not in _CODEBOOKS:
        _CODEBOOKS[codebook_path] = Codebook.load(Path(codebook_path))
    _PIPELINE.codebook = _CODEBOOKS[codebook_path]
    try:
        return _PIPELINE.speak(p.text, p.voice)
    except ValueError as exc:
        return str(exc)


class _Workers:
    """Speech-pipeline workers: ``workers`` processes, or this process when 1."""

    def __init__(self, config: CorpusConfig, workers: int):
        self.config = config
        self.workers = max(1, workers)
        self.source = make_extractor(config.units).source()
        self._pool = None
        self._limits = None

    def __enter__(self):
        if self.workers > 1:
            import multiprocessing

            # fork (Linux) starts workers without re-importing the caller's main module, so it works
            # from any script or notebook. Forking a process that already runs torch's thread pools
            # (a training process building its corpus, or the HuBERT extractor) can deadlock the
            # children, so such a process starts them from a clean fork server instead.
            linux = sys.platform.startswith("linux")
            threaded = "torch" in sys.modules or self.config.units.extractor == "hubert"
            ctx = multiprocessing.get_context(("forkserver" if threaded else "fork") if linux else "spawn")
            self._pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(self.config.units, self.config.rate))
        else:
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(1)
            _set_pipeline(self.config.units, self.config.rate)
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.unregister()
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def map(self, fn, items, bar: bool = False):
        """Results of ``fn`` over ``items``, in order."""
        from tqdm import tqdm

        results = self._pool.imap(fn, items, chunksize=16) if self._pool else map(fn, items)
        with tqdm(total=len(items), disable=not bar, file=sys.stderr, unit="utt", mininterval=1.0) as t:
            for r in results:
                yield r
                t.update(1)


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, file=sys.stderr, flush=True)
