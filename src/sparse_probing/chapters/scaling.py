"""Sparsity and model size: the best single neuron per feature, for models of several sizes.

Gurnee et al. (2023) report that features become, on average, more sparsely represented as models grow: the mean F1
of the best single neuron over the 100 top features rises with Pythia size (0.788 at 70M to 0.848 at 6.9B), with
several dynamics underneath (features that get a dedicated neuron only in larger models, "quantization"; coarse
features that split into finer ones, "neuron splitting"). This module measures the same statistic on a family of
models that differ only in size (``family_models``: the ``mini`` family trained here, same data, tokenizer and
recipe) and, beside it, on other models (SmolLM2, Gemma) that differ in everything else.

Per model, dataset family and binary task (a compound word against its hard negatives, one code language against
the others, one class against the rest):

* every probed layer gets the exhaustively searched best single neuron (:class:`~sparse_probing.probes.
  SingleNeuronProbe`: every neuron's sign and threshold fitted on train, the neuron chosen on validation ROC-AUC among
  the best on train); the layer is chosen on validation ROC-AUC; test F1 and ROC-AUC are reported (the test F1 with
  a bootstrap interval over documents);
* the same search after a Haar-random rotation of the neurons (``control="random_basis"``: the best of as many
  random directions as there are neurons), or on shuffled training labels (``control="shuffled_labels"``). The
  maximum over more neurons grows with the number of neurons even without any change in representation; the
  random basis has the same number of candidates, so a rise with size that the random basis shows as well is not
  evidence of sparser coding.

The paper's own datasets (``primary``) drive the verdicts; the self-built document families (``secondary``) are
reported beside. A task with fewer than ``min_test_positives`` test positives is flagged inconclusive and left out
of the claims (which are then inconclusive if no task is left). :func:`run` returns a :class:`ScalingResult`; the
claims are built by pure functions of its tables (:func:`size_claim`, :func:`splitting_claim`).
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..analysis.statistics import bootstrap_statistic, is_dedicated, minimal_detectable_effect, paired_bootstrap
from ..analysis.verdicts import format_number as _fmt
from ..splits import Split, grouped_split
from ._config import ChapterConfig, ConfigError

__all__ = [
    "CHAPTER",
    "INCONCLUSIVE",
    "PAPER_MEAN_BEST_SINGLE_NEURON_F1",
    "ScalingConfig",
    "ScalingResult",
    "caption_size",
    "caption_trajectories",
    "change_table",
    "findings",
    "model_table",
    "plot_size",
    "plot_trajectories",
    "probe_layers",
    "run",
    "shared_table",
    "shared_units",
    "size_claim",
    "size_correlation",
    "splitting_claim",
    "trajectories",
]

PAPER_MEAN_BEST_SINGLE_NEURON_F1: dict[str, float] = {
    "70M": 0.788,
    "160M": 0.806,
    "410M": 0.820,
    "1B": 0.838,
    "1.4B": 0.834,
    "2.8B": 0.845,
    "6.9B": 0.848,
}
"""Gurnee et al. (2023): mean F1 of the best single neuron over the 100 top features, per Pythia model size."""

CHAPTER = "05_scaling"
"""Chapter stem recorded in the claims."""

INCONCLUSIVE = "inconclusive"
"""Status of a task with fewer test positives than :attr:`ScalingConfig.min_test_positives`."""

PAPER_SIZE = "mean best single-neuron F1 over the top 100 features rises with Pythia size: 0.788 (70M) to 0.848 (6.9B)"
PAPER_SPLITTING = "coarse features split into finer ones in larger models (neuron splitting; examples, not a count)"
MIN_SIZE = 0.02
"""Minimal effect of interest of the size difference (best single-neuron test F1, largest minus smallest model)."""
MIN_SIZE_SOURCE = (
    "the paper's mean best single-neuron F1 rises by 0.03-0.05 over a 15-20x size span (0.788 at 70M, 0.820 at "
    "410M, 0.838 at 1B); the mini family spans about 19x, so half the smaller rise"
)
MIN_SPLITTING = 0.10
"""Minimal effect of interest of the splitting proxy (share of classes with a shared best neuron)."""
MIN_SPLITTING_SOURCE = (
    "the paper shows splitting by examples, not a rate; a fall of under a tenth of the classes sharing their best "
    "neuron would not show it"
)
ESTIMATOR = "one grouped 70/15/15 split per model, layer chosen on validation; paired bootstrap over tasks"

METHOD_LABELS = {"neuron": "best single neuron", "control": "control"}


@dataclass(frozen=True)
class ScalingConfig(ChapterConfig):
    """Parameters of the scaling chapter (one field per notebook parameter)."""

    models: tuple[str, ...] = ("mini-1", "mini-2", "mini-3", "mini-4", "smollm2-135m", "gemma-3-270m")
    """Models to probe (names for :func:`sparse_probing.models.load_model`); unavailable ones are listed and skipped."""
    family_models: tuple[str, ...] = ("mini-1", "mini-2", "mini-3", "mini-4")
    """The controlled size axis, smallest first (same data and recipe); a subset of ``models``. The claims compare
    the last of them that ran with the first."""
    variant: str = "default"
    """Dataset size variant (``smoke`` or ``default``)."""
    primary: tuple[str, ...] = ("paper_compound_words", "paper_code")
    """The paper's datasets: the evidence behind the claims."""
    secondary: tuple[str, ...] = ("natural_language", "code_language", "data_source")
    """Self-built families, reported beside the primary ones (not driving the verdicts)."""
    max_length: int = 128
    """Context length in tokens."""
    n_documents: Mapping[str, int] = field(default_factory=dict)
    """Per family: cache only the first n documents (families not listed: all)."""
    max_layers: int = 6
    """Probe at most this many evenly spaced layers per model (first and last included)."""
    min_positives: int = 10
    """A class becomes a binary task only with at least this many positives and negatives."""
    min_test_positives: int = 30
    """A task with fewer test positives is flagged inconclusive and left out of the claims."""
    val_size: float = 0.15
    """Share of the groups (documents) held out for validation (choice of neuron and layer)."""
    test_size: float = 0.3
    """Share of the groups held out for test (reported scores)."""
    control: Literal["random_basis", "shuffled_labels"] = "random_basis"
    """The control search: a Haar-random rotation of the neurons, or shuffled training labels."""
    n_boot: int = 2000
    """Bootstrap resamples of tasks for the claims' intervals."""
    n_boot_docs: int = 100
    """Bootstrap resamples of test documents for each task's test F1 interval (0: none)."""
    seed: int = 0
    """Seed of the split, the rotation, the shuffled labels and the bootstraps."""

    def __post_init__(self) -> None:
        need = self.require

        need(bool(self.models), "models is empty; name at least one model, e.g. ['mini-1']")
        need(len(set(self.models)) == len(self.models), f"models repeat: {list(self.models)}")
        stray = [m for m in self.family_models if m not in self.models]
        need(not stray, f"family_models {stray} are not in models {list(self.models)}")
        need(len(set(self.family_models)) == len(self.family_models), f"family_models repeat: {self.family_models}")
        need(bool(self.primary), "primary is empty; name at least one of the paper's datasets, e.g. ['paper_code']")
        both = sorted(set(self.primary) & set(self.secondary))
        need(not both, f"families {both} are both primary and secondary")
        families = self.families
        need(len(set(families)) == len(families), f"families repeat: {list(families)}")
        need(self.max_length >= 2, f"max_length must be at least 2 tokens, got {self.max_length}")
        stray = sorted(set(self.n_documents) - set(families))
        need(not stray, f"n_documents names families that are not probed: {stray}; probed: {list(families)}")
        bad = {k: v for k, v in self.n_documents.items() if v < 2}
        need(not bad, f"n_documents values must be at least 2, got {bad}")
        need(self.max_layers >= 1, f"max_layers must be at least 1, got {self.max_layers}")
        need(self.min_positives >= 2, f"min_positives must be at least 2, got {self.min_positives}")
        need(self.min_test_positives >= 1, f"min_test_positives must be at least 1, got {self.min_test_positives}")
        need(0.0 < self.val_size < 1.0, f"val_size must lie in (0, 1), got {self.val_size}")
        need(0.0 < self.test_size < 1.0, f"test_size must lie in (0, 1), got {self.test_size}")
        need(self.val_size + self.test_size < 0.9, "val_size + test_size must leave at least 10% for training")
        need(self.n_boot >= 100, f"n_boot must be at least 100 (bootstrap over tasks), got {self.n_boot}")
        need(self.n_boot_docs >= 0, f"n_boot_docs must be 0 or more, got {self.n_boot_docs}")

    @property
    def families(self) -> tuple[str, ...]:
        """Every probed family: primary first."""
        return (*self.primary, *self.secondary)


