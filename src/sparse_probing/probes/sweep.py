"""Sweeps: every (feature x layer x method x k), fitted on train, scored on validation and test, as a tidy table.

A sweep is the unit of work of the study (Gurnee et al. 2023 run every method over every feature, layer and k).
Each (feature, layer, method) task fits the method's whole k path at once (rankings, warm starts and cuts are
shared across k) and scores every k on the validation and test rows; tasks run in parallel with joblib. Model
selection happens afterwards on validation scores only (:func:`select_on_validation`, by validation ROC-AUC, a
continuous score that rarely ties, with the tie set reported); test F1 and ROC-AUC are reported for the selected
rows, with bootstrap intervals over documents when groups are given. Methods that choose hyperparameters
(``optimal`` with its validated gamma, ``single_neuron``) receive the validation rows.

Methods (``ProbeSpec.method``):

* a ranker name (``mean_diff``, ``f_stat``, ``mutual_info``, ``l1``, ``svm``, ``random``): top-k + L2 logistic
  regression (:class:`~sparse_probing.probes.SparseProbe` with that ``ranker``);
* ``telescopic``: :class:`~sparse_probing.probes.TelescopicProbe`;
* ``optimal``: :class:`~sparse_probing.probes.OptimalSparseProbe` (k = 1..8 by default);
* ``single_neuron``: the exhaustively searched best single neuron (every neuron's threshold fitted on train, the
  neuron chosen on validation; :class:`~sparse_probing.probes.SingleNeuronProbe`; one row, k = 1);
* ``dense``: the dense L2 probe on all neurons (:class:`~sparse_probing.probes.DenseProbe`; one row, k = D);
* ``random_basis``: the ``base`` method (default ``mean_diff``) after Haar-random rotations of the neurons: the
  metrics are averaged over ``n_rotations`` seeded rotations (default 5; ``params={"n_rotations": ...}``), with
  their standard deviation in ``f1_test_sd``;
* ``control``: the ``base`` method trained on shuffled training labels (score it against the real labels; the
  selectivity is real F1 minus control F1, see :func:`selectivity`).

Every plain method is an estimator (:func:`make_probe` builds it from a method name and ``ProbeSpec.params``, which
are its constructor parameters); a task calls its ``fit_path(X, y, ks)``, which fits the whole k grid at once.

Choosing regularization is choosing among specs: give each value its own labelled spec and select across them::

    specs = [ProbeSpec("mean_diff", params={"C": C}, name=f"mean_diff C={C}") for C in (0.01, 0.1, 1.0)]
    df = run_sweep(activations, labels, split, specs, groups=groups, n_boot=1000)
    best = select_on_validation(df, by=("feature", "layer"))  # C and k chosen on validation; report f1_test
"""

from __future__ import annotations

import functools
import os
import sys
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
from .baselines import DenseProbe, random_orthogonal, shuffled_labels
from .optimal import OptimalSparseProbe
from .ranking import RANKERS
from .single import SingleNeuronProbe
from .sparse import SparseProbe, TelescopicProbe

METHODS: tuple[str, ...] = (*RANKERS, "telescopic", "optimal", "single_neuron", "dense", "random_basis", "control")
"""Method names accepted by :class:`ProbeSpec`."""

N_ROTATIONS = 5
"""Haar-random rotations averaged by the ``random_basis`` method (seeds ``random_state, random_state + 1, ...``)."""


@dataclass(frozen=True)
class ProbeSpec:
    """One probing method with its k grid and parameters, as a row label of a sweep."""

    method: str
    """One of :data:`METHODS`."""
    ks: tuple[int, ...] | None = None
    """Sparsity levels; None means the method's default (the paper's grid; 1..8 for ``optimal``; D for ``dense``)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters of the method's estimator (see :func:`make_probe`; e.g. ``{"C": 0.1}``), plus ``{"base":
    "telescopic"}`` for ``random_basis``/``control`` and ``n_rotations`` for ``random_basis``."""
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
        if method == "single_neuron":
            return (1,)
        return OSP_K_GRID if method == "optimal" else K_GRID


def _as_spec(spec: ProbeSpec | str) -> ProbeSpec:
    return spec if isinstance(spec, ProbeSpec) else ProbeSpec(method=spec)


