"""`scaling figures TABLE --out DIR [--only NAME …]`: the paper's figures and tables from a results table.

Every figure is written as PNG + PDF + the CSV of what it draws, every table as Markdown + LaTeX +
CSV. A figure whose columns are missing from the table is skipped with a one-line reason. This
module imports nothing heavy at import time (the CLI imports every command to build its parser).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", nargs="?", help="results table (CSV or Parquet) from `scaling collect`, or any CSV with its columns")
    p.add_argument("--out", default=None, help="output directory (default: figures/ beside the table)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="draw only these figures or tables (a prefix such as fig1 works)")
    p.add_argument("--list", action="store_true", help="list the figures and tables and exit")
    p.add_argument("--style", choices=("paper", "slides"), default="paper",
                   help="paper: legible at column width (default); slides: larger fonts and lines")
    p.add_argument("--compute", default=None, metavar="COL",
                   help="column used as training compute C in FLOPs (default flops_6nd, else 6·N·D from --params and "
                        "--tokens; e.g. flops_exact)")
    p.add_argument("--params", default="params_total", metavar="COL",
                   help="column used as parameters N (default params_total; e.g. params_non_embedding)")
    p.add_argument("--tokens", default="tokens", metavar="COL", help="column used as training tokens D (default tokens)")
    p.add_argument("--loss", default="loss_val", metavar="COL",
                   help="loss column for the fitted-law figures (default loss_val; e.g. loss_val_speech)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only matching rows, as for `scaling fit` (also !=, <, <=, >, >=); repeatable, all must "
                        "hold; e.g. --where data_mode!=text")
    p.add_argument("--published", action="store_true",
                   help="place the published SIMS numbers (results/reference/) beside your runs in tables and Fig. 1")
    p.add_argument("--bootstrap", type=int, default=100, metavar="K",
                   help="bootstrap resamples (whole runs) for the interval bands (default 100; 0: no bands)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the bootstrap (default 0)")


def run(args: argparse.Namespace) -> int:
    from scaling.atomic import check_writable
    from scaling.errors import UserError
    from scaling.figures.registry import Context
    from scaling.figures.render import entries, render
    from scaling.figures.style import STYLES, Palette
    from scaling.figures.table import Columns, prepare, select_rows
    from scaling.results_table import read_table

    if args.list:
        for name, entry in entries().items():
            print(f"{name:28s} {entry.kind:6s} {entry.description}")
        return 0
    if not args.table:
        raise UserError("missing the results table: scaling figures TABLE [--out DIR]")
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap {args.bootstrap}: expected 0 or a positive number of resamples")
    columns = Columns(compute=args.compute or "flops_6nd", params=args.params, tokens=args.tokens, loss=args.loss)
    raw, source = read_table(args.table)
    raw = select_rows(raw, args.where)
    if args.compute and args.compute not in raw.columns:
        raise UserError(f"table {source!r} has no column {args.compute!r} (--compute); columns: "
                        + ", ".join(map(str, raw.columns[:15])) + (", …" if len(raw.columns) > 15 else ""))
    table = prepare(raw, columns, source=source)
    out = check_writable(Path(args.out) if args.out else Path(args.table).resolve().parent / "figures", "--out", directory=True)
    palette = Palette(variants=set(table["variant"]),
                      families=set(table["model_family"].astype(str)) if "model_family" in table.columns else ())
    ctx = Context(table=table, columns=columns, style=STYLES[args.style], palette=palette, published=args.published,
                  bootstrap=args.bootstrap, seed=args.seed)
    if table.attrs.get("compute_derived"):
        print(f"note: no {columns.compute!r} column; C = 6·N·D from {args.params!r} and {args.tokens!r}")
    elif columns.compute not in table.columns:
        print(f"note: no {columns.compute!r} column (nor {args.params!r} and {args.tokens!r} to derive it); "
              "figures that need compute are skipped; choose a column with --compute")
    print(f"figures from {args.table} ({len(table)} rows) into {out}/")
    report = render(ctx, out, args.only)
    n_fig = sum(1 for p in report.written if p.suffix == ".png")
    n_tab = sum(1 for p in report.written if p.suffix == ".md")
    skipped = f"; skipped {len(report.skipped)} (reasons above)" if report.skipped else ""
    print(f"wrote {n_fig} figures and {n_tab} tables ({len(report.written)} files) to {out}/{skipped}")
    return 0 if report.written or not report.skipped else 1
