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


def global_windows(prep, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and modality codes [B, T+1] of the global batch of optimizer step ``step``."""
    pairs = [prep.train_window(step * batch_size + i) for i in range(batch_size)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


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
