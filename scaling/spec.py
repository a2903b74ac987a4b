"""Run specifications: the frozen, hashable description of one training run.

A run is a pure function of its :class:`RunSpec`. The run id is a short SHA-256 of the canonical
JSON of every field that changes the result (everything except ``sweep``, which only says which
sweep first asked for the run); the name is for people. Two sweeps that ask for the same spec
share its run directory and result.

Specs nest like Meta Lingua configs: :class:`ModelSpec`, :class:`DataSpec`, :class:`TrainSpec`
inside :class:`RunSpec`. :func:`from_dict` fills them strictly: an unknown key is an error that
lists the valid keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from scaling.errors import UserError, unknown_choice
from scaling.formatting import human

DATA_MODES = ("text", "interleaved", "speech")
#: sanity bounds: values beyond them are refused when a spec is validated (at plan time)
MAX_TOKENS = 10**15  # a training budget, in tokens (60x the ~1.5e13 of the largest published runs)
MAX_STEP_TOKENS = 2**27  # tokens of one global batch (8x the 16M-token batches of the largest published runs)
MAX_CONTEXT = 2**20  # tokens of one window (8x the 128k context of the longest published text LMs)
MAX_EVAL_POINTS = 100_000  # evaluation points of one run
SEED_LIMIT = 2**32  # seeds are numpy seeds: 0 <= seed < 2^32
INIT_MODES = ("scratch", "text-lm")
SCHEDULES = ("cosine", "wsd")
INTERLEAVE_METHODS = ("poisson", "random", "span")


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of one model. ``size`` is the label asked for; the other fields are resolved.

    ``family`` picks the transformers config (llama, qwen2, opt). ``n_layers``, ``d_model``,
    ``n_heads`` and ``d_ff`` are filled from ``size`` by :func:`scaling.models.resolve_model`
    when a sweep is expanded, so that the hash covers the real architecture.
    """

    family: str = "llama"
    size: str = "1M"
    n_layers: int = 0
    d_model: int = 0
    n_heads: int = 0
    n_kv_heads: int = 0
    d_ff: int = 0
    tie_embeddings: bool = False


@dataclass(frozen=True)
class DataSpec:
    """Which tokens a run trains on.

    mode: ``text`` (text stream only), ``interleaved`` (SIMS mixture of text, interleaved and
    speech streams), ``speech`` (textless: speech units only, unit-only vocabulary).
    corpus: name of a corpus preset or path of a corpus config (see :mod:`scaling.data`).
    context: tokens per training window (the paper uses 2048).
    mix: sampling probabilities of the (text, interleaved, speech) streams in ``interleaved`` mode.
    interleave: span selection rule (``poisson`` as in SIMS, or the ``random``/``span`` ablations).
    span_lambda: mean span length in words for ``poisson``; speech_ratio: minimum share of words
    spoken per interleaved sample. marker_loss: whether modality markers are trained on.
    val_exclude: sources left out of the validation windows behind ``loss_val*`` (as SIMS's
    validation set leaves out its synthetic speech): corpus sources such as ``espeak``, or
    ``wordnet`` for the text stream's sentences; checked against the run's data at its start.
    resample_interleave: draw new spoken spans for the interleaved stream every epoch (true: the
    first epoch reads the spans fixed when the corpus was prepared, each later epoch is prepared
    anew with the run's seed), or read the prepared spans in every epoch, as SIMS does (false).
    mix_tokens: the mix as token shares, ``{key: share}`` summing to 1, keys being streams (text,
    interleaved, speech), source names or ``source.stream``; a key's share is divided among the
    pools it names by their tokens (see :mod:`scaling.data.mixing`). Empty: ``mix`` (stream
    probabilities) decides, turned into the token shares it gives.
    """

    mode: str = "interleaved"
    corpus: str = "default"
    context: int = 128
    mix: tuple[float, float, float] = (0.2024, 0.5433, 0.2543)
    interleave: str = "poisson"
    span_lambda: float = 10.0
    speech_ratio: float = 0.3
    marker_loss: bool = True
    val_exclude: tuple[str, ...] = ()
    resample_interleave: bool = True
    mix_tokens: tuple[tuple[str, float], ...] = ()


