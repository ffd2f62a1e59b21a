"""The report of the SAE chapter (:mod:`sparse_probing.chapters.sae`): its display tables, figures, captions and
findings, all computed from an :class:`~sparse_probing.chapters.sae.SAEResult`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .sae import BASES, SINGLE, SAEResult, broad_table, false_positive_rates, k_table, paired

__all__ = [
    "bigram_table",
    "caption_broad",
    "caption_k",
    "caption_quality",
    "caption_toys",
    "findings",
    "k_pivot",
    "plot_broad",
    "plot_k",
    "plot_quality",
    "plot_toys",
    "quality_table",
]


def quality_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Per model: the SAE's size and quality on held-out positions, and the loss with its reconstruction spliced in."""
    cols = {"model": "model", "layer": "layer", "d": "neurons", "n_latents": "latents", "k": "k",
            "train_positions": "training positions", "fve": "FVE", "l0": "L0", "dead": "dead latents",
            "clean": "loss", "spliced": "loss, SAE spliced in", "mean_ablated": "loss, site mean-ablated",
            "recovered": "loss recovered", "train_s": "training s"}  # fmt: skip
    return quality[[c for c in cols if c in quality.columns]].rename(columns=cols).round(3)


def k_pivot(probes: pd.DataFrame, ks: Sequence[int] = (1, 2, 5)) -> pd.DataFrame:
    """Mean test F1 per model and basis at the given k (columns), as SAEBench reports k = 1, 2, 5."""
    t = k_table(probes)
    t = t[t["k"].isin(list(ks))]
    return t.pivot_table(index=["model", "basis"], columns="k", values="f1_test", sort=False).round(3).reset_index()


def bigram_table(broad: pd.DataFrame, model: str) -> pd.DataFrame:
    """Per bigram of one model: the test AP of the best single unit of each basis and latent minus neuron."""
    d = broad[broad["model"] == model].pivot_table(index="task", columns="basis", values="ap", aggfunc="first")
    d = d[[b for b in BASES if b in d.columns]]
    if {"SAE latents", "neurons"} <= set(d.columns):
        d["latent minus neuron"] = d["SAE latents"] - d["neurons"]
        d = d.sort_values("latent minus neuron", ascending=False)
    return d.round(3).reset_index().rename(columns={"task": "bigram"})


COLORS = {"neurons": "C0", "SAE latents": "C2", "random rotation": "C7"}


def plot_quality(result: SAEResult) -> Any:
    """Per model: the distribution of the latents' firing frequencies on held-out positions (log scale), dead
    latents counted at the left edge."""
    import matplotlib.pyplot as plt

    models = list(result.frequencies)
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(3.9 * max(1, len(models)), 2.9), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        f = np.asarray(result.frequencies[model], dtype=float)
        floor = 1.0 / max(1, int(result.quality.set_index("model").loc[model, "test_positions"]))
        ax.hist(np.log10(np.maximum(f, floor / 10)), bins=40, color=COLORS["SAE latents"])
        ax.axvline(np.log10(floor), color="black", lw=0.8, ls=":")
        ax.set(title=model, xlabel="log10 firing frequency", ylabel="latents")
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_quality(result: SAEResult) -> str:
    q = result.quality
    parts = [f"{r.model} layer {r.layer}: {r.n_latents} latents, FVE {r.fve:.2f}, L0 {r.l0:.1f}, {r.dead} dead"
             for r in q.itertuples(index=False)]  # fmt: skip
    return ("Firing frequency of every SAE latent on the held-out test positions (log scale; the dotted line is one "
            "firing in the sample, latents left of it never fired: dead). " + "; ".join(parts) + ".")  # fmt: skip


def plot_k(result: SAEResult) -> Any:
    """Per model: balanced-task mean test F1 against k for each basis."""
    import matplotlib.pyplot as plt

    t = k_table(result.probes)
    models = list(dict.fromkeys(t["model"]))
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(3.9 * max(1, len(models)), 3.0), squeeze=False,
                             sharey=True)  # fmt: skip
    for ax, model in zip(axes[0], models, strict=False):
        for basis in BASES:
            d = t[(t["model"] == model) & (t["basis"] == basis)]
            ax.plot(d["k"], d["f1_test"], marker="o", ms=3, color=COLORS[basis], label=basis)
        ax.set(xscale="log", title=model, xlabel="k (units in the probe)")
        ax.set_xticks(sorted(set(t["k"])), [str(k) for k in sorted(set(t["k"]))])
    axes[0][0].set_ylabel("test F1, balanced task")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_k(result: SAEResult) -> str:
    return (
        "Mean test F1 over the paper's bigrams on the balanced task (positives against hard negatives) against the "
        f"number of units k, in each basis of the same layer: k = 1 is the exhaustively searched best single unit, "
        f"k > 1 the top-k units by {result.config.method} with an L2 logistic regression."
    )


