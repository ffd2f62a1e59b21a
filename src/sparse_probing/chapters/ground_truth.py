"""Ground truth: the power of the superposition diagnostics on toy models whose truth is known.

The superposition chapter asks whether early-layer neurons hold features in superposition with the diagnostics of
Gurnee et al. (2023). A negative diagnostic only means something if it could have come out positive, so this module
measures each diagnostic's power and false-positive rate on toy models of superposition (Elhage et al., 2022) with
:mod:`sparse_probing.analysis.calibration`:

* the power study (:func:`~sparse_probing.analysis.calibration.run_power`): toys per activation, feature probability
  and seed; every diagnostic run on tasks whose ground truth is known, at the book's training-set size and a large
  one; detection rates per diagnostic and regime (:func:`~sparse_probing.analysis.calibration.power_table`), those
  at the book's size (:func:`power_at_book_size`, read by other chapters through
  :func:`sparse_probing.analysis.verdicts.calibrated_rates`), the power by true effect size
  (:func:`~sparse_probing.analysis.calibration.power_by_effect`), the dedicated-neuron rule's false positives
  (:func:`dedicated_finding`) and the weight fingerprint's detection rate. The sizes are the superposition
  chapter's, read from its results (:func:`resolve_sizes`);
* a width-scaling family of ReLU toys (:func:`~sparse_probing.analysis.calibration.width_scaling`) and the log-log
  slope of loss against width;
* on real models: the neuron basis against random rotations per MLP site
  (:func:`~sparse_probing.analysis.weights.basis_comparison`), activation sparsity and the weight fingerprint.

:func:`run` returns a :class:`GroundTruthResult` of tidy tables; the table, figure, caption and summary functions
below turn it into the chapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import calibration as cal
from ._config import ChapterConfig
from .superposition import MIN_GAIN

__all__ = [
    "DIAGNOSTICS",
    "SITES",
    "WIDTH_COLUMNS",
    "GroundTruthConfig",
    "GroundTruthResult",
    "basis_display",
    "basis_site_table",
    "book_size_intro",
    "book_size_table",
    "caption_basis",
    "caption_fingerprint",
    "caption_power",
    "caption_sparsity",
    "caption_truth",
    "caption_width",
    "dedicated_finding",
    "effect_table",
    "findings",
    "fmt_rate",
    "no_bias_note",
    "plot_basis",
    "plot_fingerprint",
    "plot_power",
    "plot_sparsity",
    "plot_truth",
    "plot_width",
    "power_at_book_size",
    "power_pivot",
    "rate",
    "resolve_sizes",
    "rules_table",
    "run",
    "styled",
    "summary_lines",
    "truth_table",
    "weight_fingerprint_table",
    "width_table",
]

DIAGNOSTICS: tuple[str, ...] = ("gain", "random_basis", "pruning", "osp", "dedicated")
"""The diagnostics calibrated, in the order of the summary."""

SITES: tuple[str, ...] = ("gate", "up", "post", "resid")
"""MLP sites of the gated-basis comparison (those a model has)."""


@dataclass(frozen=True)
class GroundTruthConfig(ChapterConfig):
    """Parameters of the ground-truth chapter (one field per notebook parameter)."""

    variant: str = "default"
    """``smoke`` (tests), ``default`` (the book) or ``paper`` (bigger sweeps); also the basis dataset's variant."""
    seed: int = 0
    """Seed of the rotations and of the basis comparison's split."""
    toy_activations: tuple[str, ...] = ("relu", "gated")
    """The twins (toy activations)."""
    toy_probabilities: tuple[float, ...] = (1.0, 0.1, 0.03)
    """Feature probabilities p (1: dense)."""
    toy_seeds: tuple[int, ...] = tuple(range(10))
    """One model per seed and cell (at least 10 for rates worth a second decimal)."""
    n_features: int = 20
    """Features n of the power study."""
    n_hidden: int = 10
    """Neurons m of the power study."""
    n_steps: int = 1500
    """Adam steps per toy."""
    n_tasks: int = 21
    """Tasks per study (replaced by the chapter's own count when ``sizes_from`` has results)."""
    n_trains: tuple[int, ...] = (300, 2000)
    """Training rows per task: the book's first (replaced by the chapter's when ``sizes_from`` has results), the
    largest is the reference size that gives each study's true effect."""
    osp_n_trains: tuple[int, ...] = (300,)
    """Sample sizes at which the optimal probe runs (it is slow); the book's size follows ``sizes_from``."""
    n_test: int = 0
    """Test rows per task (0: as many as validation rows; replaced by the chapter's when ``sizes_from`` has
    results)."""
    sizes_from: str = "03_superposition"
    """Chapter whose results give the real sizes (tasks, training and test rows per task); "" keeps the values above."""
    sizes_family: str = "paper_compound_words"
    """Family of that chapter whose tasks are counted."""
    gain_min_effect: float = MIN_GAIN
    """The gain diagnostic fires when its CI lies above this: the superposition claim's minimal effect."""
    n_jobs: int = 1
    """Processes of the power study (the tables do not depend on it)."""
    ks: tuple[int, ...] = (1, 2, 4, 8)
    """Sparsity levels of the sparse probe."""
    method: str = "mean_diff"
    """The sparse probe of the gain and random-basis diagnostics."""
    n_rotations: int = 2
    """Haar rotations per task."""
    pruning_k: int = 3
    """Sparsity of the pruned probe."""
    osp_k: int = 2
    """Sparsity of the optimal-vs-heuristic comparison."""
    n_boot: int = 1000
    """Bootstrap resamples of every interval over tasks."""
    widths: tuple[int, ...] = (4, 8, 16, 32)
    """Widths m of the scaling family."""
    width_features: int = 40
    """Features n of the scaling family."""
    width_probability: float = 0.03
    """Feature probability of the scaling family."""
    width_seeds: tuple[int, ...] = (0, 1)
    """Seeds per width."""
    width_train: int = 2000
    """Training rows per task in the scaling family."""
    basis_models: tuple[str, ...] = ("smollm2-135m", "gemma-3-270m", "mini-4")
    """Real models of the gated-basis comparison (empty: the section is skipped)."""
    basis_layers: int = 6
    """Layers per model, evenly spaced from the first to the last."""
    basis_dataset: str = "compound_words"
    """Text of the gated-basis comparison (its dataset variant is ``variant``)."""
    basis_documents: int = 200
    """Documents of that dataset."""
    max_length: int = 64
    """Context length in tokens."""

    def __post_init__(self) -> None:
        from ..analysis.toy_models import ACTIVATIONS
        from ..probes.ranking import RANKERS

        need = self.require

        def positive(name: str, values: Sequence[int | float]) -> None:
            need(bool(values), f"{name} is empty; give at least one value")
            need(all(v > 0 for v in values), f"{name} must be positive, got {list(values)}")
            need(len(set(values)) == len(values), f"{name} repeat: {list(values)}")

        need(
            self.variant in ("smoke", "default", "paper"),
            f"variant must be smoke, default or paper, got {self.variant!r}",
        )
        need(bool(self.toy_activations), "toy_activations is empty; name at least one of " + ", ".join(ACTIVATIONS))
        bad = sorted(set(self.toy_activations) - set(ACTIVATIONS))
        need(not bad, f"unknown toy_activations {bad}; choose from {list(ACTIVATIONS)}")
        positive("toy_probabilities", self.toy_probabilities)
        need(
            all(p <= 1 for p in self.toy_probabilities),
            f"toy_probabilities must lie in (0, 1], got {list(self.toy_probabilities)}",
        )
        need(bool(self.toy_seeds), "toy_seeds is empty; give at least one seed")
        need(self.n_features >= 2, f"n_features must be at least 2, got {self.n_features}")
        need(1 <= self.n_hidden, f"n_hidden must be at least 1, got {self.n_hidden}")
        need(self.n_steps >= 1, f"n_steps must be at least 1, got {self.n_steps}")
        need(self.n_tasks >= 3, f"n_tasks must be at least 3 (a study needs 3 tasks), got {self.n_tasks}")
        positive("n_trains", self.n_trains)
        need(self.n_test >= 0, f"n_test must be 0 (as many as validation rows) or positive, got {self.n_test}")
        need(self.gain_min_effect >= 0, f"gain_min_effect must be >= 0, got {self.gain_min_effect}")
        need(self.n_jobs >= 1, f"n_jobs must be at least 1, got {self.n_jobs}")
        stray = sorted(set(self.osp_n_trains) - set(self.n_trains))
        need(not stray, f"osp_n_trains {stray} are not among n_trains {list(self.n_trains)}")
        positive("ks", self.ks)
        need(1 in self.ks, f"ks must include 1 (the gain diagnostic compares against k = 1), got {list(self.ks)}")
        need(self.method in RANKERS, f"method must be one of {list(RANKERS)}, got {self.method!r}")
        need(self.n_rotations >= 1, f"n_rotations must be at least 1, got {self.n_rotations}")
        need(self.pruning_k >= 1, f"pruning_k must be at least 1, got {self.pruning_k}")
        need(self.osp_k >= 1, f"osp_k must be at least 1, got {self.osp_k}")
        need(self.n_boot >= 1, f"n_boot must be at least 1, got {self.n_boot}")
        positive("widths", self.widths)
        need(self.width_features >= 2, f"width_features must be at least 2, got {self.width_features}")
        need(0 < self.width_probability <= 1, f"width_probability must lie in (0, 1], got {self.width_probability}")
        need(bool(self.width_seeds), "width_seeds is empty; give at least one seed")
        need(self.width_train >= 10, f"width_train must be at least 10, got {self.width_train}")
        need(len(set(self.basis_models)) == len(self.basis_models), f"basis_models repeat: {list(self.basis_models)}")
        need(self.basis_layers >= 1, f"basis_layers must be at least 1, got {self.basis_layers}")
        need(self.basis_documents >= 1, f"basis_documents must be at least 1, got {self.basis_documents}")
        need(self.max_length >= 2, f"max_length must be at least 2 tokens, got {self.max_length}")

    @property
    def grid(self) -> cal.PowerGrid:
        """The power study's grid."""
        return cal.PowerGrid(
            activations=tuple(self.toy_activations), probabilities=tuple(float(p) for p in self.toy_probabilities),
            n_trains=tuple(int(n) for n in self.n_trains), seeds=tuple(int(s) for s in self.toy_seeds),
            n_tasks=self.n_tasks, n_features=self.n_features, n_hidden=self.n_hidden, n_steps=self.n_steps,
            osp_n_trains=tuple(int(n) for n in self.osp_n_trains),
        )  # fmt: skip

    @property
    def diagnostics(self) -> cal.DiagnosticsConfig:
        """The diagnostics' settings."""
        return cal.DiagnosticsConfig(
            ks=tuple(int(k) for k in self.ks), method=self.method, n_rotations=self.n_rotations,
            pruning_k=self.pruning_k, osp_k=self.osp_k, n_test=self.n_test or None,
            gain_min_effect=float(self.gain_min_effect),
        )  # fmt: skip

    def spec(self, datasets: Mapping[str, str]) -> dict[str, Any]:
        """The results file's spec (the keys the notebook has always saved)."""
        c = self.to_dict()
        keys = ("widths", "width_features", "width_probability", "width_seeds", "width_train", "basis_models",
                "basis_layers", "basis_dataset", "basis_documents", "max_length", "sizes_from", "sizes_family",
                "n_tasks", "n_test")  # fmt: skip
        return {"variant": self.variant, "seed": self.seed, "grid": self.grid, "diagnostics": self.diagnostics,
                "rules": cal.RULES, **{k: c[k] for k in keys}, "datasets": dict(datasets)}  # fmt: skip


