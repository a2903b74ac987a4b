"""Text-LM reference scores (the ``acc_*_textlm`` columns) cached in the store.

Every run initialised from a text LM reports how that text LM itself scores its benchmarks. The
scores depend only on the text LM, the benchmark's pairs and the scoring settings, so they are
computed once and kept in ``<store>/cache/textlm-scores/<key>.json``; later runs (and later
evaluation points) read them instead of loading the text LM onto their training device again.

``key`` (:func:`~scaling.data.cache.content_key`) covers the text LM (its ``config.json`` and the
name, size and modification time of each weight file: a replaced checkpoint gets a new key), the
benchmark (name, direction, column and every pair's sides, ids and meta) and the scoring settings
(``score``, ``mask_other_modality``). Files are written atomically and read as plain JSON; one
that cannot be read is scored again and rewritten.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from scaling.atomic import atomic_write_json
from scaling.data.cache import content_key
from scaling.errors import UserError
from scaling.evaluation.scoring import Result
from scaling.reading import read_json

KIND = "textlm-scores"
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


def text_lm_identity(lm_dir: Path) -> dict[str, Any]:
    """What identifies a text-LM directory's weights without reading them: its ``config.json``
    text and (name, bytes, mtime in ns) of every weight file."""
    lm_dir = Path(lm_dir)
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in lm_dir.glob(pattern)})
    return {"config": (lm_dir / "config.json").read_text(), "weights": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]}


def pairs_digest(bench) -> str:
    """SHA-256 of a benchmark's pairs (ids, every side as JSON, meta), in order."""
    h = hashlib.sha256()
    for pair in bench.pairs:
        sides = {name: side.to_json() for name in ("prompt", "correct", "wrong") if (side := getattr(pair, name)) is not None}
        h.update(json.dumps([pair.id, sides, pair.meta], sort_keys=True, default=str).encode())
    return h.hexdigest()


def reference_recipe(lm_dir: Path, task, bench, score: str, mask_other_modality: bool) -> dict[str, Any]:
    """Everything a text-LM reference score depends on (see the module docstring)."""
    return {"text_lm": text_lm_identity(lm_dir), "column": task.column, "bench": bench.name, "direction": task.direction,
            "pairs": pairs_digest(bench), "score": score, "mask_other_modality": bool(mask_other_modality)}


def _path(cache_root: Path, recipe: dict[str, Any]) -> Path:
    return Path(cache_root) / KIND / f"{content_key(recipe)}.json"


def load_reference(cache_root: Path, recipe: dict[str, Any]) -> Result | None:
    """The cached result of ``recipe``, or None when there is none (or it cannot be read)."""
    path = _path(cache_root, recipe)
    if not path.is_file():
        return None
    try:
        d = read_json(path, "text-LM reference scores", dict)
        return Result(column=d["column"], bench=d["bench"], direction=d["direction"], accuracy=float(d["accuracy"]),
                      ids=tuple(d["ids"]), correct=np.asarray(d["correct"], dtype=np.float64),
                      wrong=np.asarray(d["wrong"], dtype=np.float64), outcome=np.asarray(d["outcome"], dtype=np.float64),
                      meta=tuple(d["meta"]))
    except (UserError, KeyError, TypeError, ValueError):
        return None


def save_reference(cache_root: Path, recipe: dict[str, Any], result: Result) -> Path:
    """Store ``result`` under ``recipe`` (atomically); returns the file."""
    path = _path(cache_root, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, {
        "recipe": recipe, "column": result.column, "bench": result.bench, "direction": result.direction,
        "accuracy": float(result.accuracy), "ids": list(result.ids), "correct": [float(x) for x in result.correct],
        "wrong": [float(x) for x in result.wrong], "outcome": [float(x) for x in result.outcome], "meta": [dict(m) for m in result.meta]})
