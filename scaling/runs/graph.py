"""The dependency graph of runs: which runs must finish before a run can start, in which order to
train them, and where in the store a run finds what its dependencies made.

The only dependency today is the text LM of ``init_from: "pretrain:<tokens>"``: a text-mode run of
the same architecture on the same corpus, trained from scratch first (a run of its own in the
store, shared by every run that names it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scaling.errors import UserError
from scaling.spec import DataSpec, RunSpec, parse_count
from scaling.store import Store

PRETRAIN_PREFIX = "pretrain:"


def pretrain_spec(spec: RunSpec) -> RunSpec:
    """The text-LM run that ``init_from: pretrain:<tokens>`` names: same architecture, text data, scratch."""
    tokens = spec.init_from.split(":", 1)[1]
    data = DataSpec(mode="text", corpus=spec.data.corpus, context=spec.data.context)
    train = replace(spec.train, tokens=int(parse_count(tokens, "init_from")), schedule="cosine", branch_tokens=())
    return RunSpec(model=spec.model, data=data, train=train, init="scratch", init_from="", seed=spec.seed, sweep=spec.sweep)


def dependencies(spec: RunSpec) -> list[RunSpec]:
    """Runs that must finish before ``spec`` can start (its pre-trained text LM, if any)."""
    if spec.init == "text-lm" and spec.init_from.startswith(PRETRAIN_PREFIX):
        return [pretrain_spec(spec)]
    return []


def with_dependencies(runs: list[RunSpec]) -> list[RunSpec]:
    """The runs plus the runs they depend on, dependencies first, each once (in first-seen order)."""
    out: dict[str, RunSpec] = {}
    for spec in runs:
        for dep in dependencies(spec):
            out.setdefault(dep.run_id, dep)
    for spec in runs:
        out.setdefault(spec.run_id, spec)
    return list(out.values())


def text_lm_dir(store: Store, spec: RunSpec) -> Path:
    """Directory of the text LM a run starts from: a local path, or the exported model of its
    pre-training run in ``store`` (UserError when that run is not done yet)."""
    if spec.init_from.startswith(PRETRAIN_PREFIX):
        dep = store.run(pretrain_spec(spec).run_id)
        if dep.status().get("state") != "done" or not (dep.path / "model").exists():
            raise UserError(f"run {spec.run_id} starts from text LM run {dep.run_id}, which is not done yet; launch it first")
        return dep.path / "model"
    return Path(spec.init_from).expanduser()