#: fields added after stores already held runs: hashed into the run id only when they differ from
#: this value, so that the ids of existing runs do not change.
_LATER_FIELDS = {("data", "val_exclude"): [], ("data", "resample_interleave"): True, ("data", "mix_tokens"): []}


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation and budget of one run.

    tokens: training budget in trained (label) tokens; the run stops exactly there.
    batch_size: global batch in sequences of ``context`` tokens (fixed by the spec, not the hardware).
    lr / min_lr: peak and final learning rate; warmup: fraction of steps spent warming up.
    schedule: ``cosine`` (decay from peak to min over the budget) or ``wsd`` (warmup, stable,
    then linear decay over the last ``decay`` fraction).
    eval_points: number of evaluation points spread evenly over the budget (the last at the end).
    branch_tokens: smaller budgets (trained tokens, increasing) that ``wsd`` runs also reach by
    short decay branches from the stable phase (see :mod:`scaling.runs.timeline`); each branch is
    evaluated at its budget and recorded as a row of its own.
    """

    tokens: int = 1_000_000
    batch_size: int = 16
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup: float = 0.01
    schedule: str = "cosine"
    decay: float = 0.2
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 0.5
    eval_points: int = 4
    val_windows: int = 64
    branch_tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """One grid point: model × data × budget × initialisation × seed.

    init: ``scratch`` or ``text-lm`` (initialise from a text LM). init_from: path of a local
    pre-trained text LM directory, or ``pretrain:<tokens>`` for the toolkit's own small text LM
    pre-trained on the shipped text (built once and cached).
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    init: str = "scratch"
    init_from: str = ""
    seed: int = 0
    sweep: str = ""

    @property
    def run_id(self) -> str:
        """12 hex characters of SHA-256 over the canonical JSON of the result-changing fields."""
        payload = to_dict(self)
        payload.pop("sweep")
        for (part, key), default in _LATER_FIELDS.items():
            if payload[part][key] == default:
                del payload[part][key]
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        """A readable name: family-size-mode-init-tokens-seed (tokens+Nb: N decay branches below the budget)."""
        init = "scratch" if self.init == "scratch" else "tinit"
        branches = f"+{len(self.train.branch_tokens)}b" if self.train.branch_tokens else ""
        return f"{self.model.family}-{self.model.size}-{self.data.mode}-{init}-{human(self.train.tokens)}{branches}-s{self.seed}"

    def validate(self) -> "RunSpec":
        """Check every value; raise UserError naming the field, the value and what was expected.
        Values that cannot work are refused here, before anything is planned or trained: sizes
        and rates that are not positive and finite, seeds outside numpy's range, and budgets,
        batches, contexts and evaluation counts beyond the sanity bounds (:data:`MAX_TOKENS` …)."""
        _choice("data.mode", self.data.mode, DATA_MODES)
        _choice("init", self.init, INIT_MODES)
        _choice("train.schedule", self.train.schedule, SCHEDULES)
        _choice("data.interleave", self.data.interleave, INTERLEAVE_METHODS)
        t, d = self.train, self.data
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < SEED_LIMIT:
            raise UserError(f"seed = {self.seed!r}: expected an integer from 0 to {SEED_LIMIT - 1} (numpy's seed range)")
        _positive("train.tokens", t.tokens, MAX_TOKENS, "tokens, a sanity bound 60x the largest published training runs")
        _positive("data.context", d.context, MAX_CONTEXT, "tokens, a sanity bound 8x the longest context of published text LMs")
        _positive("train.batch_size", t.batch_size, MAX_STEP_TOKENS // d.context,
                  f"windows of {d.context} tokens: {MAX_STEP_TOKENS:,} tokens per step, a sanity bound 8x the largest "
                  "published batches (the whole batch is built in host memory)")
        _positive("train.val_windows", t.val_windows, MAX_STEP_TOKENS // d.context,
                  f"windows of {d.context} tokens: {MAX_STEP_TOKENS:,} validation tokens, a sanity bound")
        _positive("train.eval_points", t.eval_points, MAX_EVAL_POINTS, "evaluation points, a sanity bound")
        _positive("train.lr", t.lr)
        _positive("train.grad_clip", t.grad_clip)
        _positive("data.span_lambda", d.span_lambda)
        for name, value in (("train.weight_decay", t.weight_decay), ("train.min_lr", t.min_lr)):
            if not 0 <= value < math.inf:
                raise UserError(f"{name} = {value!r}: expected a finite number >= 0")
        for name, value in (("train.beta1", t.beta1), ("train.beta2", t.beta2)):
            if not 0 <= value < 1:
                raise UserError(f"{name} = {value!r}: expected a number in [0, 1) (AdamW's moment decay)")
        if not 0 <= d.speech_ratio <= 1:
            raise UserError(f"data.speech_ratio = {d.speech_ratio!r}: expected a fraction in [0, 1]")
        if any((self.model.n_layers, self.model.d_model, self.model.n_heads, self.model.d_ff)):  # resolved (all 0: not yet)
            check_architecture(self.model)
        if not 0 <= self.train.warmup < 1:
            raise UserError(f"train.warmup = {self.train.warmup!r}: expected a fraction in [0, 1)")
        if not 0 < self.train.decay <= 1:
            raise UserError(f"train.decay = {self.train.decay!r}: expected a fraction in (0, 1]")
        if self.train.min_lr < 0 or self.train.min_lr > self.train.lr:
            raise UserError(f"train.min_lr = {self.train.min_lr!r}: expected 0 <= min_lr <= lr ({self.train.lr})")
        branches = self.train.branch_tokens
        if branches and self.train.schedule != "wsd":
            raise UserError(f"train.branch_tokens = {list(branches)!r} with train.schedule = {self.train.schedule!r}: decay branches need train.schedule = 'wsd'")
        if any(b <= 0 for b in branches) or list(branches) != sorted(set(branches)) or branches and branches[-1] >= self.train.tokens:
            raise UserError(f"train.branch_tokens = {list(branches)!r}: expected increasing positive budgets below train.tokens ({self.train.tokens})")
        if len(self.data.mix) != 3 or not all(0 <= p <= 1 for p in self.data.mix) or abs(sum(self.data.mix) - 1) > 1e-6:
            raise UserError(f"data.mix = {list(self.data.mix)!r}: expected three non-negative probabilities (text, interleaved, speech) summing to 1")
        shares = self.data.mix_tokens
        if shares and (len({k for k, _ in shares}) != len(shares) or not all(k for k, _ in shares) or any(v < 0 for _, v in shares)
                       or abs(sum(v for _, v in shares) - 1) > 1e-6):
            raise UserError(f"data.mix_tokens = {dict(shares)!r}: expected distinct keys (streams, sources or source.stream) "
                            "with non-negative token shares summing to 1")
        if len(set(self.data.val_exclude)) != len(self.data.val_exclude) or not all(self.data.val_exclude):
            raise UserError(f"data.val_exclude = {list(self.data.val_exclude)!r}: expected distinct, non-empty source names")
        if self.init == "text-lm" and self.data.mode == "speech":
            raise UserError("init = 'text-lm' with data.mode = 'speech': textless runs use a unit-only vocabulary; expected init = 'scratch'")
        if self.init == "text-lm" and not self.init_from:
            raise UserError("init = 'text-lm' needs init_from: a local text-LM directory or 'pretrain:<tokens>'")
        return self


