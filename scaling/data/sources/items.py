"""What a source yields: utterances, text documents, or skipped items with their reason.

An :class:`Utterance` carries its transcript words, optional word times (seconds from the start of
its audio) and either a way to load its audio (16 kHz) or its units. :func:`check_alignment` and
:func:`load_audio` turn the bad-input cases into :class:`Skipped` reasons: the build skips such an
utterance, counts it by reason and goes on; only a source that yields nothing usable stops it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# tolerance when comparing word times with the audio's length: one 40 ms frame
_END_SLACK_S = 0.04


class Skipped(Exception):
    """An item that cannot be used; ``reason`` is one of a few stable phrases (counted)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Utterance:
    """One spoken utterance. ``times``: (start, end) seconds per word, or None without alignment;
    ``audio``: loads float32 16 kHz samples (raises Skipped); ``units``: unit ids per frame of
    ``frame_s`` seconds (pre-extracted sources); ``split``: None = the source's rule."""

    id: str
    words: tuple[str, ...]
    times: list[tuple[float, float]] | None
    speaker: str = ""
    split: str | None = None
    audio: Callable[[], np.ndarray] | None = None
    units: np.ndarray | None = None
    frame_s: float = 0.04

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class TextDoc:
    """One text document."""

    id: str
    text: str
    split: str | None = None


_NORM = re.compile(r"[^\w']+")


def normalise_word(word: str) -> str:
    """Lower case, punctuation dropped (apostrophes kept): how alignment words meet transcripts."""
    return _NORM.sub("", word.lower())


def check_words(transcript: str, aligned: list[str]) -> None:
    """Skipped unless the aligned words are the transcript's words (compared normalised)."""
    if " ".join(w.strip() for w in aligned) == " ".join(transcript.split()):
        return
    said = [w for w in (normalise_word(x) for x in transcript.split()) if w]
    got = [w for w in (normalise_word(x) for x in aligned) if w]
    if said != got:
        raise Skipped("alignment words do not match the transcript", f"{' '.join(got[:6])!r} vs {' '.join(said[:6])!r}")


def check_alignment(words: tuple[str, ...], times: list[tuple[float, float]], seconds: float | None) -> None:
    """Skipped for an empty transcript, a word whose end is not after its start, words out of
    order, or a word that ends after the audio (``seconds``; None = unknown)."""
    if not words:
        raise Skipped("empty transcript")
    if len(times) != len(words):
        raise Skipped("alignment words do not match the transcript", f"{len(times)} times for {len(words)} words")
    previous = -1.0
    for (start, end), word in zip(times, words):
        if not end > start:
            raise Skipped("word ends before it starts", f"{word!r} {start:.3f}-{end:.3f}s")
        if start < previous:
            raise Skipped("words out of order", f"{word!r} starts at {start:.3f}s")
        previous = start
        if seconds is not None and end > seconds + _END_SLACK_S:
            raise Skipped("word ends after the audio", f"{word!r} ends at {end:.3f}s, audio {seconds:.3f}s")


def load_audio(path: Path) -> np.ndarray:
    """Float32 mono samples of an audio file at 16 kHz (any rate, resampled); Skipped for a
    missing or unreadable file or a sample rate that cannot be read."""
    import soundfile

    from scaling.data.features import resample

    if not Path(path).is_file():
        raise Skipped("missing audio file", str(path))
    try:
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        raise Skipped("unreadable audio", f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not rate or rate <= 0:
        raise Skipped("unreadable sample rate", str(path))
    return resample(audio.mean(axis=1), int(rate))
