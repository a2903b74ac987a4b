"""Entry point shared by the per-figure scripts in ``analysis/``.

``python analysis/fig1_metric_vs_compute.py TABLE --out DIR [options]`` is ``scaling figures TABLE
--out DIR --only fig1_metric_vs_compute [options]``: the same checks, messages and outputs.
"""

from __future__ import annotations

import sys


def main(name: str, argv: list[str] | None = None) -> int:
    """Run ``scaling figures`` for the one figure or table ``name`` with the script's arguments."""
    from scaling.cli import main as cli

    args = list(sys.argv[1:] if argv is None else argv)
    return cli(["figures", *args, "--only", name])
