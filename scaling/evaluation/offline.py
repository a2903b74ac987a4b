"""Offline benchmarks: built from a corpus' sentences through its own speech pipeline, cached.

Six sets (see :mod:`scaling.evaluation.pairs` for how pairs are made, and the package README for
what they measure and how they differ from the official sets):

============  ==========================================  ==========================================
name          pairs                                        voices
============  ==========================================  ==========================================
``stc``       tSC-like, from the test split               the first training voice
``ssc``       sSC-like, from the test split               the first training voice
``ms_stc``    the ``stc`` pairs                           held-out voices (never in training), by block
``ms_ssc``    the ``ssc`` pairs                           held-out voices, by block
``sblimp``    sBLIMP-like, from the test split            training voices, in turn by block
``swuggy``    sWUGGY-like, words of the training split    training voices, in turn by block
============  ==========================================  ==========================================

Every side is spoken on its own by espeak-ng (prompt and each ending separately, as the spoken
StoryCloze files are) and turned into units with the corpus' extractor and codebook; every side
also keeps its text, so one file serves every direction (S→S, S→T, T→S, T→T). A side whose audio
comes out empty or silent drops its whole block (counted in the set's description).

A speech build is cached under ``<cache>/bench/<key>``, keyed by the set, the corpus' content key
(its sentences, voices, extractor and codebook) and the number of pairs; text-only sets (for text
models) need no corpus and are built in memory. Sets are cut to ``limit`` pairs (at most
:data:`MAX_PAIRS`) at block boundaries, so every prefix stays balanced.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from scaling.errors import UserError, unknown_choice
from scaling.evaluation.format import Benchmark, Pair, Segment, read_benchmark, write_benchmark
from scaling.evaluation.pairs import PlannedPair, grammar_pairs, lexical_pairs, swap_pairs, topic_pairs

#: pairs of a full build (``scaling eval``); training evaluates the first ``pairs`` of a set
MAX_PAIRS = 1000
#: bump when the construction of any set changes, so that old caches are never reused
BUILD_VERSION = 1


@dataclass(frozen=True)
class OfflineSet:
    """One offline set: which pair builder, which voices (``first``: the first training voice,
    ``heldout``: held-out voices, ``training``: training voices), and what it is."""

    builder: str
    voices: str
    description: str


OFFLINE_SETS: dict[str, OfflineSet] = {
    "stc": OfflineSet("topic", "first", "tSC-like: half a test sentence, its own second half vs another sentence's"),
    "ssc": OfflineSet("swap", "first", "sSC-like: half a test sentence, its second half vs the same with one content word swapped"),
    "ms_stc": OfflineSet("topic", "heldout", "MS-tSC-like: the stc pairs spoken by voices held out from training"),
    "ms_ssc": OfflineSet("swap", "heldout", "MS-sSC-like: the ssc pairs spoken by voices held out from training"),
    "sblimp": OfflineSet("grammar", "training", "sBLIMP-like: a test sentence vs a word-order, agreement or a/an violation"),
    "swuggy": OfflineSet("lexical", "training", "sWUGGY-like: a training word vs a pronounceable pseudo-word"),
}


class Unavailable(UserError):
    """An offline set this corpus cannot provide (no pairs, no held-out voices, only silent audio).
    Training skips such a set with a note; ``scaling eval`` reports it as an error."""


def offline_set(name: str) -> OfflineSet:
    if name not in OFFLINE_SETS:
        raise unknown_choice("offline benchmark", name, OFFLINE_SETS)
    return OFFLINE_SETS[name]


def planned_pairs(name: str, corpus_config) -> list[PlannedPair]:
    """The text pairs of set ``name`` for a corpus configuration (cheap: no speech)."""
    from scaling.data.config import corpus_sentences
    from scaling.data.wordnet import split_of

    spec = offline_set(name)
    sentences = corpus_sentences(corpus_config)
    test = [s for s in sentences if split_of(s) == "test"]
    prefix = name
    if spec.builder == "topic":
        return topic_pairs(test, prefix)
    if spec.builder == "swap":
        return swap_pairs(test, prefix)
    if spec.builder == "grammar":
        return grammar_pairs(test, prefix)
    return lexical_pairs([s for s in sentences if split_of(s) == "train"], sentences, prefix)


def text_benchmark(name: str, corpus_config, limit: int | None = None) -> Benchmark:
    """Set ``name`` in text only (for text models and T→T), cut to ``limit`` pairs."""
    planned = planned_pairs(name, corpus_config)
    if not planned:
        raise Unavailable(f"offline benchmark {name!r}: corpus {corpus_config.name!r} yields no pairs; expected more test sentences")
    pairs = tuple(Pair(p.id, Segment(text=p.correct), Segment(text=p.wrong),
                       Segment(text=p.prompt) if p.prompt is not None else None, p.meta) for p in planned)
    bench = Benchmark(name, pairs, description=offline_set(name).description, source=f"offline:{name} of corpus {corpus_config.name}")
    return bench.head(min(limit or MAX_PAIRS, MAX_PAIRS))


def speech_benchmark(name: str, corpus_config, cache_root: Path, limit: int | None = None, progress: bool = False,
                     corpus=None) -> Benchmark:
    """Set ``name`` with every side in text and units (built once per corpus and size, cached).
    ``corpus``: the corpus of ``corpus_config`` if already open (else it is built or found)."""
    from scaling.data.build import CannotSpeak
    from scaling.data.cache import cached_dir
    from scaling.data.build import open_corpus

    try:
        corpus = corpus or open_corpus(corpus_config, Path(cache_root), progress=progress)
    except CannotSpeak as exc:
        raise Unavailable(str(exc)) from None
    texts = text_benchmark(name, corpus_config, limit)
    recipe = {"set": name, "version": BUILD_VERSION, "corpus": corpus.dir.name, "pairs": len(texts.pairs)}

    def build(out: Path) -> None:
        bench = _speak(texts, corpus, corpus_config, offline_set(name).voices, progress)
        write_benchmark(out / f"{name}.jsonl", bench)

    return read_benchmark(cached_dir(Path(cache_root), "bench", recipe, build) / f"{name}.jsonl")


#: units (or why there are none) of (corpus key, text, voice) spoken in this process: sets share
#: prompts and endings (stc and ssc, ms_stc and ms_ssc), so each is synthesised once
_SPOKEN: dict[tuple[str, str, str], object] = {}


def _voices(corpus, which: str) -> list[str]:
    voices = list(corpus.meta["voices"])
    if which == "first":
        return voices[:1]
    if which == "heldout":
        held = list(corpus.meta.get("heldout_voices") or [])
        if not held:
            raise Unavailable(f"corpus {corpus.meta.get('name')!r} has no held-out voices; multi-speaker sets need corpus.heldout_voices")
        return held
    return voices


def _speak(texts: Benchmark, corpus, corpus_config, which: str, progress: bool) -> Benchmark:
    """Speak every side of ``texts`` (block b in voice ``voices[b % len]``) and add its units."""
    from tqdm import tqdm

    from scaling.data.corpus import SpeechPipeline
    from scaling.data.units import Codebook

    voices = _voices(corpus, which)
    pipeline = SpeechPipeline(corpus_config.units, Codebook.load(corpus.dir / "codebook.npz"), corpus_config.rate)

    def units(text: str, voice: str):
        key = (corpus.dir.name, text, voice)
        if key not in _SPOKEN:
            try:
                _SPOKEN[key] = pipeline.speak(text, voice).units
            except ValueError as exc:
                _SPOKEN[key] = str(exc)
        return _SPOKEN[key]

    def spoken(seg: Segment | None, voice: str) -> Segment | None | str:
        if seg is None:
            return None
        u = units(seg.text, voice)
        return u if isinstance(u, str) else Segment(text=seg.text, units=u)

    blocks: dict[int, list[Pair]] = {}
    for p in texts.pairs:
        blocks.setdefault(p.meta["block"], []).append(p)
    pairs, dropped = [], 0
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True) if progress else None  # noqa: E731
    say(f"benchmark {texts.name}: speaking {len(texts.pairs)} pairs in {', '.join(voices)}")
    for b, block in tqdm(sorted(blocks.items()), disable=not progress, file=sys.stderr, unit="block", mininterval=1.0):
        voice = voices[b % len(voices)]
        out = []
        for p in block:
            sides = [spoken(s, voice) for s in (p.prompt, p.correct, p.wrong)]
            if any(isinstance(s, str) for s in sides):
                break
            out.append(Pair(p.id, sides[1], sides[2], sides[0], {**p.meta, "voice": voice}))
        if len(out) == len(block):
            pairs.extend(out)
        else:
            dropped += 1
    if not pairs:
        raise Unavailable(f"offline benchmark {texts.name!r}: every block was dropped (silent audio); expected speakable text")
    note = f"; {dropped} block(s) dropped for silent audio" if dropped else ""
    return Benchmark(texts.name, tuple(pairs), corpus.k, corpus.meta.get("codebook"), texts.description + note,
                     f"{texts.source}, corpus {corpus.dir.name}, voices {', '.join(voices)}")