def probe_layers(n_layers: int, max_layers: int) -> list[int]:
    """At most ``max_layers`` evenly spaced layer indices of a model with ``n_layers`` blocks, first and last included.

    >>> probe_layers(30, 6)
    [0, 6, 12, 17, 23, 29]
    >>> probe_layers(4, 6)
    [0, 1, 2, 3]
    """
    if n_layers < 1 or max_layers < 1:
        raise ValueError(f"n_layers and max_layers must be positive, got {n_layers} and {max_layers}")
    if n_layers <= max_layers:
        return list(range(n_layers))
    if max_layers == 1:
        return [n_layers - 1]
    return sorted({round(i * (n_layers - 1) / (max_layers - 1)) for i in range(max_layers)})


@dataclass(frozen=True)
class ScalingResult:
    """What :func:`run` measured, as tidy tables."""

    config: ScalingConfig
    models: pd.DataFrame
    """One row per model that ran: ``model, in_family, identity, n_layers, layers`` (probed, as text), ``d_mlp,
    non_embedding_params``."""
    neurons: pd.DataFrame
    """One row per (model, family, task, method): ``role`` (primary/secondary), ``method`` (neuron or control),
    the chosen ``layer, relative_layer`` and ``unit`` ("layer:index"), ``f1_val, roc_auc_val, f1_test,
    roc_auc_test, f1_test_low, f1_test_high``, ``test_positives`` and ``status`` (ok or inconclusive)."""
    timings: pd.DataFrame
    """Per model and family: ``dataset`` key, ``examples, tasks``, seconds ``load_s`` (model, first family only),
    ``cache_s`` and ``probe_s``."""
    missing: tuple[tuple[str, str], ...] = ()
    """Models that could not be loaded, with the reason."""

    @property
    def datasets(self) -> dict[str, str]:
        """Family -> versioned dataset key (of the first model that cached it)."""
        t = self.timings.drop_duplicates("family")
        return dict(zip(t["family"], t["dataset"], strict=True))

    @property
    def reported(self) -> pd.DataFrame:
        """The rows the tables and figures show: the conclusive tasks, or every task when none is conclusive (a
        smoke run; the claims then say inconclusive)."""
        ok = self.neurons[self.neurons["status"] == "ok"]
        return ok if len(ok) else self.neurons

    @property
    def family_order(self) -> list[str]:
        """The family models that ran, smallest first."""
        ran = set(self.models["model"])
        return [m for m in self.config.family_models if m in ran]

    def claims(self) -> list[Any]:
        """The claims this chapter tests, as :class:`~sparse_probing.analysis.verdicts.ClaimEvidence`. When the
        family models were trained on fewer than :data:`MIN_TOKENS_PER_PARAM` tokens per parameter, both claims are
        "not testable here" (:func:`undertrained`): their numbers stay in the record as description."""
        import dataclasses

        order = self.family_order
        kw = {"n_boot": self.config.n_boot, "seed": self.config.seed, "control": self.config.control}
        claims = [size_claim(self.neurons, order, self.models, **kw), splitting_claim(self.neurons, order, **kw)]
        why = undertrained(self.models, order)
        return [c if c.not_testable or not why else dataclasses.replace(c, not_testable=why) for c in claims]

    def metrics(self) -> dict[str, Any]:
        """Plain values for :func:`sparse_probing.results.save_results`."""
        table = model_table(self)
        return {
            "claims": [c.to_dict() for c in self.claims()],
            "models": self.models,
            "by_model": table,
            "neurons": self.neurons,
            "timings": self.timings,
            "missing_models": [m for m, _ in self.missing],
        }


# ---------------------------------------------------------------------------------------------- measuring
def _assignment(examples: pd.DataFrame, features: Sequence[str], config: ScalingConfig) -> dict[str, str]:
    """Group -> part (train/val/test) of a grouped split stratified by the features' classes."""
    from ..datasets.sizing import strata

    groups = examples["group"].to_numpy()
    kw = {"val_size": config.val_size, "test_size": config.test_size, "random_state": config.seed}
    try:
        split = grouped_split(groups, strata(examples, list(features)), **kw)
    except ValueError:  # strata too small to stratify (smoke slices): grouped but not stratified
        split = grouped_split(groups, None, **kw)
    out: dict[str, str] = {}
    for part in ("train", "val", "test"):
        out.update(dict.fromkeys(groups[getattr(split, part)].tolist(), part))
    return out


