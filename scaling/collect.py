"""Collect a store into one tidy results table: one row per run × evaluation point.

Columns: every spec field, flattened with underscores (``model_family``, ``data_mode``,
``train_tokens`` = the run's budget, ``init``, ``seed`` …); the run's ``run_id``, ``name``,
``status``; the accounting of the evaluation point (``step``, ``tokens``, ``tokens_speech``,
``tokens_text``, ``tokens_marker``, ``flops_6nd``, ``flops_6nd_nonembed``, ``flops_exact``); the
parameter counts (``params_total``, ``params_non_embedding``, ``params_embedding``,
``params_embedding_speech``); the metrics (``loss_train``, ``loss_val``, ``loss_val_speech``,
``loss_val_text``, ``loss_val_speech_only`` (:mod:`scaling.train.speech_only`), ``acc_*``); and ``final`` (true on the last point of each budget: a run's last
evaluation point, and every decay branch's point).

Decay branches (``train.branch_tokens``, see :mod:`scaling.runs.timeline`): ``branch`` is true on
a branch's row, whose ``tokens`` and ``flops_*`` are those of the branch's budget as if it were an
independent run (so fits treat it as one more (N, D) point); ``branch_from_step`` /
``branch_from_tokens`` say where it left the run's trunk and ``branch_cost_tokens`` /
``branch_cost_flops_6nd`` / ``branch_cost_flops_6nd_nonembed`` / ``branch_cost_flops_exact`` what it
trained beyond that shared prefix. Every row of a finished run also has the compute the whole
run spent, trunk and branches: ``tokens_spent``, ``flops_6nd_spent``, ``flops_6nd_nonembed_spent``,
``flops_exact_spent``.
The table is the only interface between training and analysis (DESIGN, contract 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from scaling.results_table import arrange, write_table
from scaling.spec import to_dict
from scaling.store import Store

SUMMARY_KEYS = ("params_total", "params_non_embedding", "params_embedding", "params_embedding_speech",
                "tokens_spent", "flops_6nd_spent", "flops_6nd_nonembed_spent", "flops_exact_spent")


def _flatten(prefix: str, data: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in data.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(name, value, out)
        elif isinstance(value, list):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = value


def collect_rows(store: Store, sweep: str | None = None) -> list[dict[str, Any]]:
    """Rows of the results table for every run of ``store`` (or of one sweep)."""
    ids = set(store.sweep_runs(sweep)) if sweep else None
    rows = []
    for run in store.runs():
        if ids is not None and run.run_id not in ids:
            continue
        spec = run.spec()
        base: dict[str, Any] = {}
        _flatten("", to_dict(spec), base)
        base.update(run_id=run.run_id, name=spec.name, status=run.status().get("state", "pending"))
        summary = run.summary() or {}
        base.update({k: summary[k] for k in SUMMARY_KEYS if k in summary})
        evals = run.evals()
        for i, record in enumerate(evals):
            last = i == len(evals) - 1 and base["status"] in ("done", "diverged")
            branch_end = bool(record.get("branch")) and not record.get("diverged")
            rows.append({**base, "branch": False, **record, "final": last or branch_end})
    return rows


def collect(store: Store, out: Path | None = None, sweep: str | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """Build the table and write it as CSV and Parquet (:func:`scaling.results_table.write_table`);
    returns it and the paths written."""
    df = arrange(pd.DataFrame(collect_rows(store, sweep)))
    return df, write_table(df, Path(out) if out else store.root / "results")
