"""Corpus statistics in the manner of SIMS Table 4: hours, units and text tokens per source,
split and modality; and of prepared sets: tokens per source, stream and split, real or
synthetic, skipped items, and requested against realised token shares.

Speech rows count utterances, audio hours and deduplicated units of each (source, split); text
rows count each split's distinct sentences and their tokens under a text tokenizer. The
interleaved row counts utterances with a usable word alignment (the others are skipped by the
interleaved stream, with the reasons in ``skipped``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from scaling.data.build import TEXT_SOURCE
from scaling.data.records import SPLITS, Corpus




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
    lines = _table(header, body).splitlines()
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


def prepared_stats(manifest: dict, mode: str = "interleaved", mix_tokens: dict | None = None,
                   mix_probs: tuple[float, float, float] | None = None) -> dict:
    """Statistics of a prepared set (its ``manifest.json``): per source, stream and split the
    documents, tokens and hours, real or synthetic; skipped items by reason; and for a run of
    ``mode`` mixing by ``mix_tokens`` (or stream probabilities ``mix_probs``, default
    :class:`scaling.spec.DataSpec`'s) the requested and realised token shares per pool, per
    real / synthetic and per stream, in the train and val splits."""
    from scaling.data.mixing import Blend, PoolInfo, resolve_shares
    from scaling.data.prepared import MODE_STREAMS
    from scaling.spec import DataSpec

    real = {s["name"]: s["real"] for s in manifest["sources"]}
    names = [s["name"] for s in manifest["sources"]]
    rows = []
    for source, streams in manifest["tokens"].items():
        for stream, splits in streams.items():
            for split in SPLITS:
                c = splits[split]
                if c["documents"]:
                    rows.append({"source": source, "real": real[source], "stream": stream, "split": split, "documents": c["documents"],
                                 "tokens": c["tokens"], "hours": manifest.get("hours", {}).get(source, {}).get(split)})
    if mix_probs is None and not mix_tokens and mode == "interleaved":
        mix_probs = DataSpec().mix
    mix = {}
    for split in ("train", "val"):
        pools = [PoolInfo(source, stream, s[split]["tokens"], s[split]["documents"])
                 for source, streams in manifest["tokens"].items() for stream, s in streams.items()
                 if stream in MODE_STREAMS[mode] and s[split]["tokens"] > 0]
        if not pools:
            continue
        requested = resolve_shares(pools, mix_tokens or {}, mix_probs if mode == "interleaved" else None, names)
        realised = Blend(requested).realised()
        mix[split] = [{"source": p.source, "stream": p.stream, "real": real[p.source], "tokens": p.tokens,
                       "requested": q, "realised": r} for p, q, r in zip(pools, requested, realised)]
    return {"rows": rows, "mix": mix, "skipped": manifest.get("skipped", {}), "corpus": manifest.get("corpus"), "mode": mode}


def format_prepared_stats(stats: dict) -> str:
    """A fixed-width rendering of :func:`prepared_stats`."""
    out = [_table(["source", "kind", "stream", "split", "documents", "tokens", "hours"],
                  [[r["source"], "real" if r["real"] else "synthetic", r["stream"], r["split"], f"{r['documents']:,}", f"{r['tokens']:,}",
                    "" if r["hours"] is None else f"{r['hours']:.2f}"] for r in stats["rows"]])]
    for split, pools in stats["mix"].items():
        out.append("")
        out.append(f"token shares of {stats['mode']} runs, {split} split (requested -> realised):")
        body = [[p["source"], "real" if p["real"] else "synthetic", p["stream"], f"{p['tokens']:,}", f"{p['requested']:.4f}", f"{p['realised']:.4f}"]
                for p in pools]
        for label, key in (("real", True), ("synthetic", False)):
            sel = [p for p in pools if p["real"] is key]
            if sel:
                body.append([f"all {label}", "", "", f"{sum(p['tokens'] for p in sel):,}", f"{sum(p['requested'] for p in sel):.4f}",
                             f"{sum(p['realised'] for p in sel):.4f}"])
        for stream in ("text", "interleaved", "speech"):
            sel = [p for p in pools if p["stream"] == stream]
            if sel:
                body.append([f"stream {stream}", "", "", f"{sum(p['tokens'] for p in sel):,}", f"{sum(p['requested'] for p in sel):.4f}",
                             f"{sum(p['realised'] for p in sel):.4f}"])
        out.append(_table(["pool", "kind", "stream", "tokens", "requested", "realised"], body))
    out.append("")
    skipped = [f"{source}: " + ", ".join(f"{reason} {n:,}" for reason, n in reasons.items())
               for source, reasons in stats["skipped"].items() if reasons]
    out.append("skipped: " + ("; ".join(skipped) if skipped else "none"))
    return "\n".join(out)


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    fmt = "  ".join(f"{{:{'<' if i < 3 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), fmt.format(*["-" * w for w in widths])] + [fmt.format(*b) for b in body])
