"""``scaling data build CONFIG`` and ``scaling data stats DIR``.

build: synthesise and encode a corpus (a preset name such as ``default``, ``demo``, ``tiny``, or a
YAML corpus config) into the content-addressed cache, so that runs naming the same corpus reuse
it. stats: hours, units and text tokens per source, split and modality (SIMS Table 4 style) of a
corpus directory, or of every corpus under a cache or store directory.

Imports nothing heavy at module level (the CLI imports every command to build its parser).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling.atomic import atomic_write_json
from scaling.errors import UserError

DEFAULT_CACHE = "results/cache"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="{build,stats}")
    b = sub.add_parser("build", help="build a corpus (espeak-ng speech, word timings, units) into the cache")
    b.add_argument("config", help="corpus preset (default, demo, tiny) or a YAML corpus config file")
    b.add_argument("--cache", default=DEFAULT_CACHE,
                   help=f"cache directory (default: {DEFAULT_CACHE}; a sweep's runs use <store>/cache)")
    b.add_argument("--workers", type=int, default=None, help="synthesis processes (default: the config's, 0 = one per CPU)")
    b.add_argument("--quiet", action="store_true", help="no progress lines")
    s = sub.add_parser("stats", help="hours, units and text tokens per source, split and modality")
    s.add_argument("dir", help="a corpus directory, or a cache / store directory holding corpora")
    s.add_argument("--tokenizer", default=None,
                   help="local Hugging Face tokenizer to count text tokens with (default: the toolkit's default BPE)")
    s.add_argument("--json", default=None, metavar="OUT", help="also write the statistics as JSON to OUT")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "build":
        return _build(args)
    if args.data_command == "stats":
        return _stats(args)
    raise UserError("expected a subcommand: build CONFIG or stats DIR")


def _build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from scaling.data.config import resolve_corpus
    from scaling.data.corpus import build_corpus
    from scaling.data.records import Corpus

    config = resolve_corpus(args.config)
    if args.workers is not None:
        if args.workers < 0:
            raise UserError(f"--workers = {args.workers}: expected 0 (one per CPU) or a positive number")
        config = replace(config, workers=args.workers)
    path = build_corpus(config, Path(args.cache), progress=not args.quiet)
    corpus = Corpus(path)
    hours = sum(r.seconds for r in corpus.records) / 3600
    print(f"corpus {config.name!r}: {len(corpus.records):,} utterances, {hours:.2f} h of speech, k = {corpus.k} -> {path}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from scaling.data.records import Corpus
    from scaling.data.stats import corpus_stats, format_stats

    root = Path(args.dir)
    dirs = _corpus_dirs(root)
    tokenizer = _tokenizer(args.tokenizer, dirs)
    everything = {}
    for d in dirs:
        stats = corpus_stats(Corpus(d), tokenizer)
        everything[str(d)] = stats
        print(f"== {stats['summary']['name']} ({d})")
        print(format_stats(stats))
        print()
    if args.json:
        atomic_write_json(Path(args.json), everything, sort_keys=False)
    where = f"; JSON in {args.json}" if args.json else ""
    print(f"statistics of {len(dirs)} corpus director{'y' if len(dirs) == 1 else 'ies'} under {root}{where}")
    return 0


def _corpus_dirs(root: Path) -> list[Path]:
    if (root / "corpus.json").is_file():
        return [root]
    for base in (root / "corpus", root / "cache" / "corpus"):
        if base.is_dir():
            found = sorted(p for p in base.iterdir() if (p / "corpus.json").is_file())
            if found:
                return found
    raise UserError(f"{str(root)!r} holds no corpus; expected a corpus directory (with corpus.json), a cache or a store directory")


def _tokenizer(path: str | None, dirs: list[Path]):
    """The tokenizer to count text tokens with: ``path``, else the default BPE, cached beside the
    corpora (in ``<cache>/tokenizer``) or in ``<corpus>/.stats-cache`` for a lone corpus."""
    from scaling.data.vocab import load_tokenizer

    if path:
        return load_tokenizer(path)
    from scaling.data.prepared import default_tokenizer

    cache_root = dirs[0].parent.parent if dirs[0].parent.name == "corpus" else dirs[0] / ".stats-cache"
    print(f"counting text tokens with the default byte-level BPE (cache {cache_root})", file=sys.stderr)
    return load_tokenizer(default_tokenizer(cache_root))
