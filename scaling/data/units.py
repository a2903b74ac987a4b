"""Speech → discrete units, behind one interface.

An extractor turns 16 kHz audio into frame features ``[T, D]`` at a fixed frame period
``frame_s``; a :class:`Codebook` (k-means centroids, with the feature standardisation it was
fitted under) maps each frame to its nearest centroid; :func:`dedup` removes consecutive
duplicates and keeps run lengths (durations in frames) so words can still be aligned with units.

- :class:`LogMelExtractor`: offline, no weights: stacked 80-bin log-mel at 25 Hz
  (:mod:`scaling.data.features`).
- :class:`HubertExtractor`: transformers ``HubertModel`` from a local directory, hidden states of a
  chosen layer (SIMS: mHuBERT-25Hz, layer 11, k = 500); frame period from the model's convolution
  strides (20 ms for HuBERT base, 40 ms for mHuBERT-25Hz).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.data.features import FRAME_S, SAMPLE_RATE, log_mel_25hz
from scaling.errors import UserError
from scaling.reading import load_pretrained, read_json


class LogMelExtractor:
    """Offline features: [T, 320] stacked log-mel at 25 Hz (frame_s = 0.04 s)."""

    frame_s = FRAME_S

    def source(self) -> dict:
        """What determines the features (part of every cache key that depends on them)."""
        return {"extractor": "logmel", "n_mels": 80, "stack": 4, "frame_s": self.frame_s}

    def features(self, audio16k: np.ndarray) -> np.ndarray:
        """Frame features of 16 kHz float audio."""
        return log_mel_25hz(audio16k)

    def features_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """:meth:`features` of each utterance."""
        return [log_mel_25hz(a) for a in audios]


class HubertExtractor:
    """Hidden states of layer ``layer`` of a local transformers ``HubertModel`` (no grad; on a GPU
    when there is one). :meth:`features_batch` pads utterances into batches of at most
    ``batch_seconds`` of audio (sorted by length, so padding is small); models whose feature
    extractor uses layer norm get an attention mask and give the same features as one at a time,
    while group-norm models (HuBERT base) normalise over the padded length, so their batched
    features differ slightly from unbatched ones (``batch_seconds: 0`` extracts one at a time)."""

    def __init__(self, model_dir: str, layer: int, batch_seconds: float = 0.0):
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise UserError(f"corpus.units.hubert_model = {model_dir!r}: no config.json there; expected a local HubertModel directory")
        config = read_json(self.model_dir / "config.json", "corpus.units.hubert_model config", dict)
        n_layers = int(config.get("num_hidden_layers", 0))
        if not 0 <= layer <= n_layers:
            raise UserError(f"corpus.units.hubert_layer = {layer}: expected 0..{n_layers} for {model_dir}")
        self.layer = layer
        self.frame_s = float(np.prod(config.get("conv_stride", [5, 2, 2, 2, 2, 2, 2]))) / SAMPLE_RATE
        pre = self.model_dir / "preprocessor_config.json"
        self.normalize = bool(read_json(pre, "HuBERT preprocessor config", dict).get("do_normalize", False)) if pre.is_file() else False
        self.masked = config.get("feat_extract_norm", "group") == "layer"
        self.batch_seconds = float(batch_seconds)
        self._model = None
        self._device = None

    def source(self) -> dict:
        return {"extractor": "hubert", "model": _fingerprint_model(self.model_dir), "layer": self.layer, "frame_s": self.frame_s}

    def _load(self):
        import torch

        if self._model is None:
            from transformers import HubertModel

            self._device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
            self._model = load_pretrained(HubertModel, self.model_dir, "corpus.units.hubert_model").eval().to(self._device)
        return self._model

    def features(self, audio16k: np.ndarray) -> np.ndarray:
        return self.features_batch([audio16k])[0]

    def features_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Frame features [T_i, D] of each 16 kHz utterance, extracted in padded batches."""
        import torch

        model = self._load()
        order = sorted(range(len(audios)), key=lambda i: len(audios[i]))
        out: list[np.ndarray | None] = [None] * len(audios)
        budget = self.batch_seconds * SAMPLE_RATE
        batch: list[int] = []
        for n, i in enumerate(order):
            batch.append(i)
            longest = len(audios[batch[-1]])
            last = n + 1 == len(order)
            if last or (len(batch) + 1) * max(longest, len(audios[order[n + 1]])) > budget:
                self._run(model, [audios[j] for j in batch], batch, out, torch)
                batch = []
        return out

    def _run(self, model, audios, where, out, torch) -> None:
        longest = max(len(a) for a in audios)
        x = torch.zeros((len(audios), longest), dtype=torch.float32)
        mask = torch.zeros((len(audios), longest), dtype=torch.long)
        for row, a in enumerate(audios):
            t = torch.from_numpy(np.asarray(a, dtype=np.float32))
            if self.normalize:
                t = (t - t.mean()) / torch.sqrt(t.var() + 1e-7)
            x[row, : len(a)] = t
            mask[row, : len(a)] = 1
        with torch.no_grad():
            kwargs = {"attention_mask": mask.to(self._device)} if self.masked and len(audios) > 1 else {}
            hidden = model(input_values=x.to(self._device), output_hidden_states=True, **kwargs).hidden_states[self.layer]
            frames = model._get_feat_extract_output_lengths(torch.tensor([len(a) for a in audios])).tolist()
        hidden = hidden.float().cpu().numpy()
        for row, (i, n) in enumerate(zip(where, frames)):
            out[i] = hidden[row, : int(n)]


