"""``loss_val_speech_only``: one validation loss on which every speech LM can be compared.

``loss_val`` of an interleaved run averages over text, interleaved and speech documents, and
``loss_val`` of a textless run over speech documents only, so the two columns measure different
token mixtures. This column scores both on the same tokens: the speech-only documents of the
validation split (each utterance's deduplicated units, then end-of-sequence, as the prepared speech
stream holds them, in corpus order; :meth:`scaling.data.PreparedData.speech_val_windows`), packed
into windows of the run's ``data.context`` and averaged over the **unit targets** (end-of-sequence
targets are left out). The unit sequence is identical in every vocabulary (only the ids are
shifted by the vocabulary's unit offset), so every run of a corpus and context is validated on the
same units at the same positions, whatever its mode.

Sources named in ``data.val_exclude`` are left out, as for ``loss_val``. Text-only runs (no
speech stream) get no column.
"""

from __future__ import annotations

import numpy as np
import torch

from scaling.data import SPEECH


def unit_targets(ids: np.ndarray, mod: np.ndarray, eos_id: int) -> np.ndarray:
    """Mask [M, context] of the targets (``ids[:, 1:]``) that are speech units: SPEECH modality, not end-of-sequence."""
    return (mod[:, 1:] == SPEECH) & (ids[:, 1:] != eos_id)


def speech_only_targets(prep, exclude_sources, limit: int) -> tuple[torch.Tensor, torch.Tensor, tuple[np.ndarray]] | None:
    """The speech-only validation windows of ``prep`` (a :class:`scaling.data.PreparedData`), at
    most ``limit``, leaving out ``exclude_sources``, as (inputs [M, T], labels [M, T] with -100
    where the target is not a unit, (unit-target mask [M, T],)); None where there is no unit
    target (text mode, no speech source left)."""
    ids, mod = prep.speech_val_windows(tuple(exclude_sources), limit)
    keep = unit_targets(ids, mod, prep.eos_id)
    if not keep.any():
        return None
    labels = np.where(keep, ids[:, 1:], -100)
    return torch.from_numpy(np.ascontiguousarray(ids[:, :-1])), torch.from_numpy(labels), (keep,)
