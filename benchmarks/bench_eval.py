"""Evaluator speed: 1,000 pairs scored by a 1M-parameter model on this CPU (target: at most 30 s).

The pairs are StoryCloze-shaped in speech (S→S, the longest sequences the offline sets have):
a prompt of 25–45 units and endings of 20–40 units each (half a sentence of espeak speech is about
1.5 s, about 30 units at the offline extractor's ~20 units per second). The model is the toolkit's
llama at size ``1M`` (non-embedding) with an interleaved vocabulary (1024 text rows + 100 units +
2 markers), randomly initialised: speed does not depend on the weights.

    .venv/bin/python benchmarks/bench_eval.py [--pairs 1000] [--threads N] [--score sequence|continuation]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from scaling.data.vocab import Layout
from scaling.evaluation.format import Benchmark, Pair, Segment
from scaling.evaluation.scoring import evaluate
from scaling.evaluation.tokens import ModelVocab
from scaling.models import count_params, resolve_model
from scaling.models.build import build_model
from scaling.spec import ModelSpec

K = 100
TEXT_ROWS = 1024


def synthetic_benchmark(n: int, seed: int = 0) -> Benchmark:
    rng = np.random.default_rng(seed)
    seg = lambda lo, hi: Segment(units=rng.integers(0, K, int(rng.integers(lo, hi + 1))))  # noqa: E731
    pairs = tuple(Pair(f"p{i}", seg(20, 40), seg(20, 40), seg(25, 45)) for i in range(n))
    return Benchmark("synthetic", pairs, k=K, source="bench_eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000, help="pairs to score (default 1000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--score", default="sequence", choices=["sequence", "continuation"], help="scoring rule")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    layout = Layout("extended", TEXT_ROWS, K, TEXT_ROWS, TEXT_ROWS + K, TEXT_ROWS + K + 1, 1, 0, TEXT_ROWS + K + 2, " ")
    vocab = ModelVocab(layout, lambda texts: [[1] for _ in texts], "synthetic")
    spec = resolve_model(ModelSpec(family="llama", size="1M"))
    model = build_model(spec, layout.vocab_size, 256, seed=0, pad_id=layout.pad_id)
    counts = count_params(spec, layout.vocab_size, layout.vocab_size - TEXT_ROWS, 256)
    bench = synthetic_benchmark(args.pairs)
    tokens = sum(2 * (len(p.prompt.units) + 2) + len(p.correct.units) + len(p.wrong.units) for p in bench.pairs)
    evaluate(model, Benchmark("warmup", bench.pairs[:8], k=K), "s2s", vocab)
    start = time.perf_counter()
    result = evaluate(model, bench, "s2s", vocab, score=args.score)
    seconds = time.perf_counter() - start
    print(f"model: llama 1M ({counts.non_embedding:,} non-embedding, {counts.total:,} total parameters), "
          f"{torch.get_num_threads()} threads, score={args.score}")
    print(f"{result.n_pairs} pairs ({2 * result.n_pairs} sequences, {tokens:,} tokens): {seconds:.2f} s "
          f"= {result.n_pairs / seconds:.0f} pairs/s, {tokens / seconds:,.0f} tokens/s; target <= 30 s: "
          f"{'PASS' if seconds <= 30 * result.n_pairs / 1000 else 'FAIL'} (ratio to target {seconds / (30 * result.n_pairs / 1000):.2f})")


if __name__ == "__main__":
    main()