PLAIN_METHODS: tuple[str, ...] = (*RANKERS, "telescopic", "optimal", "single_neuron", "dense")
"""Methods that are one estimator (``random_basis`` and ``control`` wrap one of these)."""


def make_probe(method: str, *, random_state: int = 0, **params: Any) -> Any:
    """The estimator of a plain method, with ``params`` as its constructor parameters.

    A ranker name gives :class:`~sparse_probing.probes.SparseProbe` with that ``ranker``; ``telescopic``,
    ``optimal``, ``single_neuron`` and ``dense`` give :class:`~sparse_probing.probes.TelescopicProbe`,
    :class:`~sparse_probing.probes.OptimalSparseProbe`, :class:`~sparse_probing.probes.SingleNeuronProbe` and
    :class:`~sparse_probing.probes.DenseProbe`. ``random_state`` seeds the methods that take one. ``k`` is not a
    parameter here: the k grid is the argument of the estimator's ``fit_path``.
    """
    if method in RANKERS:
        cls, fixed = SparseProbe, {"ranker": method, "random_state": random_state}
    elif method == "telescopic":
        cls, fixed = TelescopicProbe, {"random_state": random_state}
    elif method == "optimal":
        cls, fixed = OptimalSparseProbe, {"random_state": random_state}
    elif method == "single_neuron":
        cls, fixed = SingleNeuronProbe, {}
    elif method == "dense":
        cls, fixed = DenseProbe, {}
    else:
        raise ProbeInputError(f"a probe is built from a plain method, got {method!r}; plain methods: {PLAIN_METHODS}.")
    accepted = sorted(set(cls().get_params()) - set(fixed) - {"k"})
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ProbeInputError(f"method {method!r} takes no parameter(s) {unknown}; its parameters: {accepted}.")
    return cls(**fixed, **params)


def fit_method(
    method: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    ks: Sequence[int] | None = None,
    *,
    random_state: int = 0,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    groups: Any | None = None,
    **params: Any,
) -> list[SparseFit]:
    """Fit one plain method's path (a ranker, ``telescopic``, ``optimal``, ``single_neuron`` or ``dense``) on 0/1
    labels: ``make_probe(method, random_state=random_state, **params).fit_path(X_train, y_train, ks)``.

    ``ks=None`` means the method's default grid, silently limited to the number of neurons; explicit ``ks`` larger
    than that are clipped with a :class:`~sparse_probing.probes.KClippedWarning`. ``validation=(X_val, y_val)``
    is used by the methods that choose on validation data (``optimal`` chooses its gamma there, ``single_neuron``
    its neuron); the others ignore it. ``groups`` (``optimal`` only) groups the internal holdout that chooses gamma
    when there is no validation data.
    """
    probe = make_probe(method, random_state=random_state, **params)
    if method == "optimal":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # unproven solves are flagged in the table
            return probe.fit_path(X_train, y_train, ks, validation=validation, groups=groups)
    if groups is not None:
        raise ProbeInputError(f"groups is used by the 'optimal' method only, got it for {method!r}.")
    if method == "single_neuron":
        return probe.fit_path(X_train, y_train, ks, validation=validation)
    return probe.fit_path(X_train, y_train, ks)


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


_OSP_FIELDS = (
    "solver",
    "status",
    "proven_optimal",
    "objective",
    "best_bound",
    "mip_gap",
    "wall_time",
    "gamma",
    "gamma_multiple",
    "gamma_source",
    "n_candidates",
    "warm_start",
    "equals_mean_diff_topk",
    "setup_time",
    "improved_on_warm_start",
)


def _fit_and_score(
    spec: ProbeSpec,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    rotation_seed: int | None,
) -> list[tuple[SparseFit, dict[str, float], np.ndarray | None]]:
    """Fit one spec (in one rotated basis when ``rotation_seed`` is given); score every k on val and test."""
    if rotation_seed is not None:
        rotation_DD = _rotation(parts["train"][0].shape[1], rotation_seed)
        parts = {name: (X @ rotation_DD, y) for name, (X, y) in parts.items()}
    X_tr, y_tr = parts["train"]
    method, params = spec.method, dict(spec.params)
    params.pop("n_rotations", None)
    if method in ("random_basis", "control"):
        method = params.pop("base", "mean_diff")
    y_fit = shuffled_labels(y_tr, spec.random_state) if spec.method == "control" else y_tr
    validation = parts["val"] if parts["val"][1].size and np.unique(parts["val"][1]).size == 2 else None
    fits = fit_method(method, X_tr, y_fit, spec.ks, random_state=spec.random_state, validation=validation, **params)
    out = []
    for fit in fits:
        scores: dict[str, float] = {}
        for name in ("val", "test"):
            X, y = parts[name]
            scores.update(_score(fit, X, y, name))
        test_score = fit.decision_function(parts["test"][0]) if parts["test"][1].size else None
        out.append((fit, scores, test_score))
    return out


