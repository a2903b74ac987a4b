"""What a run costs: parameters, tokens, FLOPs, and memory per task under a parallel layout.

The one cost model of the toolkit: ``scaling plan`` prints it, the SLURM executor requests its
memory and sizes its time limits with it, training picks its strategy, activation checkpointing
and (under ``fsdp``) micro-batch with it, and sweeps turn compute budgets into tokens with its
parameter counts. Conventions are those of the results table (:mod:`scaling.results_table`):
``params`` in every convention (:class:`~scaling.models.ParamCounts`), FLOPs per trained token
in ``6nd`` / ``6nd_nonembed`` / ``exact`` (:mod:`scaling.models.flops`).

**Memory** is in bytes per task (one process; one GPU when there are GPUs), by part
(:class:`Memory`). N is the number of parameters, k the number of tasks, c the bytes of the compute
precision: on a GPU bf16 (2), on the CPU fp32 (4; nothing is cast). The strategies:

* ``ddp``: fp32 weights (4N), fp32 gradients (4N; with several tasks these are
  DistributedDataParallel's buckets, held all the time) and AdamW's two fp32 moments (8N) on
  every task. On a GPU, bf16 autocast keeps a bf16 copy of every matrix a forward pass uses
  (``working``: 2 bytes per non-embedding parameter and per output-layer parameter).
* ``zero1``: as ``ddp``, with AdamW's moments sharded over the tasks (8N/k).
* ``fsdp`` (``torch.distributed.fsdp.fully_shard``, one unit per decoder block, the rest —
  embeddings, final norm, output layer — in the root unit): weights, gradients and moments all
  sharded (16N/k); ``working``: the root's parameters gathered in the compute precision for the
  whole step, two blocks gathered at a time (the one computing and the one prefetched), and in the
  backward pass a block's unsharded gradient, its fp32 copy for the reduce-scatter (when computing
  in bf16) and the reduce-scatter's output (the task's shard).

With one task the three are the same: the model and plain AdamW (reported as ``ddp``).

Activations: the bytes each family's blocks save for the backward pass per token, in the
precision the strategy computes in (:class:`scaling.models.families.ActivationRule`), times the
tokens of a micro-batch; with activation checkpointing, each block keeps only its input and one
block's activations are recomputed at a time. Logits: the loss never holds full-vocabulary
logits for a micro-batch (:mod:`scaling.train.loss`): one chunk of :func:`loss_chunk_tokens` tokens
holds logits, their log-softmax and their gradient, 12 bytes per token and vocabulary row.

The peak (:attr:`Memory.total`) is the largest of three moments: the start of the backward pass
(weights, moments, working copies, activations, a logits chunk, and gradients that are held all the
time); its end (gradients complete, activations freed); and a checkpoint save (with decay branches
under ``fsdp`` the trunk's shard, kept on the host, passes through the device: ``checkpoint``).
Host memory besides the interpreter (``host``): the trunk's copy while a decay branch trains,
and the whole model (the main task gathers it to export it; one task also reads its checkpoint
whole).

**Layout.** :func:`choose_layout` resolves a sweep's ``engine:`` settings: ``auto`` takes the first
of ddp, zero1, fsdp, fsdp with activation checkpointing whose peak at micro-batch 1 fits the usable
part of a GPU (:func:`usable_bytes`), and the largest micro-batch that fits it; a run that fits
under none (or not under the strategy asked for) is refused with one line naming the run, the
memory it needs and the GPU's. On the CPU nothing is bounded: ``ddp`` without checkpointing, and
the whole local batch per forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from scaling.errors import UserError
from scaling.formatting import gib
from scaling.models import ParamCounts, count_params, flops_per_token
from scaling.models.families import FAMILIES
from scaling.runs.timeline import Timeline
from scaling.runs.vocabulary import vocabulary_rows
from scaling.spec import EngineSpec, RunSpec, parse_bytes

FP32, BF16 = 4, 2  # bytes per value
STRATEGIES = ("ddp", "zero1", "fsdp")
#: bytes of one loss chunk's logits (fp32) that :func:`loss_chunk_tokens` aims for
LOGITS_CHUNK_BYTES = 256 * 2**20
#: bytes per token and vocabulary row while a loss chunk runs: logits, log-softmax, gradient (fp32)
LOGITS_BYTES = 12
#: a GPU's memory left to training: this share, less the CUDA context and allocator slack below
USABLE_SHARE = 0.92
CONTEXT_BYTES = 2**30
#: GPU memory assumed when a sweep that trains on GPUs names none (engine.gpu_memory)
DEFAULT_GPU_MEMORY = "80G"
#: checkpoint interval (``engine.checkpoint_every: auto``): this many times the estimated write time,
#: so that writing stays about 2% of the time, at this write speed per task, within the bounds
CHECKPOINT_TIME_FACTOR = 50
WRITE_BYTES_PER_S = 5e8
CHECKPOINT_SECONDS_BOUNDS = (60.0, 3600.0)


@dataclass(frozen=True)
class Device:
    """Where a run's tasks train: on GPUs (bf16 compute) or CPUs (fp32), and the memory of one
    device in bytes (None: not bounded)."""

    gpu: bool = False
    memory: float | None = None

    @classmethod
    def gpus(cls, engine: EngineSpec) -> "Device":
        """A GPU of the sweep's ``engine.gpu_memory`` (:data:`DEFAULT_GPU_MEMORY` when it names none)."""
        return cls(True, parse_bytes(engine.gpu_memory or DEFAULT_GPU_MEMORY, "engine.gpu_memory"))


