"""What each run asks SLURM for: settings from the sweep's ``slurm:`` section and the command line,
turned into per-run resources (GPUs, tasks, CPUs, memory, time limit) and sbatch options.

The ``slurm:`` section of a sweep file (every key optional; unknown keys are errors)::

    slurm:
      partition: gpu            # default: the cluster's default partition
      account: my-project
      qos: normal
      constraint: a100
      gpus_per_run: 1           # GPUs per run, one task (process) per GPU
      gpus_per_node: 8          # runs with more GPUs than this span ceil(gpus/gpus_per_node) nodes
      tasks_per_run: 1          # CPU-only runs: data-parallel processes
      cpus_per_task: 8          # default: 8 with GPUs, else 1 (also the torch thread count)
      mem_per_task: 64G         # default: 2 GiB + the task's host memory (scaling.runs.costs), rounded up to 256 MB
      time: ""                  # a fixed limit ('90', '45m', '2h', '1-00:00:00'); default: estimated
      throughput: 1.0e14        # assumed 6·N·D FLOP/s per task (default 1e14 per GPU, 5e9 per CPU task)
      time_factor: 2.0          # safety factor on the estimated time
      min_time: 10m             # floor of the estimate (start-up, data preparation)
      max_time: ""              # ceiling of the estimate (default: the partition's MaxTime)
      array_parallelism: 16     # %k: tasks of one array running at once
      max_array_size: 0         # split arrays below this many tasks (default: the cluster's MaxArraySize)
      max_attempts: 3           # submissions per run before relaunch gives up on it
      max_requeues: 10          # time-limit/preemption requeues per job
      signal_delay: 120         # seconds between the USR2 warning and the time limit (SLURM may send it
                                # up to 30 s earlier: it checks limits every 30 s and errs on the early side)
      submit_interval: 1.0      # seconds between sbatch calls
      sbatch: {exclude: "node[1-3]", reservation: paper}   # any other sbatch options
      setup: ["module load cuda/12.4"]                      # shell lines run before the job starts
      python: ""                # interpreter on the compute nodes (default: this one)
      by_params:                # size-dependent overrides: every rule with min_params <= N applies
        - {min_params: 1B, gpus_per_run: 4, mem_per_task: 128G}

The default memory per task is :func:`task_memory_mb`: the host memory of the one memory model
(:func:`scaling.runs.costs.costs`, under the sweep's ``engine:`` settings and the run's tasks: a
decay branch's trunk copy, the model gathered for export; on CPU-only runs the training state
itself) plus :data:`MEM_BASE_MB`. On GPU runs the same model says how much each GPU holds, and a
run that fits its GPUs under no allowed layout is refused here, naming the run and the memory. Estimated time limit = 6·N_total·D_spent /
(throughput × tasks) × time_factor (D_spent: decay branches included), clamped to
[min_time, max_time] and rounded up to the next step of :data:`TIME_STEPS_MIN`, so that runs
of similar cost share one array. A run that outlives its limit is checkpointed and requeued.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from scaling.errors import UserError
from scaling.launch.scheduler import Partition, parse_time_minutes
from scaling.runs.costs import Costs, Device, costs, param_counts
from scaling.spec import EngineSpec, RunSpec, from_dict, parse_bytes, parse_count

TIME_STEPS_MIN = (5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080)
GPU_THROUGHPUT = 1e14  # 6·N·D FLOP/s per GPU assumed when the sweep gives none (~30-40% MFU on an A100)
CPU_THROUGHPUT = 5e9  # per CPU task
MEM_BASE_MB = 2048  # per task, besides the training state: the interpreter, torch, the prepared data
SLURM_SIGNAL_LOOKAHEAD_S = 30  # slurmctld checks limits every 30 s and sends --signal warnings up to that much early


@dataclass(frozen=True)
class SlurmSettings:
    """The ``slurm:`` section of a sweep, merged with command-line flags (see the module docstring)."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    constraint: str = ""
    gpus_per_run: int = 0
    gpus_per_node: int = 0
    tasks_per_run: int = 1
    cpus_per_task: int = 0
    mem_per_task: str = ""
    time: str = ""
    throughput: float = 0.0
    time_factor: float = 2.0
    min_time: str = "10"
    max_time: str = ""
    array_parallelism: int = 16
    max_array_size: int = 0
    max_attempts: int = 3
    max_requeues: int = 10
    signal_delay: int = 120
    submit_interval: float = 1.0
    sbatch: dict = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    python: str = ""
    by_params: tuple[dict, ...] = ()

    @classmethod
    def from_config(cls, section: dict[str, Any] | None, flags: dict[str, Any] | None = None) -> "SlurmSettings":
        """Strictly parse a sweep's ``slurm:`` section; ``flags`` (command line, None = unset) win."""
        merged = {k: v for k, v in (section or {}).items() if v is not None}
        merged.update({k: v for k, v in (flags or {}).items() if v is not None})
        for key in ("sbatch", "setup", "by_params"):
            merged[key] = merged.get(key) or ({} if key == "sbatch" else [])
        if isinstance(merged["setup"], str):
            merged["setup"] = [merged["setup"]]
        settings = from_dict(cls, merged, "slurm")
        if not isinstance(settings.sbatch, dict):
            raise UserError(f"slurm.sbatch = {settings.sbatch!r}: expected a mapping of sbatch options, e.g. {{exclude: node3}}")
        for i, rule in enumerate(settings.by_params):
            settings._rule(rule, i)
        settings._check()
        return settings

    def _check(self) -> None:
        for name in ("tasks_per_run", "array_parallelism", "max_attempts", "signal_delay"):
            if getattr(self, name) < 1:
                raise UserError(f"slurm.{name} = {getattr(self, name)!r}: expected a positive integer")
        for name in ("gpus_per_run", "gpus_per_node", "cpus_per_task", "max_array_size", "max_requeues"):
            if getattr(self, name) < 0:
                raise UserError(f"slurm.{name} = {getattr(self, name)!r}: expected 0 or a positive integer")
        if self.time_factor <= 0 or self.throughput < 0 or self.submit_interval < 0:
            raise UserError("slurm.time_factor must be positive, slurm.throughput and slurm.submit_interval non-negative")
        for name in ("time", "min_time", "max_time"):
            if getattr(self, name):
                duration_minutes(getattr(self, name), f"slurm.{name}")
        if self.mem_per_task:
            memory_mb(self.mem_per_task, "slurm.mem_per_task")
        for key in self.sbatch:
            if not re.fullmatch(r"[a-z][a-z0-9-]*", str(key)):
                raise UserError(f"slurm.sbatch key {key!r}: expected a long sbatch option name such as 'exclude' or 'reservation'")

    def _rule(self, rule: Any, index: int) -> tuple[float, dict[str, Any]]:
        """(min_params, overrides) of one ``by_params`` rule, checked like the section itself."""
        where = f"slurm.by_params[{index}]"
        if not isinstance(rule, dict) or "min_params" not in rule:
            raise UserError(f"{where} = {rule!r}: expected a mapping with min_params and settings, e.g. {{min_params: 1B, gpus_per_run: 4}}")
        rest = {k: v for k, v in rule.items() if k != "min_params"}
        if "by_params" in rest:
            raise UserError(f"{where}: by_params rules cannot nest")
        parsed = from_dict(SlurmSettings, rest, where)
        parsed._check()
        return parse_count(rule["min_params"], f"{where}.min_params"), {k: getattr(parsed, k) for k in rest}

    def for_params(self, n_params: int) -> "SlurmSettings":
        """These settings with every ``by_params`` rule whose min_params <= n_params applied (ascending)."""
        rules = sorted((self._rule(rule, i) for i, rule in enumerate(self.by_params)), key=lambda r: r[0])
        out = self
        for threshold, overrides in rules:
            if n_params >= threshold:
                out = dataclasses.replace(out, **overrides)
        return out


