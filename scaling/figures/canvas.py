"""A figure that records what it draws, so the CSV written beside it is exactly the plotted data.

Every series goes through :class:`Canvas` (``points``, ``line``, ``band``, ``categories``), which draws it
on a panel and appends its rows to one long table: ``panel``, ``series``, ``role``, ``x``, ``y``,
``y_lo``, ``y_hi``, the quantities on the axes, and any extra columns the figure adds (run id,
budget …). Each artist carries ``gid = "panel|series|role"``, which the tests use to match the
drawing against the CSV.

Roles: ``data`` (the user's runs), ``envelope`` (best run per compute), ``fit`` (a fitted curve),
``interval`` (its band), ``minimum`` (a fitted optimum), ``reference`` (published numbers or
laws, always grey and dashed or hollow).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from scaling.figures.style import REFERENCE_STYLES, Style, figure_size, log_axis

ROLES = ("data", "envelope", "fit", "interval", "minimum", "reference")


class Canvas:
    """One figure of one or more panels side by side, drawn and recorded at once."""

    def __init__(self, style: Style, panels: Sequence[str], title: str | None = None):
        import matplotlib.pyplot as plt

        self.style = style
        self.fig, axes = plt.subplots(1, len(panels), figsize=figure_size(style, len(panels)), squeeze=False)
        self.axes = dict(zip(panels, axes[0]))
        self.axis_names: dict[str, tuple[str, str]] = {}
        self.log_axes: list[tuple[str, str, str]] = []
        self.rows: list[pd.DataFrame] = []
        self._legend: dict[str, Any] = {}
        self._ref_styles: dict[str, tuple[str, tuple]] = {}
        if title:
            self.fig.suptitle(title)

    def axes_for(self, panel: str, x: str, y: str, *, title: str | None = None, xlog: str | None = None,
                 ylog: str | None = None) -> Any:
        """Label a panel: x and y quantity names; ``xlog``/``ylog`` = 'flops' or 'count' for log axes."""
        ax = self.axes[panel]
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        if title:
            ax.set_title(title)
        self.axis_names[panel] = (x, y)
        for which, kind in (("x", xlog), ("y", ylog)):
            if kind:
                self.log_axes.append((panel, which, kind))
        return ax

    def _record(self, panel: str, series: str, role: str, x, y, lo=None, hi=None, extra: dict | None = None) -> None:
        x = np.asarray(x, dtype=float)
        frame = pd.DataFrame({"panel": panel, "series": series, "role": role, "x": x,
                              "y": np.asarray(y, dtype=float) if y is not None else np.nan,
                              "y_lo": np.asarray(lo, dtype=float) if lo is not None else np.nan,
                              "y_hi": np.asarray(hi, dtype=float) if hi is not None else np.nan})
        xname, yname = self.axis_names.get(panel, ("x", "y"))
        frame.insert(3, "x_quantity", xname)
        frame.insert(4, "y_quantity", yname)
        for key, val in (extra or {}).items():
            frame[key] = list(val) if not np.isscalar(val) else val
        self.rows.append(frame)

    def _legend_entry(self, label: str | None, artist: Any) -> None:
        if label and label not in self._legend:
            self._legend[label] = artist

    def _reference_style(self, series: str) -> tuple[str, tuple]:
        """(grey, dash pattern) of a reference series: one per series, the same in every panel."""
        if series not in self._ref_styles:
            self._ref_styles[series] = REFERENCE_STYLES[len(self._ref_styles) % len(REFERENCE_STYLES)]
        return self._ref_styles[series]

    def reference_line(self, panel: str, x, y, series: str, *, label: str | None = None,
                       extra: dict | None = None) -> None:
        """A published law or trend: grey, with a dash pattern of its own (role ``reference``)."""
        colour, dash = self._reference_style(series)
        (artist,) = self.axes[panel].plot(x, y, linestyle=dash, color=colour, gid=f"{panel}|{series}|reference",
                                          zorder=2)
        self._legend_entry(label, artist)
        self._record(panel, series, "reference", x, y, extra=extra)

    def reference_points(self, panel: str, x, y, series: str, *, label: str | None = None, marker: str = "D",
                         extra: dict | None = None) -> None:
        """Published numbers: hollow grey markers (role ``reference``)."""
        self.points(panel, x, y, series, color=self._reference_style(series)[0], role="reference", label=label,
                    marker=marker, hollow=True, extra=extra)

    def points(self, panel: str, x, y, series: str, *, color: str, role: str = "data", label: str | None = None,
               marker: str = "o", hollow: bool = False, size: float | None = None, extra: dict | None = None) -> None:
        """Markers without a line (runs, minima, published points)."""
        ms = size or self.style.marker_size
        face = "none" if hollow else color
        (artist,) = self.axes[panel].plot(x, y, linestyle="none", marker=marker, color=color, markerfacecolor=face,
                                          markersize=ms, gid=f"{panel}|{series}|{role}", zorder=3)
        self._legend_entry(label, artist)
        self._record(panel, series, role, x, y, extra=extra)

    def line(self, panel: str, x, y, series: str, *, color: str, role: str = "fit", label: str | None = None,
             dashed: bool = False, marker: str | None = None, alpha: float = 1.0, extra: dict | None = None) -> None:
        """A curve (fits, envelopes, training curves, references)."""
        style = "--" if dashed else "-"
        (artist,) = self.axes[panel].plot(x, y, linestyle=style, color=color, marker=marker, alpha=alpha,
                                          markersize=self.style.marker_size * 0.8, gid=f"{panel}|{series}|{role}",
                                          zorder=2)
        self._legend_entry(label, artist)
        self._record(panel, series, role, x, y, extra=extra)

    def band(self, panel: str, x, lo, hi, series: str, *, color: str, label: str | None = None) -> None:
        """A shaded interval around a fitted curve (role ``interval``)."""
        artist = self.axes[panel].fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0,
                                               gid=f"{panel}|{series}|interval", zorder=1)
        self._legend_entry(label, artist)
        self._record(panel, series, "interval", x, None, lo, hi)

    def categories(self, panel: str, labels: Sequence[str], values, series: str, *, colors: Sequence[str],
                   extra: dict | None = None) -> None:
        """One marker per category at positions 0..n-1 labelled by ``labels`` (x in the CSV is the position).

        A dot chart rather than bars, so that the value axis need not start at zero.
        """
        ax = self.axes[panel]
        pos = np.arange(len(labels), dtype=float)
        ax.scatter(pos, values, c=list(colors), s=(self.style.marker_size * 1.6) ** 2, gid=f"{panel}|{series}|data",
                   zorder=3)
        ax.set_xticks(pos, labels, rotation=45 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center")
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.margins(y=0.15)
        self._record(panel, series, "data", pos, values, extra={"category": list(labels), **(extra or {})})

    def drew(self, role: str) -> bool:
        """Whether anything of ``role`` has been drawn (to add a legend key only when it applies)."""
        return any((frame["role"] == role).any() for frame in self.rows)

    def key(self, label: str, *, line: bool = False, dashed: bool = False, hollow: bool = False,
            band: bool = False) -> None:
        """A legend entry that explains a drawing convention (e.g. 'dashed: power-law fit'), in grey.

        It draws no data, so nothing is recorded.
        """
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        grey = "#4D4D4D"
        if band:
            self._legend_entry(label, Patch(color=grey, alpha=0.25, linewidth=0))
        elif line:
            self._legend_entry(label, Line2D([], [], color=grey, linestyle="--" if dashed else "-"))
        else:
            self._legend_entry(label, Line2D([], [], color=grey, linestyle="none", marker="o",
                                               markerfacecolor="none" if hollow else grey,
                                               markersize=self.style.marker_size))

    def label_curve(self, panel: str, x, y, text: str, *, color: str, at: float = 0.5) -> None:
        """Write ``text`` on a drawn curve at fraction ``at`` of its points (contour levels, instead of
        a legend; stagger ``at`` so that labels of neighbouring curves do not overlap)."""
        i = min(len(x) - 1, int(at * len(x)))
        self.axes[panel].text(x[i], y[i], text, color=color, fontsize=self.style.font_size * 0.8, ha="center",
                              va="center", bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5}, zorder=4)

    def note(self, panel: str, text: str) -> None:
        """A small note in the panel's corner (e.g. which points a fit used)."""
        self.axes[panel].text(0.98, 0.02, text, transform=self.axes[panel].transAxes, ha="right", va="bottom",
                              fontsize=self.style.font_size * 0.75, color="#4D4D4D")

    def _legend_columns(self, labels: list[str]) -> int:
        """As many legend columns as fit the figure width (entry ≈ handle + 0.55 em per character)."""
        em = self.style.font_size * 0.9 / 72
        entry = max(len(label) for label in labels) * 0.55 * em + 3.0 * em
        return max(1, min(len(labels), int(self.fig.get_figwidth() * 0.95 // entry)))

    def finish(self, legend_cols: int | None = None) -> tuple[Any, pd.DataFrame]:
        """Apply log axes, put one legend below the panels (off the data); return (figure, drawn data)."""
        for panel, which, kind in self.log_axes:
            log_axis(self.axes[panel], which, kind)
        if self._legend:
            labels = list(self._legend.keys())
            ncols = legend_cols or self._legend_columns(labels)
            rows = -(-len(labels) // ncols)
            self.fig.set_figheight(self.fig.get_figheight() + rows * self.style.font_size * 1.45 / 72)
            self.fig.legend(list(self._legend.values()), labels, loc="outside lower center", ncols=ncols)
        data = pd.concat(self.rows, ignore_index=True) if self.rows else pd.DataFrame()
        return self.fig, data
