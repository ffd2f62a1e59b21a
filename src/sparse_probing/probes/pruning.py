"""Iterative pruning: remove the best neuron of a k-sparse probe, re-solve, repeat.

Gurnee et al. (2023) use this to tell redundancy from superposition. With k fixed (5 in the paper), fit the
(optimal) k-sparse probe, record its F1, remove the support neuron that is best on its own (highest single-neuron
F1), and re-solve without it. If F1 stays high over many steps while fresh neurons keep entering, many neurons
carry the feature redundantly; if it collapses after a few removals, the feature lives in a few dedicated neurons;
a high k-sparse F1 built from neurons that are each poor alone points to a sparse combination (superposition).

The paper scored neurons on its test split; here the ``X_eval``/``y_eval`` arguments should be validation data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..metrics import binary_metrics
from ._base import ProbeInputError, check_binary_problem, fit_logistic
from .sweep import fit_method


def _f1(y_N: np.ndarray, score_N: np.ndarray) -> float:
    return binary_metrics(y_N, (score_N > 0).astype(int))["f1"]


def iterative_pruning(
    X_train: Any,
    y_train: Any,
    X_eval: Any,
    y_eval: Any,
    *,
    k: int = 5,
    n_steps: int = 10,
    method: str = "optimal",
    random_state: int = 0,
    **params: Any,
) -> pd.DataFrame:
    """Prune the best neuron ``n_steps`` times, re-fitting the k-sparse probe after each removal.

    Parameters
    ----------
    X_train, y_train : training activations and binary labels.
    X_eval, y_eval : validation data used to score the probes and to pick the neuron to remove.
    k : sparsity of the probe at every step.
    n_steps : number of probes to fit (the last removal is recorded but not re-solved).
    method : a plain method of :func:`~sparse_probing.probes.sweep.fit_method` (``"optimal"`` as in the paper,
        or a ranker such as ``"mean_diff"``); ``params`` are passed on to it.

    Returns a DataFrame with one row per step: ``step``, ``k``, ``support`` (neuron indices), ``f1`` (the k-sparse
    probe on the evaluation data), ``removed`` (the neuron removed after this step), ``removed_f1`` (its
    single-neuron F1), ``mean_single_f1`` (mean single-neuron F1 of the support), and for optimal probes the solver's
    ``status`` and ``proven_optimal``.
    """
    X_ND, y_N, classes = check_binary_problem(X_train, y_train)
    Xe_ND = np.asarray(X_eval, dtype=np.float64)
    ye_N = (np.asarray(y_eval) == classes[1]).astype(np.int64)
    if Xe_ND.ndim != 2 or Xe_ND.shape[1] != X_ND.shape[1] or Xe_ND.shape[0] != ye_N.size:
        raise ProbeInputError(
            f"X_eval {Xe_ND.shape} and y_eval ({ye_N.size},) must match X_train's {X_ND.shape[1]} neurons and "
            "each other."
        )
    if not np.isfinite(Xe_ND).all():
        raise ProbeInputError("X_eval contains NaN or inf; activations must be finite.")
    D = X_ND.shape[1]
    if n_steps < 1:
        raise ProbeInputError(f"n_steps must be at least 1, got {n_steps}.")
    if k + n_steps - 1 > D:
        raise ProbeInputError(f"k={k} with {n_steps} pruning steps needs at least {k + n_steps - 1} neurons, have {D}.")
    available_D = np.ones(D, dtype=bool)
    single_f1: dict[int, float] = {}
    rows = []
    for step in range(n_steps):
        idx_A = np.flatnonzero(available_D)
        (fit,) = fit_method(method, X_ND[:, idx_A], y_N, [k], random_state=random_state, **params)
        support_K = idx_A[fit.support]
        f1 = _f1(ye_N, Xe_ND[:, support_K] @ fit.coef + fit.intercept)
        for j in support_K.tolist():
            if j not in single_f1:
                coef_1, intercept, _, _ = fit_logistic(X_ND[:, [j]], y_N)
                single_f1[j] = _f1(ye_N, Xe_ND[:, [j]] @ coef_1 + intercept)
        singles_K = np.array([single_f1[j] for j in support_K.tolist()])
        best = int(support_K[np.argmax(singles_K)])
        row: dict[str, Any] = {
            "step": step,
            "k": k,
            "support": tuple(int(j) for j in support_K),
            "f1": f1,
            "removed": best,
            "removed_f1": float(singles_K.max()),
            "mean_single_f1": float(singles_K.mean()),
        }
        if fit.method == "optimal":
            row["status"] = fit.info.get("status")
            row["proven_optimal"] = fit.info.get("proven_optimal")
        rows.append(row)
        available_D[best] = False
    return pd.DataFrame(rows)
