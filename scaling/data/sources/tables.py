"""``units`` and ``text`` sources: one row per item, in JSONL, Parquet, a Hugging Face ``datasets``
directory (``save_to_disk``), or (``text`` only) plain text with one document per line.

A shard reads rows ``[start, stop)`` of one file (blank lines of JSONL and plain text are not
rows). ``units`` rows hold unit ids (``column``), and optionally the transcript (``text_column``),
word times (``words_column``: ``{word, start, end}`` in ``time_unit`` seconds or frames of
``frame_s`` seconds), ``speaker``, ``split`` and ``id``. ``text`` rows hold a document (``field``;
the line itself for plain text).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from scaling.data.sources import expand
from scaling.data.sources.items import Skipped, TextDoc, Utterance, check_alignment, check_words
from scaling.data.sources.sharding import ranges, shard_size
from scaling.errors import UserError

SUFFIXES = {"text": (".txt", ".jsonl", ".parquet"), "units": (".jsonl", ".parquet")}


def _is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def _load_dataset(path: Path):
    try:
        from datasets import load_from_disk
    except ImportError:
        raise UserError(f"{path} is a Hugging Face datasets directory; expected the datasets package (pip install 'scaling[corpora]')") from None
    return load_from_disk(str(path))


def plan(source) -> list[dict]:
    root = Path(source.path).expanduser()
    files = [root] if _is_dataset_dir(root) else expand(source.path, f"source {source.name!r}", SUFFIXES[source.format])
    counts = []
    for f in files:
        if _is_dataset_dir(f):
            counts.append((f, len(_load_dataset(f))))
        elif f.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                counts.append((f, pq.ParquetFile(f).metadata.num_rows))
            except Exception as exc:  # pyarrow raises its own error types for a damaged file
                raise UserError(f"source {source.name!r}: {f} is not a readable Parquet file ({type(exc).__name__}); expected Parquet") from None
        else:
            with open(f, encoding="utf-8", errors="replace") as lines:
                counts.append((f, sum(1 for line in lines if line.strip())))
    return ranges(counts, shard_size(source))


def _rows(path: Path, start: int, stop: int) -> Iterator[tuple[int, object]]:
    """(row number, row) for rows [start, stop): a dict, a line of text, or Skipped."""
    if _is_dataset_dir(path):
        data = _load_dataset(path)
        for i, row in enumerate(data.select(range(start, stop)), start):
            yield i, row
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).slice(start, stop - start).to_pylist(), start):
            yield i, row
    else:
        n = 0
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                if n >= stop:
                    break
                n += 1
                if n <= start:
                    continue
                if path.suffix == ".txt":
                    yield n - 1, line.strip()
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    yield n - 1, Skipped("malformed line", f"{path}:{n}")
                    continue
                yield n - 1, row if isinstance(row, dict) else Skipped("malformed line", f"{path}:{n}: not an object")


def items(source, shard: dict) -> Iterator[Utterance | TextDoc | Skipped]:
    path = Path(shard["file"])
    for i, row in _rows(path, shard["start"], shard["stop"]):
        if isinstance(row, Skipped):
            yield row
            continue
        try:
            yield _text(source, path, i, row) if source.format == "text" else _units(source, path, i, row)
        except Skipped as skip:
            yield skip


def _text(source, path: Path, i: int, row) -> TextDoc:
    text = row if isinstance(row, str) else row.get(source.field)
    if not isinstance(text, str):
        raise Skipped("no text field", f"{path} row {i}: expected a string in {source.field!r}")
    if not text.strip():
        raise Skipped("empty text", f"{path} row {i}")
    split = row.get("split") if isinstance(row, dict) else None
    return TextDoc(id=f"{source.name}/{path.name}/{i}", text=text.strip(), split=split)


def _units(source, path: Path, i: int, row: dict) -> Utterance:
    where = f"{path} row {i}"
    units = row.get(source.column)
    if not isinstance(units, (list, tuple, np.ndarray)) or len(units) == 0:
        raise Skipped("no units", f"{where}: expected a list of unit ids in {source.column!r}")
    try:
        units = np.asarray(units, dtype=np.int64)
    except (TypeError, ValueError):
        raise Skipped("no units", f"{where}: unit ids are not integers") from None
    text = row.get(source.text_column) or ""
    aligned = row.get(source.words_column)
    words, times = tuple(text.split()), None
    if aligned:
        scale = source.frame_s if source.time_unit == "frames" else 1.0
        try:
            pairs = [(str(w["word"]).strip(), float(w["start"]) * scale, float(w["end"]) * scale) for w in aligned]
        except (KeyError, TypeError, ValueError):
            raise Skipped("unreadable alignment", f"{where}: expected word entries with word, start, end") from None
        pairs = [p for p in pairs if p[0]]
        if text:
            check_words(text, [p[0] for p in pairs])
        words, times = tuple(p[0] for p in pairs), [(p[1], p[2]) for p in pairs]
        check_alignment(words, times, len(units) * source.frame_s)
    split = row.get("split")
    return Utterance(id=str(row.get("id") or f"{source.name}/{path.name}/{i}"), words=words, times=times,
                     speaker=str(row.get("speaker") or ""), split=split if split in ("train", "val", "test") else None,
                     units=units, frame_s=source.frame_s)
