"""Seaborn figures shared by the chapters. Each function takes tidy data and returns the matplotlib Figure."""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def class_counts(table: pd.DataFrame, feature: str, title: str = "") -> plt.Figure:
    """Bar chart of how many examples carry each label of ``feature``."""
    counts = table[feature].dropna().astype(str).value_counts().sort_index()
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(counts)), 3))
    sns.barplot(x=counts.index, y=counts.to_numpy(), ax=ax, color="C0")
    ax.set(xlabel=feature, ylabel="examples", title=title)
    ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


def f1_vs_k(results: pd.DataFrame, hue: str = "method", col: str | None = None, title: str = "") -> plt.Figure:
    """Test F1 against the number of neurons k (log axis), one line per ``hue``, mean and 95% band over rows."""
    grid = sns.relplot(
        data=results, x="k", y="f1", hue=hue, col=col, kind="line", marker="o", errorbar=("ci", 95),
        height=3.2, aspect=1.3, col_wrap=min(3, results[col].nunique()) if col else None,
    )  # fmt: skip
    grid.set(xscale="log", ylim=(0, 1.02), ylabel="test F1")
    if title:
        grid.figure.suptitle(title, y=1.03)
    return grid.figure


COLUMN_INCHES = 7.6
"""Widest figure the book's text column shows at its natural size (770 CSS px at 100 px per inch)."""

SCALE = 2
"""Pixels per CSS pixel of the PNGs in the book (sharp on high-density screens)."""


def png_for_column(fig: plt.Figure) -> tuple[bytes, int]:
    """The figure as PNG bytes at :data:`SCALE` x, and its width in CSS px (at most the column's), then closed.

    A figure wider than the column is narrowed to it (text keeps its point size, so it grows relative to the plot
    instead of being shrunk by the browser); when labels or a legend outside the axes still make the saved image
    wider, it is narrowed once more by that excess and saved again."""
    import io

    column_px = 100 * COLUMN_INCHES
    width, height = fig.get_size_inches()
    data, pixels = b"", 0
    for _ in range(3):
        if width > COLUMN_INCHES or pixels:
            new = min(width, COLUMN_INCHES) if not pixels else width * column_px / (pixels / SCALE) * 0.98
            fig.set_size_inches(new, height * max(0.75, new / width))
            if not fig.get_constrained_layout():
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fig.tight_layout()
            width, height = fig.get_size_inches()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100 * SCALE, bbox_inches="tight")
        data = buffer.getvalue()
        pixels = int.from_bytes(data[16:20], "big")  # the PNG header's width
        if pixels / SCALE <= column_px:
            break
    plt.close(fig)
    return data, min(round(pixels / SCALE), round(column_px))


def for_column(fig: plt.Figure) -> Any:
    """The figure as an IPython PNG image sized for the book's column (:func:`png_for_column`), then closed."""
    from IPython.display import Image

    data, width = png_for_column(fig)
    return Image(data=data, format="png", width=max(1, width))


def _png_formatter(fig: plt.Figure) -> tuple[bytes, dict[str, int]]:
    data, width = png_for_column(fig)
    return data, {"width": max(1, width)}


def use_column_figures() -> bool:
    """Make ``display(fig)`` of any matplotlib figure in this IPython kernel show it as :func:`for_column` does
    (a 2x PNG no wider than the book's column). Called when the chapters package is imported (every chapter
    notebook imports it); returns whether a kernel was found."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the book extra
        return False
    shell = get_ipython()
    if shell is None:
        return False
    plt.close(plt.figure())  # loads the inline backend now, which would otherwise replace this formatter later
    shell.display_formatter.formatters["image/png"].for_type(plt.Figure, _png_formatter)
    return True


class Figures:
    """Numbered figures of one chapter: ``figures.show(fig, caption)`` displays the figure (:func:`for_column`),
    closes it and shows "**Figure n.** caption" under it (n counts from 1 per chapter)."""

    def __init__(self) -> None:
        self.count = 0

    def show(self, fig: plt.Figure, caption: str) -> None:
        from IPython.display import Markdown, display

        if not caption.strip():
            raise ValueError("a figure needs a caption that states what it shows")
        self.count += 1
        display(for_column(fig))
        display(Markdown(f"**Figure {self.count}.** {caption}"))


def zoom_near_top(
    ax: Any, *, above: float = 0.9, bounds: tuple[float, float, float, float] = (0.42, 0.06, 0.55, 0.36)
) -> Any:
    """An inset that repeats the lines of ``ax`` lying wholly above ``above`` on a y-range fitted to them, when two or
    more lie there (on a 0-1 axis they would coincide); returns the inset or None. Horizontal reference lines count
    as lines. Call it after the axes' scales and limits are set."""
    top = [ln for ln in ax.get_lines() if len(ln.get_ydata()) and np.nanmin(np.asarray(ln.get_ydata(), float)) >= above]
    if len(top) < 2:
        return None
    inset = ax.inset_axes(list(bounds))
    lo = min(float(np.nanmin(np.asarray(ln.get_ydata(), float))) for ln in top)
    hi = max(float(np.nanmax(np.asarray(ln.get_ydata(), float))) for ln in top)
    for ln in top:
        x, y = ln.get_xdata(), ln.get_ydata()
        if ln.get_transform() != ax.transData:  # axhline: spans the axes in x
            inset.axhline(float(y[0]), color=ln.get_color(), ls=ln.get_linestyle(), lw=ln.get_linewidth())
        else:
            inset.plot(x, y, color=ln.get_color(), ls=ln.get_linestyle(), marker=ln.get_marker(), ms=2)
    pad = max(0.002, 0.15 * (hi - lo))
    inset.set_ylim(lo - pad, hi + pad)
    inset.set_xscale(ax.get_xscale(), **({"base": 2} if ax.get_xscale() == "log" else {}))
    inset.set_xlim(ax.get_xlim())
    inset.set_xticks([])
    inset.tick_params(labelsize=7)
    inset.set_title("zoom", fontsize=7, pad=2)
    return inset