@functools.lru_cache(maxsize=8)
def _rotation(n: int, seed: int) -> np.ndarray:
    return random_orthogonal(n, seed).astype(np.float32)


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
        y_tr = parts["train"][1]
        if np.unique(y_tr).size < 2:
            raise ProbeInputError(f"the training rows of feature {feature!r} contain a single class")
        if spec.method == "random_basis":
            n_rot = int(spec.params.get("n_rotations", N_ROTATIONS))
            if n_rot < 1:
                raise ProbeInputError(f"n_rotations must be at least 1, got {n_rot}.")
            runs = [_fit_and_score(spec, parts, spec.random_state + r) for r in range(n_rot)]
        else:
            runs = [_fit_and_score(spec, parts, None)]
    except Exception as err:  # one failing task must not sink a whole sweep; the error is in the table
        return [{**base, "error": f"{type(err).__name__}: {err}", "task_time": time.perf_counter() - t0}]
    out = []
    y_test = parts["test"][1]
    for i, (fit, scores, test_score) in enumerate(runs[0]):
        per_run = [run[i] for run in runs]
        row: dict[str, Any] = {
            **base,
            "k": fit.k,
            "support": tuple(int(j) for j in fit.support) if len(runs) == 1 else (),
            "n_train": int(y_tr.size),
            "n_pos_train": int(y_tr.sum()),
            "n_test": int(y_test.size),
            "n_pos_test": int(y_test.sum()),
            "fit_time": float(np.sum([f.fit_time for f, _, _ in per_run])),
        }
        for key in scores:
            row[key] = float(np.mean([s[key] for _, s, _ in per_run]))
        if len(runs) > 1:
            row["n_rotations"] = len(runs)
            row["f1_test_sd"] = float(np.std([s["f1_test"] for _, s, _ in per_run]))
        if n_boot > 0 and test_score is not None:
            if len(runs) == 1:
                ci = bootstrap_ci(y_test, (test_score > 0).astype(int), groups=groups_test, n_boot=n_boot)
                row["f1_test_low"], row["f1_test_high"] = float(ci["low"].iloc[0]), float(ci["high"].iloc[0])
            else:  # the rotations' mean F1, resampling test documents (the same resamples for every rotation)
                lows, highs = zip(
                    *(
                        bootstrap_ci(y_test, (ts > 0).astype(int), groups=groups_test, n_boot=n_boot)[["low", "high"]]
                        .iloc[0]
                        .tolist()
                        for _, _, ts in per_run
                    ),
                    strict=True,
                )
                row["f1_test_low"], row["f1_test_high"] = float(np.mean(lows)), float(np.mean(highs))
        if fit.method == "optimal":
            row.update({f"osp_{f}": fit.info.get(f) for f in _OSP_FIELDS})
        if fit.method == "single_neuron":
            row["n_tied"] = fit.info.get("n_tied")
        out.append(row)
    task_time = time.perf_counter() - t0
    for row in out:
        row["task_time"] = task_time
    return out


_SCHEDULER_ENV = "SPARSE_PROBING_SCHEDULER"  # distributed.SCHEDULER_ENV, named here so that nothing imports Dask
JOBS_ENV = "SPARSE_PROBING_JOBS"
"""Environment variable giving the joblib workers of a sweep whose ``n_jobs`` is not given (default 1); the
``sparse-probing chapter`` and ``book`` commands set it (``--jobs``, default: the cores this process may use)."""


