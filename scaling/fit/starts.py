"""Start points of a multi-start fit: the law's default grid, with parameters overridden by
single values (``--start NAME=VALUE``) or ranges (``--grid NAME=LO:HI:COUNT``), or explicit starts.

Values are given in natural units. A parameter fitted as its logarithm (``Parameter.log``) takes
log-spaced grid values and must start positive; the others take linearly spaced values. Starts
are returned in the law's optimisation coordinates (log for those parameters), one row per start,
columns in the law's parameter order: the product of the per-parameter values.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from scaling.errors import UserError
from scaling.fit.laws import Law

MAX_STARTS = 1_000_000


def parameter_values(law: Law, start: Mapping[str, float] | None = None,
                     grid: Mapping[str, tuple[float, float, int]] | None = None) -> dict[str, np.ndarray]:
    """Start values of every parameter in optimisation coordinates: the law's grid, replaced by
    ``start`` (one natural value) or ``grid`` ((lo, hi, count) in natural units) where given."""
    start, grid = dict(start or {}), dict(grid or {})
    both = sorted(set(start) & set(grid))
    if both:
        raise UserError(f"parameter {both[0]} has both --start and --grid; give one")
    values = {}
    for p in law.parameters:
        if p.name in start:
            values[p.name] = np.array([_coordinate(p, start[p.name], f"--start {p.name}={start[p.name]!r}")])
        elif p.name in grid:
            values[p.name] = _grid_values(p, *grid[p.name])
        else:
            values[p.name] = np.asarray(p.grid, dtype=float)
    for name in (*start, *grid):
        law.parameter(name)                  # unknown names raise, listing the law's parameters
    return values


def start_grid(law: Law, starts=None, start: Mapping[str, float] | None = None,
               grid: Mapping[str, tuple[float, float, int]] | None = None) -> np.ndarray:
    """(S, k) starts in optimisation coordinates. ``starts`` (a dict of natural values, a list of
    them, or rows of coordinates) replaces the grid; otherwise the product of
    :func:`parameter_values`."""
    if starts is not None:
        if start or grid:
            raise UserError("give explicit starts or --start/--grid overrides, not both")
        return explicit_starts(law, starts)
    values = parameter_values(law, start, grid)
    count = int(np.prod([len(v) for v in values.values()], dtype=float))
    if count > MAX_STARTS:
        raise UserError(f"the start grid of law {law.name} has {count:,} points (more than {MAX_STARTS:,}); "
                        "narrow it with --start NAME=VALUE or fewer --grid points")
    mesh = np.meshgrid(*values.values(), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def explicit_starts(law: Law, starts) -> np.ndarray:
    """Rows of optimisation coordinates from natural-unit dicts (every parameter named) or from
    rows already in coordinates."""
    if isinstance(starts, Mapping):
        starts = [starts]
    rows = []
    for s in starts:
        if isinstance(s, Mapping):
            missing = [k for k in law.names if k not in s]
            if missing:
                raise UserError(f"start {dict(s)} lacks {', '.join(missing)}; expected keys {', '.join(law.names)}")
            row = [_coordinate(p, s[p.name], f"start {p.name}={s[p.name]!r}") for p in law.parameters]
        else:
            row = np.asarray(s, dtype=float)
            if row.shape != (len(law.parameters),):
                raise UserError(f"a {law.name} start needs {len(law.parameters)} values ({', '.join(law.names)}), "
                                f"got {np.asarray(s).tolist()}")
        rows.append(row)
    if not rows:
        raise UserError("no start given; expected at least one")
    return np.array(rows, dtype=float)


def _coordinate(p, value: float, where: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise UserError(f"{where} is not a finite number")
    if p.log:
        if value <= 0:
            raise UserError(f"{where}: {p.name} is fitted as log({p.name}), so it must start positive; "
                            f"e.g. {p.name}=1e-3 for a small value")
        return float(np.log(value))
    return value


def _grid_values(p, lo: float, hi: float, count: int) -> np.ndarray:
    where = f"--grid {p.name}={lo!r}:{hi!r}:{count!r}"
    if int(count) != count or count < 1:
        raise UserError(f"{where}: COUNT must be a positive whole number")
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise UserError(f"{where}: expected finite LO <= HI")
    a, b = _coordinate(p, lo, where), _coordinate(p, hi, where)
    return np.linspace(a, b, int(count))


def parse_starts(items: Sequence[str]) -> dict[str, float]:
    """``--start NAME=VALUE`` items as a dict (natural units)."""
    out = {}
    for item in items:
        name, value = _split(item, "--start", "NAME=VALUE")
        out[name] = _number(value, f"--start {item!r}")
    return out


def parse_grids(items: Sequence[str]) -> dict[str, tuple[float, float, int]]:
    """``--grid NAME=LO:HI:COUNT`` items as a dict of (lo, hi, count) (natural units)."""
    out = {}
    for item in items:
        name, value = _split(item, "--grid", "NAME=LO:HI:COUNT")
        parts = value.split(":")
        if len(parts) != 3:
            raise UserError(f"--grid {item!r}: expected NAME=LO:HI:COUNT, e.g. alpha=0.1:1:10")
        lo, hi = (_number(v, f"--grid {item!r}") for v in parts[:2])
        count = _number(parts[2], f"--grid {item!r}")
        if count != int(count) or count < 1:
            raise UserError(f"--grid {item!r}: COUNT {parts[2]!r} must be a positive whole number")
        out[name] = (lo, hi, int(count))
    return out


def _split(item: str, flag: str, form: str) -> tuple[str, str]:
    if "=" not in item or not item.split("=", 1)[0].strip():
        raise UserError(f"{flag} {item!r}: expected {form}")
    name, value = item.split("=", 1)
    return name.strip(), value.strip()


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{where}: {text!r} is not a number") from None
