"""Real-format corpus fixtures written by the tests themselves: audio spoken by espeak-ng and
written with soundfile (22.05 kHz, so it is resampled), Praat TextGrids (praatio), Whisper-style
word JSON, a Lhotse CutSet manifest (lhotse), a Parquet table of units (pyarrow) and a text file,
each with a few bad items of the kinds the build must skip and count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

from scaling.data.espeak import SAMPLE_RATE, align_groups, speak
from scaling.data.wordnet import load_sentences

SENTENCES = [s for s in load_sentences() if len(s.split()) <= 9][:40]
VOICES = ("en-us", "en+f3")


def spoken(text: str, voice: str) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """(22.05 kHz audio, [(word, start_s, end_s)]): espeak-ng's word groups, a group of several
    words split evenly among them."""
    audio, events = speak(text, voice)
    words = text.split()
    out = []
    for first, last, start, end in align_groups(text, events, audio, SAMPLE_RATE):
        step = (end - start) / (last - first + 1)
        out += [(words[w], round(start + (w - first) * step, 4), round(start + (w - first + 1) * step, 4)) for w in range(first, last + 1)]
    return audio, out


def write_textgrids(root: Path, sentences: list[str]) -> dict:
    """``root/<voice>/<i>.wav`` + ``.TextGrid`` (tiers words, phones); one wav without a TextGrid."""
    from praatio import textgrid
    from praatio.utilities.constants import Interval

    for i, text in enumerate(sentences):
        voice = VOICES[i % 2]
        audio, words = spoken(text, voice)
        folder = root / voice
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{i:03d}.wav", audio, SAMPLE_RATE)
        duration = len(audio) / SAMPLE_RATE
        grid = textgrid.Textgrid()
        grid.addTier(textgrid.IntervalTier("words", [Interval(s, e, w) for w, s, e in words], 0, duration))
        grid.addTier(textgrid.IntervalTier("phones", [Interval(0, duration, "x")], 0, duration))
        grid.save(str(folder / f"{i:03d}.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    orphan = root / VOICES[0] / "orphan.wav"
    soundfile.write(orphan, np.zeros(SAMPLE_RATE // 2, np.float32) + 0.01, SAMPLE_RATE)
    return {"missing TextGrid file": 1}


def write_words_json(root: Path, sentences: list[str]) -> dict:
    """``root/<voice>/<i>.flac`` + ``.json`` (three layouts); plus a word ending before it starts,
    a word past the audio's end, and an unreadable audio file."""
    root.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(sentences):
        voice = VOICES[i % 2]
        audio, words = spoken(text, voice)
        folder = root / voice
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{i:03d}.flac", audio, SAMPLE_RATE)
        entries = [{"word": (" " if j else "") + w + ("," if j == 1 else ""), "start": s, "end": e} for j, (w, s, e) in enumerate(words)]
        layout = [entries, {"text": text, "words": entries}, {"text": text, "segments": [{"words": entries}]}][i % 3]
        (folder / f"{i:03d}.json").write_text(json.dumps(layout))
    audio, words = spoken("The dogs barked", VOICES[0])
    soundfile.write(root / "backwards.flac", audio, SAMPLE_RATE)
    (root / "backwards.json").write_text(json.dumps([{"word": w, "start": e, "end": s} for w, s, e in words]))
    soundfile.write(root / "past_end.flac", audio, SAMPLE_RATE)
    (root / "past_end.json").write_text(json.dumps([{"word": w, "start": s, "end": e + 5.0} for w, s, e in words]))
    (root / "garbage.flac").write_bytes(b"not audio at all" * 64)
    (root / "garbage.json").write_text(json.dumps([{"word": "hello", "start": 0.0, "end": 0.5}]))
    return {"word ends before it starts": 1, "word ends after the audio": 1, "unreadable audio": 1}


