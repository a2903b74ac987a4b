"""Published numbers shipped with the toolkit (``results/reference/``), for placing runs beside them.

Each CSV there carries a ``source`` column (paper, arXiv version, table); ``results/reference/README.md``
says how the numbers were transcribed and which could not be checked. The CSVs use the results
table's column names where a column means the same thing (``params_total``, ``tokens``,
``acc_stc`` …), so they can also be passed to ``scaling figures`` as a table of their own.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling.errors import UserError

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "results" / "reference"

FILES = {
    "table1": "sims_table1_synthetic_data.csv",
    "table2": "sims_table2_cross_modal.csv",
    "table3": "sims_table3_slm_comparison.csv",
    "table4": "sims_table4_data_sizes.csv",
}


def load_reference(key: str) -> pd.DataFrame:
    """One published table (``table1`` … ``table4``) as a DataFrame."""
    path = REFERENCE_DIR / FILES[key]
    if not path.exists():
        raise UserError(f"published reference data {str(path)!r} is missing; --published needs the repository's "
                        "results/reference/ directory")
    return pd.read_csv(path)


def published_slms() -> pd.DataFrame:
    """SIMS Table 3 (published SLMs) with C = 6·N·D in ``flops_6nd`` from its parameters and tokens."""
    df = load_reference("table3")
    df["flops_6nd"] = 6.0 * df["params_total"] * df["tokens"]
    return df
