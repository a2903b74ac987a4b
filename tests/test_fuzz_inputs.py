"""Bad input, table-driven: every case is a command line a user (or an adversary) might type, over
sweep files, overrides, flags, CSV tables, damaged store files, benchmark files, model directories,
checkpoints and output paths. Each must end with exit status 2 and ONE line on stderr naming what
was wrong, no traceback, and the working tree (store, inputs) byte-for-byte as it was.

The commands run in this process (``scaling.cli.main``), against a copy of one small world: a
sweep file, a store with one really trained run (exported model and checkpoint), its results
table, and a benchmark file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from unittest import mock

import pytest
import yaml

from scaling.cli import main
from tests.helpers import link_cache, write_sweep

DELETE = object()


@dataclass(frozen=True)
class World:
    """Paths of one copy of the world a case runs in."""

    root: Path

    sweep = property(lambda self: self.root / "sweep.yaml")
    store = property(lambda self: self.root / "store")
    table = property(lambda self: self.root / "results.csv")  # the store's, collected
    laws = property(lambda self: self.root / "laws.csv")  # 12 runs drawn from a Chinchilla law: enough to fit
    bench = property(lambda self: self.root / "bench.jsonl")

    @property
    def run(self) -> Path:
        return next((self.store / "runs").iterdir())

    @property
    def model(self) -> Path:
        return self.run / "model"

    def fill(self, text: str) -> str:
        return text.format(w=self.root, sweep=self.sweep, store=self.store, table=self.table, laws=self.laws, run=self.run,
                           model=self.model, bench=self.bench)

    def copy_to(self, root: Path) -> "World":
        """A copy of this world at ``root`` whose sweep file names the copy's store."""
        shutil.copytree(self.root, root, symlinks=True)
        copy = World(root)
        config = yaml.safe_load(copy.sweep.read_text())
        copy.sweep.write_text(yaml.safe_dump({**config, "store": str(copy.store)}))
        return copy


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> World:
    """The world every case copies: built once (one real run of 2 steps)."""
    import numpy as np
    import pandas as pd

    from scaling.collect import collect
    from scaling.evaluation.format import Benchmark, Pair, Segment, write_benchmark
    from scaling.store import Store
    from scaling.sweep import load_sweep
    from scaling.train.entry import train_run

    root = tmp_path_factory.mktemp("world")
    world = World(root)
    link_cache(world.store, tmp_path_factory.mktemp("cache"))
    write_sweep(world.sweep, world.store, name="fz", tokens=(512,))
    spec = load_sweep(world.sweep).runs[0]
    Store(world.store).register(spec)
    with mock.patch("scaling.train.entry._benchmark_hook", lambda: None):  # benchmarks are not under test here
        assert train_run(world.store, spec.run_id, threads=1) == "done"
    Store(world.store).record_sweep("fz", [spec.run_id], str(world.sweep))
    collect(Store(world.store), world.table)
    n, d = np.meshgrid([1e6, 3e6, 1e7, 3e7], [2e7, 6e7, 2e8])
    loss = 1.7 + 400 / n.ravel() ** 0.34 + 410 / d.ravel() ** 0.28
    pd.DataFrame({"run_id": [f"r{i}" for i in range(n.size)], "params_total": n.ravel(), "tokens": d.ravel(), "loss_val": loss,
                  "final": True, "status": "done"}).to_csv(world.laws, index=False)
    write_benchmark(world.bench, Benchmark("b", (Pair("p", Segment(text="a cat"), Segment(text="cat a")),)))
    return world


# ------------------------------------------------------------------ case builders
def raw(name: str, content: bytes | str) -> Callable[[World], None]:
    """Write ``content`` to ``name`` (a path relative to the world, or with placeholders)."""

    def setup(w: World) -> None:
        path = Path(w.fill(name)) if "{" in name else w.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def sweep_with(changes: dict, name: str = "bad.yaml") -> Callable[[World], None]:
    """A copy of the world's sweep file with ``changes`` (keys: a path of keys joined by '|';
    DELETE removes a key; placeholders in string values are filled)."""

    def setup(w: World) -> None:
        config = yaml.safe_load(w.sweep.read_text())
        for dotted, value in changes.items():
            node, keys = config, dotted.split("|")
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            if value is DELETE:
                node.pop(keys[-1], None)
            else:
                node[keys[-1]] = w.fill(value) if isinstance(value, str) else value
        (w.root / name).write_text(yaml.safe_dump(config))

    return setup