def activation_histogram(
    acts_N: np.ndarray, labels_N: np.ndarray, names: Sequence[str] = ("other", "target"), title: str = ""
) -> plt.Figure:
    """Histogram of one neuron's activations, positives against negatives (densities, shared bins)."""
    frame = pd.DataFrame({"activation": np.asarray(acts_N, dtype=float), "class": np.where(labels_N, *names[::-1])})
    fig, ax = plt.subplots(figsize=(5.5, 3))
    sns.histplot(data=frame, x="activation", hue="class", stat="density", common_norm=False, bins=40, ax=ax)
    ax.set(title=title)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {
    "reproduced": "#1b7837",
    "not reproduced": "#b2182b",
    "differs": "#762a83",
    "differs in part": "#e08214",
    "inconclusive": "#737373",
}
"""One colour per verdict, the same in every figure."""


def claims_figure(claims: Sequence[Any], clip: tuple[float, float] = (-2.0, 6.0)) -> plt.Figure | None:
    """The book's headline figure: per tested claim (:class:`~sparse_probing.analysis.verdicts.ClaimEvidence`; a
    claim with parts gives one row per part), the estimate and its 95% interval divided by the minimal effect of
    interest (1: the smallest effect that counts as the paper's finding; 0: none), coloured by its verdict. Interval
    ends beyond ``clip`` are drawn at the edge with their value. None when no claim has an estimate to draw."""
    from sparse_probing.analysis.verdicts import verdict

    rows = []
    for claim in claims:
        for part in claim.parts or (claim,):
            if part.not_testable or not (np.isfinite(part.minimal_effect) and part.minimal_effect > 0):
                continue
            if part is claim or part.claim.startswith(claim.claim):
                name = part.claim
            else:
                name = f"{claim.claim}: {part.claim}"
            name = textwrap.fill(name, 48)
            ratio = [v / part.minimal_effect for v in (part.estimate, part.ci_low, part.ci_high)]
            rows.append((f"{name} ({claim.chapter[:2]})", *ratio, verdict(part)))
    if not rows:
        return None
    lo_clip, hi_clip = clip
    lines = sum(r[0].count("\n") + 1 for r in rows)
    fig, ax = plt.subplots(figsize=(COLUMN_INCHES, 0.17 * lines + 0.12 * len(rows) + 1.1))
    for yi, (_, est, lo, hi, v) in zip(range(len(rows))[::-1], rows, strict=True):
        colour = VERDICT_COLOURS.get(v, "black")
        ax.plot([max(lo, lo_clip), min(hi, hi_clip)], [yi, yi], color=colour, lw=2.5, solid_capstyle="butt")
        if lo_clip <= est <= hi_clip:
            ax.plot([est], [yi], "o", color=colour, ms=6)
        for value, edge, sign in ((lo, lo_clip, -1), (hi, hi_clip, 1)):
            if sign * (value - edge) > 0:
                ax.annotate(f"{value:.1f}", (edge, yi), xytext=(3 * sign, 3), textcoords="offset points", fontsize=8,
                            ha="left" if sign > 0 else "right", color=colour)  # fmt: skip
    ax.axvline(0, color="black", lw=1)
    ax.axvline(1, color="black", lw=1, ls=":")
    ax.set_yticks(range(len(rows))[::-1], [r[0] for r in rows], fontsize=8.5)
    ax.set_xlim(lo_clip - 0.2, hi_clip + 0.2)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("our estimate / the claim's minimal effect of interest (95% interval)")
    seen = {r[4] for r in rows}
    handles = [
        plt.Line2D([], [], color=c, lw=2.5, marker="o", label=v) for v, c in VERDICT_COLOURS.items() if v in seen
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
              frameon=False)  # fmt: skip
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def long_table(table: Any, rows: int = 10, what: str = "rows") -> Any:
    """A table (DataFrame or Styler) for the page, its first ``rows`` rows shown and the rest in a dropdown, so a
    long table does not push the text below it off the screen. Returns an IPython HTML object."""
    from IPython.display import HTML

    styler = table if hasattr(table, "to_html") and hasattr(table, "data") else table.style.hide(axis="index")
    frame = styler.data
    if len(frame) <= rows + 2:
        return HTML(styler.to_html())
    head = styler.hide(frame.index[rows:], axis="index").to_html()
    styler.hide(axis="index", subset=[])  # show every row again
    full = styler.to_html()
    return HTML(f"{head}<details><summary>All {len(frame)} {what}</summary>{full}</details>")