def default_jobs() -> int:
    """Workers of a sweep without an explicit ``n_jobs``: ``$SPARSE_PROBING_JOBS`` (default 1), and 1 inside a
    worker process (no nested pools)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        return 1
    value = os.environ.get(JOBS_ENV, "1")
    try:
        return max(1, int(value))
    except ValueError:
        raise ProbeInputError(f"${JOBS_ENV} must be a whole number of workers, got {value!r}.") from None


def _dask_client() -> Any:
    """The Dask client the sweep's tasks go to (:func:`sparse_probing.distributed.active_client`), or None.

    Dask is not imported unless a scheduler can be active: a :func:`sparse_probing.distributed.scheduler` block
    (which imports that module) or ``$SPARSE_PROBING_SCHEDULER``.
    """
    module = sys.modules.get("sparse_probing.distributed")
    if module is None:
        if not os.environ.get(_SCHEDULER_ENV):
            return None
        from .. import distributed as module
    return module.active_client()


def run_sweep(
    activations: Mapping[Hashable, Any],
    labels: Mapping[str, Any],
    split: Split,
    specs: Sequence[ProbeSpec | str],
    *,
    groups: Any | None = None,
    n_boot: int = 0,
    n_jobs: int | None = None,
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
    n_jobs : joblib workers (at most the cores you may use) when no Dask scheduler is active; default
        :func:`default_jobs`. Every task is seeded on its own, so the table matches one process's up to
        floating-point summation order (a worker's BLAS runs one thread).
    progress : show a tqdm progress bar.

    With a Dask scheduler active (a :func:`sparse_probing.distributed.scheduler` block, or
    ``$SPARSE_PROBING_SCHEDULER``, e.g. set by ``sparse-probing chapter --scheduler``), the tasks run on its workers
    in batches (:func:`sparse_probing.distributed.run_batches`), joblib sequential inside each; the table is the
    same.

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
    calls = []
    for feature, (y_N, mask_N) in labels_01.items():
        rows = {
            name: idx[mask_N[idx]] for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))
        }
        groups_test = None if groups_N is None else groups_N[rows["test"]]
        for layer, X in activations.items():
            for spec in specs:
                calls.append((feature, layer, spec, X, y_N, rows, groups_test, n_boot))
    records: list[dict[str, Any]] = []
    client = _dask_client()
    if client is not None:
        from ..distributed import run_batches

        for rows_out in run_batches(_run_task, calls, client=client, kind="sweep", desc="probing", progress=progress):
            records.extend(rows_out)
    else:
        n_jobs = default_jobs() if n_jobs is None else n_jobs
        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_run_task)(*call) for call in calls)
        for rows_out in tqdm(results, total=len(calls), disable=not progress, desc="probing"):
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


def run_cv_sweep(
    activations: Mapping[Hashable, Any],
    labels: Mapping[str, Any],
    folds: Sequence[Split],
    specs: Sequence[ProbeSpec | str],
    *,
    groups: Any | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`run_sweep` in every fold of a cross-validation (:func:`~sparse_probing.splits.grouped_cv`): one table
    with a ``fold`` column. Select inside each fold with ``select_on_validation(df, by=(..., "fold"))`` and pool the
    folds with :func:`cv_summary`; every example is then a test example exactly once."""
    if not folds:
        raise ProbeInputError("folds is empty: pass the splits of grouped_cv(groups, y).")
    tables = [
        run_sweep(activations, labels, split, specs, groups=groups, n_jobs=n_jobs, progress=progress).assign(fold=i)
        for i, split in enumerate(folds)
    ]
    return pd.concat(tables, ignore_index=True)


