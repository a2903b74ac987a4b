"""``textgrid`` and ``words_json`` sources: audio files with a word alignment file of the same stem.

- ``textgrid``: a Praat TextGrid (``<stem>.TextGrid``, beside the audio or in ``alignments``),
  read with praatio; the tier named ``tier`` (``words`` as the Montreal Forced Aligner writes
  it) gives the words (its non-empty intervals) and their times.
- ``words_json``: ``<stem>.json`` with Whisper-style word timestamps: a list of ``{word, start,
  end}``, or an object with ``words`` (and optionally ``text``, the transcript, checked against
  the words), or Whisper's output with ``segments`` that each hold ``words``.

Audio is any format soundfile reads (wav, flac, ogg, ...), at any sample rate (resampled to
16 kHz). The speaker is the audio file's directory name (the layout aligners and corpora use).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from scaling.data.sources import expand
from scaling.data.sources.items import Skipped, Utterance, check_alignment, check_words, load_audio
from scaling.data.sources.sharding import chunks, shard_size

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")


def plan(source) -> list[dict]:
    files = expand(source.path, f"source {source.name!r}", AUDIO_SUFFIXES)
    return chunks(files, shard_size(source))


def items(source, shard: dict) -> Iterator[Utterance | Skipped]:
    read = _textgrid if source.format == "textgrid" else _words_json
    for name in shard["files"]:
        audio_path = Path(name)
        try:
            words, times, transcript = read(source, audio_path)
            if not words:
                raise Skipped("empty transcript", str(audio_path))
            if transcript is not None:
                check_words(transcript, list(words))
            check_alignment(words, times, None)  # the audio's length is checked when it is read
        except Skipped as skip:
            yield skip
            continue
        yield Utterance(id=_id(source, audio_path), words=words, times=times, speaker=audio_path.parent.name,
                        audio=lambda p=audio_path: load_audio(p))


def _id(source, path: Path) -> str:
    return f"{source.name}/{path.parent.name}/{path.stem}"


def _companion(source, audio_path: Path, suffix: str) -> Path:
    where = Path(source.alignments) if source.alignments else audio_path.parent
    candidates = [where / (audio_path.stem + suffix), where / audio_path.parent.name / (audio_path.stem + suffix)]
    for c in candidates:
        if c.is_file():
            return c
    raise Skipped(f"missing {suffix.lstrip('.')} file", str(candidates[0]))


def _textgrid(source, audio_path: Path):
    from praatio import textgrid

    path = _companion(source, audio_path, ".TextGrid")
    try:
        grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except Exception as exc:  # praatio raises several types for a malformed file
        raise Skipped("unreadable alignment file", f"{path}: {type(exc).__name__}") from None
    if source.tier not in grid.tierNames:
        raise Skipped("no word tier in the TextGrid", f"{path}: tiers {', '.join(grid.tierNames)}; expected {source.tier!r}")
    entries = [e for e in grid.getTier(source.tier).entries if e.label.strip()]
    return tuple(e.label.strip() for e in entries), [(float(e.start), float(e.end)) for e in entries], None


def _words_json(source, audio_path: Path):
    path = _companion(source, audio_path, ".json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Skipped("unreadable alignment file", f"{path}: {type(exc).__name__}") from None
    transcript = None
    if isinstance(data, dict) and "segments" in data:
        words = [w for seg in data["segments"] for w in seg.get("words", [])]
        transcript = data.get("text")
    elif isinstance(data, dict):
        words, transcript = data.get("words", []), data.get("text")
    else:
        words = data
    try:
        pairs = [(str(w["word"]).strip(), float(w["start"]), float(w["end"])) for w in words]
    except (KeyError, TypeError, ValueError):
        raise Skipped("unreadable alignment file", f"{path}: expected word entries with word, start, end") from None
    pairs = [p for p in pairs if p[0]]
    return tuple(p[0] for p in pairs), [(p[1], p[2]) for p in pairs], transcript
