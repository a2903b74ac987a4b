"""``scaling data build CONFIG`` and ``scaling data stats DIR``.

build: prepare a corpus (a preset name such as ``default``, ``demo``, ``tiny``, or a YAML corpus
config) once into the content-addressed cache: every source's shards (units for speech, then
token shards) for each requested mode, in several processes here or as a SLURM array
(``--executor slurm``, one task per shard), then one manifest per prepared set. Runs that name
the same corpus, mode and vocabulary read those shards. Resumable: finished shards are skipped.
stats: tokens per source, stream and split (real or synthetic), skipped items by reason, and
requested against realised token shares of a prepared set (or of every one under a cache or
store); for a corpus directory, hours, units and text tokens (SIMS Table 4 style).

Imports nothing heavy at module level (the CLI imports every command to build its parser).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling.atomic import atomic_write_json
from scaling.errors import UserError

DEFAULT_CACHE = "results/cache"
MODES = ("text", "interleaved", "speech")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="{build,stats}")
    b = sub.add_parser("build", help="prepare a corpus once into token shards (units, interleaving, tokens) in the cache")
    b.add_argument("config", help="corpus preset (default, demo, tiny) or a YAML corpus config file")
    b.add_argument("--cache", default=DEFAULT_CACHE,
                   help=f"cache directory (default: {DEFAULT_CACHE}; a sweep's runs use <store>/cache)")
    b.add_argument("--workers", type=int, default=None, help="build processes (default: the config's, 0 = one per CPU)")
    b.add_argument("--modes", default=",".join(MODES),
                   help="comma-separated data modes to prepare (default: text,interleaved,speech)")
    b.add_argument("--tokenizer", default=None,
                   help="local Hugging Face tokenizer to tokenise text with (default: the config's tokenizer, else the toolkit's BPE)")
    b.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: worker processes here; slurm: one array task per unbuilt shard, then rerun to write the manifests")
    for flag, kind, text in (("--partition", str, "SLURM partition"), ("--account", str, "SLURM account"),
                             ("--time", int, "minutes per task (default 240)"), ("--cpus-per-task", int, "CPUs per task (default 8)"),
                             ("--gpus-per-task", int, "GPUs per task, for HuBERT (default 0)"), ("--mem-gb", int, "memory per task in GB (default 32)"),
                             ("--array-parallelism", int, "tasks running at once (default 64)")):
        b.add_argument(flag, type=kind, default=None, help=text + " (--executor slurm)")
    b.add_argument("--quiet", action="store_true", help="no progress lines")
    s = sub.add_parser("stats", help="tokens per source, stream and split; skipped items; requested vs realised token shares")
    s.add_argument("dir", help="a prepared set (with manifest.json), a corpus directory, or a cache / store directory")
    s.add_argument("--mix", default=None, metavar="KEY=SHARE,...",
                   help="token shares to report against (as data.mix_tokens), e.g. text=0.3,interleaved=0.4,speech=0.3")
    s.add_argument("--tokenizer", default=None,
                   help="corpus directories: local Hugging Face tokenizer to count text tokens with (default: the toolkit's default BPE)")
    s.add_argument("--json", default=None, metavar="OUT", help="also write the statistics as JSON to OUT")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "build":
        return _build(args)
    if args.data_command == "stats":
        return _stats(args)
    raise UserError("expected a subcommand: build CONFIG or stats DIR")


def _build(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from scaling.data.build import jobs_of, prepare_jobs
    from scaling.data.config import resolve_corpus
    from scaling.data.prepared import MODE_STREAMS, interleave_params, run_vocabulary
    from scaling.data.stats import format_prepared_stats, prepared_stats
    from scaling.spec import DataSpec

    config = resolve_corpus(args.config)
    if args.workers is not None:
        if args.workers < 0:
            raise UserError(f"--workers = {args.workers}: expected 0 (one per CPU) or a positive number")
        config = replace(config, workers=args.workers)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise UserError(f"--modes {args.modes!r}: unknown mode {m!r}; expected some of {', '.join(MODES)}")
    from scaling.data.build import corpus_key, effective_sources, source_streams

    corpus_key(config)  # reads the sentences file: a bad one is refused before anything is written
    modes = [m for m in modes if any(source_streams(s, MODE_STREAMS[m]) for s in effective_sources(config))]
    cache = Path(args.cache)
    tokenizer = args.tokenizer or config.tokenizer or None
    progress = not args.quiet
    sets = []
    for mode in modes:
        vocab = run_vocabulary(cache, mode, config.units.k, tokenizer if mode != "speech" else None, config.text_vocab)
        jobs = jobs_of(config, cache, vocab.dir, MODE_STREAMS[mode], interleave_params(DataSpec(), config), progress)
        sets.append((mode, jobs))
    if args.executor == "slurm":
        return _submit(args, config, sets, cache)
    for mode, jobs in sets:
        directory = prepare_jobs(jobs, progress)
        from scaling.data.reader import read_manifest

        print(f"== corpus {config.name!r}, {mode} mode -> {directory}")
        print(format_prepared_stats(prepared_stats(read_manifest(directory), mode)))
        print()
    print(f"prepared corpus {config.name!r} for {', '.join(modes)} in {cache}")
    return 0


def _submit(args: argparse.Namespace, config, sets: list, cache: Path) -> int:
    """Submit one SLURM array task per shard that some mode still needs."""
    from scaling.data.build import built_shard
    from scaling.data.slurm import submit_shards

    tasks: dict[tuple[int, int], list] = {}
    for _, jobs in sets:
        for job in jobs:
            if built_shard(job) is None:
                tasks.setdefault((job.source_index, job.shard_index), []).append(job)
    if not tasks:
        print(f"every shard of corpus {config.name!r} is built; run `scaling data build {args.config} --cache {cache} --modes {args.modes}` "
              "(without --executor slurm) to write the manifests")
        return 0
    options = {k: v for k, v in (("partition", args.partition), ("account", args.account), ("time_min", args.time),
                                 ("cpus_per_task", args.cpus_per_task), ("gpus_per_task", args.gpus_per_task),
                                 ("mem_gb", args.mem_gb), ("array_parallelism", args.array_parallelism)) if v is not None}
    job_id = submit_shards(list(tasks.values()), cache / "slurm" / "data", **options)
    print(f"submitted SLURM array {job_id}: {len(tasks)} shard task(s) of corpus {config.name!r} (logs in {cache / 'slurm' / 'data'}); "
          f"when it has finished, run `scaling data build {args.config} --cache {cache} --modes {args.modes}` to write the manifests")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from scaling.data.records import Corpus
    from scaling.data.stats import corpus_stats, format_stats

    root = Path(args.dir)
    prepared = _prepared_dirs(root)
    if prepared:
        return _prepared_stats(args, root, prepared)
    dirs = _corpus_dirs(root)
    tokenizer = _tokenizer(args.tokenizer, dirs)
    everything = {}
    for d in dirs:
        stats = corpus_stats(Corpus(d), tokenizer)
        everything[str(d)] = stats
        print(f"== {stats['summary']['name']} ({d})")
        print(format_stats(stats))
        print()
    return _report_stats(args, everything, f"{len(dirs)} corpus director{'y' if len(dirs) == 1 else 'ies'}", root)


def _prepared_dirs(root: Path) -> list[Path]:
    from scaling.data.reader import MANIFEST

    if (root / MANIFEST).is_file():
        return [root]
    for base in (root / "prepared", root / "cache" / "prepared"):
        if base.is_dir():
            return sorted(p for p in base.iterdir() if (p / MANIFEST).is_file())
    return []


def _parse_mix(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise UserError(f"--mix {text!r}: expected KEY=SHARE pairs such as text=0.3,interleaved=0.4,speech=0.3") from None
        if not sep or not key.strip():
            raise UserError(f"--mix {text!r}: expected KEY=SHARE pairs such as text=0.3,interleaved=0.4,speech=0.3")
    if abs(sum(out.values()) - 1) > 1e-6:
        raise UserError(f"--mix {text!r}: shares sum to {sum(out.values()):g}; expected 1")
    return out


def _prepared_stats(args: argparse.Namespace, root: Path, dirs: list[Path]) -> int:
    from scaling.data.reader import read_manifest
    from scaling.data.stats import format_prepared_stats, prepared_stats

    mix = _parse_mix(args.mix)
    everything = {}
    for d in dirs:
        manifest = read_manifest(d)
        mode = manifest["streams"][0] if len(manifest["streams"]) == 1 else "interleaved"  # a prepared set serves one mode
        stats = prepared_stats(manifest, mode, mix)
        everything[str(d)] = stats
        print(f"== {manifest['corpus']}, {mode} mode ({d})")
        print(format_prepared_stats(stats))
        print()
    return _report_stats(args, everything, f"{len(everything)} prepared set(s)", root)


def _report_stats(args: argparse.Namespace, everything: dict, what: str, root: Path) -> int:
    """Write the statistics to ``--json`` (if given) and say what was described and where."""
    if args.json:
        atomic_write_json(Path(args.json), everything, sort_keys=False)
    where = f"; JSON in {args.json}" if args.json else ""
    print(f"statistics of {what} under {root}{where}")
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
