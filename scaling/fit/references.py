"""Published scaling laws shipped as data (``references.json``), with their sources.

Each entry is a law of :mod:`scaling.fit.laws` with natural-unit parameters (``chinchilla``:
E nats, A, B, alpha, beta with N parameters and D tokens), or a set of metric exponents gamma
of Q proportional to C^gamma (``power_law``). Where a paper gives log-parameters (a = log A,
b = log B, e = log E) they are kept and E, A, B are computed from them at full precision.
Use them for comparison and overlays, e.g. ``compute_optimal(reference_law(name).params, C)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from scaling.errors import unknown_choice


@dataclass(frozen=True)
class ReferenceLaw:
    """A published law: ``law`` name, ``params`` (natural units; empty for metric exponents),
    ``exponents`` (metric -> gamma), Huber ``delta`` used in the fit when known, ``source``."""

    name: str
    law: str
    params: dict[str, float]
    source: str
    notes: str = ""
    delta: float | None = None
    exponents: dict[str, float] = field(default_factory=dict)


def _load() -> dict[str, ReferenceLaw]:
    raw = json.loads(resources.files("scaling.fit").joinpath("references.json").read_text(encoding="utf-8"))
    out = {}
    for name, entry in raw.items():
        params = dict(entry.get("params", {}))
        logs = entry.get("log_params", {})
        for log_name, name_nat in (("a", "A"), ("b", "B"), ("e", "E")):
            if log_name in logs:
                params[name_nat] = float(np.exp(logs[log_name]))
        out[name] = ReferenceLaw(name, entry["law"], params, entry["source"], entry.get("notes", ""),
                                 entry.get("delta"), dict(entry.get("exponents", {})))
    return out


REFERENCE_LAWS: dict[str, ReferenceLaw] = _load()


def reference_law(name: str) -> ReferenceLaw:
    """The shipped reference law called ``name`` (see REFERENCE_LAWS); unknown names raise UserError."""
    if name not in REFERENCE_LAWS:
        raise unknown_choice("reference law", name, REFERENCE_LAWS)
    return REFERENCE_LAWS[name]
