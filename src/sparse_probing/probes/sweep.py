"""Sweeps: every (feature x layer x method x k), fitted on train, scored on validation and test, as a tidy table.

A sweep is the unit of work of the study (Gurnee et al. 2023 run every method over every feature, layer and k).
Each (feature, layer, method) task fits the method's whole k path at once (rankings, warm starts and cuts are
shared across k) and scores every k on the validation and test rows; tasks run in parallel with joblib. Model
selection happens afterwards on validation scores only (:func:`select_on_validation`); test scores are reported
for the selected rows, with bootstrap intervals over documents when groups are given.

Methods (``ProbeSpec.method``):

* a ranker name (``mean_diff``, ``f_stat``, ``mutual_info``, ``l1``, ``svm``, ``random``): top-k + L2 logistic
  regression (:func:`~sparse_probing.probes.top_k_path`);
* ``telescopic``: :func:`~sparse_probing.probes.telescopic_path`;
* ``optimal``: :func:`~sparse_probing.probes.optimal_sparse_path` (k = 1..8 by default);
* ``dense``: the dense L2 probe on all neurons (one row, k = D);
* ``random_basis``: the ``base`` method (default ``mean_diff``) after a Haar-random rotation of the neurons;
* ``control``: the ``base`` method trained on shuffled training labels (score it against the real labels; the
  selectivity is real F1 minus control F1, see :func:`selectivity`).

Choosing regularization is choosing among specs: give each value its own labelled spec and select across them::

    specs = [ProbeSpec("mean_diff", params={"C": C}, name=f"mean_diff C={C}") for C in (0.01, 0.1, 1.0)]
    df = run_sweep(activations, labels, split, specs, groups=groups, n_boot=1000)
    best = select_on_validation(df, by=("feature", "layer"))  # C and k chosen on validation; report f1_test
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from .._progress import tqdm
from ..metrics import METRICS, binary_metrics, bootstrap_ci
from ..splits import Split
from ._base import K_GRID, OSP_K_GRID, ProbeInputError, SparseFit
from .baselines import fit_dense, random_orthogonal, shuffled_labels
from .optimal import optimal_sparse_path
from .ranking import RANKERS
from .sparse import telescopic_path, top_k_path

METHODS: tuple[str, ...] = (*RANKERS, "telescopic", "optimal", "dense", "random_basis", "control")
"""Method names accepted by :class:`ProbeSpec`."""


@dataclass(frozen=True)
class ProbeSpec:
    """One probing method with its k grid and parameters, as a row label of a sweep."""

    method: str
    """One of :data:`METHODS`."""
    ks: tuple[int, ...] | None = None
    """Sparsity levels; None means the method's default (the paper's grid; 1..8 for ``optimal``; D for ``dense``)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the method's path function (e.g. ``{"C": 0.1}``; ``{"base": "telescopic"}`` for
    ``random_basis``/``control``)."""
    name: str | None = None
    """Label in the results table (default: ``method``)."""
    random_state: int = 0
    """Seed of rankers, rotations and label shuffles."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ProbeInputError(f"Unknown method {self.method!r}; choose one of {METHODS}.")
        if self.ks is not None:
            object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        base = self.params.get("base")
        if base is not None and (base not in METHODS or base in ("random_basis", "control")):
            raise ProbeInputError(f"base must be a plain method (ranker, telescopic, optimal, dense), got {base!r}.")

    @property
    def label(self) -> str:
        return self.name or self.method

    @property
    def default_ks(self) -> tuple[int, ...]:
        method = self.params.get("base", "mean_diff") if self.method in ("random_basis", "control") else self.method
        return OSP_K_GRID if method == "optimal" else K_GRID


def _as_spec(spec: ProbeSpec | str) -> ProbeSpec:
    return spec if isinstance(spec, ProbeSpec) else ProbeSpec(method=spec)


