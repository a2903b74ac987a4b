"""The `scaling` command line.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and
``run(args) -> int``; this file only lists them. Modules named here must import quickly (no torch
at import time), because building the parser imports every one of them.

Errors a user can cause are raised as :class:`scaling.errors.UserError` and printed here as one line
on stderr with exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from scaling.errors import UserError

# (subcommand, module, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    ("plan", "scaling.commands.plan", "dry run: list the runs of a sweep with parameters, tokens, FLOPs and estimated time"),
    ("launch", "scaling.commands.launch", "train every run of a sweep that is not done (local processes or SLURM)"),
    ("status", "scaling.commands.status", "show the state of every run of a sweep"),
    ("cancel", "scaling.commands.cancel", "cancel the queued or running jobs of a sweep"),
    ("collect", "scaling.commands.collect", "gather every run of a store into one results table (CSV + Parquet)"),
    ("fit", "scaling.commands.fit", "fit a scaling law to a results table or any CSV"),
    ("figures", "scaling.commands.figures", "draw the paper figures from a results table"),
    ("demo", "scaling.commands.demo", "plan, launch, collect, fit and draw the embedded demo sweep"),
    ("data", "scaling.commands.data", "build and inspect speech-text corpora"),
    ("eval", "scaling.commands.evaluate", "score a saved run or checkpoint on a benchmark"),
    ("import-gguf", "scaling.commands.import_gguf", "convert a GGUF model file into a local Hugging Face model directory (for init_from)"),
    ("pretrain-text", "scaling.commands.pretrain_text", "pre-train a small text LM on the shipped text (for text-LM initialisation offline)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaling",
        description="Scaling-law studies of speech-text language models: sweeps, training, results, fits, figures.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # a part of the toolkit that is not built in this checkout
            raise
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also follow options (`scaling plan S --store X train.lr=1e-3`)
    if extra and isinstance(getattr(args, "overrides", None), list) and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"scaling {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scaling {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
