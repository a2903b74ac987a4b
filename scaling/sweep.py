"""Sweep files and their expansion into run specs.

A sweep file (YAML) declares a grid::

    name: demo
    store: results/demo            # default store root (a --store flag overrides)
    base:                          # a partial RunSpec shared by every run
      model: {family: llama}
      data: {corpus: default, context: 64}
      train: {batch_size: 8, lr: 3.0e-3}
    grid:                          # dotted RunSpec keys, each a list of values; all crossed
      model.size: [50k, 100k, 200k]
      seed: [0]
    variants:                      # optional partial specs, crossed with the grid
      - {data.mode: interleaved, init: text-lm, init_from: "pretrain:1M"}
      - {data.mode: speech, init: scratch}
    budget:                        # exactly one of tokens / tokens_per_param / flops
      tokens_per_param: [5, 10, 20]
      params: total                # N used by tokens_per_param and flops: total | non_embedding
      branches: false              # true: one WSD run per grid point, smaller budgets as decay branches
      window: [10, 400]            # optional: a size trains a budget only where D/N lies in this range
    mirrors: {tensorboard: true, wandb: my-project}   # optional: also log rows there (scaling.spec.MirrorSpec)
    engine: {strategy: auto, gpu_memory: 80G}        # optional: how runs train, not what (scaling.spec.EngineSpec)

Budgets: ``tokens`` gives D directly; ``tokens_per_param`` gives D = k·N; ``flops`` gives an
IsoFLOP grid, D = C / (6·N) for every size (C in FLOPs, 6·N·D convention). With
``branches: true`` (needs ``train.schedule: wsd``) a grid point trains once, to its largest budget,
and reaches the others by short decay branches from the stable phase (``train.branch_tokens``;
see :mod:`scaling.runs.timeline`), instead of one run per budget. ``window: [lo, hi]`` keeps a
(size, budget) point only where its tokens per parameter D/N (N as ``params`` says) lies in
[lo, hi]: an IsoFLOP grid then trains each budget at the sizes around its optimum, as Hoffmann et
al. did, instead of every size at every budget (a small size at the largest budget costs the most
tokens and lies far from that budget's optimum). ``key=value`` overrides from the command line
change ``base`` (``train.lr=1e-3``), a grid axis
(``grid.model.size=[1M,3M]``), the budget (``budget.tokens=[1e6]``) or top-level keys
(``name=x``). Unknown keys, impossible values and empty grids are errors naming the key.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from scaling.errors import UserError, safe_name, unknown_choice
from scaling.reading import read_text
from scaling.spec import MAX_TOKENS, EngineSpec, MirrorSpec, RunSpec, TrainSpec, check_architecture, from_dict, parse_count
from scaling.runs.timeline import Timeline

TOP_KEYS = ("name", "description", "store", "base", "grid", "variants", "budget", "executor", "slurm", "max_parallel", "mirrors",
            "engine")
#: the type of each top-level key that has one (checked when a sweep file is read)
SECTION_TYPES = {"name": str, "description": str, "store": str, "base": dict, "grid": dict, "variants": list, "budget": dict,
                 "executor": str, "slurm": dict, "mirrors": dict, "engine": dict}
BUDGET_KINDS = ("tokens", "tokens_per_param", "flops")
BUDGET_OPTIONS = ("params", "branches", "window")
PARAM_CONVENTIONS = ("total", "non_embedding")


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: its name, source file, settings and the expanded run specs (in order)."""

    name: str
    source: str
    config: dict[str, Any]
    runs: tuple[RunSpec, ...]

    @property
    def store_root(self) -> str:
        return str(self.config.get("store") or f"results/{self.name}")

    @property
    def mirrors(self) -> MirrorSpec:
        """The sweep's ``mirrors:`` section (none by default)."""
        return mirror_spec(self.config)

    @property
    def engine(self) -> EngineSpec:
        """The sweep's ``engine:`` section (every setting ``auto`` by default)."""
        return engine_spec(self.config)


