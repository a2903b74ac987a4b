"""Speech-text data: sources, units, interleaving, vocabularies, token shards, mixing, reading.

Entry point for training: :func:`prepare_data` (in :mod:`scaling.data.prepared`) turns a run's
``DataSpec`` into a :class:`PreparedData`: a vocabulary directory plus deterministic training and
validation windows read from memory-mapped token shards (prepared once by :mod:`scaling.data.build`). Every token carries a modality code (below); the trainer computes labels as
``ids[1:]`` and masks ``PAD`` targets (and ``MARKER`` targets when ``marker_loss`` is false).

This package imports no torch or transformers at import time.
"""

from __future__ import annotations

#: modality codes, one per token (int8)
TEXT = 0
SPEECH = 1
MARKER = 2
PAD = 3
MODALITY_NAMES = {TEXT: "text", SPEECH: "speech", MARKER: "marker", PAD: "pad"}

__all__ = ["TEXT", "SPEECH", "MARKER", "PAD", "MODALITY_NAMES", "PreparedData", "prepare_data"]


def __getattr__(name: str):
    if name in ("PreparedData", "prepare_data"):
        from scaling.data import prepared

        return getattr(prepared, name)
    raise AttributeError(f"module 'scaling.data' has no attribute {name!r}")