def table_with(edit: Callable, name: str = "bad.csv") -> Callable[[World], None]:
    """A copy of the world's table of 12 runs changed by ``edit(DataFrame) -> DataFrame``."""

    def setup(w: World) -> None:
        import pandas as pd

        edit(pd.read_csv(w.laws)).to_csv(w.root / name, index=False)

    return setup


def set_cell(column: str, value) -> Callable:
    def edit(df):
        df[column] = df[column].astype(object)
        df.loc[df.index[0], column] = value
        return df

    return edit


def damage(relative: str, content: bytes | Callable[[bytes], bytes]) -> Callable[[World], None]:
    """Replace a file of the trained run (path relative to its directory) by ``content``, or by
    ``content(old bytes)``."""

    def setup(w: World) -> None:
        path = w.run / relative
        new = content(path.read_bytes()) if callable(content) else content
        path.write_bytes(new)

    return setup


def model_copy(edit: Callable[[Path], None]) -> Callable[[World], None]:
    """A copy of the run's exported model at ``<world>/m``, changed by ``edit(directory)``."""

    def setup(w: World) -> None:
        shutil.copytree(w.model, w.root / "m")
        edit(w.root / "m")

    return setup


def several(*setups: Callable[[World], None]) -> Callable[[World], None]:
    def setup(w: World) -> None:
        for s in setups:
            s(w)

    return setup


NOT_UTF8 = b"name: \xff\xfe\xfa bad\n"
BAD = "{w}/bad.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    setup: Callable[[World], None] | None = None
    expect: str = ""  # a fragment the error line must contain


def case(id: str, argv: str, setup=None, expect: str = "") -> Case:
    return Case(id, tuple(argv.split()), setup, expect)


