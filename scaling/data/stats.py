"""Corpus statistics in the manner of SIMS Table 4: hours, units and text tokens per source,
split and modality.

Speech rows count utterances, audio hours and deduplicated units of each (source, split); text
rows count each split's distinct sentences and their tokens under a text tokenizer. The
interleaved row counts utterances with a usable word alignment (the others are skipped by the
interleaved stream, with the reasons in ``skipped``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from scaling.data.records import SPLITS, Corpus

TEXT_SOURCE = "wordnet"


def corpus_stats(corpus: Corpus, tokenizer=None) -> dict:
    """Statistics of ``corpus``; ``tokenizer`` (a Hugging Face tokenizer) counts text tokens,
    None leaves them out. Returns ``{"rows": [...], "summary": {...}}``; every row has source,
    split, modality, items, hours, tokens."""
    rows = []
    speech = defaultdict(lambda: [0, 0.0, 0, 0])  # utterances, seconds, units, aligned
    sentences: dict[str, dict[int, str]] = defaultdict(dict)
    for r in corpus.records:
        s = speech[(r.source, r.split)]
        s[0] += 1
        s[1] += r.seconds
        s[2] += r.n_units
        s[3] += r.groups is not None
        sentences[r.split][r.sentence] = r.text
    for (source, split), (n, seconds, units, aligned) in sorted(speech.items(), key=lambda kv: (kv[0][0], SPLITS.index(kv[0][1]))):
        rows.append({"source": source, "split": split, "modality": "speech", "items": n, "hours": seconds / 3600, "tokens": units})
        rows.append({"source": source, "split": split, "modality": "interleaved (aligned)", "items": aligned, "hours": None, "tokens": None})
    for split in SPLITS:
        texts = list(sentences[split].values())
        if texts:
            tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) if tokenizer is not None else None
            rows.append({"source": TEXT_SOURCE, "split": split, "modality": "text", "items": len(texts), "hours": None, "tokens": tokens})
    seconds = sum(r.seconds for r in corpus.records)
    units = sum(r.n_units for r in corpus.records)
    frames = int(corpus.all_durations.sum())
    summary = {
        "name": corpus.meta.get("name"), "utterances": len(corpus.records), "hours": seconds / 3600, "units": units,
        "units_per_second": units / seconds if seconds else 0.0, "frames_per_unit": frames / units if units else 0.0,
        "k": corpus.k, "codebook_used": int(len(np.unique(corpus.all_units))), "frame_s": corpus.frame_s,
        "voices": corpus.meta.get("voices"), "heldout_voices": corpus.meta.get("heldout_voices"),
        "skipped": {**corpus.meta.get("skipped", {}), **corpus.meta.get("skipped_alignment_on_read", {})},
        "build_seconds": corpus.meta.get("build_seconds", {}),
    }
    return {"rows": rows, "summary": summary}


def format_stats(stats: dict) -> str:
    """A fixed-width table of :func:`corpus_stats` plus summary lines."""
    header = ["source", "split", "modality", "items", "hours", "tokens"]
    body = [[r["source"], r["split"], r["modality"], f"{r['items']:,}", "" if r["hours"] is None else f"{r['hours']:.2f}",
             "" if r["tokens"] is None else f"{r['tokens']:,}"] for r in stats["rows"]]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    fmt = "  ".join(f"{{:{'<' if i < 3 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*b) for b in body]
    s = stats["summary"]
    lines.append("")
    lines.append(f"{s['utterances']:,} utterances, {s['hours']:.2f} h of speech, {s['units']:,} units "
                 f"({s['units_per_second']:.1f} units/s after dedup, {s['frames_per_unit']:.2f} frames of {s['frame_s'] * 1000:.0f} ms per unit), "
                 f"k = {s['k']} ({s['codebook_used']} used)")
    lines.append(f"voices: {', '.join(s['voices'] or [])}; held out (test only): {', '.join(s['heldout_voices'] or [])}")
    skipped = ", ".join(f"{k}: {v}" for k, v in s["skipped"].items()) or "none"
    lines.append(f"skipped: {skipped}")
    if s["build_seconds"]:
        lines.append("build seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in s["build_seconds"].items()))
    return "\n".join(lines)
