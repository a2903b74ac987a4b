"""Atomic file writing: the one way the toolkit writes a whole file (DESIGN, contract 3).

:func:`atomic_write` writes to a temporary file in the target's directory, flushes and fsyncs it,
then renames it over the target: a reader, or a process killed at any moment, sees either the old
file or the new one, never a part of either. A failed write leaves the target untouched and no
temporary file behind. Files are created with mode 0644 (readable by the compute nodes and
colleagues that share a store).

The content is bytes, text (UTF-8), or a function that writes to the open binary file, which
covers every format through its own writer::

    atomic_write(path, b"...")                                  # bytes
    atomic_write(path, "text\\n")                                # text
    atomic_write_json(path, {"a": 1})                           # JSON (the store's convention)
    atomic_write(path, lambda f: np.save(f, array))             # numpy
    atomic_write(path, lambda f: torch.save(state, f))          # torch
    atomic_write(path, lambda f: df.to_csv(f, index=False))     # pandas, matplotlib, ...

Appending whole lines to a log is the other write the store makes (:func:`scaling.store.append_jsonl`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

FILE_MODE = 0o644


def atomic_write(path: str | Path, content: bytes | str | Callable[[IO[bytes]], Any]) -> Path:
    """Write ``content`` to ``path`` atomically (see the module docstring); returns ``path``.

    ``content``: bytes, a str (written as UTF-8), or ``write(file)`` called with the temporary file
    opened for binary writing. The directory must exist.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            elif isinstance(content, str):
                f.write(content.encode("utf-8"))
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 1, sort_keys: bool = True) -> Path:
    """Write ``obj`` as JSON atomically, with a trailing newline (the store writes indent 1, sorted keys)."""
    return atomic_write(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")