CASES: list[Case] = [
    # ---------------------------------------------------------- sweep files
    case("sweep-missing", "plan {w}/none.yaml", expect="does not exist"),
    case("sweep-is-directory", "plan {w}", expect="sweep file"),
    case("sweep-not-utf8", f"plan {BAD}", raw("bad.yaml", NOT_UTF8), expect="UTF-8"),
    case("sweep-invalid-yaml", f"plan {BAD}", raw("bad.yaml", "name: [unclosed\n"), expect="not valid YAML"),
    case("sweep-a-list", f"plan {BAD}", raw("bad.yaml", "- 1\n- 2\n"), expect="expected a mapping"),
    case("sweep-empty", f"plan {BAD}", raw("bad.yaml", ""), expect="expected a mapping"),
    case("sweep-binary", f"plan {BAD}", raw("bad.yaml", bytes(range(256))), expect="bad.yaml"),
    case("sweep-unknown-top-key", f"plan {BAD}", sweep_with({"grdi": {"seed": [0]}}), expect="grdi"),
    case("sweep-name-escapes", f"plan {BAD}", sweep_with({"name": "../../evil"}), expect="not a safe name"),
    case("sweep-name-empty", f"plan {BAD}", sweep_with({"name": ""}), expect="not a safe name"),
    case("sweep-name-a-list", f"plan {BAD}", sweep_with({"name": ["a"]}), expect="sweep name"),
    case("sweep-base-a-list", f"plan {BAD}", sweep_with({"base": [1]}), expect="base"),
    case("sweep-base-train-a-list", f"plan {BAD}", sweep_with({"base|train": [1]}), expect="train"),
    case("sweep-grid-a-list", f"plan {BAD}", sweep_with({"grid": [1]}), expect="grid"),
    case("sweep-grid-axis-empty", f"plan {BAD}", sweep_with({"grid|model.size": []}), expect="non-empty"),
    case("sweep-grid-unknown-key", f"plan {BAD}", sweep_with({"grid|model.sise": [1]}), expect="model.sise"),
    case("sweep-variants-not-list", f"plan {BAD}", sweep_with({"variants": 3}), expect="variants"),
    case("sweep-variants-of-strings", f"plan {BAD}", sweep_with({"variants": ["a"]}), expect="variants"),
    case("sweep-store-a-list", f"plan {BAD}", sweep_with({"store": [1, 2]}), expect="store"),
    case("budget-missing", f"plan {BAD}", sweep_with({"budget": DELETE}), expect="budget"),
    case("budget-a-list", f"plan {BAD}", sweep_with({"budget": [1]}), expect="budget"),
    case("budget-two-kinds", f"plan {BAD}", sweep_with({"budget|flops": [1e12]}), expect="exactly one"),
    case("budget-empty-list", f"plan {BAD}", sweep_with({"budget|tokens": []}), expect="non-empty"),
    case("budget-negative", f"plan {BAD}", sweep_with({"budget|tokens": [-5]}), expect="positive"),
    case("budget-word", f"plan {BAD}", sweep_with({"budget|tokens": ["lots"]}), expect="lots"),
    case("budget-infinite", f"plan {BAD}", sweep_with({"budget|tokens": [float("inf")]}), expect="finite"),
    case("budget-nan", f"plan {BAD}", sweep_with({"budget|tokens": [float("nan")]}), expect="budget.tokens"),
    case("budget-beyond-bound", f"plan {BAD}", sweep_with({"budget|tokens": [1e20]}), expect="at most"),
    case("budget-flops-beyond-bound", f"plan {BAD}", sweep_with({"budget|tokens": DELETE, "budget|flops": [1e40]}), expect="at most"),
    case("budget-below-a-window", f"plan {BAD}", sweep_with({"budget|tokens": [3]}), expect="context window"),
    case("budget-params-unknown", f"plan {BAD}", sweep_with({"budget|params": "all"}), expect="budget.params"),
    case("budget-branches-maybe", f"plan {BAD}", sweep_with({"budget|branches": "maybe"}), expect="budget.branches"),
    case("budget-unknown-key", f"plan {BAD}", sweep_with({"budget|tokenz": [1]}), expect="tokenz"),
    case("base-unknown-key", f"plan {BAD}", sweep_with({"base|train|lrr": 1}), expect="train.lrr"),
    case("lr-a-word", f"plan {BAD}", sweep_with({"base|train|lr": "fast"}), expect="train.lr"),
    case("lr-infinite", f"plan {BAD}", sweep_with({"base|train|lr": float("inf")}), expect="train.lr"),
    case("lr-nan", f"plan {BAD}", sweep_with({"base|train|lr": float("nan")}), expect="train.lr"),
    case("lr-negative", f"plan {BAD}", sweep_with({"base|train|lr": -1e-3}), expect="train.lr"),
    case("min-lr-above-lr", f"plan {BAD}", sweep_with({"base|train|min_lr": 1.0}), expect="train.min_lr"),
    case("batch-zero", f"plan {BAD}", sweep_with({"base|train|batch_size": 0}), expect="train.batch_size"),
    case("batch-beyond-bound", f"plan {BAD}", sweep_with({"base|train|batch_size": 1e12}), expect="at most"),
    case("batch-fractional", f"plan {BAD}", sweep_with({"base|train|batch_size": 2.5}), expect="train.batch_size"),
    case("batch-boolean", f"plan {BAD}", sweep_with({"base|train|batch_size": True}), expect="train.batch_size"),
    case("seed-negative", f"plan {BAD}", sweep_with({"base|seed": -1}), expect="seed"),
    case("seed-beyond-32-bits", f"plan {BAD}", sweep_with({"base|seed": 2**40}), expect="seed"),
    case("seed-a-word", f"plan {BAD}", sweep_with({"base|seed": "abc"}), expect="seed"),
    case("warmup-above-one", f"plan {BAD}", sweep_with({"base|train|warmup": 1.5}), expect="train.warmup"),
    case("decay-zero", f"plan {BAD}", sweep_with({"base|train|decay": 0}), expect="train.decay"),
    case("grad-clip-negative", f"plan {BAD}", sweep_with({"base|train|grad_clip": -1}), expect="train.grad_clip"),
    case("weight-decay-nan", f"plan {BAD}", sweep_with({"base|train|weight_decay": float("nan")}), expect="train.weight_decay"),
    case("beta1-one", f"plan {BAD}", sweep_with({"base|train|beta1": 1.0}), expect="train.beta1"),
    case("beta2-negative", f"plan {BAD}", sweep_with({"base|train|beta2": -0.5}), expect="train.beta2"),
    case("schedule-unknown", f"plan {BAD}", sweep_with({"base|train|schedule": "linear"}), expect="train.schedule"),
    case("eval-points-zero", f"plan {BAD}", sweep_with({"base|train|eval_points": 0}), expect="train.eval_points"),
    case("val-windows-beyond-bound", f"plan {BAD}", sweep_with({"base|train|val_windows": 1e12}), expect="at most"),
    case("branches-with-cosine", f"plan {BAD}", sweep_with({"base|train|branch_tokens": [256]}), expect="wsd"),
    case("family-unknown", f"plan {BAD}", sweep_with({"base|model|family": "gpt5"}), expect="model.family"),
    case("size-negative", f"plan {BAD}", sweep_with({"grid|model.size": ["-1M"]}), expect="model.size"),
    case("size-tiny", f"plan {BAD}", sweep_with({"grid|model.size": [1]}), expect="model.size"),
    case("size-a-word", f"plan {BAD}", sweep_with({"grid|model.size": ["banana"]}), expect="model.size"),
    case("layers-negative", f"plan {BAD}", sweep_with({"base|model": {"family": "llama", "n_layers": -2, "d_model": 64,
                                                                       "n_heads": 2, "d_ff": 128}}), expect="model.n_layers"),
    case("width-negative", f"plan {BAD}", sweep_with({"base|model": {"family": "llama", "n_layers": 2, "d_model": -64,
                                                                      "n_heads": 2, "d_ff": 128}}), expect="model.d_model"),
    case("heads-negative", f"plan {BAD}", sweep_with({"base|model": {"family": "llama", "n_layers": 2, "d_model": 64,
                                                                      "n_heads": -2, "d_ff": 128}}), expect="model.n_heads"),
    case("ffn-negative", f"plan {BAD}", sweep_with({"base|model": {"family": "llama", "n_layers": 2, "d_model": 64,
                                                                    "n_heads": 2, "d_ff": -128}}), expect="model.d_ff"),
    case("heads-do-not-divide", f"plan {BAD}", sweep_with({"base|model": {"family": "llama", "n_layers": 2, "d_model": 64,
                                                                           "n_heads": 3, "d_ff": 128}}), expect="model.n_heads"),
    case("kv-heads-do-not-divide", f"plan {BAD}", sweep_with({"base|model": {"family": "llama", "n_layers": 2, "d_model": 64,
                                                                              "n_heads": 4, "n_kv_heads": 3, "d_ff": 128}}),
         expect="model.n_kv_heads"),
    case("context-zero", f"plan {BAD}", sweep_with({"base|data|context": 0}), expect="data.context"),
    case("context-beyond-bound", f"plan {BAD}", sweep_with({"base|data|context": 2**21, "budget|tokens": [2**22]}),
         expect="data.context"),
    case("mode-unknown", f"plan {BAD}", sweep_with({"base|data|mode": "video"}), expect="data.mode"),
    case("mix-two-values", f"plan {BAD}", sweep_with({"base|data|mix": [1, 0]}), expect="data.mix"),
    case("mix-a-word", f"plan {BAD}", sweep_with({"base|data|mix": "even"}), expect="data.mix"),
    case("span-lambda-negative", f"plan {BAD}", sweep_with({"base|data|span_lambda": -1}), expect="data.span_lambda"),
    case("speech-ratio-above-one", f"plan {BAD}", sweep_with({"base|data|speech_ratio": 2}), expect="data.speech_ratio"),
    case("val-exclude-empty-name", f"plan {BAD}", sweep_with({"base|data|val_exclude": [""]}), expect="data.val_exclude"),
    case("corpus-unknown", f"plan {BAD}", sweep_with({"base|data|corpus": "nowhere"}), expect="nowhere"),
    case("init-without-source", f"plan {BAD}", sweep_with({"base|init": "text-lm"}), expect="init_from"),
    case("init-from-missing-dir", f"plan {BAD}", sweep_with({"base|init": "text-lm", "base|init_from": "/nonexistent/nolm"}),
         expect="init_from = '/nonexistent/nolm'"),
    case("mirrors-unknown-key", f"plan {BAD}", sweep_with({"mirrors": {"tensorbord": True}}), expect="tensorbord"),
    case("mirrors-a-list", f"plan {BAD}", sweep_with({"mirrors": [1]}), expect="mirrors"),
    case("executor-unknown", f"launch {BAD} --dry-run", sweep_with({"executor": "k8s"}), expect="k8s"),
    case("max-parallel-a-word", f"launch {BAD} --dry-run", sweep_with({"max_parallel": "abc"}), expect="max_parallel"),
    case("max-parallel-zero", f"launch {BAD} --dry-run", sweep_with({"max_parallel": 0}), expect="max_parallel"),
    case("slurm-section-a-list", f"plan {BAD}", sweep_with({"executor": "slurm", "slurm": [1]}), expect="slurm"),
    # ---------------------------------------------------------- overrides
    case("override-base-a-list", "plan {sweep} base=[1]", expect="base"),
    case("override-grid-a-number", "plan {sweep} grid=5", expect="grid"),
    case("override-budget-a-word", "plan {sweep} budget=abc", expect="budget"),
    case("override-variants-a-number", "plan {sweep} variants=7", expect="variants"),
    case("override-without-value", "plan {sweep} train.lr", expect="key=value"),
    case("override-empty-key", "plan {sweep} =1", expect="override"),
    case("override-empty-section", "plan {sweep} train..lr=1", expect="override"),
    case("override-section-a-number", "plan {sweep} train=5", expect="train"),
    case("override-below-a-value", "plan {sweep} train.lr.x=1", expect="train.lr"),
    case("override-lr-a-list", "plan {sweep} train.lr=[1,2]", expect="train.lr"),
    case("override-grid-empty", "plan {sweep} grid.model.size=[]", expect="non-empty"),
    case("override-budget-empty", "plan {sweep} budget.tokens=[]", expect="non-empty"),
    case("override-name-escapes", "plan {sweep} name=../x", expect="not a safe name"),
    case("override-seed-huge", "plan {sweep} seed=1e40", expect="seed"),
    case("override-unknown-key", "plan {sweep} train.lrr=1", expect="train.lrr"),
    case("override-max-parallel-word", "launch {sweep} max_parallel=abc --dry-run", expect="max_parallel"),
    # ---------------------------------------------------------- flags
    case("launch-threads-negative", "launch {sweep} --threads -2 --dry-run", expect="--threads"),
    case("launch-max-parallel-zero", "launch {sweep} --max-parallel 0 --dry-run", expect="max-parallel"),
    case("plan-mfu-zero", "plan {sweep} --mfu 0", expect="--mfu"),
    case("plan-mfu-above-one", "plan {sweep} --mfu 7", expect="--mfu"),
    case("status-watch-negative", "status {sweep} --watch -1", expect="--watch"),
    case("fit-target-c-negative", "fit {laws} --target-c -1", expect="--target-c"),
    case("fit-target-c-infinite", "fit {laws} --target-c inf", expect="--target-c"),
    case("fit-bootstrap-negative", "fit {laws} --bootstrap -5", expect="--bootstrap"),
    case("fit-level-above-one", "fit {laws} --level 2", expect="--level"),
    case("fit-delta-negative", "fit {laws} --delta -1", expect="--delta"),
    case("fit-budget-rtol-negative", "fit {laws} --budget-rtol -1 --approach 2", expect="--budget-rtol"),
    case("figures-bootstrap-negative", "figures {laws} --bootstrap -1", expect="--bootstrap"),
    case("eval-pairs-zero", "eval {run} --pairs 0", expect="--pairs"),
    case("eval-threads-negative", "eval {run} --threads -2 --bench sblimp", expect="--threads"),
    case("eval-context-negative", "eval {run} --context -3", expect="--context"),
    case("pretrain-tokens-negative", "pretrain-text --out {w}/lm --tokens -5 --store {w}/lmstore", expect="--tokens"),
    case("pretrain-context-zero", "pretrain-text --out {w}/lm --context 0 --store {w}/lmstore", expect="context"),
    case("pretrain-size-a-word", "pretrain-text --out {w}/lm --size banana --store {w}/lmstore", expect="banana"),
    case("pretrain-seed-negative", "pretrain-text --out {w}/lm --seed -1 --store {w}/lmstore", expect="seed"),
    # ---------------------------------------------------------- tables (CSV, Parquet)
    case("fit-table-missing", "fit {w}/none.csv", expect="does not exist"),
    case("fit-table-a-directory", "fit {w}", expect="directory"),
    case("fit-table-not-utf8", "fit {w}/bad.csv", raw("bad.csv", b"params_total,tokens,loss_val\n\xff\xfe,1,2\n"), expect="bad.csv"),
    case("fit-table-empty", "fit {w}/bad.csv", raw("bad.csv", b""), expect="bad.csv"),
    case("fit-table-header-only", "fit {w}/bad.csv", raw("bad.csv", "params_total,tokens,loss_val\n"), expect="no rows"),
    case("fit-table-binary", "fit {w}/bad.csv", raw("bad.csv", bytes(range(256)) * 4), expect="bad.csv"),
    case("fit-parquet-garbage", "fit {w}/bad.parquet", raw("bad.parquet", b"PAR1 not really"), expect="bad.parquet"),
    case("fit-column-missing", "fit {laws} --n params_totl", expect="params_totl"),
    case("fit-cell-a-word", "fit {w}/bad.csv --all-rows", table_with(set_cell("loss_val", "low")), expect="loss_val"),
    case("fit-params-zero", "fit {w}/bad.csv --all-rows", table_with(set_cell("params_total", 0)), expect="params_total"),
    case("fit-tokens-negative", "fit {w}/bad.csv --all-rows", table_with(set_cell("tokens", -5)), expect="tokens"),
    case("fit-final-maybe", "fit {w}/bad.csv", table_with(set_cell("final", "maybe")), expect="final"),
    case("fit-where-bad-syntax", "fit {laws} --where params_total", expect="--where"),
    case("fit-where-unknown-column", "fit {laws} --where colour=red", expect="colour"),
    case("fit-where-not-a-number", "fit {laws} --where params_total>big", expect="big"),
    case("fit-chain-not-utf8", "fit {laws} --chain {w}/bad.json --at N=1e6,D=1e7", raw("bad.json", b"\xff\xff"), expect="bad.json"),
    case("fit-chain-not-json", "fit {laws} --chain {w}/bad.json --at N=1e6,D=1e7", raw("bad.json", "{nope"), expect="bad.json"),
    case("fit-chain-not-a-fit", "fit {laws} --chain {w}/bad.json --at N=1e6,D=1e7", raw("bad.json", '{"law": 1}'), expect="bad.json"),
    case("fit-compare-not-utf8", "fit {laws} --compare {w}/bad.json", raw("bad.json", b"\xff"), expect="bad.json"),
    case("fit-where-final-maybe", "fit {laws} --where final=maybe", expect="final"),
    case("figures-where-final-maybe", "figures {laws} --where final=maybe --out {w}/f", expect="final"),
    case("figures-table-not-utf8", "figures {w}/bad.csv --out {w}/f", raw("bad.csv", b"params_total,loss_val\n\xff,1\n"),
         expect="bad.csv"),
    case("figures-final-maybe", "figures {w}/bad.csv --out {w}/f", table_with(set_cell("final", "maybe")), expect="final"),
    case("figures-params-zero", "figures {w}/bad.csv --out {w}/f", table_with(set_cell("params_total", 0)), expect="params_total"),
    case("figures-where-unknown-column", "figures {laws} --where colour=red --out {w}/f", expect="colour"),
    case("figures-compute-missing", "figures {laws} --compute flops_nope --out {w}/f", expect="flops_nope"),
    # ---------------------------------------------------------- corpus configs
    case("corpus-config-not-utf8", f"plan {BAD}", several(raw("c.yaml", b"name: \xff\n"), sweep_with({"base|data|corpus": "{w}/c.yaml"})),
         expect="c.yaml"),
    case("data-build-config-not-utf8", "data build {w}/c.yaml --cache {w}/cache2", raw("c.yaml", b"name: \xff\n"), expect="c.yaml"),
    case("data-build-config-unknown-key", "data build {w}/c.yaml --cache {w}/cache2", raw("c.yaml", "colour: red\n"), expect="colour"),
    case("data-build-sentences-not-utf8", "data build {w}/c.yaml --cache {w}/cache2",
         several(raw("s.txt", b"\xff\xfe hello\n"), lambda w: (w.root / "c.yaml").write_text(f"sentences: {w.root}/s.txt\n")),
         expect="s.txt"),
    case("data-stats-missing", "data stats {w}/nothing", expect="nothing"),
    # ---------------------------------------------------------- damaged store files
    case("status-json-empty", "status {sweep}", damage("status.json", b""), expect="status.json"),
    case("status-json-torn", "status {sweep}", damage("status.json", lambda b: b[: len(b) // 2]), expect="status.json"),
    case("status-json-not-utf8", "status {sweep}", damage("status.json", b"\xff\xfe{}"), expect="status.json"),
    case("status-json-a-list", "status {sweep}", damage("status.json", b"[1, 2]\n"), expect="status.json"),
    case("status-json-torn-collect", "collect {store}", damage("status.json", lambda b: b[:7]), expect="status.json"),
    case("status-json-torn-launch", "launch {sweep} --dry-run", damage("status.json", lambda b: b[:7]), expect="status.json"),
    case("spec-json-empty", "collect {store}", damage("spec.json", b""), expect="spec.json"),
    case("spec-json-torn", "collect {store}", damage("spec.json", lambda b: b[: len(b) // 2]), expect="spec.json"),
    case("spec-json-a-list", "collect {store}", damage("spec.json", b"[]\n"), expect="spec.json"),
    case("spec-json-unknown-key", "collect {store}", damage("spec.json", lambda b: json.dumps({**json.loads(b), "colour": 1}).encode()),
         expect="colour"),
    case("summary-json-torn", "collect {store}", damage("summary.json", lambda b: b[: len(b) // 2]), expect="summary.json"),
    case("summary-json-a-number", "collect {store}", damage("summary.json", b"3\n"), expect="summary.json"),
    case("evals-garbage-line", "collect {store}", damage("evals.jsonl", lambda b: b"garbage\n" + b), expect="evals.jsonl"),
    case("evals-not-utf8", "collect {store}", damage("evals.jsonl", lambda b: b"\xff\xfe\n" + b), expect="evals.jsonl"),
    case("evals-line-a-list", "collect {store}", damage("evals.jsonl", lambda b: b"[1]\n" + b), expect="evals.jsonl"),
    case("metrics-garbage-line", "status {sweep}", damage("metrics.jsonl", lambda b: b"garbage\n" + b), expect="metrics.jsonl"),
    case("sweep-record-torn", "collect {store} --sweep fz", raw("store/sweeps/fz.json", "{\"runs\": ["), expect="fz.json"),
    case("sweep-record-without-runs", "collect {store} --sweep fz", raw("store/sweeps/fz.json", "{}"), expect="fz.json"),
    case("collect-sweep-escapes", "collect {store} --sweep ../x", expect="not a safe name"),
    case("collect-no-store", "collect {w}/nostore", expect="no runs"),
    case("eval-yaml-not-utf8", "eval {run} --bench sblimp", raw("store/eval.yaml", b"pairs: \xff\n"), expect="eval.yaml"),
    case("eval-yaml-pairs-word", "eval {run} --bench sblimp", raw("store/eval.yaml", "pairs: many\n"), expect="pairs"),
    # ---------------------------------------------------------- benchmark files
    case("bench-not-utf8", "eval {run} --bench {w}/b.jsonl", raw("b.jsonl", b"\xff\xfe\n"), expect="b.jsonl"),
    case("bench-empty", "eval {run} --bench {w}/b.jsonl", raw("b.jsonl", b""), expect="b.jsonl"),
    case("bench-header-not-json", "eval {run} --bench {w}/b.jsonl", raw("b.jsonl", "hello\n"), expect="b.jsonl"),
    case("bench-csv-not-utf8", "eval {run} --bench {w}/b.csv", raw("b.csv", b"InputSentence1\n\xff\n"), expect="b.csv"),
    case("bench-csv-not-storycloze", "eval {run} --bench {w}/b.csv", raw("b.csv", "a,b\n1,2\n"), expect="StoryCloze"),
    case("bench-gold-not-utf8", "eval {run} --bench {w}/zr", raw("zr/gold.csv", b"filename,correct,id\n\xff,1,2\n"), expect="gold.csv"),
    case("bench-pair-text-not-utf8", "eval {run} --bench {w}/pd",
         several(raw("pd/a_correct.txt", b"\xff"), raw("pd/a_incorrect.txt", "x")), expect="a_correct.txt"),
    # ---------------------------------------------------------- what eval loads
    case("eval-target-missing", "eval {w}/nothing", expect="nothing"),
    case("eval-target-an-empty-dir", "eval {w}/e", raw("e/x.txt", "x"), expect="neither"),
    case("eval-run-unknown", "eval abcdef --store {store}", expect="unknown run"),
    case("eval-safetensors-truncated", "eval {w}/m --bench sblimp",
         model_copy(lambda m: (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:1000])),
         expect="model.safetensors"),
    case("eval-safetensors-garbage", "eval {w}/m --bench sblimp",
         model_copy(lambda m: (m / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")),
         expect="model.safetensors"),
    case("eval-config-not-json", "eval {w}/m --bench sblimp", model_copy(lambda m: (m / "config.json").write_text("{oops")),
         expect="config.json"),
    case("eval-config-a-list", "eval {w}/m --bench sblimp", model_copy(lambda m: (m / "config.json").write_text("[]")),
         expect="config.json"),
    case("eval-config-unknown-model", "eval {w}/m --bench sblimp",
         model_copy(lambda m: (m / "config.json").write_text('{"model_type": "nonesuch"}')), expect="nonesuch"),
    case("eval-config-not-utf8", "eval {w}/m --bench sblimp", model_copy(lambda m: (m / "config.json").write_bytes(b"\xff{}")),
         expect="config.json"),
    case("eval-weights-missing", "eval {w}/m --bench sblimp", model_copy(lambda m: (m / "model.safetensors").unlink()),
         expect="safetensors"),
    case("eval-checkpoint-truncated", "eval {run}/checkpoint --bench sblimp",
         damage("checkpoint/latest.pt", lambda b: b[: len(b) // 3]), expect="latest.pt"),
    case("eval-checkpoint-empty", "eval {run}/checkpoint/latest.pt --bench sblimp", damage("checkpoint/latest.pt", b""),
         expect="latest.pt"),
    case("eval-checkpoint-not-torch", "eval {run}/checkpoint/latest.pt --bench sblimp",
         damage("checkpoint/latest.pt", b"just some text\n"), expect="latest.pt"),
    # ---------------------------------------------------------- output paths
    case("collect-out-under-a-file", "collect {store} --out {w}/file.txt/results", raw("file.txt", "x"), expect="file.txt"),
    case("collect-out-a-directory", "collect {store} --out {w}/d", raw("d.csv/x", "x"), expect="d.csv"),
    case("eval-out-under-a-file", "eval {run} --bench sblimp --out {w}/file.txt/e.json", raw("file.txt", "x"), expect="file.txt"),
    case("eval-out-a-directory", "eval {run} --bench sblimp --out {w}", expect="--out"),
    case("fit-json-under-a-file", "fit {laws} --all-rows --json {w}/file.txt/fit.json", raw("file.txt", "x"), expect="file.txt"),
    case("figures-out-a-file", "figures {laws} --out {w}/file.txt", raw("file.txt", "x"), expect="file.txt"),
    case("pretrain-out-under-a-file", "pretrain-text --out {w}/file.txt/lm --store {w}/lmstore", raw("file.txt", "x"),
         expect="file.txt"),
    case("launch-store-under-a-file", "launch {sweep} --store {w}/file.txt/s --dry-run", raw("file.txt", "x"), expect="file.txt"),
]


def _checksum(root: Path) -> dict[str, str]:
    """Every file under ``root`` (symbolic links not followed) with a hash of its bytes."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_the_table_is_large_and_its_ids_unique():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(bad: Case, pristine: World, tmp_path, capsys):
    world = pristine.copy_to(tmp_path / "w")
    if bad.setup:
        bad.setup(world)
    before = _checksum(world.root)
    capsys.readouterr()
    code = main([world.fill(a) for a in bad.argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, f"exit status {code}; stderr: {err}"
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"scaling {bad.argv[0]}: error: "), err
    assert world.fill(bad.expect) in lines[0], err
    assert _checksum(world.root) == before, "the command changed files"
