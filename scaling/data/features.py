"""Offline speech features: 80-bin log-mel at 16 kHz, 4 frames stacked to 25 Hz.

Frames are 25 ms windows (400 samples, Hann) every 10 ms (160 samples) with a 512-point FFT and an
HTK mel filterbank from 0 to 8 kHz. Frame ``j`` starts at ``j * 10 ms``; stacked frame ``k`` holds
frames ``4k … 4k+3``, so it covers ``[k * 40 ms, (k+1) * 40 ms)``. The audio is zero-padded at the
end so that every sample falls in some frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft as scipy_fft

SAMPLE_RATE = 16_000
N_MELS = 80
WINDOW = 400
HOP = 160
N_FFT = 512
STACK = 4
#: seconds per stacked (25 Hz) frame
FRAME_S = HOP * STACK / SAMPLE_RATE


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    """``audio`` at ``rate`` Hz → float32 at 16 kHz (polyphase filter)."""
    if rate == SAMPLE_RATE:
        return audio.astype(np.float32)
    from scipy.signal import resample_poly

    up, down, taps = _resampling_filter(rate)
    return resample_poly(audio.astype(np.float32), up, down, window=taps).astype(np.float32)


@lru_cache(maxsize=4)
def _resampling_filter(rate: int) -> tuple[int, int, np.ndarray]:
    """(up, down, FIR taps) for ``rate`` → 16 kHz: scipy's default Kaiser (beta 5) anti-aliasing
    filter, designed once instead of on every call."""
    from math import gcd

    from scipy.signal import firwin

    g = gcd(SAMPLE_RATE, rate)
    up, down = SAMPLE_RATE // g, rate // g
    half = 10 * max(up, down)
    taps = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)).astype(np.float32)
    return up, down, taps


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return np.hanning(WINDOW).astype(np.float32)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """[N_FFT // 2 + 1, N_MELS] triangular HTK-mel filters, 0 Hz to 8 kHz."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(0.0), mel(SAMPLE_RATE / 2), N_MELS + 2))
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    return np.ascontiguousarray(np.maximum(0.0, np.minimum(up, down)).T, dtype=np.float32)


def log_mel_25hz(audio16k: np.ndarray) -> np.ndarray:
    """[ceil(n_frames / 4), 4 * 80] float32 stacked log-mel features of 16 kHz audio (see module doc)."""
    n_frames = max(1, -(-len(audio16k) // HOP))
    n_frames = -(-n_frames // STACK) * STACK
    padded = np.zeros((n_frames - 1) * HOP + WINDOW, dtype=np.float32)
    padded[: len(audio16k)] = audio16k
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP] * _hann()
    spectrum = scipy_fft.rfft(frames, n=N_FFT, axis=1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    logmel = np.log(power @ mel_filterbank() + 1e-6)
    return logmel.reshape(n_frames // STACK, STACK * N_MELS)