def plot_broad(result: SAEResult) -> Any:
    """Per model: per bigram, the broad-sample AP of the best single latent (and rotated direction) against that of
    the best single neuron."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(result.broad["model"]))
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(3.6 * max(1, len(models)), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=False):
        d = result.broad[result.broad["model"] == model].pivot_table(index="task", columns="basis", values="ap")
        for basis in ("SAE latents", "random rotation"):
            if basis in d.columns:
                ax.scatter(d["neurons"], d[basis], s=16, color=COLORS[basis], label=basis)
        ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls=":")
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), title=model, xlabel="best single neuron, AP",
               ylabel="best single unit of the other basis, AP")  # fmt: skip
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_broad(result: SAEResult) -> str:
    t = broad_table(result.broad).set_index(["model", "basis"])["AP"]
    parts = [f"{m}: " + ", ".join(f"{b} {t[(m, b)]:.2f}" for b in BASES if (m, b) in t.index)
             for m in dict.fromkeys(result.broad["model"])]  # fmt: skip
    return (
        "Average precision for each bigram over every token position of held-out text (the test split's compound-word "
        "contexts and ordinary text): the best single SAE latent (green) and the best single direction of a random "
        "rotation (grey) against the best single neuron, each chosen per bigram on the validation split's broad "
        "sample. Above the diagonal the other basis is more specific. Mean AP: " + "; ".join(parts) + "."
    )


def plot_toys(result: SAEResult) -> Any:
    """Toys: per represented half-feature, the best latent's balanced-task ROC-AUC and natural-sample AP against the
    best neuron's, superposed and dedicated half-features apart."""
    import matplotlib.pyplot as plt

    f = result.toy_features
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 3.4))
    for ax, (value, label) in zip(axes, (("auc", "balanced-task ROC-AUC"), ("ap", "AP, toy's inputs")), strict=True):
        for status, marker in (("superposed", "o"), ("dedicated", "s")):
            d = f[f["status"] == status] if len(f) else f
            if len(d):
                ax.scatter(d[f"neuron_{value}"], d[f"latent_{value}"], s=14, marker=marker, alpha=0.7,
                           label=f"{status} ({len(d)})")  # fmt: skip
        lo = 0.4 if value == "auc" else 0.0
        ax.plot([lo, 1], [lo, 1], color="black", lw=0.8, ls=":")
        ax.set(xlim=(lo, 1.02), ylim=(lo, 1.02), xlabel=f"best single neuron, {label}",
               ylabel=f"best single latent, {label}")  # fmt: skip
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_toys(result: SAEResult) -> str:
    rates = false_positive_rates(result.toy_features)
    n = len(result.toys)
    return (
        f"Toy models with known features ({n} toy{'s' if n != 1 else ''}): per represented half-feature, the best single SAE latent against "
        "the best single neuron, on a held-out balanced task (left) and over the toy's own input distribution "
        "(right). Half-features with a dedicated neuron (squares) and superposed ones (circles) by ground truth. The "
        f"dedicated rule names a non-dedicated unit on {rates['neurons']:.2f} of superposed half-features for "
        f"neurons and {rates['SAE latents']:.2f} for latents."
    )


def findings(result: SAEResult, claims: Sequence[Any]) -> str:
    """The chapter's findings in sentences, every difference with its 95% interval."""
    from ..analysis.verdicts import describe_difference, verdict_and_reason

    lines = []
    for c in claims:
        v, why = verdict_and_reason(c)
        lines.append(f"- **{c.claim}**: {v} ({why}).")
    for model in dict.fromkeys(result.broad["model"]):
        wide = result.broad[result.broad["model"] == model].pivot_table(index="task", columns="basis", values="ap")
        for other in ("SAE latents", "random rotation"):
            if other in wide.columns:
                d = paired(wide[other], wide["neurons"])
                lines.append(f"- {model}, broad sample: " + describe_difference(
                    f"the best single {'latent' if other == 'SAE latents' else 'rotated direction'}",
                    "the best single neuron", d["mean_diff"], d["low"], d["high"], unit="AP"))  # fmt: skip
        p = result.probes[(result.probes["model"] == model) & (result.probes["scorer"] == SINGLE)]
        w = p.pivot_table(index="task", columns="basis", values="f1_test")
        if {"SAE latents", "neurons"} <= set(w.columns):
            d = paired(w["SAE latents"], w["neurons"])
            lines.append(f"- {model}, balanced task at k = 1: " + describe_difference(
                "the best single latent", "the best single neuron", d["mean_diff"], d["low"], d["high"],
                unit="F1"))  # fmt: skip
    for r in result.quality.itertuples(index=False):
        loss = (f"; next-token loss {r.clean:.3f} as is, {r.spliced:.3f} with the reconstruction spliced in, "
                f"{r.mean_ablated:.3f} with the site mean-ablated ({r.recovered:.2f} of the site's loss recovered)"
                if hasattr(r, "spliced") and pd.notna(r.spliced) else "")  # fmt: skip
        lines.append(f"- {r.model} layer {r.layer} SAE: FVE {r.fve:.3f} on held-out positions, L0 {r.l0:.1f}, "
                     f"{r.dead} of {r.n_latents} latents dead{loss}.")  # fmt: skip
    return "\n".join(lines) + "\n"
