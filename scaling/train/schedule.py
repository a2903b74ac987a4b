"""Learning-rate schedules over a token budget, as functions of the optimizer step.

* ``cosine``: linear warmup over ``warmup`` of the steps, then cosine decay from ``lr`` to
  ``min_lr`` at the last step (SIMS: 1 % warmup, 5e-4 → 5e-5).
* ``wsd``: warmup, a stable phase at ``lr``, then linear decay to ``min_lr`` over the last
  ``decay`` fraction of the steps (warmup–stable–decay; the stable phase can be branched into
  short decays at several budgets, see :func:`wsd_branch_lr`).
"""

from __future__ import annotations

import math

from scaling.spec import TrainSpec


def learning_rate(train: TrainSpec, step: int, total_steps: int) -> float:
    """Learning rate at optimizer step ``step`` (0-based) of ``total_steps``."""
    warm = max(1, round(train.warmup * total_steps)) if train.warmup > 0 else 0
    if step < warm:
        return train.lr * (step + 1) / warm
    if train.schedule == "cosine":
        span = max(1, total_steps - 1 - warm)
        progress = min(1.0, (step - warm) / span)
        return train.min_lr + 0.5 * (train.lr - train.min_lr) * (1 + math.cos(math.pi * progress))
    decay_steps = max(1, round(train.decay * total_steps))
    return wsd_branch_lr(train, step, decay_start=total_steps - decay_steps, decay_steps=decay_steps)


def wsd_branch_lr(train: TrainSpec, step: int, decay_start: int, decay_steps: int) -> float:
    """WSD learning rate at ``step`` for a decay that starts at ``decay_start`` and lasts ``decay_steps``."""
    warm = max(1, round(train.warmup * (decay_start + decay_steps))) if train.warmup > 0 else 0
    if step < warm:
        return train.lr * (step + 1) / warm
    if step < decay_start:
        return train.lr
    progress = min(1.0, (step - decay_start + 1) / decay_steps)
    return train.lr + (train.min_lr - train.lr) * progress