def fit_method(
    method: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    ks: Sequence[int] | None = None,
    *,
    random_state: int = 0,
    **params: Any,
) -> list[SparseFit]:
    """Fit one plain method's path (a ranker, ``telescopic``, ``optimal`` or ``dense``) on 0/1 labels.

    ``ks=None`` means the method's default grid, silently limited to the number of neurons; explicit ``ks`` larger
    than that are clipped with a :class:`~sparse_probing.probes.KClippedWarning`.
    """
    D = np.shape(X_train)[1]

    def default(grid: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(k for k in grid if k <= D) or (D,)

    if method in RANKERS:
        return top_k_path(
            X_train, y_train, default(K_GRID) if ks is None else ks, ranker=method, random_state=random_state, **params
        )
    if method == "telescopic":
        grid = default(K_GRID) if ks is None else ks
        return telescopic_path(X_train, y_train, grid, random_state=random_state, **params)
    if method == "optimal":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # unproven solves are flagged in the table
            return optimal_sparse_path(
                X_train, y_train, default(OSP_K_GRID) if ks is None else ks, random_state=random_state, **params
            )
    if method == "dense":
        return [fit_dense(np.asarray(X_train, dtype=np.float64), np.asarray(y_train).astype(np.int64), **params)]
    raise ProbeInputError(
        f"fit_method takes a plain method, got {method!r}; plain methods: {(*RANKERS, 'telescopic', 'optimal', 'dense')}."
    )


def _binary_labels(y: Any, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and the mask of usable rows (NaN marks rows that do not take part in a feature)."""
    y_N = np.asarray(y)
    if y_N.dtype == bool:
        return y_N.astype(np.int64), np.ones(y_N.size, dtype=bool)
    if y_N.dtype.kind == "f":
        mask_N = ~np.isnan(y_N)
    else:
        mask_N = np.ones(y_N.size, dtype=bool)
    values = set(np.unique(y_N[mask_N]).tolist())
    if not values <= {0, 1}:
        raise ProbeInputError(
            f"labels[{feature!r}] must be bool or 0/1 (NaN to exclude a row), got values {sorted(values)[:5]}: "
            "build one-vs-rest labels, e.g. examples['language'] == 'fr'."
        )
    return np.where(mask_N, y_N, 0).astype(np.int64), mask_N


def _score(fit: SparseFit, X_ND: np.ndarray, y_N: np.ndarray, suffix: str) -> dict[str, float]:
    if y_N.size == 0:
        return {f"{m}_{suffix}": float("nan") for m in METRICS}
    score_N = fit.decision_function(X_ND)
    return {f"{m}_{suffix}": v for m, v in binary_metrics(y_N, (score_N > 0).astype(int), score_N).items()}


_OSP_FIELDS = ("solver", "status", "proven_optimal", "objective", "best_bound", "mip_gap", "wall_time")


def _run_task(
    feature: str,
    layer: Hashable,
    spec: ProbeSpec,
    X_all: np.ndarray,
    y_all: np.ndarray,
    rows: dict[str, np.ndarray],
    groups_test: np.ndarray | None,
    n_boot: int,
) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    base = {"feature": feature, "layer": layer, "method": spec.label, "params": repr(dict(spec.params))}
    try:
        parts = {name: (np.asarray(X_all[idx], dtype=np.float32), y_all[idx]) for name, idx in rows.items()}
        X_tr, y_tr = parts["train"]
        if np.unique(y_tr).size < 2:
            raise ProbeInputError(f"the training rows of feature {feature!r} contain a single class")
        method, params = spec.method, dict(spec.params)
        if method == "random_basis":
            rotation_DD = random_orthogonal(X_tr.shape[1], spec.random_state).astype(np.float32)
            parts = {name: (X @ rotation_DD, y) for name, (X, y) in parts.items()}
            X_tr = parts["train"][0]
        if method in ("random_basis", "control"):
            method = params.pop("base", "mean_diff")
        if spec.method == "control":
            y_fit = shuffled_labels(y_tr, spec.random_state)
        else:
            y_fit = y_tr
        fits = fit_method(method, X_tr, y_fit, spec.ks, random_state=spec.random_state, **params)
    except Exception as err:  # one failing task must not sink a whole sweep; the error is in the table
        return [{**base, "error": f"{type(err).__name__}: {err}", "task_time": time.perf_counter() - t0}]
    out = []
    for fit in fits:
        row: dict[str, Any] = {
            **base,
            "k": fit.k,
            "support": tuple(int(j) for j in fit.support),
            "n_train": int(y_tr.size),
            "n_pos_train": int(y_tr.sum()),
            "fit_time": fit.fit_time,
        }
        for name in ("val", "test"):
            X, y = parts[name]
            row.update(_score(fit, X, y, name))
        if n_boot > 0 and parts["test"][1].size:
            X, y = parts["test"]
            score_N = fit.decision_function(X)
            ci = bootstrap_ci(y, (score_N > 0).astype(int), groups=groups_test, n_boot=n_boot, random_state=0)
            row["f1_test_low"], row["f1_test_high"] = float(ci["low"].iloc[0]), float(ci["high"].iloc[0])
        if fit.method == "optimal":
            row.update({f"osp_{f}": fit.info.get(f) for f in _OSP_FIELDS})
        out.append(row)
    task_time = time.perf_counter() - t0
    for row in out:
        row["task_time"] = task_time
    return out


def run_sweep(
    activations: Mapping[Hashable, Any],
    labels: Mapping[str, Any],
    split: Split,
    specs: Sequence[ProbeSpec | str],
    *,
    groups: Any | None = None,
    n_boot: int = 0,
    n_jobs: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Fit every (feature, layer, method) on the train rows and score every k on validation and test.

    Parameters
    ----------
    activations : mapping layer -> array (N, D)
        One activation matrix per layer (float16 memmaps from the cache are fine; only the rows in use are read).
    labels : mapping feature -> array (N,)
        Binary labels (bool or 0/1); NaN marks rows that do not take part in a feature.
    split : :class:`~sparse_probing.splits.Split`
        Row indices of train / validation / test (grouped by document).
    specs : ProbeSpec or method names.
    groups : array (N,), optional
        Document ids; with ``n_boot > 0`` the test F1 gets a bootstrap interval over documents
        (``f1_test_low``, ``f1_test_high``).
    n_jobs : joblib workers (at most the cores you may use).
    progress : show a tqdm progress bar.

    Returns a tidy DataFrame, one row per (feature, layer, method, k): ``support``, ``fit_time``, ``task_time``,
    ``{f1,mcc,precision,recall,pr_auc}_{val,test}``, the solver record ``osp_*`` for optimal probes, and ``error``
    for tasks that could not run (e.g. a feature with one class in train).
    """
    specs = [_as_spec(s) for s in specs]
    if not specs:
        raise ProbeInputError("specs is empty: pass at least one method, e.g. ['mean_diff', 'telescopic'].")
    labels_01 = {f: _binary_labels(y, f) for f, y in labels.items()}
    n_rows = {len(np.asarray(y)) for y in labels.values()} | {len(X) for X in activations.values()}
    if len(n_rows) > 1:
        raise ProbeInputError(f"activations and labels disagree on the number of rows: {sorted(n_rows)}.")
    groups_N = None if groups is None else np.asarray(groups)
    tasks = []
    for feature, (y_N, mask_N) in labels_01.items():
        rows = {
            name: idx[mask_N[idx]] for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))
        }
        groups_test = None if groups_N is None else groups_N[rows["test"]]
        for layer, X in activations.items():
            for spec in specs:
                tasks.append(delayed(_run_task)(feature, layer, spec, X, y_N, rows, groups_test, n_boot))
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    records: list[dict[str, Any]] = []
    for rows_out in tqdm(results, total=len(tasks), disable=not progress, desc="probing"):
        records.extend(rows_out)
    df = pd.DataFrame.from_records(records)
    if "error" in df.columns:
        failed = df[df["error"].notna()]
        if len(failed):
            warnings.warn(
                f"{len(failed)} sweep task(s) failed, e.g. {failed.iloc[0]['error']} (see the 'error' column).",
                RuntimeWarning,
                stacklevel=2,
            )
    return df


