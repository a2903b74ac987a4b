"""What a run costs: parameters, tokens, FLOPs and memory per task, under a parallel strategy.

The one cost model of the toolkit: ``scaling plan`` prints it, the SLURM executor requests its
memory and sizes its time limits with it, and sweeps turn compute budgets into tokens with its
parameter counts. Conventions are those of the results table (:mod:`scaling.results_table`):
``params`` in every convention (:class:`~scaling.models.ParamCounts`), FLOPs per trained token
in ``6nd`` / ``6nd_nonembed`` / ``exact`` (:mod:`scaling.models.flops`).

Memory is in bytes per task (one process; one GPU when there are GPUs), by part, for the training
state that lives through a run; the parts sum to :attr:`Memory.total`. Each strategy is a rule
in :data:`STRATEGIES` that says what one task of ``tasks`` holds:

* ``zero1`` (what :mod:`scaling.train.parallel` runs): fp32 weights (4 B/parameter) and fp32
  gradients (4 B; with several tasks, views into DistributedDataParallel's buckets, so one copy)
  on every task; AdamW's two fp32 moments (8 B) sharded over the tasks (ZeRO-1); one task is
  plain AdamW. While a decay branch trains, the trunk's weights and this task's share of its
  moments are kept aside on the host (``branch_copy``).

Activations are not modelled yet: on a GPU the trainer finds the largest micro-batch that fits in
the memory left (:func:`scaling.train.parallel.largest_micro_batch`); a strategy that models them
adds a part here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

from scaling.errors import unknown_choice
from scaling.models import ParamCounts, count_params, flops_per_token
from scaling.runs.timeline import Timeline
from scaling.runs.vocabulary import vocabulary_rows
from scaling.spec import RunSpec

FP32 = 4  # bytes per value


@dataclass(frozen=True)
class Memory:
    """Bytes per task of a run's training state, by part (see the module docstring)."""

    weights: float
    gradients: float
    optimizer: float
    branch_copy: float

    @property
    def total(self) -> float:
        """The sum of every part."""
        return sum(getattr(self, f.name) for f in fields(self))


def zero1_memory(params: ParamCounts, tasks: int, branches: bool) -> Memory:
    """``zero1``: weights and gradients on every task, AdamW's moments sharded over ``tasks``."""
    n = params.total
    optimizer = 2 * FP32 * n / tasks
    return Memory(weights=FP32 * n, gradients=FP32 * n, optimizer=optimizer,
                  branch_copy=FP32 * n + optimizer if branches else 0.0)


#: parallel strategies by name: (parameter counts, tasks, has decay branches) → memory per task
STRATEGIES: dict[str, Callable[[ParamCounts, int, bool], Memory]] = {"zero1": zero1_memory}


@dataclass(frozen=True)
class Costs:
    """What one run costs (see the module docstring).

    vocab_size / n_added_vocab: embedding rows, and those added for speech; params: parameter
    counts; flops_per_token: FLOPs per trained token by convention; tokens: the budget;
    tokens_spent: what the run trains, decay branches included; memory: bytes per task.
    """

    vocab_size: int
    n_added_vocab: int
    params: ParamCounts
    flops_per_token: dict[str, float]
    tokens: int
    tokens_spent: int
    strategy: str
    tasks: int
    memory: Memory

    @property
    def flops(self) -> float:
        """6·N_total·D of everything the run trains (D = tokens spent, decay branches included)."""
        return self.flops_per_token["6nd"] * self.tokens_spent


def param_counts(spec: RunSpec) -> ParamCounts:
    """Parameter counts of a run's model with the vocabulary it will have (:mod:`~scaling.runs.vocabulary`)."""
    vocab, added = vocabulary_rows(spec)
    return count_params(spec.model, vocab, added, spec.data.context)


def costs(spec: RunSpec, strategy: str = "zero1", tasks: int = 1) -> Costs:
    """The costs of ``spec`` trained by ``tasks`` processes with ``strategy`` (a name in :data:`STRATEGIES`)."""
    if strategy not in STRATEGIES:
        raise unknown_choice("parallel strategy", strategy, STRATEGIES)
    vocab, added = vocabulary_rows(spec)
    params = count_params(spec.model, vocab, added, spec.data.context)
    timeline = Timeline.of(spec)
    return Costs(vocab_size=vocab, n_added_vocab=added, params=params,
                 flops_per_token=flops_per_token(spec.model, params, vocab, spec.data.context),
                 tokens=spec.train.tokens, tokens_spent=timeline.tokens_spent, strategy=strategy, tasks=tasks,
                 memory=STRATEGIES[strategy](params, tasks, bool(timeline.branches)))
