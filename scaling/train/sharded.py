"""Sharded checkpoints through ``torch.distributed.checkpoint`` (DCP), read without running code.

A run trained by several processes saves its tensors (weights, AdamW's moments; see
:mod:`scaling.train.state`) as one DCP checkpoint, ``<checkpoint dir>/sharded-<tag>/``: every rank
writes the pieces it holds (a replicated tensor is written once), and the coordinator writes the
index (``.metadata``) last, after every rank's pieces are complete. DCP records each tensor's global
shape and the piece each file holds, so a checkpoint loads on any number of ranks (or one process):
each reads the pieces it now needs (resharding).

Safety. Someone may hand a user a checkpoint. DCP itself reads ``.metadata`` with ``pickle.load``,
and non-tensor items with ``torch.load(weights_only=False)``: both run whatever code a planted
pickle names. Here ``.metadata`` is read through an unpickler that builds only DCP's own metadata
classes, torch's dtypes and sizes, and plain containers (:class:`SafeReader`), non-tensor items are
refused (:class:`TensorsOnlyPlanner`; this toolkit never writes any), and tensors are read by DCP
with ``weights_only=True``. Anything else is refused with one line naming the file, before any of
it runs.
"""

from __future__ import annotations

import io
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.metadata import Metadata, TensorStorageMetadata

from scaling.errors import UserError

PREFIX = "sharded-"
METADATA = ".metadata"

#: (module, name) of every class a DCP ``.metadata`` file may build
_ALLOWED = {
    ("torch.distributed.checkpoint.metadata", name)
    for name in ("Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata", "TensorProperties",
                 "StorageMeta", "MetadataIndex", "_MEM_FORMAT_ENCODING")
} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch.distributed.checkpoint.filesystem", "_StoragePrefix"),
    ("torch.distributed.checkpoint._extension", "StreamTransformExtension"),
    ("torch.serialization", "_get_layout"),
    ("torch", "Size"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"),
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


class _MetadataUnpickler(pickle.Unpickler):
    """Builds DCP metadata only (see the module docstring); ``find_class`` refuses everything else."""

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return super().find_class(module, name)
        raise UserError(f"{self.path}: not a checkpoint index this toolkit reads: it names {module}.{name}, which could run "
                        "code when loaded; refused (expected torch.distributed.checkpoint metadata only)")


def read_metadata(path: Path) -> Metadata:
    """The DCP index ``path`` (a ``.metadata`` file), unpickled safely; UserError naming it otherwise."""
    try:
        with open(path, "rb") as f:
            metadata = _MetadataUnpickler(f, path).load()
    except UserError:
        raise
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{path}: unreadable checkpoint index ({type(exc).__name__}: {exc}); "
                        "expected the .metadata of a torch.distributed.checkpoint") from None
    if not isinstance(metadata, Metadata):
        raise UserError(f"{path}: holds a {type(metadata).__name__}, not a torch.distributed.checkpoint index; refused")
    return metadata


class SafeReader(FileSystemReader):
    """DCP's file reader with the index read by :func:`read_metadata`."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        metadata = read_metadata(Path(self._get_metadata_path(kwargs.get("rank"))))
        if getattr(metadata, "storage_meta", None) is not None:
            metadata.storage_meta.load_id = self.load_id
        return metadata


class TensorsOnlyPlanner(DefaultLoadPlanner):
    """DCP's load planner, refusing non-tensor items (DCP would ``torch.load`` them with
    ``weights_only=False``)."""

    def __init__(self, directory: Path):
        super().__init__()
        self.directory = directory

    def load_bytes(self, read_item, value: io.BytesIO) -> None:
        raise UserError(f"{self.directory}: item {read_item.dest_index.fqn!r} is not a tensor; this toolkit's "
                        "checkpoints hold tensors only, and loading other items could run code; refused")


def directory_of(checkpoint_dir: Path, tag: str) -> Path:
    """Where checkpoint ``tag`` of a run's checkpoint directory lives."""
    return checkpoint_dir / f"{PREFIX}{tag}"


def save_sharded(checkpoint_dir: Path, tag: str, tensors: dict[str, torch.Tensor]) -> None:
    """Every rank calls it: write ``tensors`` (plain or DTensors, by name) as checkpoint ``tag``. A
    leftover directory of the same tag (a save that was killed) is replaced."""
    path = directory_of(checkpoint_dir, tag)
    if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    dcp.save(tensors, storage_writer=FileSystemWriter(path, single_file_per_rank=True, sync_files=True))


def check_matches(checkpoint_dir: Path, tag: str, tensors: dict[str, torch.Tensor]) -> None:
    """UserError (one line) when checkpoint ``tag`` lacks a tensor of ``tensors`` or holds it with
    another shape: it was written for another model."""
    path = directory_of(checkpoint_dir, tag)
    meta = read_metadata(path / METADATA).state_dict_metadata
    for name, tensor in tensors.items():
        stored = meta.get(name)
        if not isinstance(stored, TensorStorageMetadata) or tuple(stored.size) != tuple(tensor.shape):
            held = "nothing" if stored is None else f"shape {tuple(getattr(stored, 'size', ()))}"
            raise UserError(f"the checkpoint {path} holds {held} for {name}, but the model has shape {tuple(tensor.shape)}: "
                            "it was written for another model config; expected the run's own checkpoint")


def load_sharded(checkpoint_dir: Path, tag: str, tensors: dict[str, torch.Tensor]) -> None:
    """Every rank calls it: fill ``tensors`` (plain or DTensors) in place from checkpoint ``tag``,
    each rank reading the pieces it holds now (see the module docstring)."""
    path = directory_of(checkpoint_dir, tag)
    check_matches(checkpoint_dir, tag, tensors)
    dcp.load(tensors, storage_reader=SafeReader(path), planner=TensorsOnlyPlanner(path))


def drop_others(checkpoint_dir: Path, keep: str | None) -> None:
    """Remove every sharded checkpoint of the directory but ``keep`` (main rank, after ``latest``
    names ``keep``)."""
    for path in checkpoint_dir.glob(f"{PREFIX}*"):
        if path.name != f"{PREFIX}{keep}":
            shutil.rmtree(path, ignore_errors=True)
