"""How figures look: paper and slides styles, a colour-blind-safe palette, readable log axes.

The palette is Okabe & Ito's eight colours (safe for the common colour-vision deficiencies).
Colours are fixed per *variant* (data mode × initialisation) and per model family, so a variant
has the same colour in every figure of a study. Ordered quantities (compute budgets, model sizes)
use ``viridis``, which is perceptually uniform and colour-blind safe. References (published points,
textless trends, other fits) are always drawn in greys with dashed lines or hollow markers, so
they never look like the user's own runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from scaling.formatting import human

OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}
# References: greys, each with its own dash pattern so that they stay apart in greyscale too.
REFERENCE_STYLES = (("#4D4D4D", (0, (5, 2))), ("#262626", (0, (1, 1.5))), ("#8C8C8C", (0, (6, 2, 1, 2))),
                    ("#4D4D4D", (0, (2, 2))))

# Fixed colours for the variants of the SIMS study (data_mode, init).
VARIANT_COLOURS = {
    ("interleaved", "text-lm"): OKABE_ITO["blue"],
    ("interleaved", "scratch"): OKABE_ITO["sky"],
    ("speech", "scratch"): OKABE_ITO["vermillion"],
    ("speech", "text-lm"): OKABE_ITO["orange"],
    ("text", "scratch"): OKABE_ITO["green"],
    ("text", "text-lm"): OKABE_ITO["purple"],
    ("all", ""): OKABE_ITO["black"],  # a table without data_mode / init columns
}
FAMILY_COLOURS = {"qwen2": OKABE_ITO["vermillion"], "llama": OKABE_ITO["blue"], "opt": OKABE_ITO["green"]}


@dataclass(frozen=True)
class Style:
    """Sizes for one output medium. ``width`` is the figure width in inches for one panel row."""

    name: str
    width: float
    panel_height: float
    font_size: float
    line_width: float
    marker_size: float
    dpi: int

    def rc(self) -> dict:
        """matplotlib rcParams for this style (used inside ``plt.rc_context``)."""
        return {
            "font.size": self.font_size,
            "axes.titlesize": self.font_size,
            "axes.labelsize": self.font_size,
            "legend.fontsize": self.font_size * 0.9,
            "xtick.labelsize": self.font_size * 0.9,
            "ytick.labelsize": self.font_size * 0.9,
            "lines.linewidth": self.line_width,
            "lines.markersize": self.marker_size,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "grid.linewidth": 0.5,
            "legend.frameon": False,
            "savefig.dpi": self.dpi,
            "pdf.fonttype": 42,
            "figure.constrained_layout.use": True,
        }


STYLES = {
    # A two-column paper: 3.4 in is one column; multi-panel figures span the page (7 in).
    "paper": Style("paper", width=3.4, panel_height=2.3, font_size=8, line_width=1.3, marker_size=4, dpi=300),
    "slides": Style("slides", width=6.4, panel_height=4.0, font_size=15, line_width=2.4, marker_size=8, dpi=150),
}


def figure_size(style: Style, n_panels: int) -> tuple[float, float]:
    """(width, height) in inches for ``n_panels`` side by side (the legend adds its own rows).

    Paper figures with more than one panel span the text width (about two columns).
    """
    if style.name == "paper":
        width = style.width if n_panels == 1 else min(7.0, 2.35 * n_panels)
    else:
        width = style.width if n_panels == 1 else min(13.0, 4.3 * n_panels)
    return width, style.panel_height


class Palette:
    """Colours for the categories of one study, stable across all of its figures.

    Known variants and families get their fixed colour; other names get the remaining
    Okabe-Ito colours (yellow excepted) in sorted order, so the same table always gives the same
    colours.
    """

    def __init__(self, variants: Iterable[tuple[str, str]] = (), families: Iterable[str] = ()):
        self._variant = dict(VARIANT_COLOURS)
        self._family = dict(FAMILY_COLOURS)
        self._assign(self._variant, sorted(set(variants)))
        self._assign(self._family, sorted(set(families)))

    @staticmethod
    def _assign(known: dict, names: list) -> None:
        lines = [c for name, c in OKABE_ITO.items() if name != "yellow"]  # yellow is too light for lines on white
        spare = [c for c in lines if c not in known.values()] or lines
        for i, name in enumerate(n for n in names if n not in known):
            known[name] = spare[i % len(spare)]

    def variant(self, key: tuple[str, str]) -> str:
        """Colour of a (data_mode, init) variant."""
        return self._variant.get(key, OKABE_ITO["black"])

    def family(self, name: str) -> str:
        """Colour of a model family (or text-LM name)."""
        return self._family.get(name, OKABE_ITO["black"])


def sequential(n: int) -> list[str]:
    """``n`` ordered colours (viridis, dark to light, clipped before the pale yellow end)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["viridis"]
    if n == 1:
        return [to_hex(cmap(0.35))]
    return [to_hex(cmap(0.05 + 0.8 * i / (n - 1))) for i in range(n)]


def sci(value: float) -> str:
    """A FLOP count: 1e18 -> '1e18', 3e18 -> '3e18', 6.86e20 -> '6.86e20' (3 significant digits)."""
    if value <= 0:
        return f"{value:g}"
    exp = math.floor(math.log10(value) + 1e-9)
    mant = value / 10**exp
    mant = float(f"{mant:.3g}")
    if mant >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:g}e{exp}"


TICK_MULTIPLES = ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), tuple(float(s) for s in range(1, 10)))


def _tick_multiples(lo: float, hi: float) -> tuple[float, ...]:
    """The sparsest multiples of powers of ten that put at least three ticks in [lo, hi]."""
    if not (lo > 0 and hi > lo):
        return TICK_MULTIPLES[0]
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for subs in TICK_MULTIPLES:
        if sum(lo <= m * 10**k <= hi for k in decades for m in subs) >= 3:
            return subs
    return TICK_MULTIPLES[-1]


def log_axis(ax, which: str, kind: str) -> None:
    """Make ``which`` ('x' or 'y') of ``ax`` logarithmic with readable tick labels.

    kind: 'flops' labels ticks as 1e18, 3e18 …; 'count' as 40k, 1M, 3B …. Decades are
    labelled; an axis spanning too few decades for three labelled ticks also labels 3×, then 2×
    and 5×, then finer multiples, so that no axis ends up with one label or none.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    subs = _tick_multiples(lo, hi)
    fmt = sci if kind == "flops" else human
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(float(s) for s in range(1, 10))))
    axis.set_minor_formatter(NullFormatter())
