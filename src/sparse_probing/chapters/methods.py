"""Sparse probing methods: every way of choosing k neurons, on the same tasks, split and layer.

Gurnee et al. (2023) compare rankings of the neurons (mean difference of the class means on activations standardized per
neuron, as their experiments ran it, beside the same difference on raw activations; ANOVA F statistic, mutual
information, the weights of an L1 logistic regression or of a linear SVM, random), the telescopic elastic-net search
and optimal sparse probing (OSP, a mixed-integer program over ``osp_candidates`` neurons), against a dense probe on
all neurons. This module runs them all on one-vs-rest tasks of a few families (mean-pooled MLP activations of whole
documents, one layer), plus two controls: the telescopic search after a Haar-random rotation of the neurons
("random basis") and on shuffled training labels ("shuffled labels").

:func:`run` probes (through :func:`sparse_probing.study.probe_cache`) and returns a :class:`MethodsResult` of tidy
tables; :meth:`MethodsResult.from_results` builds the same tables from any results table (tests use synthetic ones).
The functions below turn the result into the chapter's tables, figures, captions and summary sentences.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._config import ChapterConfig, ConfigError

__all__ = [
    "CONTROLS",
    "HEURISTICS",
    "MethodsConfig",
    "MethodsResult",
    "agreement_line",
    "caption_f1_vs_k",
    "caption_osp_times",
    "f1_table",
    "model_line",
    "osp_claim",
    "osp_compare_table",
    "osp_line",
    "osp_vs_telescopic_line",
    "plot_f1_vs_k",
    "plot_osp_times",
    "probe_line",
    "probe_specs",
    "run",
    "summary",
    "summary_lines",
]

HEURISTICS: tuple[str, ...] = ("mean_diff", "mean_diff_raw", "f_stat", "mutual_info", "l1", "svm", "random")
"""The ranking methods: rank the neurons once, fit a logistic regression on the top k."""

CONTROLS: tuple[str, ...] = ("random basis", "shuffled labels")
"""Labels of the two control probes (telescopic search on rotated neurons / on shuffled training labels)."""

AGREEING: tuple[str, ...] = ("mean_diff", "f_stat", "telescopic", "optimal")
"""Methods whose single-neuron picks are compared for agreement."""

SOLVERS: tuple[str, ...] = ("auto", "gurobi", "highs")

SMALL_KS: tuple[int, ...] = (1, 2, 3, 4)
"""The "small k" of the claim that optimal probing is best there (the paper's OSP grid is k = 1..8)."""

MIN_OSP_GAIN = 0.01
MIN_OSP_GAIN_SOURCE = (
    "the paper gives no number for the gap; one F1 point at equal k is the smallest gain that would repay a "
    "mixed-integer solve of seconds to minutes per k over a ranking that takes milliseconds"
)
PAPER_OSP = "optimal sparse probing gives the best probes at small k (k <= 8; its Figure 2, Pythia models)"


@dataclass(frozen=True)
class MethodsConfig(ChapterConfig):
    """Parameters of the methods chapter (one field per notebook parameter)."""

    model: str = "smollm2-135m"
    """Registered name (``sparse-probing models``), local directory, or hub name (needs a network)."""
    variant: str = "default"
    """Dataset size: ``smoke`` (tests) or ``default``."""
    max_length: int = 128
    """Context length in tokens."""
    n_documents: Mapping[str, int] = field(
        default_factory=lambda: {"natural_language": 540, "code_language": 520, "data_source": 450}
    )
    """First n documents per family (families not listed: all)."""
    families: tuple[str, ...] = ("natural_language", "code_language", "data_source")
    """Families (or paths of CSV files) whose classes become the tasks."""
    classes_per_family: int = 3
    """One-vs-rest tasks per family (the first classes in name order)."""
    layer: int | None = None
    """Layer to probe; None: the middle layer."""
    ks: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 16, 32, 64, 256)
    """Sparsity levels of the heuristic methods."""
    osp_ks: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    """Sparsity levels of optimal sparse probing."""
    osp_candidates: int = 50
    """Size of OSP's candidate set: the union of the mean-difference, L1-path and telescopic rankings (each ranker's
    supports at every k, then their top lists in turn), so a neuron that helps only jointly is not dropped."""
    osp_time_limit: float = 20.0
    """Seconds per OSP solve."""
    solver: str = "auto"
    """``gurobi``, ``highs`` or ``auto`` (Gurobi when installed and licensed)."""
    n_boot: int = 200
    """Bootstrap resamples of documents for the test F1 interval."""

    def __post_init__(self) -> None:
        need = self.require

        need(self.max_length >= 2, f"max_length must be at least 2 tokens, got {self.max_length}")
        bad = {k: v for k, v in self.n_documents.items() if not isinstance(v, int) or isinstance(v, bool) or v < 2}
        need(not bad, f"n_documents values must be integers >= 2, got {bad}")
        need(bool(self.families), "families is empty; name at least one family, e.g. ['natural_language']")
        need(len(set(self.families)) == len(self.families), f"families repeat: {list(self.families)}")
        need(self.classes_per_family >= 1, f"classes_per_family must be at least 1, got {self.classes_per_family}")
        need(self.layer is None or self.layer >= 0, f"layer must be None or a non-negative index, got {self.layer}")
        for name, ks in (("ks", self.ks), ("osp_ks", self.osp_ks)):
            need(bool(ks) and all(k >= 1 for k in ks), f"{name} must be positive integers, got {list(ks)}")
            need(list(ks) == sorted(set(ks)), f"{name} must be increasing without repeats, got {list(ks)}")
        need(self.osp_candidates >= 1, f"osp_candidates must be at least 1, got {self.osp_candidates}")
        need(
            max(self.osp_ks) <= self.osp_candidates,
            f"osp_ks go up to {max(self.osp_ks)} but OSP only searches {self.osp_candidates} candidates",
        )
        need(self.osp_time_limit > 0, f"osp_time_limit must be positive seconds, got {self.osp_time_limit}")
        need(self.solver in SOLVERS, f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        need(self.n_boot >= 0, f"n_boot must be 0 or more, got {self.n_boot}")


def probe_specs(config: MethodsConfig) -> list[Any]:
    """The probes of the chapter, in the order of the results table: seven rankers, telescopic, OSP, dense, controls."""
    from ..probes import ProbeSpec

    grid = tuple(config.ks)
    osp = {"n_candidates": config.osp_candidates, "time_limit": config.osp_time_limit, "solver": config.solver}
    specs = [ProbeSpec(m, ks=grid) for m in HEURISTICS]
    specs += [
        ProbeSpec("telescopic", ks=grid),
        ProbeSpec("optimal", ks=tuple(config.osp_ks), params=osp),
        ProbeSpec("dense"),
        ProbeSpec("random_basis", ks=grid, params={"base": "telescopic"}, name="random basis"),
        ProbeSpec("control", ks=grid, params={"base": "telescopic"}, name="shuffled labels"),
    ]
    return specs


@dataclass(frozen=True)
class MethodsResult:
    """What :func:`run` measured, as tidy tables (build one from a results table with :meth:`from_results`)."""

    config: MethodsConfig
    model: str
    """Name of the model probed."""
    n_layers: int
    d_mlp: int
    layer: int
    """The probed layer (the middle one when ``config.layer`` is None)."""
    datasets: dict[str, str]
    """The versioned dataset key of each family (for the results spec)."""
    probe_seconds: float
    """Wall time of all probe fits."""
    tasks: pd.DataFrame
    """One row per task: ``family, task, documents, positives``."""
    results: pd.DataFrame
    """Every fitted probe (failed fits left out): one row per family x task x method x k, as
    :func:`sparse_probing.study.probe_cache` returns it, with ``family``."""
    sparse_methods: tuple[str, ...]
    """Labels of every method but the dense probe, in spec order."""
    chosen: pd.DataFrame
    """Per method, k chosen on validation for every task: ``method, mean_test_f1, median_k, tasks`` (best first)."""
    osp: pd.DataFrame
    """Per OSP k: ``k, solves, proven, max_gap, median_s, max_s`` (solve time of that k) and ``setup_s`` (median set-up
    per task: ranking, candidates, gamma validation, shared by all k of a task) and ``improved`` (solves whose
    support beats the best warm start)."""
    selectivity: pd.DataFrame
    """Per k: mean test F1 of the telescopic probe, of the shuffled-label control and their difference."""
    dense: pd.DataFrame
    """One row per task: ``family, feature, f1_test, f1_test_low, f1_test_high`` of the dense probe."""
    k1: pd.DataFrame
    """Every 1-sparse probe that selects neurons: ``family, feature, method, neuron, f1_test``."""

    @classmethod
    def from_results(
        cls,
        config: MethodsConfig,
        results: pd.DataFrame,
        tasks: pd.DataFrame,
        *,
        model: str,
        n_layers: int,
        d_mlp: int,
        layer: int,
        datasets: Mapping[str, str],
        probe_seconds: float = float("nan"),
        sparse_methods: tuple[str, ...] | None = None,
    ) -> MethodsResult:
        """The result's derived tables from a results table (failed fits, with an ``error``, are dropped)."""
        from ..probes import select_on_validation, selectivity

        if "error" in results:
            results = results[results["error"].isna()]
        results = results.reset_index(drop=True)
        if sparse_methods is None:
            sparse_methods = tuple(s.label for s in probe_specs(config) if s.method != "dense")
        chosen = select_on_validation(results, by=("family", "feature", "method"))
        chosen = (
            chosen.groupby("method")
            .agg(mean_test_f1=("f1_test", "mean"), median_k=("k", "median"), tasks=("feature", "count"))
            .sort_values("mean_test_f1", ascending=False)
            .reset_index()
        )
        osp_rows = _with_osp_columns(results[results["method"] == "optimal"])
        osp = (
            osp_rows.groupby("k")
            .agg(
                solves=("osp_status", "size"),
                proven=("osp_proven_optimal", "sum"),
                max_gap=("osp_mip_gap", "max"),
                median_s=("osp_wall_time", "median"),
                max_s=("osp_wall_time", "max"),
                setup_s=("osp_setup_time", "median"),
                improved=("osp_improved_on_warm_start", "sum"),
            )
            .reset_index()
            if len(osp_rows)
            else pd.DataFrame(columns=["k", "solves", "proven", "max_gap", "median_s", "max_s", "setup_s", "improved"])
        )
        sel = selectivity(results, method="telescopic", control="shuffled labels")
        sel = sel.groupby("k")[["f1_test", "control_f1_test", "selectivity"]].mean().reset_index()
        dense = results[results["method"] == "dense"][["family", "feature", "f1_test", "f1_test_low", "f1_test_high"]]
        k1 = results[(results["k"] == 1) & results["method"].isin(sparse_methods)]
        k1 = k1[k1["support"].map(len) > 0]  # the random basis selects rotated directions, not neurons
        k1 = k1.assign(neuron=[int(s[0]) for s in k1["support"]])[["family", "feature", "method", "neuron", "f1_test"]]
        return cls(
            config=config,
            model=model,
            n_layers=int(n_layers),
            d_mlp=int(d_mlp),
            layer=int(layer),
            datasets=dict(datasets),
            probe_seconds=float(probe_seconds),
            tasks=tasks.reset_index(drop=True),
            results=results,
            sparse_methods=tuple(sparse_methods),
            chosen=chosen,
            osp=osp,
            selectivity=sel,
            dense=dense.reset_index(drop=True),
            k1=k1.reset_index(drop=True),
        )

    @property
    def osp_rows(self) -> pd.DataFrame:
        """Every OSP fit (one per task and k) with its solver record."""
        return _with_osp_columns(self.results[self.results["method"] == "optimal"])

    @property
    def k1_means(self) -> pd.Series:
        """Mean test F1 at k = 1 per method (neuron-selecting methods), best first."""
        return self.k1.groupby("method")["f1_test"].mean().sort_values(ascending=False)

    @property
    def validation_selected(self) -> pd.Series:
        """Mean test F1 per method with k chosen on validation, best first."""
        return self.chosen.set_index("method")["mean_test_f1"].sort_values(ascending=False)

    @property
    def claims(self) -> list[Any]:
        """The chapter's claim (:func:`osp_claim`) as a list: empty when OSP did not run."""
        claim = osp_claim(self)
        return [] if claim is None else [claim]

    def spec(self) -> dict[str, Any]:
        """The run's specification for the results file: the config, the model name, the probed layer, datasets."""
        return {**self.config.to_dict(), "model": self.model, "layer": self.layer, "datasets": dict(self.datasets)}

    def metrics(self) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results` (the keys the chapter has always saved)."""
        osp_rows = self.osp_rows
        return {
            "mean_test_f1_at_k1": self.k1_means.to_dict(),
            "validation_selected_mean_test_f1": self.validation_selected.to_dict(),
            "osp_proven": int(osp_rows["osp_proven_optimal"].sum()) if len(osp_rows) else 0,
            "osp_solves": len(osp_rows),
            "osp_median_seconds": float(osp_rows["osp_wall_time"].median()) if len(osp_rows) else float("nan"),
            "dense_mean_test_f1": float(self.dense["f1_test"].mean()),
            "claims": [c.to_dict() for c in self.claims],
        }


def run(config: MethodsConfig) -> MethodsResult:
    """Cache every family's activations, build its first ``classes_per_family`` tasks and fit every probe."""
    from .. import study
    from ..models import load_model

    lm = load_model(config.model)
    layer = lm.n_layers // 2 if config.layer is None else int(config.layer)
    if layer >= lm.n_layers:
        raise ConfigError(f"MethodsConfig: layer {layer} does not exist; {lm.spec.name} has {lm.n_layers} layers")
    caches, tasks = {}, {}
    for family in config.families:
        caches[family] = study.cache_for(
            lm, family, config.variant, n_documents=config.n_documents.get(family), max_length=config.max_length
        )
        family_tasks = study.binary_tasks(caches[family].examples)
        tasks[family] = dict(list(family_tasks.items())[: config.classes_per_family])
    task_table = pd.DataFrame(
        [
            {"family": f, "task": t, "documents": int(np.isfinite(y).sum()), "positives": int(np.nansum(y))}
            for f, ts in tasks.items()
            for t, y in ts.items()
        ],
        columns=["family", "task", "documents", "positives"],
    )
    specs = probe_specs(config)
    t_probe = time.perf_counter()
    results = pd.concat(
        [
            study.probe_cache(caches[f], specs, tasks=tasks[f], layers=[layer], n_boot=config.n_boot).assign(family=f)
            for f in config.families
        ],
        ignore_index=True,
    )
    probe_seconds = time.perf_counter() - t_probe
    return MethodsResult.from_results(
        config,
        results,
        task_table,
        model=lm.spec.name,
        n_layers=lm.n_layers,
        d_mlp=lm.d_mlp,
        layer=layer,
        datasets={f: c.dataset_key for f, c in caches.items()},
        probe_seconds=probe_seconds,
        sparse_methods=tuple(s.label for s in specs if s.method != "dense"),
    )


# ---------------------------------------------------------------------------------------------------------------
# tables


def f1_table(result: MethodsResult, ks: tuple[int, ...] = (1, 2, 4, 8, 16)) -> pd.DataFrame:
    """Mean test F1 over tasks per sparse method at a few k (columns ``k=1`` ...), plus the dense probe's mean.

    Rows sorted by the first k, best first; a method without that k (OSP beyond its grid) has NaN there.
    """
    res = result.results
    show_k = [k for k in ks if k in set(res["k"])]
    table = (
        res[res["k"].isin(show_k) & res["method"].isin(result.sparse_methods)]
        .pivot_table(index="method", columns="k", values="f1_test", aggfunc="mean")
        .sort_values(show_k[0], ascending=False)
    )
    table.columns = [f"k={k}" for k in table.columns]
    table["dense"] = res[res["method"] == "dense"]["f1_test"].mean()
    return table.reset_index()


def _with_osp_columns(osp_rows: pd.DataFrame) -> pd.DataFrame:
    """OSP rows with the set-up and warm-start columns (absent from results written before they were recorded)."""
    missing = {"osp_setup_time": np.nan, "osp_improved_on_warm_start": False}
    return osp_rows.assign(**{c: v for c, v in missing.items() if c not in osp_rows})


def _median_setup(osp_rows: pd.DataFrame) -> float:
    """Median OSP set-up time per task (one value per task: the set-up is shared by its k)."""
    if osp_rows.empty:
        return float("nan")
    keys = [c for c in ("family", "feature") if c in osp_rows]
    per_task = osp_rows.groupby(keys)["osp_setup_time"].first() if keys else osp_rows["osp_setup_time"]
    return float(per_task.median())


def _setup_phrase(osp_rows: pd.DataFrame) -> str:
    """``" plus a median set-up of X s per task (...)"``, or nothing when the set-up was not recorded."""
    setup = _median_setup(osp_rows)
    if not np.isfinite(setup):
        return ""
    return f" plus a set-up per task (ranking once, candidates, gamma validation) of median {setup:.2f} s"


def osp_vs_telescopic_line(result: MethodsResult, ks: tuple[int, ...] = (1, 2, 3, 4)) -> str:
    """Whether optimal probing beats the telescopic probe at small k: mean test F1 difference per k, on these tasks."""
    table = osp_compare_table(result).set_index("k")
    table = table[table.index.isin(ks)].dropna(subset=["optimal", "telescopic"])
    if table.empty:
        return "No k where both the optimal and the telescopic probe ran."
    diff = table["optimal"] - table["telescopic"]
    cells = ", ".join(f"k = {k}: {d:+.3f}" for k, d in diff.items())
    wins = int((diff > 0).sum())
    verdict = (
        "beats the telescopic probe at every one of these k"
        if wins == len(diff)
        else "does not beat the telescopic probe at any of these k"
        if wins == 0
        else f"beats the telescopic probe at {wins} of these {len(diff)} k"
    )
    span = ", ".join(str(k) for k in diff.index)
    return f"At k = {span}, optimal probing {verdict} (mean test F1, optimal minus telescopic: {cells})."


def osp_claim(result: MethodsResult, *, n_boot: int = 1000, seed: int = 0) -> Any:
    """ "Optimal probing is best at small k": per task, the mean over k in :data:`SMALL_KS` of OSP's test F1 minus
    the telescopic probe's at the same k, then the mean over tasks with a bootstrap over tasks, against
    :data:`MIN_OSP_GAIN`. None when OSP and the telescopic probe share no small k."""
    from ..analysis.statistics import bootstrap_statistic, mde_from_interval
    from ..analysis.verdicts import ClaimEvidence

    res = result.results
    small = res[res["k"].isin(SMALL_KS) & res["method"].isin(["optimal", "telescopic"])]
    paired = small.pivot_table(index=["family", "feature", "k"], columns="method", values="f1_test")
    if not {"optimal", "telescopic"} <= set(paired.columns):
        return None
    paired = paired.dropna()
    if paired.empty:
        return None
    per_task = (paired["optimal"] - paired["telescopic"]).groupby(level=["family", "feature"]).mean()
    ci = bootstrap_statistic(np.mean, per_task.to_numpy(float), n_boot=n_boot, random_state=seed)
    est = float(ci["estimate"])
    low, high = min(ci["low"], est), max(ci["high"], est)
    positives = res[res["method"] == "optimal"].groupby(["family", "feature"])["n_pos_test"].first()
    ks = sorted(paired.index.get_level_values("k").unique())
    osp_rows = result.osp_rows
    return ClaimEvidence(
        claim="optimal probing is best at small k",
        chapter="01_methods",
        measure=f"test F1 of the optimal sparse probe minus the telescopic probe at equal k (mean over k = "
        f"{', '.join(str(k) for k in ks)}, then over tasks)",
        paper=PAPER_OSP,
        estimate=est,
        ci_low=float(low),
        ci_high=float(high),
        minimal_effect=MIN_OSP_GAIN,
        minimal_effect_source=MIN_OSP_GAIN_SOURCE,
        mde=mde_from_interval(low, high),
        estimator=f"one grouped train/validation/test split, gamma chosen on validation; bootstrap over tasks "
        f"({len(per_task)})",
        control=f"{int(osp_rows['osp_proven_optimal'].sum())} of {len(osp_rows)} solves proven optimal; "
        f"{int(osp_rows['osp_improved_on_warm_start'].sum())} improved on their warm start",
        n_tasks=len(per_task),
        min_test_positives=int(positives.min()) if len(positives) else 0,
    )


def osp_compare_table(result: MethodsResult) -> pd.DataFrame:
    """Per OSP k: mean test F1 of OSP, telescopic and mean difference, and OSP minus the better heuristic."""
    res = result.results
    same_k = res[res["method"].isin(["optimal", "telescopic", "mean_diff"]) & res["k"].isin(result.config.osp_ks)]
    compare = same_k.pivot_table(index="k", columns="method", values="f1_test", aggfunc="mean")
    for method in ("optimal", "telescopic", "mean_diff"):
        if method not in compare:
            compare[method] = np.nan
    gain = (compare["optimal"] - compare[["telescopic", "mean_diff"]].max(axis=1)).rename("optimal - best heuristic")
    out = pd.concat([compare[["mean_diff", "optimal", "telescopic"]], gain], axis=1).reset_index()
    out.columns.name = None
    return out


def k1_picks(result: MethodsResult) -> pd.DataFrame:
    """Per task: the neuron each method picks at k = 1 with its test F1, as ``"neuron (F1)"``."""
    k1 = result.k1
    pick = [f"{n} ({f:.2f})" for n, f in zip(k1["neuron"], k1["f1_test"], strict=True)]
    picks = k1.assign(pick=pick).pivot_table(
        index=["family", "feature"], columns="method", values="pick", aggfunc="first"
    )
    picks = picks.reset_index()
    picks.columns.name = None
    return picks.fillna("–")


# ---------------------------------------------------------------------------------------------------------------
# figures and sentences


def plot_f1_vs_k(result: MethodsResult) -> Any:
    """Test F1 against k per sparse method, one panel per family; dashed: the dense probe's mean."""
    from .. import plots

    res = result.results
    curve = res[res["method"].isin(result.sparse_methods)].rename(columns={"f1_test": "f1"})
    fig = plots.f1_vs_k(curve, hue="method", col="family")
    dense_f1 = res[res["method"] == "dense"].groupby("family")["f1_test"].mean()
    for ax in fig.axes:
        family = ax.get_title().split(" = ")[-1]
        if family in dense_f1:
            ax.axhline(dense_f1[family], color="black", ls="--", lw=1)
    return fig


def _curve_k1_means(result: MethodsResult) -> pd.Series:
    res = result.results
    curve = res[res["method"].isin(result.sparse_methods) & (res["k"] == 1)]
    return curve.groupby("method")["f1_test"].mean().sort_values(ascending=False)


def caption_f1_vs_k(result: MethodsResult) -> str:
    """Caption of the F1-against-k figure: who leads at k = 1, and where the shuffled-label control stands."""
    k1_means = _curve_k1_means(result)
    text = (
        "Test F1 against the number of neurons k, per method (mean over tasks, 95% band over tasks); dashed: the dense "
        "probe on all neurons."
    )
    if k1_means.empty:
        return text
    return (
        f"{text} At k = 1 `{k1_means.index[0]}` leads ({k1_means.iloc[0]:.2f}); the shuffled-label "
        f"control reaches {k1_means.get('shuffled labels', float('nan')):.2f}."
    )


def plot_osp_times(result: MethodsResult) -> Any:
    """Wall time of every OSP solve against k (log scale), one point per task, coloured by family."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    osp_rows = result.osp_rows
    fig, ax = plt.subplots(figsize=(6, 3))
    sns.stripplot(data=osp_rows, x="k", y="osp_wall_time", hue="family", dodge=True, ax=ax)  # set-up excluded
    solvers = ", ".join(sorted(osp_rows["osp_solver"].dropna().unique()))
    ax.set(yscale="log", ylabel="solve time (s)", title=f"OSP solve times ({solvers})")
    return fig


def caption_osp_times(result: MethodsResult) -> str:
    """Caption of the OSP solve-time figure: how many solves were proven optimal."""
    m = result.metrics()
    return (
        f"Solve time of every OSP solve against k (log scale; the per-task set-up excluded), one point per task: "
        f"{m['osp_proven']} of "
        f"{m['osp_solves']} solves proven optimal within the time limit."
    )


def model_line(result: MethodsResult) -> str:
    """The model and the probed layer, in one sentence."""
    return (
        f"Model **{result.model}**: {result.n_layers} layers, {result.d_mlp} MLP neurons per layer. "
        f"Probed layer: **{result.layer}**."
    )


def probe_line(result: MethodsResult) -> str:
    """How many probes were fitted and in what time."""
    return f"{len(result.results)} fitted probes in {result.probe_seconds:.0f} s."


def osp_line(result: MethodsResult) -> str:
    """OSP's record: proven solves, solvers, median and longest solve time."""
    osp_rows = result.osp_rows
    if osp_rows.empty:
        return "No OSP solve ran."
    return (
        f"OSP proved optimality in **{int(osp_rows['osp_proven_optimal'].sum())} of {len(osp_rows)}** solves (solver: "
        f"{', '.join(sorted(osp_rows['osp_solver'].unique()))}); median solve time per k "
        f"{osp_rows['osp_wall_time'].median():.2f} s, longest {osp_rows['osp_wall_time'].max():.2f} s"
        f"{_setup_phrase(osp_rows)}; "
        f"{int(osp_rows['osp_improved_on_warm_start'].sum())} of {len(osp_rows)} solves improved on the best warm "
        f"start. {osp_vs_telescopic_line(result)}"
    )


def agreement_line(result: MethodsResult) -> str:
    """In how many tasks mean difference, F statistic, telescopic and optimal probes pick the same single neuron."""
    k1 = result.k1
    agree = k1[k1["method"].isin(AGREEING)].groupby("feature")["neuron"].nunique()
    return (
        f"Mean difference, F statistic, telescopic and optimal probes pick the same neuron in **{int((agree == 1).sum())} "
        f"of {len(agree)}** tasks."
    )


def summary_lines(result: MethodsResult) -> list[str]:
    """The chapter's summary, one markdown bullet per finding (each method named once per sentence)."""
    lines = []
    best_k1 = result.k1_means
    if len(best_k1):
        leader = best_k1.index[0]
        heur_k1 = best_k1.drop(["optimal", "random", *CONTROLS], errors="ignore")
        lead = f"- At k = 1 the highest mean test F1 is **{leader}** ({best_k1.iloc[0]:.3f})"
        if len(heur_k1) and heur_k1.index[0] == leader:
            lead += ", a ranking heuristic"
        elif len(heur_k1):
            lead += f"; the best ranking heuristic is {heur_k1.index[0]} ({heur_k1.iloc[0]:.3f})"
        if leader != "random" and "random" in best_k1:
            lead += f"; random neurons reach {best_k1['random']:.3f}"
        lines.append(lead + ".")
    best_sparse = result.validation_selected.drop(["dense", "random", *CONTROLS], errors="ignore")
    if len(best_sparse):
        median_k = result.chosen.set_index("method").loc[best_sparse.index[0], "median_k"]
        wide = f" (at that k it reads {median_k / result.d_mlp:.0%} of the layer)" if median_k >= 64 else ""
        lines.append(
            f"- With k chosen on validation data, the best neuron-selecting method is **{best_sparse.index[0]}** "
            f"(mean test F1 {best_sparse.iloc[0]:.3f} at a median k of {median_k:.0f}{wide}); the dense "
            f"probe on all {result.d_mlp} neurons reaches {result.dense['f1_test'].mean():.3f}."
        )
    osp_rows = result.osp_rows
    if len(osp_rows):
        gain = osp_compare_table(result)["optimal - best heuristic"]
        lines.append(
            f"- OSP: {int(osp_rows['osp_proven_optimal'].sum())} of {len(osp_rows)} solves proven optimal; median "
            f"{osp_rows['osp_wall_time'].median():.2f} s per solve{_setup_phrase(osp_rows)}; its mean gain over the best heuristic at equal k "
            f"is {gain.mean():+.3f} F1. {osp_vs_telescopic_line(result)}"
        )
    sel = result.selectivity
    if len(sel):
        first = sel.iloc[0]
        lines.append(
            f"- Shuffled-label control at k = {int(first['k'])}: mean test F1 {first['control_f1_test']:.3f} "
            f"(selectivity {first['selectivity']:.3f})."
        )
    return lines


def summary(result: MethodsResult) -> str:
    """:func:`summary_lines` as one markdown block."""
    return "\n".join(summary_lines(result))
