"""The windows a step trains and their labels.

Data order depends only on the seed and the step: step s trains windows s·B … s·B+B−1 of the run's
prepared data (B = ``train.batch_size``), whatever the number of processes. Labels are the next
token of every position; positions whose target is padding (or a modality marker, when
``data.marker_loss`` is false) carry no loss.
"""

from __future__ import annotations

import numpy as np
import torch

from scaling.data import MARKER, PAD


def global_windows(prep, step: int, batch_size: int, rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and modality codes [B, T+1] of the global batch of optimizer step ``step``.

    ``rows = (lo, hi)``: this rank's rows (:func:`~scaling.train.distributed.rank_rows`); only
    their ids are read, the other rows hold padding, while every row's modality is read so that
    each rank counts the global batch's label tokens."""
    return prep.train_batch(step * batch_size, batch_size, rows)


def make_labels(ids: np.ndarray, modality: np.ndarray, marker_loss: bool, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Inputs, labels (-100 where no loss) and target modalities of windows [B, T+1].

    ``budget`` caps the number of label positions (row-major order), for the exact last step.
    """
    inputs = torch.from_numpy(np.ascontiguousarray(ids[:, :-1]))
    target_mod = modality[:, 1:].copy()
    labels = ids[:, 1:].copy()
    mask = target_mod == PAD
    if not marker_loss:
        mask |= target_mod == MARKER
    if budget is not None:
        keep = np.cumsum(~mask.reshape(-1)).reshape(mask.shape) <= budget
        mask |= ~keep
    labels[mask] = -100
    target_mod = np.where(mask, PAD, target_mod)
    return inputs, torch.from_numpy(labels), target_mod