def select_on_validation(
    df: pd.DataFrame,
    *,
    metric: str = "f1",
    by: Sequence[str] = ("feature", "layer", "method"),
) -> pd.DataFrame:
    """For every group, keep the row with the best validation ``metric`` (ties: the smaller k).

    Test columns of the returned rows are the honest report: nothing about them was used to choose the row.
    """
    column = f"{metric}_val"
    if column not in df.columns:
        raise ProbeInputError(f"{column!r} is not in the table; run the sweep with a validation split.")
    ok = df[df[column].notna()] if "error" not in df.columns else df[df["error"].isna() & df[column].notna()]
    ordered = ok.sort_values([*by, column, "k"], ascending=[True] * len(by) + [False, True], kind="stable")
    return ordered.groupby(list(by), sort=True, dropna=False).head(1).reset_index(drop=True)


def selectivity(df: pd.DataFrame, *, method: str, control: str = "control", metric: str = "f1_test") -> pd.DataFrame:
    """Join ``method`` rows with ``control`` rows on (feature, layer, k): ``selectivity = metric - control metric``."""
    keys = ["feature", "layer", "k"]
    real = df[df["method"] == method][[*keys, metric]]
    ctrl = df[df["method"] == control][[*keys, metric]].rename(columns={metric: f"control_{metric}"})
    out = real.merge(ctrl, on=keys, how="inner")
    out["selectivity"] = out[metric] - out[f"control_{metric}"]
    return out