def duration_minutes(value: Any, what: str) -> int:
    """'90', 90, '45m', '2h', '1.5d', '2:00:00', '1-12:00:00' → whole minutes (rounded up)."""
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
    if match:
        scale = {"s": 1 / 60, "": 1, "m": 1, "h": 60, "d": 1440}[match.group(2)]
        minutes = math.ceil(float(match.group(1)) * scale)
    elif re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", text):
        minutes = parse_time_minutes(text) or 0
    else:
        raise UserError(f"{what} = {value!r}: expected a duration such as 90 (minutes), '45m', '2h', '2:00:00' or '1-00:00:00'")
    if minutes < 1:
        raise UserError(f"{what} = {value!r}: expected at least one minute")
    return minutes


def memory_mb(value: Any, what: str) -> int:
    """'16G', '2500M', '1.5T', 4096 (MB) → MB (SLURM's convention: 1G = 1024M)."""
    mb = math.ceil(parse_bytes(value, what) / 2**20)
    if mb < 1:
        raise UserError(f"{what} = {value!r}: expected a positive memory size")
    return mb


@dataclass(frozen=True)
class Resources:
    """One job's request. Runs with equal Resources (and dependencies) share an array."""

    partition: str
    nodes: int
    tasks_per_node: int
    cpus_per_task: int
    gpus_per_node: int
    mem_mb_per_node: int
    time_min: int
    account: str = ""
    qos: str = ""
    constraint: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    setup: tuple[str, ...] = ()

    @property
    def tasks(self) -> int:
        return self.nodes * self.tasks_per_node

    def sbatch_options(self) -> dict[str, str | bool]:
        """Long sbatch options (without dashes) for this request, user extras last (they win)."""
        options: dict[str, str | bool] = {"partition": self.partition, "time": str(self.time_min), "nodes": str(self.nodes),
                                          "ntasks-per-node": str(self.tasks_per_node), "cpus-per-task": str(self.cpus_per_task),
                                          "mem": f"{self.mem_mb_per_node}M"}
        if self.gpus_per_node:
            options["gpus-per-node"] = str(self.gpus_per_node)
        for key in ("account", "qos", "constraint"):
            if getattr(self, key):
                options[key] = getattr(self, key)
        for key, value in self.extra:
            options[key] = True if value == "" else value
        return options

    def sbatch_flags(self) -> list[str]:
        """The options as command-line flags (for ``sbatch --test-only``)."""
        return [f"--{k}" if v is True else f"--{k}={v}" for k, v in self.sbatch_options().items()]

    def describe(self) -> str:
        """Short summary: nodes x tasks per node x CPUs per task, GPUs, memory, time limit, partition.

        E.g. '2n x 8t x 8c, 8 GPU/node, 512.0G/node, 2880min, gpu'.
        """
        gpu = f", {self.gpus_per_node} GPU/node" if self.gpus_per_node else ""
        return (f"{self.nodes}n x {self.tasks_per_node}t x {self.cpus_per_task}c{gpu}, "
                f"{self.mem_mb_per_node / 1024:.1f}G/node, {self.time_min}min, {self.partition}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def estimate_minutes(flops: float, throughput: float, tasks: int, factor: float) -> int:
    """Minutes to train ``flops`` (6·N·D) at ``throughput`` FLOP/s per task on ``tasks`` tasks, times ``factor``."""
    return max(1, math.ceil(flops / (throughput * tasks) * factor / 60))


def time_step(minutes: int) -> int:
    """The first of :data:`TIME_STEPS_MIN` at or above ``minutes`` (or ``minutes`` past the last)."""
    return next((step for step in TIME_STEPS_MIN if step >= minutes), minutes)


def task_memory_mb(cost: Costs, gpu: bool) -> int:
    """Host memory per task, in MB rounded up to 256: :data:`MEM_BASE_MB`, the host part of the
    memory model, and on CPU-only runs the training state itself (:mod:`scaling.runs.costs`)."""
    state = cost.memory.host + (0.0 if gpu else cost.memory.total)
    return 256 * math.ceil((MEM_BASE_MB + state / 2**20) / 256)


def resources_for(spec: RunSpec, settings: SlurmSettings, partition: Partition, engine: EngineSpec = EngineSpec()) -> Resources:
    """The request of one run on ``partition`` under the sweep's ``engine`` settings; UserError when
    the partition cannot satisfy it, or when the run fits its GPUs under no allowed layout."""
    n_params = param_counts(spec).total
    s = settings.for_params(n_params)
    if s.gpus_per_run:
        per_node = s.gpus_per_node or s.gpus_per_run
        if s.gpus_per_run > per_node and s.gpus_per_run % per_node:
            raise UserError(f"slurm.gpus_per_run = {s.gpus_per_run}: expected a multiple of slurm.gpus_per_node = {per_node} for a multi-node run")
        nodes, tasks_per_node, gpus_per_node = math.ceil(s.gpus_per_run / per_node), min(s.gpus_per_run, per_node), min(s.gpus_per_run, per_node)
    else:
        nodes, tasks_per_node, gpus_per_node = 1, s.tasks_per_run, 0
    cpus = s.cpus_per_task or (8 if s.gpus_per_run else 1)
    gpu = bool(s.gpus_per_run)
    cost = costs(spec, engine, nodes * tasks_per_node, Device.gpus(engine) if gpu else Device())
    mem_task = memory_mb(s.mem_per_task, "slurm.mem_per_task") if s.mem_per_task else task_memory_mb(cost, gpu)
    if s.time:
        minutes = duration_minutes(s.time, "slurm.time")
    else:
        throughput = s.throughput or (GPU_THROUGHPUT if s.gpus_per_run else CPU_THROUGHPUT)
        minutes = estimate_minutes(cost.flops, throughput, nodes * tasks_per_node, s.time_factor)
        ceiling = duration_minutes(s.max_time, "slurm.max_time") if s.max_time else partition.max_time_min
        minutes = time_step(max(minutes, duration_minutes(s.min_time, "slurm.min_time")))
        if ceiling:
            minutes = min(minutes, ceiling)
    res = Resources(partition=partition.name, nodes=nodes, tasks_per_node=tasks_per_node, cpus_per_task=cpus,
                    gpus_per_node=gpus_per_node, mem_mb_per_node=mem_task * tasks_per_node, time_min=minutes,
                    account=s.account, qos=s.qos, constraint=s.constraint,
                    extra=tuple(sorted((str(k), "" if v is True else str(v)) for k, v in s.sbatch.items())),
                    setup=tuple(s.setup))
    if s.signal_delay + SLURM_SIGNAL_LOOKAHEAD_S >= 60 * res.time_min:
        raise UserError(f"slurm.signal_delay = {s.signal_delay} s: SLURM may send the time-limit warning up to "
                        f"{SLURM_SIGNAL_LOOKAHEAD_S} s earlier, which leaves no training time in a {res.time_min}-minute limit; "
                        f"expected signal_delay < {60 * res.time_min - SLURM_SIGNAL_LOOKAHEAD_S} s (or a longer slurm.time)")
    check_fits(res, partition, spec)
    return res


def check_fits(res: Resources, partition: Partition, spec: RunSpec) -> None:
    """UserError naming the setting when no node (or not enough nodes) of the partition can hold the request."""
    where = f"run {spec.name} ({spec.run_id}) on partition {partition.name!r}"
    if res.gpus_per_node > partition.node_gpus:
        raise UserError(f"{where}: {res.gpus_per_node} GPU(s) per node (slurm.gpus_per_run / gpus_per_node), "
                        f"but its nodes have at most {partition.node_gpus}")
    if res.tasks_per_node * res.cpus_per_task > partition.node_cpus:
        raise UserError(f"{where}: {res.tasks_per_node} task(s) x slurm.cpus_per_task = {res.cpus_per_task} CPUs per node, "
                        f"but its largest node has {partition.node_cpus}; expected at most {partition.node_cpus}")
    if partition.node_mem_mb and res.mem_mb_per_node > partition.node_mem_mb:
        raise UserError(f"{where}: {res.mem_mb_per_node} MB of memory per node (slurm.mem_per_task x tasks), "
                        f"but its largest node has {partition.node_mem_mb} MB; set slurm.mem_per_task lower")
    if res.nodes > len(partition.nodes):
        raise UserError(f"{where}: {res.nodes} nodes, but the partition has {len(partition.nodes)}")
    if partition.max_time_min and res.time_min > partition.max_time_min:
        raise UserError(f"{where}: slurm.time = {res.time_min} minutes exceeds the partition's limit of {partition.max_time_min} minutes")
