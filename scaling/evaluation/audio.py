"""Audio sides → units, with the extractor and codebook of a corpus (the model's own units).

Official sets ship WAV files; a model reads units of the codebook it was trained with, so their
audio goes through the same steps as the corpus' speech: mono, resampled to 16 kHz, features
(log-mel or HuBERT, as the corpus configures), nearest centroid, consecutive duplicates removed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling.errors import UserError
from scaling.evaluation.format import Benchmark, Segment

#: peak amplitude (of full scale) below which a file counts as silent
SILENT = 1e-4


class AudioUnits:
    """``units_of`` for :func:`scaling.evaluation.scoring.evaluate`: a side's stored units, or
    the units of its audio file (memoised by path), with the extractor of ``corpus_config`` and the
    codebook of its built ``corpus`` (:class:`scaling.data.records.Corpus`)."""

    def __init__(self, bench: Benchmark, corpus_config, corpus):
        from scaling.data.units import Codebook, make_extractor

        self.k = corpus.k
        self.bench = bench
        self.extractor = make_extractor(corpus_config.units)
        self.codebook = Codebook.load(corpus.dir / "codebook.npz")
        self._memo: dict[Path, np.ndarray] = {}

    def __call__(self, seg: Segment, index: int, side: str) -> np.ndarray:
        if seg.units is not None:
            return seg.units
        if seg.audio not in self._memo:
            self._memo[seg.audio] = self._encode(seg.audio, index, side)
        return self._memo[seg.audio]

    def _encode(self, path: Path, index: int, side: str) -> np.ndarray:
        import soundfile

        from scaling.data.features import resample
        from scaling.data.units import dedup

        where = f"benchmark {self.bench.name!r} ({self.bench.source}), pair {self.bench.pairs[index].id!r}, {side} audio {str(path)!r}"
        try:
            audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            raise UserError(f"{where}: not a readable audio file ({exc})") from None
        audio = audio.mean(axis=1)
        if len(audio) == 0 or float(np.abs(audio).max()) < SILENT:
            raise UserError(f"{where}: empty or silent audio yields no units")
        units, _ = dedup(self.codebook.assign(self.extractor.features(resample(audio, rate))))
        return units