def mirror_spec(config: dict[str, Any]) -> MirrorSpec:
    """The ``mirrors:`` section of a sweep config, strictly parsed (UserError naming a bad key)."""
    return from_dict(MirrorSpec, config.get("mirrors") or {}, "mirrors")


def engine_spec(config: dict[str, Any]) -> EngineSpec:
    """The ``engine:`` section of a sweep config, strictly parsed and checked (UserError naming a bad key or value)."""
    return from_dict(EngineSpec, config.get("engine") or {}, "engine").validate()


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = target.setdefault(key, {})
        if not isinstance(node, dict):
            raise UserError(f"override {dotted!r}: {key!r} is not a section")
        target = node
    target[keys[-1]] = value


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (values parsed as YAML) to a sweep config, returning a copy."""
    config = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r}: expected key=value, e.g. train.lr=1e-3 or grid.model.size=[1M,3M]")
        key, raw = item.split("=", 1)
        key, value = key.strip(), _yaml_value(raw)
        if not all(key.split(".")):
            raise UserError(f"override {item!r}: expected a dotted key such as train.lr or grid.model.size before '='")
        head = key.split(".", 1)[0]
        if head in ("grid", "budget") and "." in key:
            section = config.setdefault(head, {})
            sub = key.split(".", 1)[1]
            section[sub] = value if isinstance(value, list) or head == "budget" and sub in BUDGET_OPTIONS else [value]
        elif head in TOP_KEYS and "." not in key:
            config[key] = value
        elif head in ("slurm", "engine"):
            _set_dotted(config, key, value)
        else:
            _set_dotted(config.setdefault("base", {}), key, value)
    return config


def load_sweep_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """Read and check the top level of a sweep file; UserError for a missing or malformed file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"sweep file {str(path)!r} does not exist; expected a YAML file such as sweeps/demo.yaml")
    text = read_text(path, "sweep file")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"sweep file {str(path)!r} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(config, dict):
        raise UserError(f"sweep file {str(path)!r}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    config = apply_overrides(config, list(overrides))
    for key in config:
        if key not in TOP_KEYS:
            raise unknown_choice(f"top-level key in {path.name}:", key, TOP_KEYS)
    config.setdefault("name", path.stem)
    for key, kind in SECTION_TYPES.items():
        value = config.get(key)
        if value is not None and not isinstance(value, kind):
            expected = {dict: "a mapping", list: "a list", str: "a string"}[kind]
            raise UserError(f"sweep {key} = {value!r} in {path.name}: expected {expected}")
    return config


def _dotted_to_nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        _set_dotted(nested, key, value)
    return nested


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _budgets(config: dict[str, Any]) -> tuple[str, list[float], str, bool, tuple[float, float]]:
    budget = config.get("budget")
    if not isinstance(budget, dict):
        raise UserError("sweep budget: expected a mapping with one of tokens, tokens_per_param, flops (each a list)")
    for key in budget:
        if key not in BUDGET_KINDS + BUDGET_OPTIONS:
            raise unknown_choice("budget key", key, BUDGET_KINDS + BUDGET_OPTIONS)
    kinds = [k for k in BUDGET_KINDS if k in budget]
    if len(kinds) != 1:
        raise UserError(f"sweep budget: expected exactly one of tokens, tokens_per_param, flops; got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    values = budget[kind] if isinstance(budget[kind], list) else [budget[kind]]
    if not values:
        raise UserError(f"budget.{kind}: expected a non-empty list")
    params = budget.get("params", "total")
    if params not in PARAM_CONVENTIONS:
        raise unknown_choice("budget.params", params, PARAM_CONVENTIONS)
    branches = budget.get("branches", False)
    if not isinstance(branches, bool):
        raise UserError(f"budget.branches = {branches!r}: expected true or false")
    window = (0.0, float("inf"))
    if "window" in budget:
        given = budget["window"]
        if not isinstance(given, list) or len(given) != 2:
            raise UserError(f"budget.window = {given!r}: expected [lo, hi], the range of tokens per parameter D/N to keep")
        window = tuple(parse_count(v, "budget.window") for v in given)
        if not window[0] < window[1]:
            raise UserError(f"budget.window = {given!r}: expected lo < hi")
    return kind, [parse_count(v, f"budget.{kind}") for v in values], params, branches, window


def _trains(spec: RunSpec, tokens: list[int], branched: bool) -> list[TrainSpec]:
    """The TrainSpecs of one grid point: one per budget, or one carrying the smaller budgets as branches."""
    if not branched:
        return [replace(spec.train, tokens=t) for t in tokens]
    if spec.train.schedule != "wsd":
        raise UserError(f"budget.branches = true with train.schedule = {spec.train.schedule!r}: decay branches need train.schedule = 'wsd'")
    tokens = sorted(set(tokens))
    return [replace(spec.train, tokens=tokens[-1], branch_tokens=tuple(tokens[:-1]))]


def expand(config: dict[str, Any], source: str = "") -> Sweep:
    """Expand a sweep config into validated, resolved run specs: one per grid point × variant × budget,
    or one per grid point × variant carrying its smaller budgets as decay branches (``budget.branches``)."""
    from scaling.models import resolve_model
    from scaling.runs.costs import param_counts

    name = safe_name(config["name"], "sweep name")
    mirror_spec(config)
    engine_spec(config)
    base = config.get("base") or {}
    grid = config.get("grid") or {}
    variants = config.get("variants") or [{}]
    if not isinstance(grid, dict):
        raise UserError("sweep grid: expected a mapping of dotted keys to lists, e.g. model.size: [1M, 3M]")
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise UserError("sweep variants: expected a list of mappings of dotted keys to values")
    axes = []
    for key, values in grid.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise UserError(f"grid.{key}: expected a non-empty list")
        axes.append([(key, v) for v in values])
    kind, budgets, convention, branched, (lo, hi) = _budgets(config)
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for variant in variants:
        for point in itertools.product(*axes):
            flat = {**dict(point), **variant}
            spec_dict = _merge(base, _dotted_to_nested(flat))
            spec_dict["sweep"] = name
            spec = from_dict(RunSpec, spec_dict)
            spec = replace(spec, model=check_architecture(resolve_model(spec.model)))
            counts = param_counts(spec)
            n = counts.total if convention == "total" else counts.non_embedding
            point_tokens = []
            for b in budgets:
                tokens = b if kind == "tokens" else b * n if kind == "tokens_per_param" else b / (6.0 * n)
                if not lo <= tokens / n <= hi:
                    continue
                if tokens < spec.data.context:
                    raise UserError(f"budget.{kind} = {b:g} gives {tokens:.0f} tokens for model.size = {spec.model.size}; expected at least one context window ({spec.data.context} tokens)")
                if tokens > MAX_TOKENS:
                    raise UserError(f"budget.{kind} = {b:g} gives {tokens:.3g} tokens for model.size = {spec.model.size}; expected at "
                                    f"most {MAX_TOKENS:.0e} tokens (a sanity bound, 60x the largest published training runs)")
                point_tokens.append(int(round(tokens)))
            if not point_tokens:
                raise UserError(f"model.size = {spec.model.size}: no budget gives tokens per parameter within budget.window = "
                                f"[{lo:g}, {hi:g}]; expected a wider window or sizes nearer the budgets")
            for train in _trains(spec, point_tokens, branched):
                run = replace(spec, train=train).validate()
                Timeline.of(run)
                if run.run_id not in seen:
                    seen.add(run.run_id)
                    runs.append(run)
    if not runs:
        raise UserError(f"sweep {name!r} expands to no runs")
    return Sweep(name=name, source=source, config=config, runs=tuple(runs))


def load_sweep(path: str | Path, overrides: list[str] = ()) -> Sweep:
    """Load, override, check and expand a sweep file."""
    config = load_sweep_config(path, overrides)
    return expand(config, source=str(path))
