"""Sources of a corpus config: where speech and text come from, in the formats researchers have.

Every source has ``name``, ``format``, ``path`` (a file, a directory or a glob), ``real`` (true for
natural data, false for synthetic data, which must be labelled so) and optionally ``split``
(``train``, ``val``, ``test``, or ``auto``: a hash of the transcript or text, 90 / 5 / 5 %) and
``shard_size`` (items per shard, the unit of parallel and resumable work). Formats and their keys:

- ``lhotse``: Lhotse ``CutSet`` manifests (``.jsonl`` / ``.jsonl.gz``), read with lhotse; the
  transcript is the supervisions' text, word times their ``alignment["word"]``.
- ``textgrid``: audio files (wav, flac, ogg; any sample rate) with a Praat TextGrid of the same
  stem beside them or in ``alignments``; the word tier ``tier`` (default ``words``, as the
  Montreal Forced Aligner writes it) gives the transcript (its non-empty intervals) and times.
- ``words_json``: audio beside a JSON of the same stem holding Whisper-style word timestamps: a
  list of ``{word, start, end}``, or an object with ``words`` (and optionally ``text``), or
  Whisper's ``segments`` each with ``words``.
- ``units``: pre-extracted units, one row per utterance, in JSONL, Parquet or a Hugging Face
  ``datasets`` directory: unit ids in ``column``, optional ``text_column``, optional word
  alignment in ``words_column`` (``{word, start, end}`` in ``time_unit`` seconds or frames of
  ``frame_s`` seconds), optional ``speaker``, ``split`` and ``id`` columns. Units must be in the
  corpus codebook (ids below ``units.k``); consecutive duplicates are collapsed.
- ``text``: a text corpus: plain text (one document per line), JSONL or Parquet (``field``).
- ``espeak``: sentences (``path``: one per line; "" = the shipped ones) spoken by espeak-ng in the
  corpus' voices; synthetic (``real: false``).

Bad items are skipped and counted by reason (see :mod:`scaling.data.sources.items`).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, fields, replace
from pathlib import Path

from scaling.errors import UserError, unknown_choice


@dataclass(frozen=True)
class SourceConfig:
    """One source of a corpus config's ``sources:`` list; see :mod:`scaling.data.sources` for the
    formats and which keys each takes."""

    name: str = ""
    format: str = ""
    path: str = ""
    real: bool | None = None
    split: str = "auto"
    shard_size: int = 0
    alignments: str = ""
    tier: str = "words"
    column: str = "units"
    text_column: str = "text"
    words_column: str = "words"
    time_unit: str = "seconds"
    frame_s: float = 0.04
    field: str = "text"


COMMON_KEYS = {"name", "format", "path", "real", "split", "shard_size"}
FORMAT_KEYS = {
    "lhotse": set(),
    "textgrid": {"alignments", "tier"},
    "words_json": set(),
    "units": {"column", "text_column", "words_column", "time_unit", "frame_s"},
    "text": {"field"},
    "espeak": set(),
}
#: formats whose items are speech (the others are text)
SPEECH_FORMATS = ("lhotse", "textgrid", "words_json", "units", "espeak")
#: formats whose speech is audio, turned into units by the corpus' extractor and codebook
AUDIO_FORMATS = ("lhotse", "textgrid", "words_json", "espeak")
#: items per shard when ``shard_size`` is 0
DEFAULT_SHARD_SIZE = {"lhotse": 2000, "textgrid": 2000, "words_json": 2000, "units": 20000, "text": 100000, "espeak": 0}
SPLIT_RULES = ("auto", "train", "val", "test")


def parse_sources(entries, base: Path):
    """SourceConfigs from the ``sources:`` list of a corpus config file; relative paths are taken
    from ``base`` (the config's directory). Unknown or misplaced keys are errors."""
    from scaling.spec import from_dict

    if not isinstance(entries, list):
        raise UserError(f"corpus.sources = {entries!r}: expected a list of sources (name, format, path, real, ...)")
    out = []
    for i, entry in enumerate(entries):
        where = f"corpus.sources[{i}]"
        if not isinstance(entry, dict):
            raise UserError(f"{where} = {entry!r}: expected a mapping with name, format, path, real")
        fmt = entry.get("format")
        if fmt not in FORMAT_KEYS:
            raise unknown_choice(f"value for {where}.format:", fmt, FORMAT_KEYS)
        allowed = COMMON_KEYS | FORMAT_KEYS[fmt]
        for key in entry:
            if key not in allowed:
                raise unknown_choice(f"key for a {fmt} source:", f"{where}.{key}", sorted(allowed))
        real = entry.get("real")
        if not isinstance(real, bool):
            raise UserError(f"{where}.real = {real!r}: expected true (natural data) or false (synthetic data); every source must say which")
        source = from_dict(SourceConfig, {k: v for k, v in entry.items() if k != "real"}, where)
        source = replace(source, real=real)
        for key in ("path", "alignments"):
            value = getattr(source, key)
            if value and not Path(value).expanduser().is_absolute():
                source = replace(source, **{key: str(base / value)})
        out.append(source)
    return tuple(out)


def validate_sources(config) -> None:
    """Names, splits and per-format values of ``config.sources`` (paths are checked at build)."""
    names = [s.name for s in config.sources]
    for i, s in enumerate(config.sources):
        where = f"corpus.sources[{i}] ({s.name or 'unnamed'})"
        if not s.name or not s.name.replace("_", "").replace("-", "").isalnum():
            raise UserError(f"{where}.name = {s.name!r}: expected a name of letters, digits, '-' and '_'")
        if names.count(s.name) > 1:
            raise UserError(f"corpus.sources: name {s.name!r} is used twice; expected distinct source names")
        if s.split not in SPLIT_RULES:
            raise unknown_choice(f"value for {where}.split:", s.split, SPLIT_RULES)
        if s.shard_size < 0:
            raise UserError(f"{where}.shard_size = {s.shard_size}: expected 0 (the format's default) or a positive number of items")
        if s.format != "espeak" and not s.path:
            raise UserError(f"{where}.path is empty: expected a file, directory or glob")
        if s.format == "units" and (s.time_unit not in ("seconds", "frames") or not s.frame_s > 0):
            raise UserError(f"{where}: time_unit = {s.time_unit!r}, frame_s = {s.frame_s}: expected time_unit seconds or frames and frame_s > 0")
    if sum(s.format == "espeak" for s in config.sources) > 1:
        raise UserError("corpus.sources: more than one espeak source; expected at most one (its voices are the corpus' voices)")
    if not any(s.format in SPEECH_FORMATS for s in config.sources) and not any(s.format == "text" for s in config.sources):
        raise UserError("corpus.sources: no source; expected at least one")


def default_fields(source) -> set[str]:
    """Fields of ``source`` that keep their default (left out of its content key)."""

    default = SourceConfig()
    return {f.name for f in fields(source) if getattr(source, f.name) == getattr(default, f.name)}


def expand(path: str, what: str, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Files named by ``path`` (a file, a directory searched recursively for ``suffixes``, or a
    glob), sorted; UserError naming ``what`` when there are none."""
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(suffixes))
    else:
        files = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file())
    if not files:
        kinds = f" ({', '.join(suffixes)})" if suffixes else ""
        raise UserError(f"{what}: path {path!r} names no file{kinds}; expected a file, a directory or a glob")
    return files
