"""What the metric columns of a results table mean, and how figures label and scale them.

Accuracies (``acc_*``) are drawn in percent: a column whose values all lie in [0, 1] is read as a
fraction and multiplied by 100, so a user's runs and the published numbers (printed in percent)
share one axis. Losses are drawn as they are (nats per token).

Cross-modal StoryCloze columns follow ``acc_<bench>`` for speech→speech and
``acc_<bench>_s2t``, ``acc_<bench>_t2s``, ``acc_<bench>_t2t`` for the other directions, with
``acc_<bench>_textlm`` for the original text LM on text (Table 2 of SIMS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


COMPUTE_LABEL = "Compute C (FLOPs)"
PARAMS_LABEL = "Parameters N"
TOKENS_LABEL = "Training tokens D"


@dataclass(frozen=True)
class Metric:
    """One metric column: its label on axes and in tables, and which direction is better."""

    column: str
    label: str
    lower_is_better: bool

    @property
    def is_accuracy(self) -> bool:
        return self.column.startswith("acc_")

    @property
    def axis_label(self) -> str:
        """Label with units and direction, e.g. 'tSC accuracy (%) ↑'."""
        if self.is_accuracy:
            return f"{self.label} (%) ↑"
        return f"{self.label} ↓" if self.lower_is_better else f"{self.label} ↑"


METRICS = {m.column: m for m in [
    Metric("loss_val", "Validation loss", True),
    Metric("loss_val_speech", "Speech validation loss", True),
    Metric("loss_val_text", "Text validation loss", True),
    Metric("loss_val_speech_only", "Speech-only validation loss", True),
    Metric("loss_train", "Training loss", True),
    Metric("acc_sblimp", "sBLIMP", False),
    Metric("acc_swuggy", "sWUGGY", False),
    Metric("acc_ssc", "sSC", False),
    Metric("acc_stc", "tSC", False),
    Metric("acc_ms_ssc", "MS-sSC", False),
    Metric("acc_ms_stc", "MS-tSC", False),
]}

CROSS_MODAL = [("", "S"), ("_s2t", "S→T"), ("_t2s", "T→S"), ("_t2t", "T"), ("_textlm", "Orig.")]


def metric(column: str) -> Metric:
    """The metadata of ``column`` (unknown columns: their own name, lower is better for losses)."""
    if column in METRICS:
        return METRICS[column]
    return Metric(column, column, not column.startswith("acc_"))


def to_percent(df: pd.DataFrame) -> list[str]:
    """Turn every accuracy column held as fractions (all values in [0, 1]) into percent, in place.

    Returns the columns converted. Run once on the whole table, so that every figure agrees.
    """
    converted = []
    for column in [c for c in df.columns if c.startswith("acc_")]:
        series = pd.to_numeric(df[column], errors="coerce").astype(float)
        finite = series[np.isfinite(series)]
        if len(finite) and finite.between(0, 1).all():
            df[column] = series * 100.0
            converted.append(column)
    return converted


def available(df: pd.DataFrame, column: str) -> bool:
    """Whether ``df`` has ``column`` with at least one finite value."""
    return column in df.columns and bool(np.isfinite(pd.to_numeric(df[column], errors="coerce")).any())


def first_available(df: pd.DataFrame, columns: tuple[str, ...]) -> str | None:
    """The first of ``columns`` that ``df`` has values for, or None."""
    return next((c for c in columns if available(df, c)), None)