def check_architecture(model: ModelSpec) -> ModelSpec:
    """``model`` if its resolved architecture can be built: positive depth, width, heads and FFN
    width, heads that divide the width and key/value heads that divide the heads; UserError
    naming the field otherwise."""
    for name in ("n_layers", "d_model", "n_heads", "d_ff"):
        _positive(f"model.{name}", getattr(model, name))
    if model.d_model % model.n_heads:
        raise UserError(f"model.n_heads = {model.n_heads}: expected a divisor of model.d_model = {model.d_model}")
    if model.n_kv_heads < 0 or model.n_kv_heads and model.n_heads % model.n_kv_heads:
        raise UserError(f"model.n_kv_heads = {model.n_kv_heads}: expected 0 (as many as model.n_heads) or a divisor of "
                        f"model.n_heads = {model.n_heads}")
    return model


def parse_count(value: Any, what: str) -> float:
    """Parse '1M', '2.5e6', '500k', 1000 into a float; raise UserError naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise UserError(f"{what} = {value!r}: expected a positive number such as 1e6 or '1M'")
    if isinstance(value, (int, float)):
        out = float(value)
    else:
        text = str(value).strip()
        mult = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}.get(text[-1:], None)
        try:
            out = float(text[:-1]) * mult if mult else float(text)
        except ValueError:
            raise UserError(f"{what} = {value!r}: expected a positive number such as 1e6 or '1M'") from None
    if not out > 0 or out != out or out == float("inf"):
        raise UserError(f"{what} = {value!r}: expected a positive finite number")
    return out


@dataclass(frozen=True)
class MirrorSpec:
    """Where training also sends a run's metrics and evaluation rows, besides the store (the source
    of truth): a sweep's ``mirrors:`` section. Not part of any run id: mirrors change nothing stored.

    tensorboard: event files under ``<store>/tensorboard/<run name>_<run id>/`` (needs the
    ``tensorboard`` package: ``pip install 'scaling[tensorboard]'``); wandb: a Weights & Biases
    project name, logged offline under ``<store>/wandb/`` (``wandb sync`` uploads it later; needs
    ``pip install 'scaling[wandb]'``), '' for none.
    """

    tensorboard: bool = False
    wandb: str = ""

    def trainer_flags(self) -> list[str]:
        """These settings as ``python -m scaling.train.entry`` flags."""
        return (["--tensorboard"] if self.tensorboard else []) + (["--wandb", self.wandb] if self.wandb else [])


STRATEGIES = ("auto", "ddp", "zero1", "fsdp")
SWITCHES = ("auto", "true", "false")


@dataclass(frozen=True)
class EngineSpec:
    """How runs are trained, not what they learn: a sweep's ``engine:`` section. Not part of any
    run id (a run resumed under other engine settings continues the same run).

    strategy: ``auto`` (the memory model picks, see :mod:`scaling.runs.costs`), ``ddp``
    (replicated weights, gradients and AdamW state), ``zero1`` (AdamW's state sharded) or ``fsdp``
    (weights, gradients and AdamW's state sharded; PyTorch's ``fully_shard``, one unit per
    decoder block). With one process they are all the same: the model and AdamW.
    activation_checkpointing: ``auto`` (on when the memory model says it is needed), ``true``, ``false``.
    checkpoint_every: how often a run saves its checkpoint: ``auto`` (scaled with the checkpoint's
    size, see :func:`scaling.runs.costs.checkpoint_seconds`), a duration (``10m``, ``90s``, ``1h``)
    or a number of optimizer steps (``500 steps``). A checkpoint is also saved at every
    evaluation point and on the requeue signal.
    collective_timeout: how long a rank waits at a collective before the run fails (``30m``).
    gpu_memory: the memory of one GPU (``80G``), what ``plan`` and ``auto`` fit runs into; ''
    means the GPU's own when training, and 80G when planning a sweep that trains on GPUs.
    """

    strategy: str = "auto"
    activation_checkpointing: str = "auto"
    checkpoint_every: str = "auto"
    collective_timeout: str = "30m"
    gpu_memory: str = ""

    def validate(self) -> "EngineSpec":
        """Check every value; UserError naming the field, the value and what was expected."""
        _choice("engine.strategy", self.strategy, STRATEGIES)
        _choice("engine.activation_checkpointing", self.activation_checkpointing.lower(), SWITCHES)
        self.checkpoint_interval()
        parse_seconds(self.collective_timeout, "engine.collective_timeout")
        if self.gpu_memory:
            parse_bytes(self.gpu_memory, "engine.gpu_memory")
        return self

    def checkpoint_interval(self) -> tuple[str, float] | None:
        """``checkpoint_every`` as ("seconds", s) or ("steps", n); None for ``auto``."""
        text = str(self.checkpoint_every).strip().lower()
        if text == "auto":
            return None
        match = re.fullmatch(r"(\d+)\s*steps?", text)
        if match and int(match.group(1)) > 0:
            return "steps", int(match.group(1))
        try:
            return "seconds", parse_seconds(text, "engine.checkpoint_every")
        except UserError:
            raise UserError(f"engine.checkpoint_every = {self.checkpoint_every!r}: expected auto, a duration such as 10m "
                            "or 90s, or a number of steps such as '500 steps'") from None

    def trainer_flags(self) -> list[str]:
        """These settings as ``python -m scaling.train.entry`` flags."""
        return ["--strategy", self.strategy, "--activation-checkpointing", self.activation_checkpointing.lower(),
                "--checkpoint-every", str(self.checkpoint_every), "--collective-timeout", str(self.collective_timeout),
                *(["--gpu-memory", self.gpu_memory] if self.gpu_memory else [])]


def parse_seconds(value: Any, what: str) -> float:
    """'90s', '10m', '2h', '1.5d' → seconds; UserError naming ``what`` otherwise (a unit is required)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d)", str(value).strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"{what} = {value!r}: expected a positive duration with a unit, such as 90s, 10m, 2h or 1d")
    return float(match.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[match.group(2)]


def parse_bytes(value: Any, what: str) -> float:
    """'80G', '2500M', '1.5T', '512K' → bytes (1G = 2^30 bytes); a bare number is MB (SLURM's
    convention); UserError naming ``what`` otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", str(value).strip(), re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise UserError(f"{what} = {value!r}: expected a memory size such as 80G or 2500M")
    return float(match.group(1)) * 2 ** {"K": 10, "": 20, "M": 20, "G": 30, "T": 40}[match.group(2).upper()]


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise unknown_choice(f"value for {name}:", value, choices)


def _positive(name: str, value: float, at_most: float = math.inf, unit: str = "") -> None:
    """UserError unless ``value`` is a number in (0, ``at_most``] (finite); ``unit`` describes the bound."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise UserError(f"{name} = {value!r}: expected a positive finite number")
    if value > at_most:
        raise UserError(f"{name} = {value!r}: expected at most {at_most:,.0f} {unit}".rstrip())


def to_dict(obj: Any) -> dict[str, Any]:
    """A spec as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from nested dicts strictly: unknown keys and wrong types are errors."""
    if not isinstance(data, dict):
        raise UserError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise unknown_choice("key", path, [f"{where}.{k}" if where else k for k in fields])
        kwargs[key] = _coerce(hints[key], value, path)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    origin = typing.get_origin(hint)
    if hint == tuple[tuple[str, float], ...]:  # a mapping {name: number}, kept sorted by name
        pairs = value.items() if isinstance(value, dict) else value
        try:
            return tuple(sorted((str(k), _coerce(float, v, f"{path}.{k}")) for k, v in pairs))
        except (TypeError, ValueError):
            raise UserError(f"{path} = {value!r}: expected a mapping of names to numbers") from None
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{path} = {value!r}: expected a list")
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(inner, v, path) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "yes", "1"):
            return True
        if str(value).lower() in ("false", "no", "0"):
            return False
        raise UserError(f"{path} = {value!r}: expected true or false")
    if hint is int:
        if isinstance(value, bool):
            raise UserError(f"{path} = {value!r}: expected an integer")
        if isinstance(value, int):
            return value
        number = parse_count(value, path) if isinstance(value, str) else value
        if isinstance(number, float) and number.is_integer():
            return int(number)
        raise UserError(f"{path} = {value!r}: expected an integer")
    if hint is float:
        if isinstance(value, bool):
            raise UserError(f"{path} = {value!r}: expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"{path} = {value!r}: expected a number") from None
    if hint is str:
        if isinstance(value, (dict, list)):
            raise UserError(f"{path} = {value!r}: expected a string")
        return str(value)
    return value
