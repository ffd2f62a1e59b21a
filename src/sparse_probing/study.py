"""Probing tasks on a cache entry: the chapters' shared path from cached activations to probe results.

A chapter caches activations (:func:`cache_for`), turns the cached examples into binary tasks with
:func:`binary_tasks`, probes them with :func:`probe_cache` (a grouped train/validation/test split and
:func:`~sparse_probing.probes.run_sweep`) and reads the result with :func:`best_single_neurons` and
:func:`best_layer`; :func:`pruning_curve` removes the best neurons one by one. What a neuron responds to is in
:mod:`sparse_probing.analysis.inspection`, whether the model uses it in :mod:`sparse_probing.analysis.ablation`,
weight statistics in :mod:`sparse_probing.analysis.weights`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .activations import ActivationSpec, CachedActivations, load_or_compute
from .datasets import ProbingDataset, load_dataset
from .datasets.sizing import binary_columns
from .metrics import binary_metrics, bootstrap_ci
from .models import LoadedModel
from .probes import ProbeSpec, iterative_pruning, run_sweep
from .probes._base import fit_logistic
from .splits import Split, grouped_split

_SCHEDULER_ENV = "SPARSE_PROBING_SCHEDULER"  # distributed.SCHEDULER_ENV, named here so that nothing imports Dask


def cache_for(
    model: str | LoadedModel,
    dataset: str,
    variant: str,
    *,
    n_documents: int | None = None,
    max_length: int = 128,
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
) -> CachedActivations:
    """Cached MLP activations of every layer (or ``layers``) of ``model`` on a dataset (computed once, then reused).

    Chapters that use the same arguments share one cache entry. With a Dask scheduler active (a
    :func:`sparse_probing.distributed.scheduler` block, or ``$SPARSE_PROBING_SCHEDULER``, which
    ``sparse-probing chapter --scheduler`` sets for a chapter's kernel) the entry is computed in shards on the
    workers (:func:`~sparse_probing.distributed.cache_sharded`, each worker loading the model by name); the entry is
    the same either way.
    """
    loaded = model if isinstance(model, LoadedModel) else None
    name = loaded.spec.name if loaded is not None else str(model)
    spec = ActivationSpec(
        model=name,
        dataset=dataset,
        variant=variant,
        layers=None if layers is None else tuple(layers),
        max_length=max_length,
        n_documents=n_documents,
        batch_size=batch_size,
    )
    client = _active_client()
    if client is not None:
        from . import distributed

        return distributed.cache_sharded(spec, client=client)
    return load_or_compute(spec, model=loaded)


def _active_client() -> Any:
    """The Dask client caching and sweeps use now (:func:`sparse_probing.distributed.active_client`), or None.

    Dask is not imported unless a scheduler can be active: an enclosing
    :func:`sparse_probing.distributed.scheduler` block (which imports that module) or ``$SPARSE_PROBING_SCHEDULER``
    (whose scheduler is opened once per process and reused by every later call).
    """
    module = sys.modules.get(f"{__package__}.distributed")
    if module is None:
        if not os.environ.get(_SCHEDULER_ENV):
            return None
        from . import distributed as module
    return module.active_client()


def dataset_of(acts: CachedActivations) -> ProbingDataset:
    """The dataset (restricted to the documents actually cached) behind a cache entry."""
    spec = acts.meta["spec"]
    ds = load_dataset(spec["dataset"], spec["variant"])
    return ds.subset(spec["n_documents"]) if spec.get("n_documents") else ds


def binary_tasks(
    examples: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    min_positives: int = 10,
    min_negatives: int = 10,
) -> dict[str, np.ndarray]:
    """One binary task per feature value: ``"language=de"`` is 1 for German documents and 0 for the others.

    Features whose values are already 0/1 (e.g. a compound word present or not) give one task named after the
    feature. Rows where a feature is missing are NaN (they take no part in that task). Regression features and
    values with fewer than ``min_positives`` positives (or ``min_negatives`` negatives) are left out.
    """
    names = [c for c in examples.columns if c not in ("doc", "tok_start", "tok_end", "group")]
    if features is not None:
        unknown = sorted(set(features) - set(names))
        if unknown:
            raise KeyError(f"features {unknown} are not in these examples; available: {names}")
        names = list(features)

    def is_regression(feature: str) -> bool:
        values = examples[feature].dropna()
        return pd.api.types.is_float_dtype(values) and not bool(values.isin([0, 1]).all())

    tasks: dict[str, np.ndarray] = {}
    for name, y in binary_columns(examples, [f for f in names if not is_regression(f)]).items():
        n_pos, n_labelled = int(np.nansum(y)), int(np.isfinite(y).sum())
        if n_pos >= min_positives and n_labelled - n_pos >= min_negatives:
            tasks[name] = y
    return tasks


def split_examples(examples: pd.DataFrame, *, stratify: str | None = None, seed: int = 0) -> Split:
    """Train / validation / test (70/15/15 %) by group, so that no source document straddles two parts."""
    y = None
    if stratify is not None and examples[stratify].notna().all():
        y = examples[stratify].astype(str).to_numpy()
    return grouped_split(examples["group"].to_numpy(), y, random_state=seed)


def probe_cache(
    acts: CachedActivations,
    specs: Sequence[ProbeSpec | str],
    *,
    tasks: dict[str, np.ndarray] | None = None,
    layers: Sequence[int] | None = None,
    split: Split | None = None,
    n_boot: int = 200,
    progress: bool = False,
) -> pd.DataFrame:
    """Probe every task on every layer of a cache entry; one row per (task, layer, method, k).

    Defaults: every task of :func:`binary_tasks`, every cached layer, a grouped split stratified by the first
    feature when every example has it, and a bootstrap CI over documents for the test F1.

    The sweep's tasks run on Dask workers when a scheduler is active (see
    :func:`~sparse_probing.probes.run_sweep`): inside a :func:`sparse_probing.distributed.scheduler` block, or when
    ``$SPARSE_PROBING_SCHEDULER`` is set (e.g. by ``sparse-probing chapter --scheduler local:4``, whose cluster
    serves every call of the chapter). The table is the same either way.
    """
    ex = acts.examples
    tasks = binary_tasks(ex) if tasks is None else tasks
    if not tasks:
        raise ValueError(f"no binary task with enough examples in {acts!r}; use more documents (n_documents).")
    if split is None:
        first = acts.features[0] if acts.features else None
        split = split_examples(ex, stratify=first if first and ex[first].notna().all() else None)
    layers = acts.layers if layers is None else list(layers)
    activations = {layer: acts.layer(layer) for layer in layers}
    groups = ex["doc"].to_numpy()
    df = run_sweep(activations, tasks, split, specs, groups=groups, n_boot=n_boot, progress=progress)
    meta = acts.meta["spec"]
    return df.assign(model=meta["model"], dataset=meta["dataset"])


def best_single_neurons(results: pd.DataFrame, *, method: str | None = None, metric: str = "f1") -> pd.DataFrame:
    """Per (task, layer): the neuron of the 1-sparse probe of ``method``, with its validation and test scores.

    ``method=None`` takes ``"single_neuron"`` (the exhaustive search: every neuron's threshold fitted on train, the
    neuron chosen on validation ROC-AUC) when the sweep ran it, else ``"mean_diff"`` (the top neuron by mean
    difference, chosen on train). Columns: model, feature, layer, neuron, the ``{metric}_*`` and ``roc_auc_*``
    scores; the test scores and their bootstrap CI are the honest report.
    """
    if method is None:
        method = "single_neuron" if (results["method"] == "single_neuron").any() else "mean_diff"
    rows = results[(results["method"] == method) & (results["k"] == 1)].copy()
    if rows.empty:
        raise ValueError(f"no k=1 rows for method {method!r}: run the sweep with ks including 1.")
    rows["neuron"] = [int(np.asarray(s)[0]) for s in rows["support"]]
    keep = [c for c in ("model", "feature", "layer", "neuron") if c in rows.columns]
    keep += [c for c in rows.columns if c.startswith(f"{metric}_")]
    keep += [c for c in rows.columns if c.startswith("roc_auc_") and c not in keep]
    return rows[keep].reset_index(drop=True)


def best_layer(table: pd.DataFrame, *, by: Sequence[str] = ("feature",), metric: str | None = None) -> pd.DataFrame:
    """For each group of ``by``, the row (layer, neuron) with the best validation score: choose on val, report test.

    ``metric=None`` uses the continuous ``roc_auc_val`` when the table has it (ties by ``f1_val``), else
    ``f1_val``; remaining ties go to the earlier layer. ``n_tied`` and ``tied_layer`` list the layers that tied on
    the metric: with a small validation set F1 ties at 1.0 over many layers, and "the best layer is early" would
    only restate the tie-break.
    """
    from .probes import select_best

    if metric is None:
        metric = "roc_auc_val" if "roc_auc_val" in table.columns else "f1_val"
    then = [("f1_val", False)] if metric != "f1_val" and "f1_val" in table.columns else []
    return select_best(table, by, metric, then=[*then, ("layer", True)], tied="layer")


def pruning_curve(
    acts: CachedActivations,
    layer: int,
    y: Any,
    split: Split,
    *,
    k: int = 5,
    n_steps: int = 10,
    method: str = "optimal",
    n_boot: int = 0,
    random_state: int = 0,
    **params: Any,
) -> pd.DataFrame:
    """Iterative pruning of one task on one cached layer, with a held-out test score at every step.

    :func:`~sparse_probing.probes.iterative_pruning` fits the k-sparse probes on the training rows and picks the
    neuron to remove on the validation rows (its ``f1`` is returned as ``f1_val``). Every step's support is then
    re-fitted on the training rows (class-balanced L2 logistic regression, the classifier of the sparse probes) and
    scored on the test rows: ``f1_test``, and with ``n_boot > 0`` a bootstrap interval over documents
    (``f1_test_low``, ``f1_test_high``). Rows where ``y`` is NaN take no part. ``params`` go to the method.
    """
    y_N = np.asarray(y, dtype=np.float64)
    parts = {"train": split.train, "val": split.val, "test": split.test}
    rows = {name: idx[~np.isnan(y_N[idx])] for name, idx in parts.items()}
    X = acts.layer(layer)
    Xs = {name: np.asarray(X[idx], dtype=np.float32) for name, idx in rows.items()}
    ys = {name: y_N[idx].astype(np.int64) for name, idx in rows.items()}
    curve = iterative_pruning(
        Xs["train"], ys["train"], Xs["val"], ys["val"], k=k, n_steps=n_steps, method=method,
        random_state=random_state, **params,
    ).rename(columns={"f1": "f1_val"})  # fmt: skip
    groups = acts.examples["doc"].to_numpy()[rows["test"]]
    scores: list[dict[str, float]] = []
    for support in curve["support"]:
        cols = list(support)
        coef, intercept, _, _ = fit_logistic(Xs["train"][:, cols], ys["train"])
        pred = (Xs["test"][:, cols] @ coef + intercept > 0).astype(np.int64)
        row = {"f1_test": binary_metrics(ys["test"], pred)["f1"] if pred.size else float("nan")}
        if n_boot > 0 and pred.size:
            ci = bootstrap_ci(ys["test"], pred, groups=groups, n_boot=n_boot, random_state=0)
            row.update(f1_test_low=float(ci["low"].iloc[0]), f1_test_high=float(ci["high"].iloc[0]))
        scores.append(row)
    return pd.concat([curve, pd.DataFrame(scores)], axis=1).assign(layer=layer)
