"""The benchmark format: pairs of a correct and a wrong continuation, with an optional prompt.

A benchmark is a JSON-lines file. The first line is a header, every other line one pair::

    {"format": "scaling-benchmark/1", "name": "stc", "description": "...", "k": 100,
     "codebook": "8f3a…", "source": "built from corpus demo (…)"}
    {"id": "stc-00001", "prompt": {"text": "...", "units": [3, 17, ...]},
     "correct": {"text": "...", "units": [...]}, "wrong": {"text": "...", "units": [...]},
     "meta": {"voice": "en-us+m3", "block": 0}}

A side (``prompt``, ``correct``, ``wrong``) is a segment that carries the same content in one or
more forms: ``text`` (a string), ``units`` (deduplicated unit ids of a codebook of ``k`` entries)
and ``audio`` (a WAV file, relative to the benchmark file, turned into units at evaluation time).
Which form is scored depends on the direction asked for (speech reads ``units`` or ``audio``,
text reads ``text``), so one file serves S→S, S→T, T→S and T→T.

Header: ``k`` (codebook size; required when any side has units), ``codebook`` (identity of the
codebook the units come from, checked against the model's corpus when both are known), ``name``,
``description``, ``source``. Pair ``meta`` is free-form (voice, kind of perturbation, ``block``:
pairs of one block are kept or dropped together when a benchmark is truncated, so that balanced
sets stay balanced). Unknown fields, empty sides and unit ids outside ``[0, k)`` are errors that
name the file, the line and the pair.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from scaling.atomic import atomic_write
from scaling.errors import UserError
from scaling.reading import read_text

FORMAT = "scaling-benchmark/1"
HEADER_FIELDS = ("format", "name", "description", "k", "codebook", "source")
PAIR_FIELDS = ("id", "prompt", "correct", "wrong", "meta")
SEGMENT_FIELDS = ("text", "units", "audio")
SIDES = ("prompt", "correct", "wrong")


@dataclass(frozen=True)
class Segment:
    """One side of a pair in up to three forms (at least one is present and non-empty).

    text: the words; units: unit ids (int64 array); audio: absolute path of a WAV file."""

    text: str | None = None
    units: np.ndarray | None = None
    audio: Path | None = None

    def has(self, modality: str) -> bool:
        """Whether this side can be scored as ``speech`` (units or audio) or ``text``."""
        return self.text is not None if modality == "text" else (self.units is not None or self.audio is not None)

    def to_json(self, base: Path | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.text is not None:
            out["text"] = self.text
        if self.units is not None:
            out["units"] = [int(u) for u in self.units]
        if self.audio is not None:
            out["audio"] = os.path.relpath(self.audio, base) if base else str(self.audio)
        return out


@dataclass(frozen=True)
class Pair:
    """A correct and a wrong continuation of an optional shared prompt."""

    id: str
    correct: Segment
    wrong: Segment
    prompt: Segment | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """A named list of pairs. k / codebook: the unit codebook of its units (None without units);
    source: where it was read from or how it was built."""

    name: str
    pairs: tuple[Pair, ...]
    k: int | None = None
    codebook: str | None = None
    description: str = ""
    source: str = ""

    def modalities(self) -> set[str]:
        """Modalities every side of every pair offers (``speech``, ``text``)."""
        sides = [s for p in self.pairs for s in (p.prompt, p.correct, p.wrong) if s is not None]
        return {m for m in ("speech", "text") if sides and all(s.has(m) for s in sides)}

    @property
    def prompted(self) -> bool:
        """True when the pairs have prompts (StoryCloze-like), False when none has (sBLIMP-like)."""
        return bool(self.pairs) and self.pairs[0].prompt is not None

    def head(self, n: int | None) -> "Benchmark":
        """The first pairs, at most ``n``, cut only between blocks (``meta["block"]``) so that a
        balanced set stays balanced; None: all pairs. At least one whole block is kept."""
        if n is None or n >= len(self.pairs):
            return self
        keep = n
        block = lambda i: self.pairs[i].meta.get("block", i)  # noqa: E731
        while 0 < keep < len(self.pairs) and block(keep) == block(keep - 1):
            keep -= 1
        if keep == 0:
            keep = 1
            while keep < len(self.pairs) and block(keep) == block(0):
                keep += 1
        return Benchmark(self.name, self.pairs[:keep], self.k, self.codebook, self.description, self.source)


def write_benchmark(path: Path, bench: Benchmark) -> None:
    """Write ``bench`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    header = {"format": FORMAT, "name": bench.name, "description": bench.description, "k": bench.k,
              "codebook": bench.codebook, "source": bench.source}
    lines = [json.dumps(header, sort_keys=True)]
    for p in bench.pairs:
        row: dict[str, Any] = {"id": p.id}
        if p.prompt is not None:
            row["prompt"] = p.prompt.to_json(path.parent)
        row["correct"] = p.correct.to_json(path.parent)
        row["wrong"] = p.wrong.to_json(path.parent)
        if p.meta:
            row["meta"] = p.meta
        lines.append(json.dumps(row, sort_keys=True, separators=(",", ":")))
    atomic_write(path, "".join(line + "\n" for line in lines))


def read_benchmark(path: Path) -> Benchmark:
    """Read and validate a benchmark file (see the module doc); UserError naming file, line and
    pair for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"benchmark file {str(path)!r} does not exist; expected a {FORMAT} JSON-lines file")
    lines = read_text(path, "benchmark file").splitlines()
    if not lines:
        raise UserError(f"{path}: empty file; expected a header line and one pair per line")
    header = _json(path, 1, lines[0])
    _check_fields(path, 1, "header", header, HEADER_FIELDS)
    if header.get("format") != FORMAT:
        raise UserError(f"{path}:1: format {header.get('format')!r}; expected {FORMAT!r}")
    k = header.get("k")
    if k is not None and (not isinstance(k, int) or k < 1):
        raise UserError(f"{path}:1: k = {k!r}; expected a positive codebook size or null")
    pairs, seen = [], set()
    for line_no, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        row = _json(path, line_no, line)
        pid = row.get("id")
        where = f"{path}:{line_no} (pair {pid!r})"
        _check_fields(path, line_no, f"pair {pid!r}", row, PAIR_FIELDS)
        if not isinstance(pid, str) or not pid:
            raise UserError(f"{path}:{line_no}: pair without an id; expected a non-empty string 'id'")
        if pid in seen:
            raise UserError(f"{where}: duplicate pair id")
        seen.add(pid)
        for side in ("correct", "wrong"):
            if side not in row:
                raise UserError(f"{where}: no {side!r} side; expected both 'correct' and 'wrong'")
        meta = row.get("meta", {})
        if not isinstance(meta, dict):
            raise UserError(f"{where}: meta must be a mapping")
        segs = {side: _segment(path, where, side, row[side], k, path.parent) for side in SIDES if side in row}
        pairs.append(Pair(pid, segs["correct"], segs["wrong"], segs.get("prompt"), meta))
    if not pairs:
        raise UserError(f"{path}: no pairs; expected one pair per line after the header")
    prompted = {p.prompt is not None for p in pairs}
    if len(prompted) > 1:
        raise UserError(f"{path}: some pairs have a prompt and some do not; expected all or none")
    return Benchmark(str(header.get("name") or path.stem), tuple(pairs), k, header.get("codebook"),
                     str(header.get("description", "")), str(header.get("source", "")) or str(path))


def segment(where: str, side: str, text: str | None = None, units: Iterable[int] | None = None,
            audio: Path | None = None, k: int | None = None) -> Segment:
    """A validated :class:`Segment`; UserError naming ``where`` and ``side`` when it is empty or
    has unit ids outside ``[0, k)``."""
    if text is not None and not text.strip():
        raise UserError(f"{where}: empty {side} side (blank text); expected words")
    arr = None
    if units is not None:
        arr = np.asarray(list(units), dtype=np.int64)
        if arr.size == 0:
            raise UserError(f"{where}: empty {side} side (no units); expected at least one unit id")
        if k is None:
            raise UserError(f"{where}: {side} side has units but the benchmark declares no codebook size k")
        if arr.min() < 0 or arr.max() >= k:
            raise UserError(f"{where}: {side} side has unit id {int(arr.max() if arr.max() >= k else arr.min())} outside the codebook; expected 0 <= unit < {k}")
    if text is None and arr is None and audio is None:
        raise UserError(f"{where}: empty {side} side; expected text, units or audio")
    return Segment(text, arr, audio)


def _segment(path: Path, where: str, side: str, data: Any, k: int | None, base: Path) -> Segment:
    if not isinstance(data, dict):
        raise UserError(f"{where}: {side} must be a mapping with text, units or audio; got {type(data).__name__}")
    unknown = sorted(set(data) - set(SEGMENT_FIELDS))
    if unknown:
        raise UserError(f"{where}: unknown field {side}.{unknown[0]!r}; expected some of {', '.join(SEGMENT_FIELDS)}")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise UserError(f"{where}: {side}.text must be a string")
    units = data.get("units")
    if units is not None and (not isinstance(units, list) or not all(isinstance(u, int) and not isinstance(u, bool) for u in units)):
        raise UserError(f"{where}: {side}.units must be a list of integer unit ids")
    audio = data.get("audio")
    if audio is not None:
        audio = (base / audio).resolve()
        if not audio.is_file():
            raise UserError(f"{where}: {side}.audio file {str(audio)!r} does not exist")
    return segment(where, side, text, units, audio, k)


def _json(path: Path, line_no: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise UserError(f"{path}:{line_no}: expected a JSON object")
    return row


def _check_fields(path: Path, line_no: int, what: str, row: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(row) - set(allowed))
    if unknown:
        raise UserError(f"{path}:{line_no}: unknown field {unknown[0]!r} in {what}; expected some of {', '.join(allowed)}")
