"""Arguments and helpers shared by the sweep commands (plan, launch, status, cancel, collect)."""

from __future__ import annotations

import argparse

from scaling.store import Store
from scaling.sweep import Sweep, load_sweep


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep file (YAML), e.g. sweeps/demo.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="overrides such as train.lr=1e-3, grid.model.size=[1M,3M], budget.tokens=[1e6]")
    p.add_argument("--store", default=None, help="store root (default: the sweep's `store`, else results/<sweep name>)")


def open_sweep(args: argparse.Namespace) -> tuple[Sweep, Store]:
    sweep = load_sweep(args.sweep, args.overrides)
    return sweep, Store(args.store or sweep.store_root)

