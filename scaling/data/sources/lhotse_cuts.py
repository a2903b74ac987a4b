"""``lhotse`` sources: Lhotse CutSet manifests (``.jsonl`` / ``.jsonl.gz``), read with lhotse.

One manifest line is one cut. A shard reads lines ``[start, stop)`` of one manifest; each line is
turned into a cut by lhotse (``lhotse.serialization.deserialize_item``), whose audio lhotse loads
(with the cut's offset into its recording) and resamples to 16 kHz. The transcript is the text of
the cut's supervisions in order; word times are their ``alignment["word"]`` items, which lhotse
keeps in the recording's time frame, so they are shifted by the cut's start. A cut whose
supervisions have no word alignment serves the speech stream only. Split large manifests into
pieces (``lhotse.CutSet.split_lazy``) and name them with a glob: a shard skips the lines before it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from scaling.data.sources import expand
from scaling.data.sources.items import Skipped, Utterance, check_alignment, check_words
from scaling.data.sources.sharding import ranges, shard_size


def _lines(path: Path):
    opener = gzip.open if str(path).endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8")


def plan(source) -> list[dict]:
    files = expand(source.path, f"source {source.name!r}", (".jsonl", ".jsonl.gz"))
    counts = []
    for f in files:
        with _lines(f) as lines:
            counts.append((f, sum(1 for line in lines if line.strip())))
    return ranges(counts, shard_size(source))


def items(source, shard: dict) -> Iterator[Utterance | Skipped]:
    from lhotse.serialization import deserialize_item

    path = Path(shard["file"])
    with _lines(path) as lines:
        n = 0
        for line in lines:
            if not line.strip():
                continue
            if n >= shard["stop"]:
                break
            n += 1
            if n <= shard["start"]:
                continue
            try:
                cut = deserialize_item(json.loads(line))
            except Exception as exc:  # lhotse raises many types for a malformed cut
                yield Skipped("malformed manifest line", f"{path}:{n}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                continue
            try:
                yield _utterance(cut, source)
            except Skipped as skip:
                yield skip


def _utterance(cut, source) -> Utterance:
    sups = sorted(cut.supervisions, key=lambda s: s.start)
    text = " ".join((s.text or "").strip() for s in sups).strip()
    if not text:
        raise Skipped("empty transcript", cut.id)
    words, times = tuple(text.split()), None
    aligned = [a for s in sups for a in ((s.alignment or {}).get("word") or [])]
    if aligned and all((s.alignment or {}).get("word") for s in sups):
        aligned = [a for a in aligned if a.symbol.strip() and a.symbol not in ("<eps>", "<sil>", "sil", "sp")]
        check_words(text, [a.symbol for a in aligned])
        words = tuple(a.symbol.strip() for a in aligned)
        times = [(round(a.start - cut.start, 6), round(a.start - cut.start + a.duration, 6)) for a in aligned]
        check_alignment(words, times, float(cut.duration))
    speaker = next((s.speaker for s in sups if s.speaker), "") or ""

    def audio() -> np.ndarray:
        try:
            samples = cut.resample(16000).load_audio()
        except Exception as exc:  # lhotse wraps backend errors of every kind
            reason = "missing audio file" if isinstance(exc, FileNotFoundError) or "No such file" in str(exc) else "unreadable audio"
            raise Skipped(reason, f"{cut.id}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        samples = np.asarray(samples, dtype=np.float32)
        return samples.mean(axis=0) if samples.ndim == 2 else samples

    return Utterance(id=cut.id, words=words, times=times, speaker=speaker, audio=audio)
