"""Numbers and rows for people: the one formatter of counts, durations and plain-text tables."""

from __future__ import annotations


def human(n: float) -> str:
    """A count with a suffix: 1234567 -> '1.23M', 40000 -> '40k', 3e9 -> '3B' (k, M, B, T; three
    significant digits); below 1000 as it is, to three significant digits (512 -> '512')."""
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}"


def gib(n_bytes: float) -> str:
    """Bytes as GiB (2^30 bytes), e.g. '74.9 GiB'."""
    return f"{n_bytes / 2**30:.1f} GiB"


def memory_size(n_bytes: float) -> str:
    """Bytes in SLURM's binary units, compactly: '71.0G', '45M', '512K'."""
    for unit, power in (("T", 40), ("G", 30), ("M", 20)):
        if n_bytes >= 2**power:
            value = n_bytes / 2**power
            return f"{value:.1f}{unit}" if value < 100 and unit != "M" else f"{value:.0f}{unit}"
    return f"{n_bytes / 2**10:.0f}K"


def duration(seconds: float) -> str:
    """A duration: '42s' below 90 s, '3.5m' below 90 min, else '2.1h'."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def format_rows(rows: list[list], header: list[str]) -> str:
    """Rows as fixed-width text under ``header`` and a rule: the first two columns left-aligned,
    the others right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(x) for x in r]) for r in rows]
    return "\n".join(lines)
