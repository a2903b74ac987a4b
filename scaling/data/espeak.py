"""Speech synthesis with word timings from espeak-ng, through ctypes.

The library and its data come from the ``espeakng-loader`` wheel, so nothing outside pip is needed.
espeak-ng reports an event of type ``espeakEVENT_WORD`` when it starts speaking a word, with the
word's character offset in the input and its ``audio_position`` in milliseconds. A word ends where
the next one begins; the last ends where the audio falls silent. espeak sometimes fuses a pair of
function words ("of the") into one event: the words without an event of their own join the
preceding word into one aligned group, with one (start, end) for the whole group.

One process holds one espeak-ng instance (its state is global); parallel synthesis uses worker
processes (see :mod:`scaling.data.corpus`).

Determinism: espeak-ng's waveform generator keeps state from one utterance to the next (a pitch
"flutter" phase, a roughness cycle counter, breath-noise resonators, an echo buffer), so the same
sentence comes out slightly differently depending on what was spoken before. The engine therefore
runs on a copy of the voice data (symlinks, made once in the temporary directory) whose variants
set ``flutter 0``, ``roughness 8`` (no roughness modulation) and ``breath 0``, reloads the voice
before every utterance (which clears the echo) and reseeds ``rand``. The same sentence and voice
then give the same samples in any process, whatever came before. Plain voices (no ``+variant``)
get the neutral variant ``+scaling``. Klatt variants (``+klatt``…) keep their own noise state.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from scaling.errors import UserError

SAMPLE_RATE = 22050  # espeak-ng's native output rate
_EVENT_WORD = 1
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1
_SILENCE = 1e-3  # amplitude (of full scale) below which trailing audio counts as silence
_STEADY = "\nflutter 0\nroughness 8\nbreath 0\n"  # appended to every voice variant (see module doc)
_NEUTRAL_VARIANT = "scaling"
_BUFFER_MS = 1000  # audio handed to the callback per call (fewer, larger chunks)


class SilentAudio(ValueError):
    """The synthesiser produced no audible sample."""


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Engine:
    """The process' espeak-ng instance."""

    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data = _steady_data_dir(Path(espeakng_loader.get_data_path()))
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(data.parent).encode(), _INITIALIZE_DONT_EXIT)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng initialisation failed (returned {rate}); data path {data}")
        self._libc = ctypes.CDLL(None)
        self._variants = data / "voices" / "!v"
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                          ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int]] = []
        self._callback = _CALLBACK(self._on_audio)
        self.lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, n, events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            if events[i].type == _EVENT_WORD:
                self._events.append((events[i].text_position, events[i].audio_position))
            i += 1
        return 0

    def set_voice(self, voice: str, rate: int) -> None:
        """Load ``voice`` afresh (clearing the generator's echo) and set the rate."""
        name = voice if "+" in voice else f"{voice}+{_NEUTRAL_VARIANT}"
        variant = name.split("+", 1)[1]
        if not (self._variants / variant).is_file() or self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise UserError(f"unknown espeak-ng voice {voice!r}; expected a voice such as 'en-us', 'en' or 'en-us+f3' (language[+variant])")
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self._libc.srand(0)

    def speak(self, text: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        self._chunks, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio.astype(np.float32) / 32768.0, self._events


_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def set_voice(voice: str, rate: int) -> None:
    """Select an espeak-ng voice (``language`` or ``language+variant``) and rate (words per
    minute); UserError for a voice espeak-ng does not know."""
    _engine().set_voice(voice, rate)


def synthesis_fingerprint() -> dict:
    """What determines the audio besides text, voice and rate: the espeak-ng wheel's version and
    the steadying patch (part of every corpus cache key)."""
    from importlib.metadata import version

    return {"espeakng_loader": version("espeakng-loader"), "steady": _STEADY.strip()}


def _steady_data_dir(src: Path) -> Path:
    """A copy of espeak-ng's data directory (symlinks) whose voice variants are made steady (see
    module doc). Built once per data directory, atomically, under the temporary directory."""
    key = hashlib.sha256(f"{src.resolve()}|{_STEADY}".encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"scaling-espeak-{key}" / "espeak-ng-data"
    if target.is_dir():
        return target
    build = Path(tempfile.mkdtemp(prefix=".scaling-espeak-", dir=tempfile.gettempdir()))
    data = build / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in src.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry.resolve())
    for entry in (src / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry.resolve())
    for entry in (src / "voices" / "!v").iterdir():
        (variants / entry.name).write_bytes(entry.read_bytes() + _STEADY.encode())
    (variants / _NEUTRAL_VARIANT).write_text(f"language variant\nname {_NEUTRAL_VARIANT}{_STEADY}")
    try:
        os.rename(build, target.parent)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(build, ignore_errors=True)
    return target


def speak(text: str, voice: str, rate: int = 175) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Speak ``text``: (float32 audio in [-1, 1] at :data:`SAMPLE_RATE` Hz, word events as
    ``(text_position, audio_position_ms)`` with 1-based character positions)."""
    engine = _engine()
    engine.set_voice(voice, rate)
    return engine.speak(text)


def align_groups(sentence: str, events: list[tuple[int, int]], audio: np.ndarray, sample_rate: int) -> tuple[tuple[int, int, float, float], ...]:
    """Word groups from word-start events ``(text_position (1-based chars), audio_position ms)``.

    Each event starts a group at the word containing its character; a group ends where the next
    starts, the last where the audio falls silent. Raises :class:`SilentAudio` for empty or silent
    audio, and ValueError for no event on the first word or a group whose end is not after its
    start."""
    loud = np.flatnonzero(np.abs(audio) > _SILENCE)
    if len(loud) == 0:
        raise SilentAudio("empty or silent audio")
    starts_char, pos = [], 0
    for word in sentence.split():
        pos = sentence.index(word, pos)
        starts_char.append(pos)
        pos += len(word)
    word_of_char = np.searchsorted(np.array(starts_char), np.array([e[0] - 1 for e in events], dtype=int), side="right") - 1
    firsts: dict[int, float] = {}
    for w, (_, ms) in zip(word_of_char.tolist(), events):
        if 0 <= w < len(starts_char) and w not in firsts:
            firsts[w] = ms / 1000.0
    if 0 not in firsts:
        raise ValueError("no word event for the first word")
    group_words = sorted(firsts)
    end_of_speech = (loud[-1] + 1) / sample_rate
    groups = []
    for g, w in enumerate(group_words):
        last = group_words[g + 1] - 1 if g + 1 < len(group_words) else len(starts_char) - 1
        end = firsts[group_words[g + 1]] if g + 1 < len(group_words) else end_of_speech
        groups.append((w, last, firsts[w], float(end)))
    check_groups(groups, len(starts_char))
    return tuple(groups)


def check_groups(groups, n_words: int) -> None:
    """ValueError unless ``groups`` cover words 0..n_words-1 in order, each with end > start and
    starts non-decreasing."""
    expect = 0
    prev_start = -1.0
    for first, last, start, end in groups:
        if first != expect or last < first:
            raise ValueError(f"word groups do not cover the words in order at word {expect}")
        if not end > start:
            raise ValueError(f"word group {first}-{last} ends at {end:.3f}s, not after its start {start:.3f}s")
        if start < prev_start:
            raise ValueError(f"word group {first}-{last} starts before the previous group")
        prev_start = start
        expect = last + 1
    if expect != n_words:
        raise ValueError(f"word groups cover {expect} of {n_words} words")
