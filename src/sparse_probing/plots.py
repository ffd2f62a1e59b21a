"""Seaborn figures shared by the chapters. Each function takes tidy data and returns the matplotlib Figure."""

from __future__ import annotations

from collections.abc import Sequence

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


class Figures:
    """Numbered figures of one chapter: ``figures.show(fig, caption)`` displays the figure, closes it and shows
    "**Figure n.** caption" under it (n counts from 1 per chapter)."""

    def __init__(self) -> None:
        self.count = 0

    def show(self, fig: plt.Figure, caption: str) -> None:
        from IPython.display import Markdown, display

        if not caption.strip():
            raise ValueError("a figure needs a caption that states what it shows")
        self.count += 1
        display(fig)
        plt.close(fig)
        display(Markdown(f"**Figure {self.count}.** {caption}"))


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