def _split_from(examples: pd.DataFrame, assignment: Mapping[str, str]) -> Split:
    """The split of ``examples`` by their groups' parts (groups not in ``assignment`` train)."""
    parts = examples["group"].map(assignment).fillna("train").to_numpy()
    return Split(*(np.flatnonzero(parts == p) for p in ("train", "val", "test")))


def _control_sweep(
    config: ScalingConfig, acts: Any, tasks: dict[str, np.ndarray], layers: list[int], split: Split
) -> pd.DataFrame:
    """The control search as a sweep labelled ``control``: the best single direction after one Haar-random rotation
    of the neurons (the same rotation for every task and layer of a model, applied once per layer), or the best
    single neuron on shuffled training labels."""
    from ..probes import ProbeSpec, run_sweep

    groups = acts.examples["doc"].to_numpy()
    if config.control == "shuffled_labels":
        spec = ProbeSpec("control", params={"base": "single_neuron"}, name="control", random_state=config.seed)
        activations = {layer: acts.layer(layer) for layer in layers}
    else:
        spec = ProbeSpec("single_neuron", name="control", random_state=config.seed)
        rotation_DD = _rotation(int(acts.layer(layers[0]).shape[1]), config.seed)
        activations = {layer: np.asarray(acts.layer(layer), dtype=np.float32) @ rotation_DD for layer in layers}
    return run_sweep(activations, tasks, split, [spec], groups=groups, n_boot=config.n_boot_docs, progress=False)


_ROTATIONS: dict[tuple[int, int], np.ndarray] = {}


def _rotation(n: int, seed: int) -> np.ndarray:
    """A Haar-random n x n rotation (float32), computed once per size and seed."""
    from ..probes import random_orthogonal

    if (n, seed) not in _ROTATIONS:
        _ROTATIONS.clear()  # one model at a time: keep one matrix
        _ROTATIONS[(n, seed)] = random_orthogonal(n, seed).astype(np.float32)
    return _ROTATIONS[(n, seed)]


