"""The list of figures and tables ``scaling figures`` knows, and what each is given to draw.

A figure or table is a function ``draw(ctx) -> list[Output]`` registered under a name with
:func:`register` (every one of them: :func:`scaling.figures.render.entries`). It reads ``ctx.table`` and raises :class:`~scaling.figures.table.Skip` with a
one-line reason when the table lacks what it needs. One name may produce several outputs (for
example training curves, one per base model); each output is saved as PNG + PDF + CSV (figures)
or Markdown + LaTeX + CSV (tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from scaling.figures.style import Palette, Style
from scaling.figures.table import Columns


@dataclass
class Context:
    """Everything a figure may use: the prepared table, column roles, style, palette, options."""

    table: pd.DataFrame
    columns: Columns
    style: Style
    palette: Palette
    published: bool = False
    bootstrap: int = 100
    seed: int = 0
    notes: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # fits shared by the figures of one render

    def note(self, text: str) -> None:
        """A one-line remark printed under the figure's line in the command's output."""
        self.notes.append(text)


@dataclass
class Output:
    """One rendered figure (``figure`` set) or table (``table`` set), with the data behind it."""

    name: str
    data: pd.DataFrame
    figure: Any = None
    table: Any = None


@dataclass(frozen=True)
class Entry:
    """A registered figure or table."""

    name: str
    kind: str  # "figure" or "table"
    description: str
    draw: Callable[[Context], list[Output]]


REGISTRY: dict[str, Entry] = {}


def register(name: str, kind: str, description: str) -> Callable:
    """Decorator: add ``draw`` to the registry under ``name``."""

    def wrap(draw: Callable[[Context], list[Output]]) -> Callable[[Context], list[Output]]:
        if name in REGISTRY:
            raise ValueError(f"figure {name!r} registered twice")
        REGISTRY[name] = Entry(name, kind, description, draw)
        return draw

    return wrap

