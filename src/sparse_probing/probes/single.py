"""The best single neuron, searched exhaustively: every neuron as a threshold classifier.

"Is there a dedicated neuron for this feature?" is a question about the best neuron, not about the neuron a ranker
puts first: the top neuron by mean difference can fire for other classes too (a large mean shift with many false
positives). Here every neuron of the layer is a candidate classifier ``sign * (x_j - threshold) > 0``; its sign and
threshold maximize F1 on the training rows, and the neuron is chosen on validation rows by a continuous,
threshold-free score (ROC-AUC in the trained direction; ties by validation F1, then training F1, then the index)
among the :data:`N_FINALISTS` neurons with the best training ROC-AUC. Choosing among all neurons on a small
validation set would reward luck (with 5 validation positives, one of 1536 neurons ranks them perfectly by chance);
the training rows shortlist, the validation rows arbitrate.

The search is vectorised: one sort per neuron gives the F1 of every threshold (the cumulative count of positives
above each cut), so all 1536 neurons of a layer and thousands of examples take a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin

from ._base import (
    ProbeInputError,
    SparseFit,
    SparseLinearClassifierMixin,
    Timer,
    check_binary_problem,
    validate_fit_data,
)

N_FINALISTS = 16
"""Neurons (best training ROC-AUC) among which the validation rows choose."""

SELECTION_METRICS: tuple[str, ...] = ("roc_auc", "f1")
"""Validation scores a single neuron can be chosen by (``roc_auc`` is threshold-free and continuous)."""

_BLOCK = 256  # neurons per vectorised block (bounds memory at about 10 arrays of N x 256 floats)


def fit_thresholds(X_ND: Any, y_N: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per neuron, the sign and threshold with the best training F1 for ``sign * (x - threshold) > 0``.

    Returns ``(sign_D, threshold_D, f1_D)``. Thresholds lie midway between consecutive distinct activations (below
    the smallest one when predicting every example positive is best); among equal F1 the first cut from the top of
    the neuron's range wins, and sign +1 wins over -1.
    """
    X_ND = np.asarray(X_ND, dtype=np.float64)
    y_N = np.asarray(y_N).astype(np.int64)
    N, D = X_ND.shape
    P = int(y_N.sum())
    m_N1 = np.arange(1, N + 1, dtype=np.float64)[:, None]
    sign_D, threshold_D, f1_D = np.ones(D), np.zeros(D), np.zeros(D)
    for lo in range(0, D, _BLOCK):
        hi = min(D, lo + _BLOCK)
        order_NB = np.argsort(-X_ND[:, lo:hi], axis=0, kind="stable")  # descending
        xs_NB = np.take_along_axis(X_ND[:, lo:hi], order_NB, axis=0)
        ys_NB = y_N[order_NB]
        best = {}
        for sign in (1.0, -1.0):
            if sign < 0:  # predicting "x < t": the same cut positions, counted from the bottom
                xs_NB, ys_NB = xs_NB[::-1], ys_NB[::-1]
            tp_NB = np.cumsum(ys_NB, axis=0)
            f1_NB = 2.0 * tp_NB / (m_N1 + P)
            cut_NB = np.ones_like(f1_NB, dtype=bool)  # a cut after row m must separate distinct values
            cut_NB[:-1] = xs_NB[:-1] != xs_NB[1:]
            f1_NB = np.where(cut_NB, f1_NB, -1.0)
            m_B = np.argmax(f1_NB, axis=0)
            cols = np.arange(hi - lo)
            here, nxt = xs_NB[m_B, cols], xs_NB[np.minimum(m_B + 1, N - 1), cols]
            last = m_B == N - 1
            edge = here - sign * np.maximum(1.0, np.abs(here))  # beyond every example
            best[sign] = (f1_NB[m_B, cols], np.where(last, edge, 0.5 * (here + nxt)))
        take_minus = best[-1.0][0] > best[1.0][0]
        sign_D[lo:hi] = np.where(take_minus, -1.0, 1.0)
        threshold_D[lo:hi] = np.where(take_minus, best[-1.0][1], best[1.0][1])
        f1_D[lo:hi] = np.where(take_minus, best[-1.0][0], best[1.0][0])
    return sign_D, threshold_D, f1_D