@dataclass(frozen=True)
class Layout:
    """How a run trains: strategy (ddp, zero1, fsdp), activation checkpointing, micro-batch (windows
    per forward pass on one task) and tasks."""

    strategy: str
    activation_checkpointing: bool
    micro_batch: int
    tasks: int

    def describe(self) -> str:
        """E.g. 'fsdp+ac x8, micro-batch 2'."""
        return f"{self.strategy}{'+ac' if self.activation_checkpointing else ''} x{self.tasks}, micro-batch {self.micro_batch}"


@dataclass(frozen=True)
class Memory:
    """Bytes per task by part (see the module docstring); ``gradients_held``: whether gradients
    live through the whole step (DDP's buckets) rather than appearing in the backward pass."""

    weights: float
    gradients: float
    optimizer: float
    working: float
    activations: float
    logits: float
    checkpoint: float
    host: float
    gradients_held: bool

    @property
    def total(self) -> float:
        """Peak device bytes of one task: the largest of the start and end of the backward pass and
        a checkpoint save."""
        state = self.weights + self.optimizer
        held = self.gradients if self.gradients_held else 0.0
        return max(state + self.working + self.activations + self.logits + held,
                   state + self.working + self.gradients,
                   state + held + self.checkpoint)

    def parts(self) -> dict[str, float]:
        """Every part by name (bytes), ``host`` included."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "gradients_held"}


def loss_chunk_tokens(vocab_size: int) -> int:
    """Tokens per chunk of the loss: the largest power of two whose fp32 logits fit in
    :data:`LOGITS_CHUNK_BYTES` (at least 64)."""
    n = LOGITS_CHUNK_BYTES // (FP32 * vocab_size)
    return max(64, 1 << (int(n).bit_length() - 1))


def precision(strategy: str, device: Device) -> str:
    """The precision a strategy computes in (:data:`scaling.models.families.PRECISIONS`): fp32 on the
    CPU; on a GPU bf16 autocast (ddp, zero1) or bf16 weights (fsdp's mixed precision)."""
    if not device.gpu:
        return "fp32"
    return "bf16" if strategy == "fsdp" else "autocast"


def memory(spec: RunSpec, params: ParamCounts, vocab_size: int, layout: Layout, device: Device, branches: bool) -> Memory:
    """Bytes per task of ``spec`` trained with ``layout`` on ``device`` (see the module docstring)."""
    model, context = spec.model, spec.data.context
    family = FAMILIES[model.family]
    n, k = params.total, layout.tasks
    strategy = layout.strategy if k > 1 else "ddp"
    prec = precision(strategy, device)
    c = FP32 if prec == "fp32" else BF16
    block = family.block_params(model.d_model, model.d_ff, model.n_heads, model.n_kv_heads or model.n_heads)
    root = n - model.n_layers * block
    if strategy == "fsdp":
        weights, gradients, optimizer = FP32 * n / k, FP32 * n / k, 2 * FP32 * n / k
        reduce_input = 0 if c == FP32 else FP32  # the fp32 copy of a block's gradient that reduce-scatter reads
        working = c * (root + 2 * block) + (c + reduce_input + FP32 / k) * block
        branch_copy = 3 * FP32 * n / k
    else:
        weights, gradients = FP32 * n, FP32 * n
        optimizer = 2 * FP32 * n / (k if strategy == "zero1" else 1)
        working = BF16 * (params.non_embedding + vocab_size * model.d_model) if prec == "autocast" else 0.0
        branch_copy = weights + optimizer
    rule = family.activations[prec]
    tokens = layout.micro_batch * context
    per_block = rule.per_block(model, context)
    kept = rule.block_input * model.d_model if layout.activation_checkpointing else per_block
    recomputed = per_block if layout.activation_checkpointing else 0.0
    activations = tokens * (model.n_layers * kept + recomputed + rule.outside_blocks(model))
    logits = min(tokens, loss_chunk_tokens(vocab_size)) * vocab_size * LOGITS_BYTES
    checkpoint = branch_copy if branches and strategy == "fsdp" and device.gpu else 0.0
    whole = FP32 * n if k > 1 else 3 * FP32 * n
    return Memory(weights=weights, gradients=gradients, optimizer=optimizer, working=working, activations=activations,
                  logits=logits, checkpoint=checkpoint, host=(branch_copy if branches else 0.0) + whole,
                  gradients_held=k > 1 and strategy != "fsdp")


def usable_bytes(device: Device) -> float | None:
    """The part of one device's memory that training may plan to fill (None: not bounded)."""
    return None if device.memory is None else USABLE_SHARE * device.memory - CONTEXT_BYTES


def local_batch(spec: RunSpec, tasks: int) -> int:
    """Windows of the global batch the busiest task trains per step."""
    return -(-spec.train.batch_size // tasks)


def candidates(engine: EngineSpec, tasks: int) -> list[tuple[str, bool]]:
    """(strategy, activation checkpointing) pairs to try, in order of preference, under ``engine``."""
    strategies = ["ddp"] if tasks == 1 else list(STRATEGIES) if engine.strategy == "auto" else [engine.strategy]
    switch = engine.activation_checkpointing.lower()
    pairs = [(s, ac) for s in strategies for ac in ((False, True) if switch == "auto" else (switch == "true",))]
    if switch == "auto":  # checkpointing only once no strategy fits without it
        pairs = [p for p in pairs if not p[1]] + [p for p in pairs if p[1]][-1:]
    return pairs


def choose_layout(spec: RunSpec, engine: EngineSpec, tasks: int, device: Device) -> tuple[Layout, Memory]:
    """The layout ``spec`` trains with and its memory (see the module docstring); UserError when it
    fits the device under no allowed layout."""
    vocab, _ = vocabulary_rows(spec)
    params = param_counts(spec)
    branches = bool(Timeline.of(spec).branches)
    limit = usable_bytes(device)
    batch = local_batch(spec, tasks)
    tried = []
    for strategy, ac in candidates(engine, tasks):
        smallest = Layout(strategy, ac, 1, tasks)
        need = memory(spec, params, vocab, smallest, device, branches)
        tried.append((smallest, need))
        if limit is None:
            layout = Layout(strategy, ac, batch, tasks)
            return layout, memory(spec, params, vocab, layout, device, branches)
        if need.total <= limit:
            lo, hi = 1, batch  # the largest micro-batch that fits (memory grows with it)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if memory(spec, params, vocab, Layout(strategy, ac, mid, tasks), device, branches).total <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            layout = Layout(strategy, ac, lo, tasks)
            return layout, memory(spec, params, vocab, layout, device, branches)
    layout, need = min(tried, key=lambda t: t[1].total)
    fixed = "" if engine.strategy == "auto" or tasks == 1 else f" (engine.strategy = {engine.strategy!r}; auto may fit)"
    raise UserError(f"run {spec.name} ({spec.run_id}) needs {gib(need.total)} per GPU even as {layout.describe()}{fixed}, "
                    f"but a GPU has {gib(device.memory)} ({gib(limit)} usable; engine.gpu_memory); "
                    f"expected more GPUs per run (slurm.gpus_per_run), or a smaller model or data.context")


@dataclass(frozen=True)
class Costs:
    """What one run costs (see the module docstring).

    vocab_size / n_added_vocab: embedding rows, and those added for speech; params: parameter
    counts; flops_per_token: FLOPs per trained token by convention; tokens: the budget;
    tokens_spent: what the run trains, decay branches included; layout: strategy, activation
    checkpointing, micro-batch and tasks; memory: bytes per task.
    """

    vocab_size: int
    n_added_vocab: int
    params: ParamCounts
    flops_per_token: dict[str, float]
    tokens: int
    tokens_spent: int
    layout: Layout
    memory: Memory

    @property
    def flops(self) -> float:
        """6·N_total·D of everything the run trains (D = tokens spent, decay branches included)."""
        return self.flops_per_token["6nd"] * self.tokens_spent

    def checkpoint_seconds(self) -> float:
        """The checkpoint interval of ``engine.checkpoint_every: auto``: :data:`CHECKPOINT_TIME_FACTOR`
        times the time one task takes to write its share (weights and AdamW's moments) at
        :data:`WRITE_BYTES_PER_S`, within :data:`CHECKPOINT_SECONDS_BOUNDS`."""
        share = 3 * FP32 * self.params.total / self.layout.tasks
        lo, hi = CHECKPOINT_SECONDS_BOUNDS
        return min(hi, max(lo, CHECKPOINT_TIME_FACTOR * share / WRITE_BYTES_PER_S))


def param_counts(spec: RunSpec) -> ParamCounts:
    """Parameter counts of a run's model with the vocabulary it will have (:mod:`~scaling.runs.vocabulary`)."""
    vocab, added = vocabulary_rows(spec)
    return count_params(spec.model, vocab, added, spec.data.context)


def costs(spec: RunSpec, engine: EngineSpec = EngineSpec(), tasks: int = 1, device: Device = Device()) -> Costs:
    """The costs of ``spec`` trained by ``tasks`` processes on ``device`` under ``engine`` (its layout
    by :func:`choose_layout`; UserError when it fits no allowed layout)."""
    engine.validate()
    vocab, added = vocabulary_rows(spec)
    params = count_params(spec.model, vocab, added, spec.data.context)
    layout, mem = choose_layout(spec, engine, tasks, device)
    return Costs(vocab_size=vocab, n_added_vocab=added, params=params,
                 flops_per_token=flops_per_token(spec.model, params, vocab, spec.data.context),
                 tokens=spec.train.tokens, tokens_spent=Timeline.of(spec).tokens_spent, layout=layout, memory=mem)

