"""Draw the registered figures and tables of a results table into a directory.

Each figure is written as ``NAME.png``, ``NAME.pdf`` and ``NAME.csv`` (the data it draws); each
table as ``NAME.md``, ``NAME.tex`` and ``NAME.csv``. Files are written under a temporary name and
renamed, so a directory never holds a half-written file (DESIGN, contract 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from scaling.atomic import atomic_write
from scaling.errors import UserError, unknown_choice
from scaling.figures import paper, standard, tables  # noqa: F401  (importing them registers their figures and tables)
from scaling.figures.registry import REGISTRY, Context, Entry, Output
from scaling.figures.table import Skip


@dataclass
class Report:
    """What a render wrote and what it skipped (name, one-line reason)."""

    written: list[Path] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def save(output: Output, out: Path, dpi: int) -> list[Path]:
    """Write one output's files into ``out``; return their paths."""
    import matplotlib.pyplot as plt

    paths = [atomic_write(out / f"{output.name}.csv", lambda f: output.data.to_csv(f, index=False, float_format="%.10g"))]
    if output.figure is not None:
        for ext in ("png", "pdf"):
            paths.append(atomic_write(out / f"{output.name}.{ext}", lambda f, ext=ext: output.figure.savefig(f, format=ext, dpi=dpi)))
        plt.close(output.figure)
    if output.table is not None:
        paths.append(atomic_write(out / f"{output.name}.md", output.table.markdown()))
        paths.append(atomic_write(out / f"{output.name}.tex", output.table.latex()))
    return paths


def entries() -> dict[str, Entry]:
    """All figures and tables, in drawing order: those of :mod:`~scaling.figures.paper`,
    :mod:`~scaling.figures.standard` and :mod:`~scaling.figures.tables`, registered as their
    modules were imported."""
    return REGISTRY


def select(only: Iterable[str] | None) -> list[str]:
    """Names to draw: all of them, or those in ``only`` (each checked; a prefix such as 'fig1' works)."""
    names = list(entries())
    if not only:
        return names
    chosen = []
    for want in only:
        match = [n for n in names if n == want] or [n for n in names if n.startswith(want)]
        if not match:
            raise unknown_choice("figure or table", want, names)
        chosen += [n for n in match if n not in chosen]
    return chosen


def render(ctx: Context, out: Path, only: Iterable[str] | None = None, echo: Callable[[str], None] = print) -> Report:
    """Draw the chosen figures and tables into ``out``; print one line per name; return a Report.

    A figure that raises Skip, or whose fit the fitting engine refuses (UserError), is reported
    as skipped with its one-line reason; the others are still drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = select(only)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {str(out)!r}: {exc.strerror or exc}") from None
    report = Report()
    registry = entries()
    with plt.rc_context(ctx.style.rc()):
        for name in names:
            ctx.notes.clear()
            try:
                outputs = registry[name].draw(ctx)
            except (Skip, UserError) as exc:  # a missing column, or a fit the data cannot support
                plt.close("all")
                report.skipped.append((name, str(exc)))
                echo(f"  skipped {name}: {exc}")
                continue
            for output in outputs:
                report.written += save(output, out, ctx.style.dpi)
                report.outputs.append(output.name)
                kind = "png, pdf, csv" if output.figure is not None else "md, tex, csv"
                echo(f"  wrote {output.name} ({kind})")
            for note in ctx.notes:
                echo(f"    note: {note}")
    return report
