"""`scaling collect STORE`: gather every run into one results table (CSV + Parquet)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="store root directory (e.g. results/demo)")
    p.add_argument("--out", default=None, help="output path without suffix (default: STORE/results → results.csv, results.parquet)")
    p.add_argument("--sweep", default=None, help="only the runs of this sweep")


def run(args: argparse.Namespace) -> int:
    from scaling.atomic import check_writable
    from scaling.collect import collect
    from scaling.errors import UserError
    from scaling.store import Store

    store = Store(args.store)
    if not (store.root / "runs").is_dir():
        raise UserError(f"store {args.store!r} has no runs/ directory; expected a store written by `scaling launch`")
    out = Path(args.out) if args.out else store.root / "results"
    for suffix in (".csv", ".parquet"):
        check_writable(out.with_suffix(suffix), "--out" if args.out else "the results table")
    df, paths = collect(store, out, args.sweep)
    runs = df["run_id"].nunique() if not df.empty else 0
    print(f"collected {len(df)} rows from {runs} runs → {', '.join(str(p) for p in paths)}")
    return 0
