"""Atomic file writing: the one way the toolkit writes a whole file (DESIGN, contract 3).

:func:`atomic_write` writes to a temporary file in the target's directory, flushes and fsyncs it,
then renames it over the target: a reader, or a process killed at any moment, sees either the old
file or the new one, never a part of either. A failed write leaves the target untouched and no
temporary file behind. The temporary name is unique to each write (``.<name>.<random>.tmp``), so
writers of one file never collide. Files get the permissions any new file of the process gets
(0666 less the umask, as ``open`` gives them), not the owner-only 0600 of a temporary file: a store
shared by a group stays readable (and, with umask 002, writable) by the group.

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

from scaling.errors import UserError


def file_mode() -> int:
    """The mode a new file of this process gets: 0666 less the umask (read without changing it
    where /proc says it, else by setting it and putting it back)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, content: bytes | str | Callable[[IO[bytes]], Any]) -> Path:
    """Write ``content`` to ``path`` atomically (see the module docstring); returns ``path``.

    ``content``: bytes, a str (written as UTF-8), or ``write(file)`` called with the temporary file
    opened for binary writing. The directory must exist.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
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


def check_writable(path: str | Path, what: str, directory: bool = False) -> Path:
    """``path`` if a file (or with ``directory``, a directory) can be written there, checked before
    any work is done; UserError naming ``what`` otherwise: the path's nearest existing ancestor must
    be a directory this process may write to, and an existing path must be a file (a directory).
    Nothing is created."""
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        raise UserError(f"{what} {str(path)!r} is {'a file' if directory else 'a directory'}; expected "
                        f"{'a directory' if directory else 'a file name'} to write to")
    ancestor = path if directory and path.exists() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{what} {str(path)!r} cannot be written: {str(ancestor)!r} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{what} {str(path)!r} cannot be written: no permission to write in {str(ancestor)!r}")
    return path