def cv_summary(
    chosen: pd.DataFrame, by: Sequence[str] = ("feature", "method"), metrics: Sequence[str] = ("f1", "roc_auc")
) -> pd.DataFrame:
    """Pool the rows chosen in each fold (one per ``by`` and ``fold``) into one cross-validated score per ``by``.

    ``<metric>_test`` is the mean over folds of the fold's test score (each fold's choice made on its own validation
    rows), ``<metric>_test_sd`` its spread over folds; ``n_test`` and ``n_pos_test`` add up the folds' test rows (each
    example once), ``n_folds`` counts the folds, and ``chosen_<column>`` lists each fold's choice of ``layer`` and
    ``k`` where present.
    """
    keys = list(by)
    missing = [c for c in (*keys, "fold") if c not in chosen.columns]
    if missing:
        raise ProbeInputError(f"columns {missing} are not in the table: pass the rows chosen per fold of run_cv_sweep.")
    if chosen.duplicated([*keys, "fold"]).any():
        raise ProbeInputError(f"several rows per {keys} and fold: choose one per fold first (select_on_validation).")
    g = chosen.groupby(keys, dropna=False, sort=True)
    agg: dict[str, Any] = {"n_folds": ("fold", "nunique")}
    for m in metrics:
        if f"{m}_test" in chosen.columns:
            agg[f"{m}_test"] = (f"{m}_test", "mean")
            agg[f"{m}_test_sd"] = (f"{m}_test", "std")
    for c in ("n_test", "n_pos_test"):
        if c in chosen.columns:
            agg[c] = (c, "sum")
    for c in ("layer", "k"):
        if c in chosen.columns and c not in keys:
            agg[f"chosen_{c}"] = (c, lambda v: tuple(v.tolist()))
    return g.agg(**agg).reset_index()


def select_best(
    df: pd.DataFrame,
    by: Sequence[str],
    column: str,
    *,
    then: Sequence[tuple[str, bool]] = (),
    tied: str | None = None,
    tol: float = 1e-9,
) -> pd.DataFrame:
    """For every group of ``by``, the row with the largest ``column``; ties broken by ``then`` (pairs of column
    and ascending flag), then by row order.

    Adds ``n_tied`` (rows within ``tol`` of the group's best ``column``) and, with ``tied``, ``tied_<tied>``: the
    sorted values of that column over the tied rows (e.g. every layer that reaches the best score), so a reader sees
    when the choice was a coin toss. Rows with an ``error`` or a NaN ``column`` are ignored.
    """
    if column not in df.columns:
        raise ProbeInputError(f"{column!r} is not in the table (columns: {list(df.columns)[:12]} ...).")
    ok = df[df[column].notna()] if "error" not in df.columns else df[df["error"].isna() & df[column].notna()]
    ok = ok.reset_index(drop=True)
    keys = list(by)
    best = ok.groupby(keys, dropna=False)[column].transform("max")
    tied_N = ok[column] >= best - tol
    sort_cols = [*keys, column, *(c for c, _ in then)]
    ascending = [True] * len(keys) + [False] + [a for _, a in then]
    chosen = ok.sort_values(sort_cols, ascending=ascending, kind="stable").groupby(keys, dropna=False).head(1)
    ties = ok[tied_N].groupby(keys, dropna=False)
    n_tied = ties.size().rename("n_tied")
    out = chosen.merge(n_tied.reset_index(), on=keys, how="left")
    if tied is not None:
        values = ties[tied].agg(lambda v: tuple(sorted(v.tolist()))).rename(f"tied_{tied}")
        out = out.merge(values.reset_index(), on=keys, how="left")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def select_on_validation(
    df: pd.DataFrame,
    *,
    metric: str = "roc_auc",
    by: Sequence[str] = ("feature", "layer", "method"),
) -> pd.DataFrame:
    """For every group, keep the row with the best validation ``metric``; ties by validation F1, then the smaller k.

    The default ``roc_auc`` is continuous: F1 on a small validation set ties across many k (or layers) at 1.0 and
    would favour whatever the tie-break prefers. ``n_tied`` and ``tied_k`` report the rows that tied on ``metric``.
    Test columns of the returned rows are the honest report: nothing about them was used to choose the row.
    """
    column = f"{metric}_val"
    if column not in df.columns:
        raise ProbeInputError(f"{column!r} is not in the table; run the sweep with a validation split.")
    then = [("f1_val", False)] if metric != "f1" and "f1_val" in df.columns else []
    return select_best(df, by, column, then=[*then, ("k", True)], tied="k")


def selectivity(df: pd.DataFrame, *, method: str, control: str = "control", metric: str = "f1_test") -> pd.DataFrame:
    """Join ``method`` rows with ``control`` rows on (feature, layer, k): ``selectivity = metric - control metric``."""
    keys = ["feature", "layer", "k"]
    real = df[df["method"] == method][[*keys, metric]]
    ctrl = df[df["method"] == control][[*keys, metric]].rename(columns={metric: f"control_{metric}"})
    out = real.merge(ctrl, on=keys, how="inner")
    out["selectivity"] = out[metric] - out[f"control_{metric}"]
    return out
