"""The data path at scale: preparation throughput, a run's RSS and start-up on a large corpus
against the demo corpus, random-access window throughput, and the old in-memory path.

    python benchmarks/bench_data_scale.py [--root /tmp/scaling-bench-data] [--tokens 3e8] [--context 2048]

1. Generates (once, under ``--root``, outside the repository) a corpus of at least ``--tokens``
   prepared tokens: Parquet files of synthetic spoken stories (frame-level units with repeats,
   transcript, word times in frames: a ``units`` source) and plain-text files (a ``text``
   source), and prepares it for an interleaved run (:func:`scaling.data.build.prepare`) with one
   process per CPU: tokens per second per core (wall clock × processes, and per CPU-second).
2. Starts a training run in a fresh process on that corpus and on the demo corpus (prepared
   sets already built): peak RSS and seconds from opening the data to the end of the first
   optimizer step (imports excluded, reported apart). Targets: RSS within 1.5×, start-up < 5 s.
3. Reads random windows of ``--context`` + 1 tokens on one core. Target: ≥ 20M tokens/s.
4. Runs the previous, in-memory data path (the code at ``--old-ref``, extracted with git
   archive) on espeak-format corpora of growing size planted in its cache, until it passes
   ``--old-max-rss-gb`` or ``--old-max-s``: its RSS and time to the first window.

Prints the figures side by side. Load average is printed too: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS_PER_FILE = 20_000
LINES_PER_FILE = 50_000


def words_vocabulary() -> list[str]:
    from scaling.data.wordnet import load_sentences

    return sorted({w.strip(",.?!").lower() for s in load_sentences() for w in s.split()} - {""})


def generate(root: Path, tokens: float, k: int = 500, seed: int = 0) -> Path:
    """Write the corpus (about 30 % of its tokens from units, 70 % from text) and its config."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = root / "corpus.yaml"
    if config.is_file():
        return config
    rng = np.random.default_rng(seed)
    vocab = np.array(words_vocabulary())
    (root / "units").mkdir(parents=True, exist_ok=True)
    (root / "text").mkdir(parents=True, exist_ok=True)
    # a story utterance: 20 words of 4-12 frames each; units repeat in runs of 2, so ~ half the
    # frames survive deduplication: ~90 speech tokens and ~70 interleaved tokens per utterance
    per_utterance = 160
    n_utt = int(0.3 * tokens / per_utterance) + 1
    for f in range(0, n_utt, ROWS_PER_FILE):
        n = min(ROWS_PER_FILE, n_utt - f)
        n_words = 20
        frames_per_word = rng.integers(4, 13, size=(n, n_words))
        ends = np.cumsum(frames_per_word, axis=1)
        starts = ends - frames_per_word
        total = ends[:, -1]
        offsets = np.concatenate([[0], np.cumsum(total)]).astype(np.int32)
        runs = rng.integers(0, k, size=(int(offsets[-1]) + 1) // 2 + 1)
        units = np.repeat(runs, 2)[: offsets[-1]].astype(np.int32)
        words = vocab[rng.integers(0, len(vocab), size=(n, n_words))]
        texts = [" ".join(w) for w in words.tolist()]
        word_offsets = np.arange(0, (n + 1) * n_words, n_words, dtype=np.int32)
        structs = pa.StructArray.from_arrays([pa.array(words.reshape(-1)), pa.array(starts.reshape(-1)), pa.array(ends.reshape(-1))],
                                             names=["word", "start", "end"])
        table = pa.table({"units": pa.ListArray.from_arrays(pa.array(offsets), pa.array(units)), "text": pa.array(texts),
                          "words": pa.ListArray.from_arrays(pa.array(word_offsets), structs),
                          "speaker": pa.array([f"tts{i % 7}" for i in range(n)])})
        pq.write_table(table, root / "units" / f"stories-{f // ROWS_PER_FILE:04d}.parquet")
        print(f"  generated {min(f + n, n_utt):,} / {n_utt:,} story utterances", file=sys.stderr, flush=True)
    n_lines = int(0.7 * tokens / 310) + 1  # a line: 90 rare words, about 310 tokens of the default BPE
    for f in range(0, n_lines, LINES_PER_FILE):
        n = min(LINES_PER_FILE, n_lines - f)
        words = vocab[rng.integers(0, len(vocab), size=(n, 90))].tolist()
        (root / "text" / f"books-{f // LINES_PER_FILE:04d}.txt").write_text("\n".join(" ".join(w) for w in words) + "\n")
    config.write_text(textwrap.dedent(f"""\
        name: bench-scale
        units: {{k: {k}}}
        sources:
          - {{name: books, format: text, path: text/*.txt, real: true, shard_size: {LINES_PER_FILE}}}
          - {{name: stories, format: units, path: units/*.parquet, real: false, time_unit: frames, frame_s: 0.04}}
        """))
    return config


def prepare_corpus(config: Path, cache: Path, context: int, workers: int) -> dict:
    from scaling.data.build import prepare
    from scaling.data.config import resolve_corpus
    from scaling.data.prepared import MODE_STREAMS, interleave_params, run_vocabulary
    from scaling.data.reader import read_manifest
    from scaling.spec import DataSpec

    cfg = resolve_corpus(str(config))
    vocab = run_vocabulary(cache, "interleaved", cfg.units.k, None)
    measured = cache / "preparation.json"
    if measured.is_file():  # already prepared: report the measurement taken when it was built
        return json.loads(measured.read_text())
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    directory = prepare(cfg, cache, vocab.dir, MODE_STREAMS["interleaved"], interleave_params(DataSpec(), cfg), workers=workers)
    wall = time.perf_counter() - t0
    manifest = read_manifest(directory)
    tokens = sum(c["tokens"] for streams in manifest["tokens"].values() for splits in streams.values() for c in splits.values())
    disk = sum(p.stat().st_size for kind in ("tokens", "units") for p in (cache / kind).rglob("*") if p.is_file())
    result = {"tokens": tokens, "wall_s": wall, "workers": workers, "dir": str(directory), "disk_bytes": disk,
              "shards": len(manifest["shards"]), "load": [load, os.getloadavg()[0]]}
    measured.write_text(json.dumps(result))
    return result


START_SCRIPT = r"""
import json, resource, sys, time
t = time.perf_counter()
import torch
from scaling.data import prepare_data
from scaling.models import resolve_model
from scaling.models.build import build_model
from scaling.spec import DataSpec, ModelSpec, RunSpec, TrainSpec
from scaling.store import Store
from scaling.train.batches import global_windows
from scaling.train.loop import Trainer
torch.set_num_threads(1)
imports = time.perf_counter() - t
corpus, cache, store, context = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
spec = RunSpec(model=resolve_model(ModelSpec(family="llama", size="40k")), data=DataSpec(mode="interleaved", corpus=corpus, context=context),
               train=TrainSpec(tokens=10 * 4 * context, batch_size=4, eval_points=1, val_windows=4)).validate()
prep = prepare_data(spec.data, cache, seed=0, progress=False)
opened = time.perf_counter() - t0
model = build_model(spec.model, prep.vocab_size, context, seed=0, pad_id=prep.pad_id)
trainer = Trainer(spec=spec, run=Store(store).register(spec), prep=prep, model=model)
global_windows(prep, 0, spec.train.batch_size)
batch = time.perf_counter() - t0
trainer.train_step()
first = time.perf_counter() - t0
print(json.dumps({"imports_s": imports, "open_s": opened, "first_batch_s": batch, "first_step_s": first, "step_s": first - batch,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "windows": prep.n_train_windows()}))
"""


def start_up(corpus: str, cache: Path, store: Path, context: int) -> dict:
    out = subprocess.run([sys.executable, "-c", START_SCRIPT, corpus, str(cache), str(store), str(context)], capture_output=True,
                         text=True, cwd=REPO, env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO)))
    if out.returncode != 0:
        raise SystemExit(f"start-up run on {corpus} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def random_access(config: Path, cache: Path, context: int, n: int = 20_000) -> dict:
    import numpy as np

    from scaling.data import prepare_data
    from scaling.spec import DataSpec

    prep = prepare_data(DataSpec(mode="interleaved", corpus=str(config), context=context, resample_interleave=False), cache, seed=0,
                        progress=False)
    idx = np.random.default_rng(1).integers(0, 10 * prep.n_train_windows(), size=n).tolist()
    for i in idx:  # a first pass brings the pages into the page cache: what follows measures the reader
        prep.train_window(i)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in idx:
        prep.train_window(i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"windows": n, "tokens_per_s": n * (context + 1) / wall, "tokens_per_cpu_s": n * (context + 1) / cpu,
            "us_per_window": wall / n * 1e6}


OLD_SCRIPT = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
root, n_utt, context, plant = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[5] == "plant"
from scaling.data.cache import content_key
from scaling.data.config import CorpusConfig, UnitConfig, corpus_recipe, corpus_sentences, resolve_corpus
from scaling.data.corpus import _codebook_recipe, plan_utterances
from scaling.data.espeak import synthesis_fingerprint
from scaling.data.records import UtteranceRecord, write_corpus
from scaling.data.units import make_extractor
rng = np.random.default_rng(0)
vocab = np.array(sys.argv[4].split(","))
words = vocab[rng.integers(0, len(vocab), size=(n_utt, 20))].tolist()
(root / "sentences.txt").write_text("\n".join(f"{' '.join(w)} {i}" for i, w in enumerate(words)) + "\n")
(root / "old.yaml").write_text(f"name: old\nsentences: {root / 'sentences.txt'}\nvoices: [en-us]\nheldout_voices: []\nunits: {{k: 500}}\n")
config = resolve_corpus(str(root / "old.yaml"))
sentences = corpus_sentences(config)
plan = plan_utterances(config, sentences)
recipe = {"corpus": corpus_recipe(config, sentences), "codebook": content_key(_codebook_recipe(config, plan, make_extractor(config.units).source())),
          "synthesis": synthesis_fingerprint()}
target = root / "cache" / "corpus" / content_key(recipe)
if not target.is_dir():
    records, units, durations, offset = [], [], [], 0
    for p in plan:
        n_words = len(p.text.split())
        frames = rng.integers(4, 13, size=n_words)
        ends = np.cumsum(frames) * 0.04
        u = rng.integers(0, 500, size=int(frames.sum()) // 2 + 1)
        groups = tuple((i, i, round(float(e - f * 0.04), 4), round(float(e), 4)) for i, (f, e) in enumerate(zip(frames, ends)))
        records.append(UtteranceRecord(p.id, p.sentence, tuple(p.text.split()), groups, p.voice, "espeak", p.split, offset, len(u), float(ends[-1])))
        units.append(u); durations.append(np.full(len(u), 2)); offset += len(u)
    target.mkdir(parents=True)
    write_corpus(target, records, np.concatenate(units), np.concatenate(durations), {"name": "old", "k": 500, "frame_s": 0.04,
                 "sources": ["espeak"], "voices": ["en-us"], "heldout_voices": [], "skipped": {}})
if plant:
    sys.exit(0)
from scaling.data import prepare_data
from scaling.spec import DataSpec
t0 = time.perf_counter()
prep = prepare_data(DataSpec(mode="interleaved", corpus=str(root / "old.yaml"), context=context), root / "cache", seed=0, progress=False)
prep.train_window(0)
first = time.perf_counter() - t0
print(json.dumps({"first_window_s": first, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tokens": prep.n_train_windows() * context}))
"""


def old_path(ref: str, root: Path, context: int, sizes: list[int], max_rss_gb: float, max_s: float) -> list[dict]:
    """The previous in-memory path at growing corpus sizes (utterances), until a limit is passed."""
    code = root / f"old-{ref}"
    if not (code / "scaling").is_dir():
        code.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", ref, "scaling"], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    import shutil

    vocab = ",".join(words_vocabulary()[:3000])
    results = []
    for n in sizes:
        where = root / f"old-corpus-{n}"
        where.mkdir(parents=True, exist_ok=True)
        row: dict = {"utterances": n}
        # plant the corpus (its own process), then start cold (no memoised tokens) and warm (as a sweep's second run)
        for phase in ("plant", "cold", "warm"):
            if phase == "cold":
                shutil.rmtree(where / "cache" / "tokens", ignore_errors=True)
            try:
                out = subprocess.run([sys.executable, "-c", OLD_SCRIPT, str(where), str(n), str(context), vocab, phase], capture_output=True,
                                     text=True, cwd=root, env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(code)), timeout=max_s * 3)
            except subprocess.TimeoutExpired:
                row["failed"] = f"{phase}: over {max_s * 3:.0f} s"
                break
            if out.returncode != 0:
                row["failed"] = f"{phase}: " + (out.stderr.strip().splitlines() or ["?"])[-1][:120]
                break
            if phase != "plant":
                row[phase] = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(row)
        print(f"  old path: {row}", file=sys.stderr, flush=True)
        if "failed" in row or row["cold"]["rss_mb"] > max_rss_gb * 1024 or row["cold"]["first_window_s"] > max_s:
            break
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/tmp/scaling-bench-data", help="where the generated corpus and caches go (not the repository)")
    ap.add_argument("--tokens", type=float, default=3e8, help="prepared tokens of the generated corpus (at least)")
    ap.add_argument("--context", type=int, default=2048, help="tokens per window (SIMS: 2048)")
    ap.add_argument("--workers", type=int, default=0, help="preparation processes (0 = one per CPU)")
    ap.add_argument("--demo-cache", default=str(REPO / "results" / "demo" / "cache"),
                    help="cache holding (or to hold) the demo corpus (default: the demo store's, as `make demo` left it)")
    ap.add_argument("--old-ref", default="e0e51f7", help="git revision of the previous, in-memory data path")
    ap.add_argument("--old-sizes", default="10000,30000,60000", help="utterances of the old path's corpora (about 75 tokens each)")
    ap.add_argument("--old-max-rss-gb", type=float, default=4.0, help="stop growing the old path's corpus past this RSS")
    ap.add_argument("--old-max-s", type=float, default=300.0, help="... or past this many seconds to the first window")
    args = ap.parse_args()

    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    workers = args.workers or os.cpu_count() or 1
    print(f"load average before: {os.getloadavg()}", flush=True)
    print("generating the corpus ...", file=sys.stderr, flush=True)
    config = generate(root, args.tokens)
    prep = prepare_corpus(config, root / "cache", args.context, workers)
    demo_cache = Path(args.demo_cache)
    from scaling.data import prepare_data
    from scaling.spec import DataSpec

    demo_prep = prepare_data(DataSpec(mode="interleaved", corpus="demo", context=args.context), demo_cache, seed=0)
    demo_tokens = sum(c["tokens"] for streams in demo_prep.manifest["tokens"].values() for splits in streams.values() for c in splits.values())
    for _ in range(2):  # the first round also warms the page cache for the libraries: report the second
        big = start_up(str(config), root / "cache", root / "store", args.context)
        small = start_up("demo", demo_cache, root / "store", args.context)
    access = random_access(config, root / "cache", args.context)
    old = old_path(args.old_ref, root, args.context, [int(x) for x in args.old_sizes.split(",")], args.old_max_rss_gb, args.old_max_s)

    print()
    print(f"corpus: {prep['tokens']:,} prepared tokens in {prep['shards']} shards ({prep['disk_bytes'] / 1e9:.2f} GB of units + token shards)")
    print(f"preparation: {prep['wall_s']:.0f} s wall with {prep['workers']} processes = {prep['tokens'] / prep['wall_s'] / prep['workers']:,.0f} "
          f"tokens/s/core (wall clock, load average {prep['load'][0]:.1f} -> {prep['load'][1]:.1f} when measured: on a shared machine, a lower bound)")
    print()
    print(f"{'training run start-up':<28}{'demo corpus':>16}{'large corpus':>16}{'ratio':>8}")
    print(f"{'  prepared tokens':<28}{demo_tokens:>16,}{prep['tokens']:>16,}{prep['tokens'] / demo_tokens:>8.0f}")
    for key, label in (("rss_mb", "  peak RSS (MB)"), ("open_s", "  open data (s)"), ("first_batch_s", "  start-up: to 1st batch (s)"),
                       ("step_s", "  1st step's compute (s)"), ("first_step_s", "  open -> 1st step done (s)"), ("imports_s", "  imports (s)")):
        print(f"{label:<28}{small[key]:>16.2f}{big[key]:>16.2f}{big[key] / small[key]:>8.2f}")
    print(f"  targets: RSS within 1.5x ({'met' if big['rss_mb'] <= 1.5 * small['rss_mb'] else 'NOT met'}), start-up (data opened, "
          f"model built, first batch read) < 5 s ({'met' if max(big['first_batch_s'], small['first_batch_s']) < 5 else 'NOT met'}); "
          "the first step's compute is the model's, the same on both corpora")
    print()
    print(f"random access, one core: {access['tokens_per_s'] / 1e6:.1f}M tokens/s wall, {access['tokens_per_cpu_s'] / 1e6:.1f}M tokens per "
          f"CPU-second ({access['us_per_window']:.0f} µs per window of {args.context + 1} tokens; target >= 20M tokens/s: "
          f"{'met' if access['tokens_per_cpu_s'] >= 2e7 else 'NOT met'} per CPU-second)")
    print()
    print(f"{'old in-memory path (' + args.old_ref + ')':<34}{'tokens/epoch':>14}{'RSS cold (MB)':>15}{'1st window cold (s)':>21}"
          f"{'RSS warm (MB)':>15}{'1st window warm (s)':>21}")
    for r in old:
        if "failed" in r:
            print(f"  {r['utterances']:>10,} utterances        failed: {r['failed']}")
        else:
            c, w = r["cold"], r["warm"]
            print(f"  {r['utterances']:>10,} utterances{c['tokens']:>18,}{c['rss_mb']:>15.0f}{c['first_window_s']:>21.1f}"
                  f"{w['rss_mb']:>15.0f}{w['first_window_s']:>21.1f}")
    print("  (cold: a sweep's first run, which also tokenises the corpus; warm: later runs, tokens memoised on disk)")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