def make_extractor(units_config) -> LogMelExtractor | HubertExtractor:
    """The extractor a :class:`scaling.data.config.UnitConfig` asks for."""
    if units_config.extractor == "hubert":
        return HubertExtractor(units_config.hubert_model, units_config.hubert_layer, getattr(units_config, "batch_seconds", 0.0))
    return LogMelExtractor()


@dataclass(frozen=True)
class Codebook:
    """k-means centroids [k, D] in the standardised feature space ``(x - mean) / std``."""

    centroids: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Nearest centroid of each frame: int64 [T] in ``[0, k)``."""
        if features.ndim != 2 or features.shape[1] != self.centroids.shape[1]:
            raise UserError(f"features of shape {features.shape} do not match the codebook's dimension {self.centroids.shape[1]}")
        z = (features.astype(np.float32) - self.mean) / self.std
        dist = (self.centroids ** 2).sum(1)[None, :] - 2.0 * z @ self.centroids.T
        return dist.argmin(1).astype(np.int64)

    def save(self, path: Path) -> None:
        np.savez(path, centroids=self.centroids, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: Path, trust_pickle: bool = False) -> "Codebook":
        """A saved codebook (``.npz`` from :meth:`save`), a plain ``.npy`` of centroids [k, D]
        over raw features, or (``trust_pickle`` only: unpickling runs code from the file) a
        scikit-learn k-means saved with joblib, as published HuBERT tokenizers ship it."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"codebook {str(path)!r} does not exist; expected a .npy of centroids [k, dim] or a saved .npz")
        if path.suffix not in (".npy", ".npz"):
            return cls._from_pickle(path, trust_pickle)
        if path.suffix == ".npy":
            c = np.load(path).astype(np.float32)
            if c.ndim != 2:
                raise UserError(f"codebook {str(path)!r} has shape {c.shape}; expected [k, dim]")
            return cls(c, np.zeros(c.shape[1], np.float32), np.ones(c.shape[1], np.float32))
        with np.load(path) as z:
            return cls(z["centroids"].astype(np.float32), z["mean"].astype(np.float32), z["std"].astype(np.float32))


    @classmethod
    def _from_pickle(cls, path: Path, trust: bool) -> "Codebook":
        if not trust:
            raise UserError(f"codebook {str(path)!r} is not a .npy/.npz array; a joblib/pickle k-means runs code when it is loaded, "
                            "so it is read only with corpus.units.trust_codebook_pickle: true (or save its cluster_centers_ as .npy)")
        import joblib

        try:
            model = joblib.load(path)
        except Exception as exc:  # unpickling raises whatever the file's code raises
            raise UserError(f"codebook {str(path)!r}: not a loadable joblib k-means ({type(exc).__name__}); expected a scikit-learn KMeans") from None
        centroids = np.asarray(getattr(model, "cluster_centers_", None), dtype=np.float32)
        if centroids.ndim != 2:
            raise UserError(f"codebook {str(path)!r}: no cluster_centers_ of shape [k, dim]; expected a scikit-learn KMeans")
        return cls(centroids, np.zeros(centroids.shape[1], np.float32), np.ones(centroids.shape[1], np.float32))


def fit_codebook(sample: np.ndarray, k: int, seed: int) -> Codebook:
    """k-means (scikit-learn MiniBatchKMeans, seeded) on standardised frames ``sample`` [N, D].

    Runs on one thread: on a shared machine, OpenMP/BLAS threads that wait for busy cores make
    the fit several times slower than one thread."""
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    if len(sample) < k:
        raise UserError(f"corpus.units.k = {k}: only {len(sample)} frames to fit it; expected at least k frames (more sentences or a smaller k)")
    mean = sample.mean(0).astype(np.float32)
    std = (sample.std(0) + 1e-5).astype(np.float32)
    z = (sample - mean) / std
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=max(2048, 4 * k), n_init=1, max_iter=5, init_size=max(2000, 4 * k),
                         max_no_improvement=5, reassignment_ratio=0.001)
    with threadpool_limits(1):
        km.fit(z)
    return Codebook(km.cluster_centers_.astype(np.float32), mean, std)


def dedup(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove consecutive duplicates: ``[5,5,7,7,7,5]`` → units ``[5,7,5]``, durations ``[2,3,1]``
    (frames). Unit ``i`` starts at frame ``durations[:i].sum()``."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return ids.astype(np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], change])
    return ids[starts].astype(np.int64), np.diff(np.concatenate([starts, [len(ids)]])).astype(np.int64)


def _fingerprint_model(model_dir: Path) -> str:
    """Identity of local weights: names, sizes and modification times (weights are not read)."""
    h = hashlib.sha256(str(model_dir.resolve()).encode())
    for p in sorted(model_dir.iterdir()):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]