def write_lhotse(root: Path, sentences: list[str]) -> dict:
    """A CutSet manifest (``cuts.jsonl.gz``) of wav recordings with supervisions and word
    alignments; plus a malformed line, a cut whose alignment does not match its text, a cut whose
    audio file is missing, and a cut with an empty transcript."""
    import gzip

    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment
    from lhotse.supervision import AlignmentItem

    root.mkdir(parents=True, exist_ok=True)
    cuts = []

    def cut(i: int, text: str, audio, words, wav: Path, alignment_text=None):
        soundfile.write(wav, audio, SAMPLE_RATE)
        rec = Recording.from_file(str(wav), recording_id=f"rec{i}")
        ali = [AlignmentItem(w, s, round(e - s, 4)) for w, s, e in words]
        if alignment_text is not None:
            ali = [AlignmentItem(w, a.start, a.duration) for w, a in zip(alignment_text.split(), ali)]
        sup = SupervisionSegment(id=f"sup{i}", recording_id=rec.id, start=0.0, duration=rec.duration, text=text,
                                 speaker=VOICES[i % 2], alignment={"word": ali})
        return MonoCut(id=f"cut{i}", start=0.0, duration=rec.duration, channel=0, recording=rec, supervisions=[sup])

    for i, text in enumerate(sentences):
        audio, words = spoken(text, VOICES[i % 2])
        cuts.append(cut(i, text, audio, words, root / f"{i:03d}.wav"))
    audio, words = spoken("The dogs barked", VOICES[0])
    cuts.append(cut(900, "The dogs barked", audio, words, root / "mismatch.wav", alignment_text="The cats meowed"))
    missing = cut(901, "The dogs barked", audio, words, root / "gone.wav")
    (root / "gone.wav").unlink()
    cuts.append(missing)
    cuts.append(cut(902, "", audio, words, root / "empty.wav"))
    CutSet.from_cuts(cuts).to_file(str(root / "clean.jsonl.gz"))
    with gzip.open(root / "clean.jsonl.gz", "rt") as f:
        lines = f.read().splitlines()
    lines.insert(2, '{"id": "broken", "start": 0.0, "dura')
    with gzip.open(root / "cuts.jsonl.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    (root / "clean.jsonl.gz").unlink()
    return {"malformed manifest line": 1, "alignment words do not match the transcript": 1, "missing audio file": 1, "empty transcript": 1}


def write_units(path: Path, sentences: list[str], k: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """A Parquet table of synthetic spoken stories: per row frame-level unit ids (with repeats, so
    they collapse), the text, word times in frames, a speaker; plus a row with a unit id outside
    the codebook. Returns (skips, rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    rows = []
    for i, text in enumerate(sentences):
        words = text.split()
        frames, times = [], []
        for w in words:
            n = int(rng.integers(4, 9))
            times.append({"word": w, "start": len(frames), "end": len(frames) + n})
            frames += list(np.repeat(rng.integers(0, k, size=n // 2 + 1), 2)[:n])
        rows.append({"id": f"story{i}", "units": [int(u) for u in frames], "text": text, "words": times, "speaker": "tts"})
    rows.append({"id": "bad", "units": [1, 2, k + 3], "text": "bad units", "words": None, "speaker": "tts"})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return {"unit id outside the codebook": 1}, rows[:-1]


def write_text(path: Path, lines: list[str]) -> None:
    """One document per line (a blank line in between, which is not a document)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n")


def mixed_corpus(root: Path, k: int = 16, shard_size: int = 4) -> tuple[Path, dict]:
    """A corpus config naming one source of every file format (the speech ones real, the units
    stories synthetic); returns (config path, expected skips by source)."""
    skips = {
        "books": {},
        "ls": write_lhotse(root / "lhotse", SENTENCES[0:8]),
        "mfa": write_textgrids(root / "tg", SENTENCES[8:16]),
        "whisper": write_words_json(root / "wj", SENTENCES[16:24]),
        "stories": write_units(root / "units" / "stories.parquet", SENTENCES[24:40], k)[0],
    }
    write_text(root / "text" / "books.txt", load_sentences()[100:400])
    config = root / "mixed.yaml"
    config.write_text(f"""name: mixed
workers: 1
units: {{k: {k}, kmeans_frames: 1500}}
voices: [en-us, en+f3]
heldout_voices: [en-gb-scotland+m4]
sources:
  - {{name: books, format: text, path: text/books.txt, real: true}}
  - {{name: ls, format: lhotse, path: lhotse/cuts.jsonl.gz, real: true, shard_size: {shard_size}}}
  - {{name: mfa, format: textgrid, path: tg, real: true, shard_size: {shard_size}}}
  - {{name: whisper, format: words_json, path: wj, real: true, shard_size: {shard_size}}}
  - {{name: stories, format: units, path: units/stories.parquet, real: false, time_unit: frames, frame_s: 0.04, shard_size: 6}}
""")
    return config, skips
