"""The steps of a run: how its token budget divides into optimizer steps, evaluation points and
decay branches.

Units: a *step* is one optimizer update on the global batch; ``tokens_per_step`` =
batch_size · context label positions (fewer in a budget's last step, which trains only the
positions left, so a budget is met exactly).

Decay branches (``wsd`` with ``train.branch_tokens``): one run yields several budgets. The trunk
trains to ``tokens``; for each smaller budget D_b a branch leaves the trunk's stable phase at step
``start = end − round(decay · end)`` (``end`` = steps of D_b), copies the trunk's state, decays over
its last ``decay`` fraction exactly as an independent WSD run of D_b tokens would (same data order,
since data depends only on the step), is evaluated at D_b, and is dropped. Warmup is counted on the
trunk's steps for the trunk and every branch alike, because they share it. A branch costs its
decay steps only: D_b − start · tokens_per_step extra tokens. The learning rate along these steps
is :func:`scaling.train.schedule.learning_rate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling.errors import UserError
from scaling.spec import RunSpec, TrainSpec


@dataclass(frozen=True)
class Stretch:
    """One line of training that ends at a budget: the trunk (start 0) or a decay branch.

    tokens: the budget reached at the end (trained tokens); end: steps to reach it (its last step
    is ``end − 1``); last_step_tokens: label tokens of that last step; start: the first step that
    differs from the trunk (0 for the trunk).
    """

    tokens: int
    end: int
    last_step_tokens: int
    start: int = 0

    @classmethod
    def to_budget(cls, tokens: int, tokens_per_step: int, start: int = 0) -> "Stretch":
        end = math.ceil(tokens / tokens_per_step)
        return cls(tokens, end, tokens - (end - 1) * tokens_per_step, start)


@dataclass(frozen=True)
class Timeline:
    """Step arithmetic of a run: steps, the exact last step, evaluation steps and decay branches.

    ``eval_steps`` are the trunk's evaluation points (the last at its end); each branch is evaluated
    once, at its own end.
    """

    tokens: int
    tokens_per_step: int
    n_steps: int
    last_step_tokens: int
    eval_steps: tuple[int, ...]
    warmup_steps: int
    branches: tuple[Stretch, ...] = ()

    @property
    def trunk(self) -> Stretch:
        return Stretch(self.tokens, self.n_steps, self.last_step_tokens)

    @property
    def tokens_spent(self) -> int:
        """Tokens the whole run trains: the trunk's budget plus every branch's steps beyond the shared prefix."""
        return self.tokens + sum(b.tokens - b.start * self.tokens_per_step for b in self.branches)

    @classmethod
    def of(cls, spec: RunSpec) -> "Timeline":
        """The timeline of ``spec``; UserError when a branch cannot leave the trunk's stable phase."""
        t = spec.train
        per = t.batch_size * spec.data.context
        trunk = Stretch.to_budget(t.tokens, per)
        n = trunk.end
        evals = tuple(sorted({max(1, math.ceil(i * n / t.eval_points)) for i in range(1, t.eval_points + 1)}))
        warm = warmup_steps(t, n)
        branches = []
        for tokens in t.branch_tokens:
            end = math.ceil(tokens / per)
            start = end - decay_steps(t, end)
            if end >= n:
                raise UserError(f"train.branch_tokens = {tokens}: within one step ({per} tokens) of train.tokens = {t.tokens}; "
                                "expected a smaller budget")
            if start < warm:
                raise UserError(f"train.branch_tokens = {tokens}: its decay would start at step {start}, inside the trunk's "
                                f"warmup ({warm} steps); expected a larger budget or a shorter train.warmup")
            branches.append(Stretch.to_budget(tokens, per, start))
        return cls(t.tokens, per, n, trunk.last_step_tokens, evals, warm, tuple(branches))


def warmup_steps(train: TrainSpec, total_steps: int) -> int:
    """Warmup length in steps: ``warmup`` of the run's (trunk's) steps, at least 1 when warmup > 0."""
    return max(1, round(train.warmup * total_steps)) if train.warmup > 0 else 0


def decay_steps(train: TrainSpec, end: int) -> int:
    """WSD decay length in steps of a budget of ``end`` steps: ``decay`` of them, at least 1."""
    return max(1, round(train.decay * end))