def _probe_family(
    config: ScalingConfig, lm: Any, family: str, layers: list[int], assignments: dict[str, dict[str, str]]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Cache and probe one family on one model: (the chosen neuron per task and method, timings)."""
    from ..probes import ProbeSpec
    from ..study import best_layer, best_single_neurons, binary_tasks, cache_for, probe_cache

    t0 = time.perf_counter()
    acts = cache_for(
        lm, family, config.variant, n_documents=config.n_documents.get(family), max_length=config.max_length
    )  # every layer: the same cache entry as other chapters' (the forward pass is the same); a few are probed
    cache_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex = acts.examples
    tasks = binary_tasks(ex, min_positives=config.min_positives, min_negatives=config.min_positives)
    timing = {"family": family, "dataset": acts.dataset_key, "examples": len(ex), "tasks": len(tasks)}
    if not tasks:
        warnings.warn(
            f"family {family!r}: no task with {config.min_positives} positives and negatives among {len(ex)} "
            "examples; raise its n_documents",
            RuntimeWarning,
            stacklevel=3,
        )
        return pd.DataFrame(), {**timing, "cache_s": cache_s, "probe_s": 0.0}
    if family not in assignments:
        assignments[family] = _assignment(ex, list(acts.features), config)
    split = _split_from(ex, assignments[family])
    test_mask = np.zeros(len(ex), dtype=bool)
    test_mask[split.test] = True
    positives = {name: int(np.nansum(np.where(test_mask, y, np.nan))) for name, y in tasks.items()}
    spec = ProbeSpec("single_neuron", name="neuron", random_state=config.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # failed tasks are dropped below (e.g. one class in train)
        sweep = probe_cache(acts, [spec], tasks=tasks, layers=layers, split=split, n_boot=config.n_boot_docs)
        sweep = pd.concat([sweep, _control_sweep(config, acts, tasks, layers, split)], ignore_index=True)
    if "error" in sweep.columns:
        sweep = sweep[sweep["error"].isna()]
    frames = []
    for method in ("neuron", "control"):
        if not (sweep["method"] == method).any():
            continue
        chosen = best_layer(best_single_neurons(sweep, method=method))
        frames.append(chosen.assign(method=method))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(table):
        table = table.rename(columns={"feature": "task"})
        table["family"] = family
        table["test_positives"] = table["task"].map(positives)
        table["relative_layer"] = table["layer"] / max(lm.n_layers - 1, 1)
        table["unit"] = table["layer"].astype(int).astype(str) + ":" + table["neuron"].astype(int).astype(str)
    return table, {**timing, "cache_s": cache_s, "probe_s": time.perf_counter() - t1}


NEURON_COLUMNS = [
    "model", "family", "role", "task", "method", "layer", "relative_layer", "unit", "f1_val", "roc_auc_val",
    "f1_test", "roc_auc_test", "f1_test_low", "f1_test_high", "test_positives", "status",
]  # fmt: skip


def run(config: ScalingConfig, *, loaded: Mapping[str, Any] | None = None) -> ScalingResult:
    """Probe every family on every model of ``config`` (see the module documentation for the methods).

    ``loaded`` maps model names to already loaded :class:`~sparse_probing.models.LoadedModel` objects (default:
    each model is loaded by name, probed, and released before the next). A model that cannot be loaded is recorded
    in :attr:`ScalingResult.missing`; a family that is not known raises ConfigError.
    """
    from ..analysis.weights import non_embedding_params
    from ..datasets import FAMILIES, is_dataset_file
    from ..models import ModelNotAvailableError, load_model

    unknown = [f for f in config.families if f not in FAMILIES and not is_dataset_file(f)]
    if unknown:
        raise ConfigError(f"unknown families {unknown}; choose from {list(FAMILIES)} or give a dataset file's path")
    loaded = dict(loaded or {})
    models, frames, timings, missing = [], [], [], []
    assignments: dict[str, dict[str, str]] = {}
    for name in config.models:
        t0 = time.perf_counter()
        try:
            lm = loaded[name] if name in loaded else load_model(name)
        except ModelNotAvailableError as err:
            missing.append((name, str(err).split("\n")[0][:200]))
            continue
        load_s = time.perf_counter() - t0
        layers = probe_layers(int(lm.n_layers), config.max_layers)
        models.append(
            {
                "model": name,
                "in_family": name in config.family_models,
                "identity": str(getattr(lm, "identity", name)),
                "n_layers": int(lm.n_layers),
                "layers": ", ".join(map(str, layers)),
                "d_mlp": int(lm.d_mlp),
                "non_embedding_params": int(non_embedding_params(lm)),
            }
        )
        for i, family in enumerate(config.families):
            table, timing = _probe_family(config, lm, family, layers, assignments)
            timings.append({"model": name, **timing, "load_s": load_s if i == 0 else 0.0})
            if len(table):
                frames.append(table.assign(model=name, role="primary" if family in config.primary else "secondary"))
        del lm
        gc.collect()
    if not models:
        raise ValueError(f"none of the models could be loaded: {missing}")
    neurons = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=NEURON_COLUMNS)
    for col in ("f1_test_low", "f1_test_high"):
        if col not in neurons.columns:
            neurons[col] = np.nan
    neurons["status"] = np.where(neurons["test_positives"] < config.min_test_positives, INCONCLUSIVE, "ok")
    return ScalingResult(
        config=config,
        models=pd.DataFrame(models),
        neurons=neurons[NEURON_COLUMNS].reset_index(drop=True),
        timings=pd.DataFrame(timings),
        missing=tuple(missing),
    )


# ---------------------------------------------------------------------------------------------- statistics
def _task_matrix(neurons: pd.DataFrame, models: Sequence[str], value: str, method: str = "neuron") -> pd.DataFrame:
    """Tasks x models table of ``value`` for ``method`` (rows: (family, task) present for every model)."""
    d = neurons[(neurons["method"] == method) & neurons["model"].isin(list(models))]
    wide = d.pivot_table(index=["family", "task"], columns="model", values=value, aggfunc="first")
    return wide.reindex(columns=list(models)).dropna()


def _claim_tasks(neurons: pd.DataFrame, models: Sequence[str], role: str = "primary") -> tuple[pd.DataFrame, bool]:
    """Rows of ``role`` tasks for ``models`` and whether they are the conclusive ones (else all, to be flagged)."""
    d = neurons[(neurons["role"] == role) & neurons["model"].isin(list(models))]
    ok = d[d["status"] == "ok"]
    return (ok, True) if len(ok) else (d, False)


MIN_TOKENS_PER_PARAM = 20.0
"""Fewest training tokens per non-embedding parameter at which a model family can stand in for Pythia in a size
comparison: about the compute-optimal ratio of Hoffmann et al. (2022); Pythia-70M saw about 4,300."""
PYTHIA_TOKENS = 300e9
"""Tokens every Pythia model was trained on (Biderman et al., 2023)."""


def training_tokens(model: str) -> float | None:
    """Tokens a model was trained on, where known: the mini family's budget, Pythia's 300B; None otherwise."""
    if model.startswith("mini-"):
        from ..training.family import TrainSpec

        return float(TrainSpec().token_budget)
    if "pythia" in model.lower():
        return PYTHIA_TOKENS
    return None


def undertrained(models: pd.DataFrame, order: Sequence[str]) -> str:
    """Why the family ``order`` cannot test the paper's size claims ("" when it can or when it is not known)."""
    if len(order) < 2 or models.empty:
        return ""
    params = dict(zip(models["model"], models["non_embedding_params"], strict=True))
    ratios = {m: training_tokens(m) / params[m] for m in order if training_tokens(m) and params.get(m)}
    if len(ratios) < len(order) or min(ratios.values()) >= MIN_TOKENS_PER_PARAM:
        return ""
    lo, hi = min(ratios.values()), max(ratios.values())
    return (
        f"no offline model family spans sizes at Pythia's training scale: {', '.join(order)} saw {lo:.1f}-{hi:.1f} "
        f"tokens per parameter (Pythia-70M about 4,300; at least {MIN_TOKENS_PER_PARAM:g} needed here). Testable "
        "with a family trained to Pythia's tokens per parameter, or with the paper variant (Pythia by name, a network "
        "and a GPU); the toy width family of 02_ground_truth tests size where the truth is known"
    )


def _no_claim(claim: str, measure: str, paper: str, why: str, n_tasks: int = 0, positives: int = 0) -> Any:
    from ..analysis.verdicts import ClaimEvidence

    return ClaimEvidence(
        claim=claim, chapter=CHAPTER, measure=measure, paper=paper, not_testable=f"not measured in this run: {why}",
        n_tasks=n_tasks, min_test_positives=positives,
    )  # fmt: skip


def _mde(per_task: np.ndarray) -> float | None:
    value = minimal_detectable_effect(per_task)
    return float(value) if np.isfinite(value) else None


def _paired(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    out = paired_bootstrap(a, b, n_boot=n_boot, random_state=seed)
    est = out["mean_diff"]
    return est, min(out["low"], est), max(out["high"], est)


def size_difference(
    neurons: pd.DataFrame,
    order: Sequence[str],
    *,
    value: str = "f1_test",
    method: str = "neuron",
    role: str = "primary",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired difference over tasks of ``value`` (largest minus smallest of ``order``) for ``method``, with the
    bootstrap interval over tasks; ``n_tasks``, ``min_test_positives`` and ``conclusive`` (False when no task had
    enough test positives and all were used). Empty dict when fewer than two models or no shared task."""
    if len(order) < 2:
        return {}
    ends = [order[0], order[-1]]
    rows, conclusive = _claim_tasks(neurons, ends, role)
    wide = _task_matrix(rows, ends, value, method)
    if wide.empty:
        return {}
    est, lo, hi = _paired(wide[ends[1]].to_numpy(), wide[ends[0]].to_numpy(), n_boot, seed)
    keys = set(wide.index)
    pos = rows[[k in keys for k in zip(rows["family"], rows["task"], strict=True)]]["test_positives"]
    return {
        "estimate": est,
        "low": lo,
        "high": hi,
        "mde": _mde(wide[ends[1]].to_numpy() - wide[ends[0]].to_numpy()),
        "n_tasks": len(wide),
        "min_test_positives": int(pos.min()),
        "conclusive": conclusive,
        "tasks": wide,
    }


def control_margin(
    neurons: pd.DataFrame,
    order: Sequence[str],
    *,
    value: str = "f1_test",
    role: str = "primary",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """The size difference of the best neuron minus the same difference in the control, paired over tasks:
    ``estimate, low, high, neuron, control`` (the two differences). Empty when not measurable."""  # fmt: skip
    real = size_difference(neurons, order, value=value, role=role, n_boot=n_boot, seed=seed)
    ctrl = size_difference(neurons, order, value=value, method="control", role=role, n_boot=n_boot, seed=seed)
    if not real or not ctrl:
        return {}
    ends = [order[0], order[-1]]
    a, b = real["tasks"], ctrl["tasks"]
    shared = a.index.intersection(b.index)
    if not len(shared):
        return {}
    da = (a.loc[shared, ends[1]] - a.loc[shared, ends[0]]).to_numpy()
    db = (b.loc[shared, ends[1]] - b.loc[shared, ends[0]]).to_numpy()
    est, lo, hi = _paired(da, db, n_boot, seed)
    return {"estimate": est, "low": lo, "high": hi, "neuron": real["estimate"], "control": ctrl["estimate"]}


def size_correlation(
    neurons: pd.DataFrame,
    order: Sequence[str],
    sizes: Mapping[str, float],
    *,
    value: str = "f1_test",
    method: str = "neuron",
    role: str = "primary",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Spearman correlation of model size with the mean ``value`` over tasks, across the models of ``order``, with
    a bootstrap interval over tasks: ``rho, low, high, n_models, n_tasks``. Empty with fewer than three models."""
    if len(order) < 3:
        return {}
    rows, _ = _claim_tasks(neurons, order, role)
    wide = _task_matrix(rows, order, value, method)
    if wide.empty:
        return {}
    size_rank = pd.Series([sizes[m] for m in order]).rank().to_numpy()

    def rho(matrix: np.ndarray) -> float:
        means = pd.Series(matrix.mean(axis=0))
        if means.nunique() < 2:
            return float("nan")
        return float(means.rank().corr(pd.Series(size_rank)))

    out = bootstrap_statistic(rho, wide.to_numpy(), n_boot=n_boot, random_state=seed)
    return {
        "rho": out["estimate"],
        "low": out["low"],
        "high": out["high"],
        "n_models": len(order),
        "n_tasks": len(wide),
    }


def size_claim(
    neurons: pd.DataFrame,
    order: Sequence[str],
    models: pd.DataFrame | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    control: str = "random_basis",
) -> Any:
    """The claim "sparsity rises with model size" on the primary tasks of the family models ``order``.

    Estimate: paired mean over tasks of the best single neuron's test F1 in the largest minus the smallest family
    model; 95% interval from the bootstrap over tasks; minimal effect :data:`MIN_SIZE`. ``control`` says in words the same difference
    for the control search and the margin of the neuron's difference over it (paired over tasks, with its interval):
    the rise that the control does not show.
    """
    from ..analysis.verdicts import ClaimEvidence, describe_correlation, format_ci

    claim = "sparsity rises with model size"
    if len(order) < 2:
        return _no_claim(claim, "best single-neuron F1, largest minus smallest family model", PAPER_SIZE,
                         f"{len(order)} family model(s) ran; two are needed")  # fmt: skip
    measure = f"best single-neuron test F1, {order[-1]} minus {order[0]} (paired over the paper's tasks)"
    diff = size_difference(neurons, order, n_boot=n_boot, seed=seed)
    if not diff:
        return _no_claim(claim, measure, PAPER_SIZE, "no primary task shared by the smallest and largest model")
    words = []
    margin = control_margin(neurons, order, n_boot=n_boot, seed=seed)
    label = "random basis" if control == "random_basis" else "shuffled labels"
    if margin:
        words.append(
            f"{label}: difference {_signed(margin['control'])}; neuron minus {label} "
            f"{format_ci(margin['estimate'], margin['low'], margin['high'])}"
        )
    if models is not None and len(models):
        sizes = dict(zip(models["model"], models["non_embedding_params"], strict=True))
        corr = size_correlation(neurons, order, sizes, n_boot=n_boot, seed=seed)
        if corr:
            words.append(describe_correlation("Spearman of size and mean F1", corr["rho"], corr["low"], corr["high"]))
    if not diff["conclusive"]:
        words.append("no task has enough test positives")
    return ClaimEvidence(
        claim=claim,
        chapter=CHAPTER,
        measure=measure,
        paper=PAPER_SIZE,
        estimate=diff["estimate"],
        ci_low=diff["low"],
        ci_high=diff["high"],
        minimal_effect=MIN_SIZE,
        minimal_effect_source=MIN_SIZE_SOURCE,
        mde=diff["mde"],
        estimator=ESTIMATOR,
        control="; ".join(words),
        n_tasks=diff["n_tasks"],
        min_test_positives=diff["min_test_positives"],
    )


def _class_group(family: str, task: str) -> str:
    """The set of classes a task competes with: its feature for one-vs-rest classes ("language=de"), else the
    family (the bigrams of a compound-word family, the languages of ``paper_code``)."""
    return f"{family}/{task.split('=')[0]}" if "=" in task else family


def shared_units(neurons: pd.DataFrame) -> pd.DataFrame:
    """Per (model, method, family, task): ``shared`` is True when the task's best unit (layer and neuron, or
    rotated direction) is also the best unit of another class of its group (see :func:`_class_group`). Groups
    with a single class are left out. Columns: ``model, method, family, role, task, group, unit, shared,
    test_positives, status``."""
    d = neurons.assign(group=[_class_group(f, t) for f, t in zip(neurons["family"], neurons["task"], strict=True)])
    size = d.groupby(["model", "method", "group"])["task"].transform("count")
    d = d[size >= 2].copy()
    d["shared"] = d.duplicated(["model", "method", "group", "unit"], keep=False)
    cols = ["model", "method", "family", "role", "task", "group", "unit", "shared", "test_positives", "status"]
    return d[cols].reset_index(drop=True)


def splitting_claim(
    neurons: pd.DataFrame, order: Sequence[str], *, n_boot: int = 2000, seed: int = 0, control: str = "random_basis"
) -> Any:
    """The claim "neurons split with size", by a proxy: the share of the primary tasks whose best neuron is also the
    best neuron of another class of the same group, in the smallest minus the largest family model (paired over
    tasks; positive when sharing falls with size, as splitting predicts). The same difference for the control
    search is given in words: more candidates alone make a coincidence rarer. Minimal effect :data:`MIN_SPLITTING`.
    """
    from ..analysis.verdicts import ClaimEvidence, format_ci

    claim = "neuron splitting with size (proxy: shared best neurons)"
    measure = "share of classes whose best neuron is shared with another class, smallest minus largest family model"
    if len(order) < 2:
        return _no_claim(claim, measure, PAPER_SPLITTING, f"{len(order)} family model(s) ran; two are needed")
    ends = [order[0], order[-1]]
    shared = shared_units(neurons[neurons["model"].isin(ends)])
    rows, conclusive = _claim_tasks(shared.assign(shared=shared["shared"].astype(float)), ends)
    wide = _task_matrix(rows, ends, "shared")
    if wide.empty:
        return _no_claim(claim, measure, PAPER_SPLITTING, "no primary class group with two or more classes")
    est, lo, hi = _paired(wide[ends[0]].to_numpy(), wide[ends[1]].to_numpy(), n_boot, seed)
    label = "random basis" if control == "random_basis" else "shuffled labels"
    words = [
        f"a proxy: shared best neuron in {wide[ends[0]].mean():.2f} of classes ({ends[0]}) and "
        f"{wide[ends[1]].mean():.2f} ({ends[1]})"
    ]
    ctrl = _task_matrix(rows, ends, "shared", method="control")
    if len(ctrl):
        c_est, c_lo, c_hi = _paired(ctrl[ends[0]].to_numpy(), ctrl[ends[1]].to_numpy(), n_boot, seed)
        words.append(f"{label}: smallest minus largest {format_ci(c_est, c_lo, c_hi)}")
    if not conclusive:
        words.append("no task has enough test positives")
    keys = set(wide.index)
    pos = rows[[k in keys for k in zip(rows["family"], rows["task"], strict=True)]]["test_positives"]
    return ClaimEvidence(
        claim=claim,
        chapter=CHAPTER,
        measure=measure,
        paper=PAPER_SPLITTING,
        estimate=est,
        ci_low=lo,
        ci_high=hi,
        minimal_effect=MIN_SPLITTING,
        minimal_effect_source=MIN_SPLITTING_SOURCE,
        mde=_mde(wide[ends[0]].to_numpy() - wide[ends[1]].to_numpy()),
        estimator=ESTIMATOR,
        control="; ".join(words),
        n_tasks=len(wide),
        min_test_positives=int(pos.min()),
    )


# ---------------------------------------------------------------------------------------------- tables


def _signed(value: float, digits: int = 2) -> str:
    """``+0.12`` or ``\u22120.12`` (a minus sign, not a hyphen)."""
    return f"{value:+.{digits}f}".replace("-", "\u2212") if np.isfinite(value) else "n/a"


def _mean_ci(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (math.nan,) * 3
    if values.size == 1:
        return (float(values[0]),) * 3
    out = bootstrap_statistic(np.mean, values, n_boot=n_boot, random_state=seed)
    return out["estimate"], out["low"], out["high"]


def model_table(result: ScalingResult) -> pd.DataFrame:
    """One row per model and role (primary/secondary): non-embedding parameters, tasks, mean best single-neuron test
    F1 with its 95% interval over tasks, mean test ROC-AUC, share of tasks with a dedicated neuron
    (:func:`~sparse_probing.analysis.statistics.is_dedicated`), and the control's mean F1. Numbers, not text."""
    from ..analysis.verdicts import format_ci  # noqa: F401  (the notebook formats with it)

    n = result.reported
    rows = []
    for _, m in result.models.iterrows():
        for role in ("primary", "secondary"):
            d = n[(n["model"] == m["model"]) & (n["role"] == role)]
            real, ctrl = d[d["method"] == "neuron"], d[d["method"] == "control"]
            if real.empty:
                continue
            est, lo, hi = _mean_ci(real["f1_test"].to_numpy(), result.config.n_boot, result.config.seed)
            rows.append(
                {
                    "model": m["model"],
                    "in_family": bool(m["in_family"]),
                    "role": role,
                    "non_embedding_params": int(m["non_embedding_params"]),
                    "d_mlp": int(m["d_mlp"]),
                    "tasks": len(real),
                    "f1": est,
                    "f1_low": lo,
                    "f1_high": hi,
                    "roc_auc": float(real["roc_auc_test"].mean()),
                    "dedicated": float(np.mean(is_dedicated(real["roc_auc_test"].to_numpy()))),
                    "control_f1": float(ctrl["f1_test"].mean()) if len(ctrl) else math.nan,
                }
            )
    return pd.DataFrame(rows)


def model_table_text(result: ScalingResult) -> pd.DataFrame:
    """:func:`model_table` as text for the page: parameters in millions, F1 with its interval on one line."""
    from ..analysis.verdicts import format_ci

    t = model_table(result)
    if t.empty:
        return t
    label = "random basis" if result.config.control == "random_basis" else "shuffled labels"
    return pd.DataFrame(
        {
            "model": t["model"] + np.where(t["in_family"], "", " (other)"),
            "datasets": t["role"],
            "non-embedding params": [f"{v / 1e6:.1f}M" for v in t["non_embedding_params"]],
            "neurons per layer": t["d_mlp"],
            "tasks": t["tasks"],
            "best neuron F1 (95% CI)": [format_ci(*r) for r in t[["f1", "f1_low", "f1_high"]].to_numpy()],
            "ROC-AUC": [_fmt(v) for v in t["roc_auc"]],
            "dedicated": [f"{v:.0%}" for v in t["dedicated"]],
            f"{label} F1": [_fmt(v) for v in t["control_f1"]],
        }
    )


def trajectories(neurons: pd.DataFrame, order: Sequence[str], value: str = "f1_test") -> pd.DataFrame:
    """Tasks x family models of the best single neuron's ``value`` (tasks present in every model of ``order``)."""
    return _task_matrix(neurons, order, value)


def change_table(neurons: pd.DataFrame, order: Sequence[str], *, n: int = 5) -> dict[str, pd.DataFrame]:
    """Tasks that gain a dedicated neuron between the smallest and the largest family model (test ROC-AUC crosses
    :data:`~sparse_probing.analysis.statistics.DEDICATED_AUC` upwards; the paper's "quantization"), those that lose
    one, and the largest changes of test F1 either way: ``{"gained", "lost", "rising", "falling"}``, each at most
    ``n`` rows of text (family, task, test ROC-AUC and F1 at every size)."""
    if len(order) < 2:
        return {k: pd.DataFrame() for k in ("gained", "lost", "rising", "falling")}
    auc, f1 = trajectories(neurons, order, "roc_auc_test"), trajectories(neurons, order, "f1_test")
    first, last = order[0], order[-1]
    ded_first, ded_last = is_dedicated(auc[first].to_numpy()), is_dedicated(auc[last].to_numpy())
    change = (f1[last] - f1[first]).rename("change")

    def text(index: pd.Index) -> pd.DataFrame:
        rows = []
        for fam, task in index[:n]:
            row = {"family": fam, "task": task}
            row.update({f"AUC {m}": _fmt(auc.loc[(fam, task), m]) for m in order})
            row[f"F1 {first} \u2192 {last}"] = (
                f"{_fmt(f1.loc[(fam, task), first])} \u2192 {_fmt(f1.loc[(fam, task), last])}"
            )
            rows.append(row)
        return pd.DataFrame(rows)

    gained = auc.index[~ded_first & ded_last]
    lost = auc.index[ded_first & ~ded_last]
    order_change = change.sort_values(kind="stable")
    return {
        "gained": text(change.loc[gained].sort_values(ascending=False).index),
        "lost": text(change.loc[lost].sort_values().index),
        "rising": text(order_change[order_change > 0].index[::-1]),
        "falling": text(order_change[order_change < 0].index),
    }


def shared_table(result: ScalingResult) -> pd.DataFrame:
    """Per model and family (rows: models; columns: families): the share of classes whose best neuron is shared with
    another class of its group, as text "neuron / control" (families without a group of two classes left out)."""
    s = shared_units(result.reported)
    if s.empty:
        return pd.DataFrame()
    share = s.groupby(["model", "family", "method"])["shared"].mean().unstack("method")
    cells = {idx: f"{_fmt(r.get('neuron', np.nan))} / {_fmt(r.get('control', np.nan))}" for idx, r in share.iterrows()}
    out = pd.Series(cells).unstack()
    order = [m for m in result.config.models if m in out.index]
    families = [f for f in result.config.families if f in out.columns]
    return out.reindex(index=order, columns=families).fillna("n/a").rename_axis("model").reset_index()


def depth_table(result: ScalingResult) -> pd.DataFrame:
    """Median relative depth (0 first layer, 1 last) of the chosen layer of the best neuron, per family and model."""
    n = result.reported[result.reported["method"] == "neuron"]
    if n.empty:
        return pd.DataFrame()
    t = n.pivot_table(index="family", columns="model", values="relative_layer", aggfunc="median")
    t = t.reindex(columns=[m for m in result.config.models if m in t.columns])
    t = t.reindex([f for f in result.config.families if f in t.index])
    return t.map(_fmt).rename_axis(None, axis=1).reset_index()


# ---------------------------------------------------------------------------------------------- figures
def _palette(families: Sequence[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab10").colors
    return {f: colors[i % len(colors)] for i, f in enumerate(families)}


def plot_size(result: ScalingResult) -> Any:
    """Left: mean best single-neuron test F1 (95% interval over tasks) against non-embedding parameters, the family
    models joined by a line, the others as squares, for the primary and the secondary datasets, with the control's
    mean as a dashed line. Right: the paper's numbers for Pythia, on the same y range."""
    import matplotlib.pyplot as plt

    t = model_table(result)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0]
    styles = {"primary": ("C0", "paper's datasets"), "secondary": ("C1", "self-built families")}
    label = "random basis" if result.config.control == "random_basis" else "shuffled labels"
    for role, (color, name) in styles.items():
        d = t[t["role"] == role]
        if d.empty:
            continue
        for in_family, marker, ls in ((True, "o", "-"), (False, "s", "none")):
            p = d[d["in_family"] == in_family].sort_values("non_embedding_params")
            if p.empty:
                continue
            ax.errorbar(
                p["non_embedding_params"], p["f1"], yerr=[p["f1"] - p["f1_low"], p["f1_high"] - p["f1"]],
                color=color, marker=marker, ls=ls, capsize=3, label=f"{name}" + ("" if in_family else " (other models)"),
            )  # fmt: skip
            if in_family:
                ax.plot(p["non_embedding_params"], p["control_f1"], color=color, ls="--", lw=1, marker="x")
    for _, r in t.drop_duplicates("model").iterrows():
        ax.annotate(r["model"], (r["non_embedding_params"], 0.02), fontsize=7, rotation=90, ha="center", va="bottom")
    ax.plot([], [], color="grey", ls="--", marker="x", lw=1, label=f"{label} (family models)")
    ax.set(xscale="log", xlabel="non-embedding parameters", ylabel="mean best single-neuron test F1", ylim=(0, 1.02))
    ax.set_title("This study (95% CI over tasks)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    paper = pd.Series(PAPER_MEAN_BEST_SINGLE_NEURON_F1)
    axes[1].plot(range(len(paper)), paper.to_numpy(), "o-", color="C2")
    axes[1].set_xticks(range(len(paper)), paper.index, fontsize=8)
    axes[1].set(xlabel="Pythia model", ylabel="mean best single-neuron F1", ylim=ax.get_ylim())  # ours' y range
    axes[1].set_title("Paper (top 100 features)", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_trajectories(result: ScalingResult) -> Any:
    """Every conclusive task's best single-neuron test F1 along the family models, one panel per role, one colour
    per dataset family (the same colours in both panels), the mean over tasks in black."""
    import matplotlib.pyplot as plt

    order = result.family_order
    palette = _palette(result.config.families)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, role in zip(axes, ("primary", "secondary"), strict=True):
        d = result.reported[result.reported["role"] == role]
        traj = trajectories(d, order) if len(order) >= 2 else pd.DataFrame()
        x = np.arange(len(order))
        for (family, _), row in traj.iterrows():
            ax.plot(x, row.to_numpy(), color=palette[family], alpha=0.45, lw=1)
        if len(traj):
            ax.plot(x, traj.mean().to_numpy(), color="black", lw=2.2, marker="o", label="mean")
        for family in dict.fromkeys(traj.index.get_level_values(0)) if len(traj) else []:
            ax.plot([], [], color=palette[family], label=family)
        ax.set_xticks(x, order)
        ax.set(ylim=(0, 1.02), xlabel="family model (smallest first)")
        ax.set_title(("paper's datasets" if role == "primary" else "self-built families") + f" ({len(traj)} tasks)",
                     fontsize=10)  # fmt: skip
        if len(traj):
            ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("best single-neuron test F1")
    fig.tight_layout()
    plt.close(fig)
    return fig


def caption_size(result: ScalingResult, number: int = 2) -> str:
    """The caption of :func:`plot_size`, with its takeaway computed from the result."""
    from ..analysis.verdicts import describe_difference

    order = result.family_order
    label = "random basis" if result.config.control == "random_basis" else "shuffled labels"
    text = (
        f"**Figure {number}.** Mean test F1 of the best single neuron per task (layer chosen on validation ROC-AUC) "
        f"against model size, with the {label} control as dashed lines; right, the paper's Pythia numbers on the same y range."
    )
    diff = size_difference(result.neurons, order, n_boot=result.config.n_boot, seed=result.config.seed)
    if diff:
        text += " On the paper's datasets, " + describe_difference(
            order[-1], order[0], diff["estimate"], diff["low"], diff["high"]
        ) + f" ({diff['n_tasks']} tasks)."  # fmt: skip
    return text


def caption_trajectories(result: ScalingResult, number: int = 3) -> str:
    """The caption of :func:`plot_trajectories`, with how many tasks rise and fall along the family."""
    order = result.family_order
    which = "conclusive task" if (result.neurons["status"] == "ok").any() else "task (none is conclusive)"
    text = f"**Figure {number}.** Best single-neuron test F1 of every {which} along the family models."
    if len(order) >= 2:
        traj = trajectories(result.reported, order)
        if len(traj):
            change = traj[order[-1]] - traj[order[0]]
            text += (
                f" From {order[0]} to {order[-1]}, {int((change > 0.05).sum())} of {len(traj)} tasks rise by more "
                f"than 0.05, {int((change < -0.05).sum())} fall by more than 0.05 and {int((change.abs() <= 0.05).sum())} "
                "stay within 0.05."
            )
    return text


# ---------------------------------------------------------------------------------------------- prose
def _verdict_lines(claims: Sequence[Any]) -> list[str]:
    from ..analysis.verdicts import format_ci, verdict_and_reason

    lines = []
    for c in claims:
        v, why = verdict_and_reason(c)
        measured = "" if c.not_testable else (
            f" {c.measure}: {format_ci(c.estimate, c.ci_low, c.ci_high)} over {c.n_tasks} tasks (fewest test "
            f"positives {c.min_test_positives})" + (f"; {c.control}" if c.control else "") + "."
        )  # fmt: skip
        lines.append(f"* **{c.claim}**: {v} ({why}).{measured}")
    return lines


def verdict_box(result: ScalingResult) -> str:
    """The opening box of the chapter: the verdict on each claim (:func:`~sparse_probing.analysis.verdicts.verdict_box`)."""
    from ..analysis.verdicts import verdict_box as shared

    return shared(result.claims())


def what_would_change(result: ScalingResult) -> str:
    """The closing section on what would change the verdicts
    (:func:`~sparse_probing.analysis.verdicts.what_would_change`)."""
    from ..analysis.verdicts import what_would_change as shared

    return shared(result.claims())


def findings(result: ScalingResult) -> str:
    """A few sentences (markdown bullets) on what the chapter shows, computed from the result."""
    from ..analysis.verdicts import describe_correlation, describe_difference, format_ci

    cfg = result.config
    order = result.family_order
    kw = {"n_boot": cfg.n_boot, "seed": cfg.seed}
    lines = _verdict_lines(result.claims())
    label = "random basis" if cfg.control == "random_basis" else "shuffled labels"
    sizes = dict(zip(result.models["model"], result.models["non_embedding_params"], strict=True))
    for role, name in (("primary", "the paper's datasets"), ("secondary", "the self-built families")):
        diff = size_difference(result.neurons, order, role=role, **kw)
        if not diff:
            continue
        text = f"* On {name}: " + describe_difference(f"{order[-1]}", f"{order[0]}", diff["estimate"], diff["low"],
                                                       diff["high"], unit="F1")  # fmt: skip
        margin = control_margin(result.neurons, order, role=role, **kw)
        if margin:
            text += (
                f"; the {label} changes by {_signed(margin['control'])}, so the margin of the neuron's change over the "
                f"control is {format_ci(margin['estimate'], margin['low'], margin['high'])}"
            )
        corr = size_correlation(result.neurons, order, sizes, role=role, **kw)
        if corr:
            text += "; " + describe_correlation("Spearman of size and mean F1", corr["rho"], corr["low"], corr["high"])
        lines.append(text + f" ({diff['n_tasks']} tasks).")
    t = model_table(result)
    others = t[~t["in_family"]] if len(t) else t
    for _, r in others.iterrows():
        lines.append(
            f"* {r['model']} (not in the family; {r['role']} datasets): mean best single-neuron F1 "
            f"{format_ci(r['f1'], r['f1_low'], r['f1_high'])}, {r['dedicated']:.0%} of tasks with a dedicated neuron."
        )
    if result.missing:
        lines.append("* Not available, skipped: " + "; ".join(f"`{m}` ({why})" for m, why in result.missing) + ".")
    inc = result.neurons[(result.neurons["status"] == INCONCLUSIVE) & (result.neurons["method"] == "neuron")]
    if len(inc):
        n_inc = inc[["family", "task"]].drop_duplicates().shape[0]
        left_out = (
            "are left out of the tables and claims"
            if len(result.reported) < len(result.neurons)
            else "(every task: the tables show them all, and the claims are inconclusive)"
        )
        lines.append(f"* {n_inc} tasks had fewer than {cfg.min_test_positives} test positives and {left_out}.")
    return "\n".join(lines)


def size_axis(config: ScalingConfig, number: int = 1) -> tuple[Any, pd.DataFrame, str]:
    """The family's training record from ``data/models/``: the loss figure (None when no family model has logs),
    a table of size, budget and held-out loss per domain, and a caption that says whether the loss falls with size
    in every domain."""
    from ..training.family import MINI_FAMILY
    from ..training.report import load_logs, load_summaries, scaling_check, training_figure

    specs = [s for s in MINI_FAMILY if s.name in config.family_models]
    summaries = load_summaries(specs=specs)
    if summaries.empty:
        return None, pd.DataFrame(), "None of `family_models` is a mini model trained here: no training logs to show."
    import matplotlib.pyplot as plt

    fig = training_figure(summaries, load_logs(specs=specs))
    fig.set_size_inches(11, 3.4)
    plt.close(fig)
    losses = [c for c in summaries if c.startswith("loss_")]
    table = pd.DataFrame(
        {
            "model": summaries["model"],
            "non-embedding params": [f"{v / 1e6:.2f}M" for v in summaries["params_non_embedding"]],
            "tokens": [f"{v / 1e6:.1f}M" for v in summaries["tokens"]],
            "hours": [f"{v:.1f}" for v in summaries["train_hours"]],
            **{c.removeprefix("loss_"): [f"{v:.3f}" for v in summaries[c]] for c in losses},
        }
    )
    bad = [pair for pairs in scaling_check(summaries).values() for pair in pairs] if len(summaries) >= 2 else []
    caption = (
        f"**Figure {number}.** Training loss, held-out loss during training and final held-out loss per domain "
        "(nats per token on documents never trained on) of the family models. "
        + (
            "The held-out loss falls with size in every domain: the family is a size axis."
            if not bad
            else f"The held-out loss does not fall with size everywhere: {'; '.join(bad)}."
        )
    )
    return fig, table, caption
