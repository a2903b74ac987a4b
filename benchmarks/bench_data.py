"""Time every stage of the data pipeline on a fresh cache: corpus build (plan, codebook, units,
write), vocabulary, and prepare_data (token shards) + one pass of windows per mode.

    python benchmarks/bench_data.py [--corpus default] [--context 128] [--workers 0]

Prints one line per stage (seconds) and the corpus statistics. Issue 4's target: building the
default corpus takes at most 2 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="default", help="corpus preset or YAML config")
    ap.add_argument("--context", type=int, default=128, help="tokens per training window")
    ap.add_argument("--workers", type=int, default=0, help="synthesis processes (0 = one per CPU)")
    args = ap.parse_args()

    from scaling.data import prepare_data
    from scaling.data.config import resolve_corpus
    from scaling.data.corpus import build_corpus
    from scaling.data.records import Corpus
    from scaling.data.stats import corpus_stats, format_stats
    from scaling.spec import DataSpec

    config = replace(resolve_corpus(args.corpus), workers=args.workers)
    print(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        t0, c0 = time.perf_counter(), _cpu()
        corpus_dir = build_corpus(config, cache, progress=False)
        total, cpu = time.perf_counter() - t0, _cpu() - c0
        corpus = Corpus(corpus_dir)
        stages = corpus.meta["build_seconds"]
        for stage in ("plan", "codebook", "units", "write"):
            print(f"corpus {config.name:<8} {stage:<10} {stages[stage]:7.1f} s")
        print(f"corpus {config.name:<8} {'total':<10} {total:7.1f} s   ({corpus.meta['workers']} workers, {corpus.meta['n_utterances']} utterances)")
        print(f"corpus {config.name:<8} {'cpu':<10} {cpu:7.1f} s   (this process + workers; / {os.cpu_count()} cores = "
              f"{cpu / (os.cpu_count() or 1):.1f} s: the wall time on an otherwise idle machine, roughly)")
        for mode in ("text", "speech", "interleaved"):
            spec = DataSpec(mode=mode, corpus=args.corpus, context=args.context)
            t0 = time.perf_counter()
            prep = prepare_data(spec, cache, seed=0, progress=False)
            t_prep = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = prep.n_train_windows()
            for i in range(n):
                prep.train_window(n + i)  # the second pass: windows read from the memory-mapped shards
            t_epoch = time.perf_counter() - t0
            print(f"prepare  {mode:<12} {t_prep:7.1f} s   pass of {n} windows x {args.context + 1} tokens: {t_epoch:5.2f} s")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print()
        print(format_stats(corpus_stats(corpus, prep.vocab.tokenizer)))


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
