"""On-disk format of aligned speech: a corpus directory.

::

    corpus.json        metadata: k (codebook size), frame_s (seconds per unit frame), voices,
                       heldout_voices, sources, counts of skipped utterances by reason, build times
    utterances.jsonl   one JSON object per utterance (see UtteranceRecord), in id order
    units.npy          uint16: every utterance's deduplicated unit ids, concatenated
    durations.npy      uint16: run length of each unit in frames (same positions as units.npy)
    codebook.npz       the k-means codebook the units were assigned with

An utterance's units are ``units[offset : offset + n_units]``. Unit ``i`` starts at
``durations[:i].sum() * frame_s`` seconds. ``groups`` are aligned word groups
``[first_word, last_word, start_s, end_s]`` covering every word once (a group of several words is
a pair that the synthesiser aligned as one); ``null`` when the utterance has no usable alignment,
in which case it still serves the speech stream and is skipped (and counted) by the interleaved
one. Text of the utterance is ``" ".join(words)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from scaling.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class UtteranceRecord:
    """One utterance. id: unique name; sentence: index of its sentence in the corpus' sentence
    list; words: its whitespace-separated words; groups: aligned word groups or None; voice:
    speaker or synthesiser voice; source: where it comes from (e.g. ``espeak``); split:
    train | val | test; offset, n_units: its slice of ``units.npy``; seconds: audio length."""

    id: str
    sentence: int
    words: tuple[str, ...]
    groups: tuple[tuple[int, int, float, float], ...] | None
    voice: str
    source: str
    split: str
    offset: int
    n_units: int
    seconds: float

    @property
    def text(self) -> str:
        return " ".join(self.words)


def write_corpus(directory: Path, records: list[UtteranceRecord], units: np.ndarray, durations: np.ndarray, meta: dict) -> None:
    """Write a corpus into an (empty, private) directory; see the module doc for the layout."""
    directory = Path(directory)
    np.save(directory / "units.npy", np.asarray(units, dtype=np.uint16))
    np.save(directory / "durations.npy", np.asarray(durations, dtype=np.uint16))
    names = [f.name for f in fields(UtteranceRecord)]
    with open(directory / "utterances.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps({n: getattr(r, n) for n in names}, separators=(",", ":")) + "\n")
    (directory / "corpus.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


class Corpus:
    """A corpus directory opened for reading (units are memory-mapped).

    ``records``: every utterance; ``meta``: corpus.json; ``k``, ``frame_s``; :meth:`units` and
    :meth:`durations` of one record; :meth:`group_units` for word-aligned unit slices.
    Validates on open: unit ids must lie in ``[0, k)`` (UserError naming the utterance otherwise)
    and alignments must be ordered (a bad one is dropped and counted in ``meta["skipped"]``).
    """

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        if not (self.dir / "corpus.json").is_file():
            raise UserError(f"corpus directory {str(directory)!r}: no corpus.json; expected a directory written by `scaling data build`")
        self.meta = json.loads((self.dir / "corpus.json").read_text())
        self.k = int(self.meta["k"])
        self.frame_s = float(self.meta["frame_s"])
        self._units = np.load(self.dir / "units.npy", mmap_mode="r")
        self._durations = np.load(self.dir / "durations.npy", mmap_mode="r")
        self.records = list(self._read_records())

    def _read_records(self) -> Iterable[UtteranceRecord]:
        from scaling.data.espeak import check_groups

        with open(self.dir / "utterances.jsonl") as f:
            for line_no, line in enumerate(f, 1):
                d = json.loads(line)
                groups = tuple(tuple(g) for g in d["groups"]) if d["groups"] is not None else None
                r = UtteranceRecord(**{**d, "words": tuple(d["words"]), "groups": groups})
                if r.split not in SPLITS:
                    raise UserError(f"{self.dir / 'utterances.jsonl'}:{line_no}: split {r.split!r}; expected one of {', '.join(SPLITS)}")
                units = self.units(r)
                if len(units) and int(units.max()) >= self.k:
                    raise UserError(f"{self.dir / 'utterances.jsonl'}:{line_no}: utterance {r.id!r} has unit id {int(units.max())} outside the codebook; expected 0 <= unit < {self.k}")
                if groups is not None:
                    try:
                        check_groups(groups, len(r.words))
                    except ValueError as exc:
                        self._count_skip(f"bad word times ({exc})")
                        r = replace(r, groups=None)
                yield r

    def _count_skip(self, reason: str) -> None:
        skipped = self.meta.setdefault("skipped_alignment_on_read", {})
        skipped[reason] = skipped.get(reason, 0) + 1

    @property
    def all_units(self) -> np.ndarray:
        """Every unit of the corpus (uint16, memory-mapped), utterances concatenated."""
        return self._units

    @property
    def all_durations(self) -> np.ndarray:
        """Run length in frames of every unit (uint16, memory-mapped)."""
        return self._durations

    def units(self, r: UtteranceRecord) -> np.ndarray:
        """Deduplicated unit ids of ``r`` (int64)."""
        return np.asarray(self._units[r.offset: r.offset + r.n_units], dtype=np.int64)

    def durations(self, r: UtteranceRecord) -> np.ndarray:
        """Run length in frames of each unit of ``r`` (int64)."""
        return np.asarray(self._durations[r.offset: r.offset + r.n_units], dtype=np.int64)

    def unit_starts(self, r: UtteranceRecord) -> np.ndarray:
        """Start time in seconds of each unit of ``r`` (cumulative durations × frame_s)."""
        d = self.durations(r)
        return (np.cumsum(d) - d) * self.frame_s

    def span_units(self, r: UtteranceRecord, start_s: float, end_s: float) -> np.ndarray:
        """Units of ``r`` whose start time lies in ``[start_s, end_s)``."""
        t = self.unit_starts(r)
        return self.units(r)[(t >= start_s) & (t < end_s)]

    def select(self, split: str | None = None, voices: Iterable[str] | None = None, exclude_sources: Iterable[str] = ()) -> list[UtteranceRecord]:
        """Records of a split (None: all), optionally of some voices only, minus excluded sources."""
        voices = set(voices) if voices is not None else None
        excluded = set(exclude_sources)
        return [r for r in self.records if (split is None or r.split == split) and (voices is None or r.voice in voices) and r.source not in excluded]

