"""Learning-rate schedules along a run's steps (:mod:`scaling.runs.timeline` counts the steps).

Schedules (functions of the 0-based step):

* ``cosine``: linear warmup over ``warmup`` of the steps, then cosine decay from ``lr`` to
  ``min_lr`` at the last step (SIMS: 1 % warmup, 5e-4 → 5e-5).
* ``wsd``: warmup, a stable phase at ``lr``, then linear decay to ``min_lr`` over the last
  ``decay`` fraction of the steps (warmup–stable–decay; Hägele et al. 2024). A decay branch
  decays over the last ``decay`` fraction of its own budget's steps.
"""

from __future__ import annotations

import math

from scaling.runs.timeline import decay_steps, warmup_steps
from scaling.spec import TrainSpec


def learning_rate(train: TrainSpec, step: int, total_steps: int, end: int | None = None) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of a run of ``total_steps``.

    ``end``: for a WSD decay branch, the steps of the branch's budget (its decay ends at ``end``);
    None for the run itself. Warmup is always counted on ``total_steps``.
    """
    warm = warmup_steps(train, total_steps)
    if step < warm:
        return train.lr * (step + 1) / warm
    if train.schedule == "cosine":
        span = max(1, total_steps - 1 - warm)
        progress = min(1.0, (step - warm) / span)
        return train.min_lr + 0.5 * (train.lr - train.min_lr) * (1 + math.cos(math.pi * progress))
    end = total_steps if end is None else end
    length = decay_steps(train, end)
    if step < end - length:
        return train.lr
    progress = min(1.0, (step - end + length + 1) / length)
    return train.lr * (1 - progress) + train.min_lr * progress