def neuron_auc(X_ND: Any, y_N: Any) -> np.ndarray:
    """ROC-AUC of every neuron's raw activation as a score for the positive class, shape ``(D,)`` (ties count half;
    NaN without both classes)."""
    X_ND = np.asarray(X_ND, dtype=np.float64)
    y_N = np.asarray(y_N).astype(bool)
    P, Q = int(y_N.sum()), int((~y_N).sum())
    if P == 0 or Q == 0:
        return np.full(X_ND.shape[1], np.nan)
    ranks_ND = rankdata(X_ND, axis=0)
    return (ranks_ND[y_N].sum(axis=0) - P * (P + 1) / 2.0) / (P * Q)


def neuron_f1(X_ND: Any, y_N: Any, sign_D: np.ndarray, threshold_D: np.ndarray) -> np.ndarray:
    """F1 of every neuron's threshold classifier ``sign * (x - threshold) > 0``, shape ``(D,)``."""
    X_ND = np.asarray(X_ND, dtype=np.float64)
    y_N1 = np.asarray(y_N).astype(bool)[:, None]
    pred_ND = sign_D[None, :] * (X_ND - threshold_D[None, :]) > 0
    tp = np.sum(pred_ND & y_N1, axis=0)
    fp = np.sum(pred_ND & ~y_N1, axis=0)
    fn = np.sum(~pred_ND & y_N1, axis=0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def single_neuron_table(X_train: Any, y_train: Any, X_val: Any | None = None, y_val: Any | None = None) -> pd.DataFrame:
    """Every neuron as a threshold classifier: ``neuron, sign, threshold, f1_train, roc_auc_train`` and, with
    validation data, ``f1_val, roc_auc_val`` (AUC in the trained direction: 1 - AUC for sign -1)."""
    X_ND, y_N, _ = check_binary_problem(X_train, y_train)
    sign_D, threshold_D, f1_D = fit_thresholds(X_ND, y_N)
    auc_D = neuron_auc(X_ND, y_N)
    table = pd.DataFrame(
        {
            "neuron": np.arange(X_ND.shape[1]),
            "sign": sign_D.astype(np.int64),
            "threshold": threshold_D,
            "f1_train": f1_D,
            "roc_auc_train": np.where(sign_D > 0, auc_D, 1.0 - auc_D),
        }
    )
    if X_val is not None:
        Xv_VD = np.asarray(X_val, dtype=np.float64)
        yv_V = np.asarray(y_val).astype(np.int64)
        if Xv_VD.ndim != 2 or Xv_VD.shape[1] != X_ND.shape[1] or Xv_VD.shape[0] != yv_V.size:
            raise ProbeInputError(
                f"X_val {Xv_VD.shape} and y_val ({yv_V.size},) must match the {X_ND.shape[1]} training neurons "
                "and each other."
            )
        auc_val_D = neuron_auc(Xv_VD, yv_V)
        table["f1_val"] = neuron_f1(Xv_VD, yv_V, sign_D, threshold_D)
        table["roc_auc_val"] = np.where(sign_D > 0, auc_val_D, 1.0 - auc_val_D)
    return table


def finalists(table: pd.DataFrame, n_finalists: int = N_FINALISTS) -> np.ndarray:
    """Row positions of the ``n_finalists`` neurons with the best training ROC-AUC (ties: training F1, index)."""
    auc = np.nan_to_num(table["roc_auc_train"].to_numpy(dtype=np.float64), nan=-np.inf)
    f1 = table["f1_train"].to_numpy(dtype=np.float64)
    return np.lexsort((table["neuron"].to_numpy(), -f1, -auc))[: max(1, int(n_finalists))]


def select_neuron(table: pd.DataFrame, metric: str = "roc_auc", n_finalists: int | None = N_FINALISTS) -> int:
    """Row position of the best neuron of a :func:`single_neuron_table`: ``metric`` on validation (training rows
    when the table has no validation columns) among the :func:`finalists` (all neurons with ``n_finalists=None``),
    ties by validation F1, training F1, then the lowest index."""
    if metric not in SELECTION_METRICS:
        raise ProbeInputError(f"metric must be one of {SELECTION_METRICS}, got {metric!r}.")
    split = "val" if f"{metric}_val" in table.columns else "train"
    rows = np.arange(len(table)) if n_finalists is None or split == "train" else finalists(table, n_finalists)
    sub = table.iloc[rows]
    keys = [f"{metric}_{split}", f"f1_{split}", "f1_train"]
    values = [np.nan_to_num(sub[k].to_numpy(dtype=np.float64), nan=-np.inf) for k in keys]
    order = np.lexsort((sub["neuron"].to_numpy(), *(-v for v in reversed(values))))
    return int(rows[order[0]])


def best_single_neuron(
    X_train: Any,
    y_train: Any,
    X_val: Any | None = None,
    y_val: Any | None = None,
    *,
    metric: str = "roc_auc",
    n_finalists: int | None = N_FINALISTS,
) -> SparseFit:
    """The best single neuron as a 1-sparse probe (``method="single_neuron"``); ``info`` holds its scores and the
    number of finalists tied with it on the selection metric."""
    with Timer() as timer:
        table = single_neuron_table(X_train, y_train, X_val, y_val)
        row = table.iloc[select_neuron(table, metric, n_finalists)]
        split = "val" if f"{metric}_val" in table.columns else "train"
        pool = table if n_finalists is None or split == "train" else table.iloc[finalists(table, n_finalists)]
        column = pool[f"{metric}_{split}"].to_numpy()
        n_tied = int(np.sum(np.isclose(column, row[f"{metric}_{split}"], rtol=0, atol=1e-12)))
    sign, threshold = float(row["sign"]), float(row["threshold"])
    info = {k: float(row[k]) for k in table.columns if k not in ("neuron", "sign")}
    info.update(selected_on=f"{metric}_{split}", n_tied=n_tied)
    return SparseFit(
        k=1,
        support=np.array([int(row["neuron"])]),
        coef=np.array([sign]),
        intercept=-sign * threshold,
        method="single_neuron",
        fit_time=timer.seconds,
        info=info,
    )


class SingleNeuronProbe(SparseLinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """The exhaustively searched best single neuron (a threshold on one activation).

    ``fit(X, y, validation=(X_val, y_val))`` fits every neuron's sign and threshold on ``X, y`` and chooses the
    neuron on the validation rows by ``metric`` (without validation data, on the training rows).

    Parameters
    ----------
    metric : ``"roc_auc"`` (default, threshold-free) or ``"f1"``.
    n_finalists : validation chooses among this many neurons with the best training ROC-AUC (None: all).

    Attributes
    ----------
    neuron_, sign_, threshold_ : the chosen neuron and its classifier ``sign_ * (x - threshold_) > 0``.
    table_ : DataFrame with every neuron's sign, threshold and scores (see :func:`single_neuron_table`).
    support_, coef_, intercept_, classes_ : as for the other probes (``coef_`` is the sign on the neuron).
    """

    def __init__(self, metric: str = "roc_auc", n_finalists: int | None = N_FINALISTS):
        self.metric = metric
        self.n_finalists = n_finalists

    def fit(self, X: Any, y: Any, validation: tuple[Any, Any] | None = None) -> SingleNeuronProbe:
        X_ND, y_N, classes = validate_fit_data(self, X, y)
        X_val = y_val = None
        if validation is not None:
            X_val = validation[0]
            y_val = (np.asarray(validation[1]) == classes[1]).astype(np.int64)
        fit = best_single_neuron(X_ND, y_N, X_val, y_val, metric=self.metric, n_finalists=self.n_finalists)
        self.table_ = single_neuron_table(X_ND, y_N, X_val, y_val)
        self._store_fit(fit, X_ND.shape[1], classes)
        self.neuron_ = int(fit.support[0])
        self.sign_ = int(fit.coef[0])
        self.threshold_ = float(-fit.intercept * fit.coef[0])
        return self

    def fit_path(
        self, X: Any, y: Any, ks: Iterable[int] | None = None, *, validation: tuple[Any, Any] | None = None
    ) -> list[SparseFit]:
        """The best single neuron as a one-element path (``ks`` must be None or ``(1,)``); the neuron is chosen on
        ``validation=(X_val, y_val)`` when given. The estimator itself is left as it was."""
        if ks is not None and tuple(ks) != (1,):
            raise ProbeInputError(f"single_neuron fits k=1 only, got ks={tuple(ks)}.")
        X_ND, y_N, classes = check_binary_problem(X, y)
        X_val = y_val = None
        if validation is not None:
            X_val = validation[0]
            y_val = (np.asarray(validation[1]) == classes[1]).astype(np.int64)
        return [best_single_neuron(X_ND, y_N, X_val, y_val, metric=self.metric, n_finalists=self.n_finalists)]
