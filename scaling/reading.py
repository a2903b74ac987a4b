"""Reading files that others wrote: sweep files, store files, tables, checkpoints, model directories.

A file may come from a user, from another process that died while writing it, or from someone
else's store. Every reader here either returns what the file holds or raises one
:class:`~scaling.errors.UserError` that names the file and says what was expected, and none lets
a file run code:

* :func:`read_text` (UTF-8) and :func:`read_json` (optionally of one expected type);
* :func:`load_tensors`: a torch file of tensors and plain data only (``torch.load`` with
  ``weights_only=True``). A file that holds anything else (a pickled object, whose loading could
  run code) raises :class:`UnsafeFile`; a damaged one (truncated, empty, not a torch file) raises
  :class:`UnreadableFile`;
* :func:`load_pretrained`: a local Hugging Face model directory, from safetensors weights only
  unless pickled weights are trusted explicitly (:func:`pickles_trusted`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scaling.errors import UserError

#: set to 1 (``--trust-pickles``) to let model directories load pickled weights (pytorch_model.bin)
TRUST_PICKLES_ENV = "SCALING_TRUST_PICKLES"
#: weights files of a model directory that are pickles (loading one can run code)
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


class UnreadableFile(UserError):
    """A file that is damaged or not in the expected format (truncated, empty, garbage)."""


class UnsafeFile(UserError):
    """A file that holds objects other than tensors and plain data, whose loading could run code."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_text(path: str | Path, what: str = "file") -> str:
    """The file at ``path`` as UTF-8 text; UserError naming ``what`` and the file if it is missing,
    a directory, unreadable or not UTF-8."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                             "expected a UTF-8 text file") from None
    except IsADirectoryError:
        raise UserError(f"{what} {str(path)!r} is a directory; expected a file") from None
    except OSError as exc:
        raise UserError(f"{what} {str(path)!r} cannot be read ({exc.strerror or _first_line(exc)})") from None


def read_json(path: str | Path, what: str = "file", kind: type | None = None) -> Any:
    """The JSON value in the file at ``path`` (see :func:`read_text`); UserError naming ``what``
    and the file when it is not JSON, or not of type ``kind`` (e.g. ``dict``) when given."""
    text = read_text(path, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        state = "empty" if not text.strip() else f"not valid JSON (line {exc.lineno}: {exc.msg})"
        raise UnreadableFile(f"{what} {str(path)!r} is {state}; expected a JSON file (damaged or cut short?)") from None
    if kind is not None and not isinstance(value, kind):
        names = {dict: "an object", list: "a list"}
        raise UnreadableFile(f"{what} {str(path)!r} holds a JSON {type(value).__name__}; expected {names.get(kind, kind.__name__)}")
    return value


def load_tensors(path: str | Path, what: str = "checkpoint") -> Any:
    """The contents of a torch file of tensors and plain data (dicts, lists, tuples, numbers,
    strings), loaded with ``weights_only=True`` onto the CPU.

    Raises :class:`UnsafeFile` when the file holds any other object (its loading could run code;
    nothing of it is run), :class:`UnreadableFile` when it is damaged or not a torch file, and
    UserError when it cannot be opened. The numpy arrays that checkpoints written before
    checkpoints held plain data only carry (numpy's RNG state) are accepted as plain data.
    """
    import pickle

    import numpy as np
    import torch

    path = Path(path)
    legacy_numpy = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType]
    try:
        with torch.serialization.safe_globals(legacy_numpy):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("Weights only load failed"):
            detail = _first_line(exc.__context__) if exc.__context__ is not None else "an object that is not plain data"
            raise UnsafeFile(f"{what} {str(path)!r} holds objects other than tensors and plain data ({detail}); refused, "
                             "since loading it could run code: expected a file written by scaling") from None
        raise UnreadableFile(f"{what} {str(path)!r} cannot be read ({_first_line(exc)}); expected a torch file") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise UserError(f"{what} {str(path)!r} cannot be opened ({exc.strerror})") from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as exc:
        reason = "empty file" if isinstance(exc, EOFError) else _first_line(exc)
        raise UnreadableFile(f"{what} {str(path)!r} cannot be read ({type(exc).__name__}: {reason}); "
                             "expected a whole torch file (damaged or cut short?)") from None


def pickles_trusted() -> bool:
    """Whether the user asked to trust pickled weights in model directories for this process and
    the trainers it starts (``scaling launch --trust-pickles`` sets ``$SCALING_TRUST_PICKLES=1``)."""
    return os.environ.get(TRUST_PICKLES_ENV) == "1"


def load_pretrained(cls: Any, path: str | Path, what: str = "model directory", trust_pickles: bool | None = None,
                    **kwargs: Any) -> Any:
    """``cls.from_pretrained(path, **kwargs)`` for a local Hugging Face directory (``cls``: e.g.
    ``AutoModelForCausalLM``), offline, from safetensors weights only unless ``trust_pickles``
    (None: :func:`pickles_trusted`). UserError naming the file for a missing or damaged
    ``config.json``, weights that are only pickles (untrusted), missing or damaged weights."""
    from safetensors import safe_open

    path = Path(path)
    read_json(path / "config.json", f"{what} config", dict)
    trusted = pickles_trusted() if trust_pickles is None else trust_pickles
    weights = sorted(path.glob("*.safetensors"))
    for file in weights:  # a damaged file is named here, not deep inside transformers
        try:
            with safe_open(file, "pt"):
                pass
        except Exception as exc:  # SafetensorError, OSError
            raise UnreadableFile(f"{what} weights {str(file)!r} cannot be read ({_first_line(exc)}); expected a whole "
                                 "safetensors file (damaged or cut short?)") from None
    if not weights and not trusted:
        pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in path.glob(pattern))
        if pickled:
            raise UnsafeFile(f"{what} {str(path)!r} holds its weights only as pickles ({', '.join(pickled)}), whose loading "
                             f"can run code; expected model.safetensors (pass --trust-pickles only if you trust their author)")
        raise UserError(f"{what} {str(path)!r} has no weights; expected model.safetensors")
    try:
        return cls.from_pretrained(path, local_files_only=True, use_safetensors=None if trusted else True, **kwargs)
    except Exception as exc:  # transformers and safetensors raise many types for files they cannot use
        raise UnreadableFile(f"{what} {str(path)!r} cannot be loaded ({type(exc).__name__}: {_first_line(exc)})") from None