@dataclass(frozen=True)
class GroundTruthResult:
    """What :func:`run` measured."""

    config: GroundTruthConfig
    studies: pd.DataFrame
    """One row per study (model x status x training size) with each diagnostic's verdict."""
    toys: pd.DataFrame
    """One row per trained toy: ``activation, p, seed, loss``, the ground-truth counts and the weight fingerprint."""
    scaling: pd.DataFrame
    """The width-scaling family, one row per width and seed."""
    basis: pd.DataFrame
    """Neuron basis against rotations per model, site, layer and task (empty without ``basis_models``)."""
    sparsity: pd.DataFrame
    """Activation sparsity per model and layer (``frac_active, median_kurtosis``, ``gated``)."""
    weight_fingerprint: pd.DataFrame
    """Weight fingerprint per model and layer."""
    mlp_stats: Mapping[str, pd.DataFrame]
    """Per model: every neuron's input-weight norm and bias (for the fingerprint figures)."""
    datasets: Mapping[str, str]
    """Versioned key of the basis dataset (empty without ``basis_models``)."""
    sizes_source: str = "parameters"
    """Where the power study's sizes came from (a chapter's results, or the parameters)."""

    @cached_property
    def power(self) -> pd.DataFrame:
        """Detection rate per diagnostic, activation, p, training size and status (power or false-positive rate)."""
        return cal.power_table(self.studies)

    @property
    def book_size(self) -> int:
        """The book's training rows per task (the first of ``n_trains``)."""
        return int(self.config.n_trains[0])

    @cached_property
    def by_effect(self) -> pd.DataFrame:
        """Detection rate at the book's size by true effect size (:func:`effect_table`)."""
        return effect_table(self.studies, self.book_size)

    @property
    def fingerprint(self) -> pd.DataFrame:
        """Weight-fingerprint detection rate of the toys per activation and p."""
        return cal.fingerprint_table(self.toys)

    @property
    def loss_width_slope(self) -> float:
        """Log-log slope of loss against width in the scaling family."""
        return cal.loss_width_slope(self.scaling)

    @cached_property
    def site_table(self) -> pd.DataFrame:
        """Per model and site: paired bootstrap over tasks of F1 neurons minus F1 rotated."""
        return basis_site_table(self.basis, n_boot=self.config.n_boot, seed=self.config.seed)

    def metrics(self) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results` (the keys other chapters read)."""
        site = self.site_table
        return {
            "power": self.power,
            "power_at_book_size": power_at_book_size(self.power, self.book_size).reset_index(),
            "power_by_effect": self.by_effect,
            "sizes": {
                "source": self.sizes_source,
                "n_tasks": self.config.n_tasks,
                "n_train": self.book_size,
                "n_test": self.config.n_test,
            },
            "dedicated_false_positives": dedicated_finding_table(self.power, self.book_size),
            "studies": self.studies,
            "toys": self.toys,
            "fingerprint": self.fingerprint,
            "width_scaling": self.scaling,
            "loss_width_slope": self.loss_width_slope,
            "basis": site if len(site) else [],
            "activation_sparsity": self.sparsity,
            "weight_fingerprint": self.weight_fingerprint,
        }


# ------------------------------------------------------------------------------------------------------ running
def _basis_study(config: GroundTruthConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict, dict]:
    from ..analysis import weights
    from ..datasets import load_dataset
    from ..models import load_model

    if not config.basis_models:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {}, {}
    basis_rows, sparsity_rows, fingerprint_rows, stats_by_model = [], [], [], {}
    data = load_dataset(config.basis_dataset, config.variant).subset(config.basis_documents)
    texts = [d.text for d in data.documents]
    for name in config.basis_models:
        lm = load_model(name)
        n = lm.n_layers
        layers = sorted({round(x) for x in np.linspace(0, n - 1, min(config.basis_layers, n))})
        sites, tokens = weights.mlp_sites(lm, texts, layers, max_length=config.max_length)
        labels = weights.token_property_labels(tokens)
        table = weights.basis_comparison({s: sites[s] for s in SITES if s in sites}, labels,
                                         n_rotations=config.n_rotations, method=config.method, seed=config.seed)  # fmt: skip
        basis_rows.append(table.assign(model=name, n_tokens=len(tokens)))
        sparsity_rows.append(weights.activation_sparsity(sites).assign(model=name, gated=weights.is_gated(lm)))
        stats = weights.mlp_input_stats(lm)
        stats_by_model[name] = stats
        fingerprint_rows.append(weights.fingerprint_table(stats).reset_index().assign(model=name))
        del lm, sites
    return (
        pd.concat(basis_rows, ignore_index=True),
        pd.concat(sparsity_rows, ignore_index=True),
        pd.concat(fingerprint_rows, ignore_index=True),
        stats_by_model,
        {config.basis_dataset: data.key},
    )


def resolve_sizes(
    config: GroundTruthConfig, records: Sequence[Mapping[str, Any]] | None = None
) -> tuple[GroundTruthConfig, str]:
    """The config with the power study's sizes (tasks, the book's training rows, test rows) replaced by those of
    ``config.sizes_from`` (read from results records; by default the current results, then the published ones),
    and where they came from. Unchanged, with a note, when that chapter has no results."""
    from dataclasses import replace

    if not config.sizes_from:
        return config, "parameters"
    if records is None:
        from ..results import RESULTS_DIR, load_results, results_dir

        dirs = [d for d in (results_dir(), RESULTS_DIR) if d.is_dir()]
        records = [r for d in dict.fromkeys(dirs) for r in load_results(d)]
    sizes = cal.chapter_sizes(records, config.sizes_from, config.sizes_family or None)
    if sizes is None:
        return config, f"parameters (no results of {config.sizes_from} found)"
    old = config.n_trains[0]
    n_trains = (sizes.n_train, *(n for n in config.n_trains[1:] if n != sizes.n_train))
    osp = tuple(dict.fromkeys(sizes.n_train if n == old else n for n in config.osp_n_trains))
    resolved = replace(config, n_tasks=max(3, sizes.n_tasks), n_trains=n_trains, osp_n_trains=osp, n_test=sizes.n_test)
    return resolved, (
        f"{sizes.source}: {sizes.n_tasks} tasks, median {sizes.n_train} training and {sizes.n_test} test rows per "
        f"task (fewest test positives {sizes.min_test_positives})"
    )


def run(config: GroundTruthConfig) -> GroundTruthResult:
    """The power study (at the sizes of :func:`resolve_sizes`), the width-scaling family and the gated-basis
    comparison on real models."""
    config, sizes_source = resolve_sizes(config)
    studies, toys = cal.run_power(config.grid, config.diagnostics, n_boot=config.n_boot, n_jobs=config.n_jobs)
    scaling = cal.width_scaling(
        config.widths, n_features=config.width_features, feature_probability=config.width_probability,
        seeds=config.width_seeds, n_steps=config.n_steps, n_train=config.width_train, method=config.method,
    )  # fmt: skip
    basis, sparsity, fingerprints, stats, datasets = _basis_study(config)
    return GroundTruthResult(config=config, studies=studies, toys=toys, scaling=scaling, basis=basis,
                             sparsity=sparsity, weight_fingerprint=fingerprints, mlp_stats=stats, datasets=datasets,
                             sizes_source=sizes_source)  # fmt: skip


# ------------------------------------------------------------------------------------------------ pure tables
def fmt_rate(x: float) -> str:
    """A rate with two decimals, or ``n/a (no such study)`` when it is missing."""
    return f"{x:.2f}" if np.isfinite(x) else "n/a (no such study)"


def rate(power: pd.DataFrame, diagnostic: str, kind: str, n_train: int, how: str = "mean") -> float:
    """Detection rate of ``diagnostic`` of ``kind`` (power / false positive rate) at ``n_train`` over the regimes,
    summarised by ``how`` (``mean``, ``min`` or ``max``); NaN if none."""
    if power.empty:
        return float("nan")
    part = power[(power["diagnostic"] == diagnostic) & (power["kind"] == kind) & (power["n_train"] == n_train)]
    return float(part["rate"].agg(how)) if len(part) else float("nan")


def power_at_book_size(power: pd.DataFrame, n_train: int) -> pd.DataFrame:
    """Per diagnostic and regime (index: diagnostic, activation, p): power and false-positive rate at ``n_train``,
    never averaged across regimes (a rule can be fine in one regime and always wrong in another)."""
    book = power[power["n_train"] == n_train]
    return book.groupby(["diagnostic", "activation", "p", "kind"])["rate"].mean().unstack("kind")


def effect_table(studies: pd.DataFrame, n_train: int) -> pd.DataFrame:
    """Detection rate at ``n_train`` by true effect (:func:`~sparse_probing.analysis.calibration.power_by_effect`)."""
    return cal.power_by_effect(studies, n_train)


def dedicated_finding_table(power: pd.DataFrame, n_train: int) -> pd.DataFrame:
    """Per regime: how often the dedicated-neuron rule (single-neuron ROC-AUC >= 0.95 on a balanced task) fires on
    superposed features (false positive) and on dedicated ones (power), at ``n_train``."""
    d = power[(power["diagnostic"] == "dedicated") & (power["n_train"] == n_train)]
    if d.empty:
        return pd.DataFrame(columns=["activation", "p", "false positive rate", "power", "n_studies"])
    out = d.pivot_table(index=["activation", "p"], columns="kind", values="rate", aggfunc="mean")
    n = d[d["kind"] == "false positive rate"].groupby(["activation", "p"])["n_studies"].sum()
    return out.join(n.rename("n_studies")).reset_index()


def dedicated_finding(power: pd.DataFrame, n_train: int) -> str:
    """The finding on the dedicated-neuron rule, with its numbers per regime."""
    t = dedicated_finding_table(power, n_train)
    if t.empty or "false positive rate" not in t.columns:
        return "The dedicated-neuron rule was not calibrated in this run."
    fpr = t.dropna(subset=["false positive rate"]).sort_values("false positive rate", ascending=False)
    if fpr.empty:
        return "No superposed features were probed in this run, so the rule's false-positive rate is unknown."
    worst = fpr.iloc[0]
    regimes = "; ".join(
        f"{r.activation} p = {r.p:g}: {r['false positive rate']:.2f} ({int(r.n_studies)} studies)"
        for _, r in fpr.iterrows()
    )
    if worst["false positive rate"] < 0.05:
        return (
            f"**Finding:** the dedicated-neuron rule (single-neuron held-out ROC-AUC >= 0.95) fired on superposed "
            f"features in at most {worst['false positive rate']:.2f} of studies at {n_train} training rows "
            f"({regimes})."
        )
    return (
        f"**Finding:** a single neuron with held-out ROC-AUC >= 0.95 on a balanced task is not evidence of a "
        f"dedicated neuron. At {n_train} training rows the rule fires on features that are in superposition in "
        f"{worst['false positive rate']:.2f} of studies in the {worst.activation} toys with p = {worst.p:g}, the "
        f"worst regime (per regime: {regimes}). A good k = 1 score must be paired with a test of what else the "
        "neuron responds to before it is called dedicated."
    )


def truth_table(toys: pd.DataFrame) -> pd.DataFrame:
    """Per activation and p: mean over seeds of the ground-truth counts and the loss."""
    cols = ["n_dedicated", "n_superposed", "n_absent", "n_feature_dedicated", "mean_neuron_features", "loss"]
    return toys.groupby(["activation", "p"])[cols].mean().reset_index()


def styled(table: pd.DataFrame, digits: int = 3) -> Any:
    """``table`` for the page: no index, ``digits`` decimals, missing cells written ``n/a``."""
    return table.style.hide(axis="index").format(precision=digits, na_rep="n/a")


def rules_table() -> pd.DataFrame:
    """The detection rules, one row per diagnostic."""
    return pd.DataFrame({"diagnostic": list(cal.RULES), "detected when": list(cal.RULES.values())})


def power_pivot(power: pd.DataFrame) -> pd.DataFrame:
    """Detection rates with one row per diagnostic, status and kind and one column per twin, p and training size."""
    pivot = power.pivot_table(index=["diagnostic", "status", "kind"], columns=["activation", "p", "n_train"],
                              values="rate")  # fmt: skip
    pivot.columns = [f"{a}, p={p:g}, n={n}" for a, p, n in pivot.columns]
    return pivot.reset_index()


def basis_site_table(basis: pd.DataFrame, *, n_boot: int, seed: int) -> pd.DataFrame:
    """Per model and site: paired bootstrap over tasks (each task's mean over layers) of F1 neurons - F1 rotated.

    Columns ``model, site, tasks, F1 neurons, F1 rotated, difference, low, high``; empty without a basis table.
    """
    from ..analysis.statistics import paired_bootstrap

    if basis.empty:
        return pd.DataFrame()
    site_summary = {}
    for (name, site), part in basis.groupby(["model", "site"]):
        per_task = part.groupby("task")[["f1_neurons", "f1_rotated"]].mean()
        site_summary[(name, site)] = pd.Series(
            paired_bootstrap(per_task["f1_neurons"], per_task["f1_rotated"], n_boot=n_boot, random_state=seed)
        )
    site_table = pd.DataFrame(site_summary).T[["n_tasks", "mean_a", "mean_b", "mean_diff", "low", "high"]]
    site_table.columns = ["tasks", "F1 neurons", "F1 rotated", "difference", "low", "high"]
    return site_table.reset_index(names=["model", "site"])


def basis_display(site_table: pd.DataFrame) -> pd.DataFrame:
    """The site table for the page: the difference with its 95% interval on one line."""
    from ..analysis.verdicts import format_ci

    out = site_table[["model", "site", "tasks", "F1 neurons", "F1 rotated"]].copy()
    out["tasks"] = out["tasks"].astype(int)
    out["difference (95% CI)"] = [
        format_ci(d, lo, hi) for d, lo, hi in site_table[["difference", "low", "high"]].itertuples(index=False)
    ]
    return out


def summary_lines(power: pd.DataFrame, n_trains: Sequence[int], slope: float) -> str:
    """Markdown: per diagnostic, the range over regimes of its power and false-positive rate at each training size
    where it was studied (of ``n_trains`` and the sizes in ``power``); then the width slope."""
    sizes = sorted(set(n_trains) | set(power["n_train"].unique() if len(power) else ()))
    lines = []
    for d in DIAGNOSTICS:
        cells = [f"power {_range(power, d, 'power', n)}, false-positive rate {_range(power, d, 'false positive rate', n)} "
                 f"at {n} rows" for n in sizes if _studied(power, d, n)]  # fmt: skip
        lines.append(f"- **{d}**: " + ("; ".join(cells) if cells else "not studied in this run") + ".")
    return "\n".join(lines) + (
        f"\n\nLoss against width in the scaling family: slope {slope:.2f} on a log-log scale (-1 means loss falls as 1/m)."
    )


def _studied(power: pd.DataFrame, diagnostic: str, n_train: int) -> bool:
    return any(np.isfinite(rate(power, diagnostic, kind, n_train)) for kind in ("power", "false positive rate"))


def findings(result: GroundTruthResult) -> str:
    """What the chapter establishes, as markdown bullets for the box that opens it: the dedicated-neuron finding,
    each diagnostic's power (range over regimes) and worst false-positive rate at the book's size, the width slope."""
    power, n = result.power, result.book_size
    lines = [f"- {dedicated_finding(power, n)}"]
    for d in DIAGNOSTICS:
        if not _studied(power, d, n):
            continue
        fpr = rate(power, d, "false positive rate", n, "max")
        parts = [f"power {_range(power, d, 'power', n)}"] if np.isfinite(rate(power, d, "power", n)) else []
        parts += [f"false-positive rate up to {fpr:.2f}"] if np.isfinite(fpr) else []
        lines.append(f"- **{d}** at the book's size ({n} training rows per task): {'; '.join(parts)}.")
    lines.append(
        f"- Loss against width in the scaling family: slope {result.loss_width_slope:.2f} on a log-log scale "
        "(-1 means loss falls as 1/m)."
    )
    return "\n".join(lines)


def _range(power: pd.DataFrame, diagnostic: str, kind: str, n_train: int) -> str:
    lo, hi = rate(power, diagnostic, kind, n_train, "min"), rate(power, diagnostic, kind, n_train, "max")
    if not np.isfinite(lo):
        return fmt_rate(lo)
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f} over regimes"


def book_size_intro(result: GroundTruthResult) -> str:
    """Markdown line above the table of rates at the book's size."""
    c = result.config
    test = f"{c.n_test} test" if c.n_test else "as many test as validation"
    return (
        f"**At the book's size ({result.book_size} training and {test} rows per task, {c.n_tasks} tasks per study; "
        f"sizes from {result.sizes_source})**, per regime (activation and feature probability), over "
        f"{len(c.toy_seeds)} seeds:"
    )


def book_size_table(result: GroundTruthResult) -> pd.DataFrame:
    """Power and false-positive rate per diagnostic and regime at the book's size (NaN where no such study ran)."""
    table = power_at_book_size(result.power, result.book_size).reset_index()
    table.columns.name = None
    cols = ("diagnostic", "activation", "p", "power", "false positive rate")
    return table[[c for c in cols if c in table.columns]]


WIDTH_COLUMNS: tuple[str, ...] = (
    "loss", "n_dedicated", "n_superposed", "share_dedicated", "mean_f1_k1", "mean_neurons_truth", "mean_k_needed",
)  # fmt: skip
"""Columns of the width table on the page (the results file keeps every column)."""


def width_table(scaling: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per width of the scaling family (the columns of :data:`WIDTH_COLUMNS`)."""
    mean = scaling.groupby("width").mean(numeric_only=True)
    return mean[[c for c in WIDTH_COLUMNS if c in mean.columns]].reset_index()


def weight_fingerprint_table(result: GroundTruthResult) -> pd.DataFrame:
    """The real models' weight fingerprint per layer, model first."""
    table = result.weight_fingerprint
    return table[["model", *[c for c in table.columns if c != "model"]]]


# ---------------------------------------------------------------------------------------------------- captions
def caption_truth(toys: pd.DataFrame) -> str:
    """Caption of the ground-truth figure, with the superposed half-features at the first and last p."""
    by_p = toys.groupby("p")["n_superposed"].mean()
    return (
        "Ground truth of the toy models: per activation and feature probability p, the half-features with a dedicated "
        f"neuron, in superposition, or not represented. Superposed half-features per model: {by_p.iloc[0]:.1f} at "
        f"p = {by_p.index[0]:g} (sparsest features), {by_p.iloc[-1]:.1f} at p = {by_p.index[-1]:g}."
    )


def caption_power(power: pd.DataFrame, n_train: int) -> str:
    """Caption of the power figure: the most powerful diagnostic at the book's size and its false-positive rate."""
    summary = power_at_book_size(power, n_train).groupby(level="diagnostic").agg(["min", "max"])
    strongest = summary[("power", "min")].idxmax()
    fpr = summary[("false positive rate", "max")].get(strongest, np.nan) if "false positive rate" in summary else np.nan
    return (
        "Detection rate of each diagnostic against training rows per task: power on toys whose features are superposed "
        "(top) and false-positive rate on toys without superposition (bottom). At the book's size "
        f"({n_train} rows) the diagnostic with the best worst-regime power is `{strongest}`: power "
        f"{summary.loc[strongest, ('power', 'min')]:.2f} to {summary.loc[strongest, ('power', 'max')]:.2f} over "
        f"regimes, false-positive rate up to {fmt_rate(fpr)}."
    )


def caption_width(slope: float) -> str:
    """Caption of the width-scaling figure."""
    return (
        f"Toy models of growing width m: loss against width (log-log slope {slope:.2f}), the share of dedicated neurons "
        "(ground truth) beside the probe's F1 at k = 1, and neurons per half-feature (ground truth) beside the k the "
        "probe needs for F1 >= 0.9."
    )


def caption_fingerprint(name: str) -> str:
    """Caption of one model's weight-fingerprint figure."""
    return f"`{name}`: input-weight norm and input bias of every neuron, per layer, with the MLP's LayerNorm folded in."


def no_bias_note(result: GroundTruthResult, name: str) -> str:
    """Markdown note for a model without MLP input biases, or an empty string."""
    from ..analysis import weights

    if weights.has_input_bias(result.mlp_stats[name]):
        return ""
    return (f"`{name}` has no MLP input biases (a gated MLP): the bias half of the fingerprint does not exist; its "
            "activation-sparsity profile below stands in for it.")  # fmt: skip


def caption_basis() -> str:
    """Caption of the basis-comparison figure."""
    return (
        "Test F1 of the best single neuron minus the best single direction of a random rotation (k = 1), per layer "
        "and site of the MLP; above 0 the neuron basis is privileged at that site."
    )


def caption_sparsity() -> str:
    """Caption of the activation-sparsity figure."""
    return (
        "Per layer: the share of token-neuron pairs on the active side of the activation, and the median excess "
        "kurtosis of the neurons' activations (heavy tails: a neuron that fires rarely and strongly)."
    )


# ----------------------------------------------------------------------------------------------------- figures
def plot_truth(result: GroundTruthResult) -> Any:
    """Bar chart of dedicated / superposed / absent half-features per twin and p."""
    import seaborn as sns

    c = result.config
    long = result.toys.melt(id_vars=["activation", "p"], value_vars=["n_dedicated", "n_superposed", "n_absent"],
                            var_name="status", value_name="half-features")  # fmt: skip
    long["status"] = long["status"].str.removeprefix("n_")
    g = sns.catplot(data=long, x="p", y="half-features", hue="status", col="activation", kind="bar",
                    errorbar=None, height=3.2, aspect=1.2)  # fmt: skip
    g.figure.suptitle(f"Ground truth of the toys ({c.n_features} features, {c.n_hidden} neurons)", y=1.04)
    return g.figure


def plot_power(result: GroundTruthResult) -> Any:
    """Detection rate against training rows, per diagnostic (columns) and kind (rows)."""
    import seaborn as sns

    power = result.power
    data = power.assign(setting=power["activation"] + ", p=" + power["p"].astype(str))
    g = sns.catplot(data=data, x="n_train", y="rate", hue="setting", col="diagnostic", row="kind", kind="point",
                    errorbar=None, height=2.6, aspect=1.0, sharey=True, margin_titles=True)  # fmt: skip
    g.set(ylim=(-0.05, 1.05))
    g.figure.suptitle("Detection rate by training rows per task", y=1.03)
    return g.figure


def plot_width(result: GroundTruthResult) -> Any:
    """Loss, share dedicated and neurons per half-feature against width."""
    import matplotlib.pyplot as plt

    slope = result.loss_width_slope
    mean = result.scaling.groupby("width").mean(numeric_only=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    axes[0].loglog(mean.index, mean["loss"], "o-")
    axes[0].set(xlabel="width m", ylabel="loss", title=f"loss against width (slope {slope:.2f})")
    axes[1].plot(mean.index, mean["share_dedicated"], "o-", label="ground truth: share dedicated")
    axes[1].plot(mean.index, mean["mean_f1_k1"], "s--", label="probe: F1 at k = 1")
    axes[1].set(xscale="log", xlabel="width m", ylim=(0, 1.02), title="dedicated neurons")
    axes[1].legend(fontsize=8)
    axes[2].plot(mean.index, mean["mean_neurons_truth"], "o-", label="ground truth: neurons per half-feature")
    axes[2].plot(mean.index, mean["mean_k_needed"], "s--", label="probe: k for F1 >= 0.9")
    axes[2].set(xscale="log", xlabel="width m", title="neurons per feature")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_fingerprint(result: GroundTruthResult, name: str) -> Any:
    """One model's input-weight fingerprint."""
    from ..analysis import weights

    return weights.plot_fingerprint(result.mlp_stats[name], title=f"{name}: MLP input weights, norm folded in")


def plot_basis(result: GroundTruthResult) -> Any:
    """F1 neurons minus F1 rotated per layer, site and model."""
    import seaborn as sns

    g = sns.relplot(data=result.basis, x="layer", y="diff", hue="site", col="model", kind="line", marker="o",
                    errorbar=("ci", 95), n_boot=200, seed=result.config.seed, height=3.0, aspect=1.2,
                    facet_kws={"sharex": False})  # fmt: skip
    for ax in g.axes.flat:
        ax.axhline(0, color="grey", lw=1)
    g.set(ylabel="F1 neurons - F1 rotated (k = 1)")
    g.figure.suptitle("Neuron basis against random rotations, per site (mean over tasks)", y=1.04)
    return g.figure


def plot_sparsity(result: GroundTruthResult) -> Any:
    """Share active and median kurtosis per layer and model."""
    import seaborn as sns

    data = result.sparsity.melt(id_vars=["model", "layer"], value_vars=["frac_active", "median_kurtosis"])
    g = sns.relplot(data=data, x="layer", y="value", hue="model", col="variable", kind="line", marker="o",
                    height=3.0, aspect=1.3, facet_kws={"sharey": False})  # fmt: skip
    g.figure.suptitle("Activation sparsity per layer", y=1.04)
    return g.figure
