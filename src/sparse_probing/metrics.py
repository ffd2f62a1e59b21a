"""Classification metrics for probes, with bootstrap confidence intervals over documents.

The headline metric of Gurnee et al. (2023) is F1 of the positive class; MCC, precision, recall, the area under
the precision-recall curve (average precision) and the ROC-AUC complete the picture. F1 depends on a threshold and
takes few distinct values on small validation sets (many layers or k tie at 1.0); the ROC-AUC of a probe's score is
continuous and threshold-free, which makes it the metric to choose on. Examples from one document are not
independent (a document contributes many tokens, or translations of a text share content), so confidence intervals
resample whole groups (documents) with replacement: the percentile bootstrap over groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.utils import check_random_state

METRICS: tuple[str, ...] = ("f1", "mcc", "precision", "recall", "pr_auc", "roc_auc")
"""Metric names, in the order of the results tables."""

_COUNT_METRICS = ("f1", "mcc", "precision", "recall")


def _binary(y: Any, name: str) -> np.ndarray:
    y_N = np.asarray(y)
    if y_N.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {y_N.shape}.")
    if y_N.dtype == bool:
        return y_N.astype(np.int64)
    values = np.unique(y_N)
    if not set(values.tolist()) <= {0, 1}:
        raise ValueError(f"{name} must be binary 0/1 or bool (1 = positive class), got values {values[:5].tolist()}.")
    return y_N.astype(np.int64)


def _check_lengths(**arrays: np.ndarray | None) -> int:
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Inputs have different lengths {lengths}: pass one value per example.")
    return next(iter(lengths.values()))


def _from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """Count-based metrics, vectorized; undefined ratios (0/0) are 0 as in scikit-learn's ``zero_division=0``."""
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / denom, 0.0)
    return {"f1": f1, "mcc": mcc, "precision": precision, "recall": recall}


def binary_metrics(y_true: Any, y_pred: Any, y_score: Any | None = None) -> dict[str, float]:
    """F1, MCC, precision, recall (of the positive class), PR-AUC (average precision) and ROC-AUC (both NaN without
    scores or without both classes).

    ``y_true`` and ``y_pred`` are 0/1 or bool; ``y_score`` is any score that increases with the positive class
    (a probe's decision function).
    """
    t_N, p_N = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    s_N = None if y_score is None else np.asarray(y_score, dtype=np.float64)
    _check_lengths(y_true=t_N, y_pred=p_N, y_score=s_N)
    tb_N, pb_N = t_N.astype(bool), p_N.astype(bool)
    tp, fp = np.sum(tb_N & pb_N), np.sum(~tb_N & pb_N)
    fn, tn = np.sum(tb_N & ~pb_N), np.sum(~tb_N & ~pb_N)
    out = {name: float(v) for name, v in _from_counts(tp, fp, fn, tn).items()}
    if s_N is not None and t_N.any() and not t_N.all():
        out["pr_auc"] = float(average_precision_score(t_N, s_N))
        out["roc_auc"] = float(roc_auc_score(t_N, s_N))
    else:
        out["pr_auc"] = out["roc_auc"] = float("nan")
    return out


def bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    y_score: Any | None = None,
    groups: Any | None = None,
    *,
    metrics: Sequence[str] = ("f1",),
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: Any = 0,
) -> pd.DataFrame:
    """Percentile-bootstrap confidence intervals, resampling groups (documents) with replacement.

    Parameters
    ----------
    y_true, y_pred, y_score : the test labels, predictions and (for ``pr_auc`` and ``roc_auc``) scores.
    groups : the document (group) id of every example; None resamples examples individually.
    metrics : any of :data:`METRICS`.
    n_boot, confidence, random_state : resamples, coverage and seed.

    Returns a DataFrame with one row per metric: ``metric, estimate, low, high, n_boot, n_groups``.
    """
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"Unknown metrics {sorted(unknown)}; choose from {METRICS}.")
    if {"pr_auc", "roc_auc"} & set(metrics) and y_score is None:
        raise ValueError("pr_auc and roc_auc need y_score (the probe's decision function).")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    t_N, p_N = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    s_N = None if y_score is None else np.asarray(y_score, dtype=np.float64)
    g_N = np.arange(len(t_N)) if groups is None else np.asarray(groups)
    _check_lengths(y_true=t_N, y_pred=p_N, y_score=s_N, groups=g_N)
    _, gid_N = np.unique(g_N, return_inverse=True)
    n_groups = int(gid_N.max()) + 1
    rng = check_random_state(random_state)
    # multiplicity of every group in every resample: (n_boot, G)
    mult_BG = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot).astype(np.float64)
    cells_N4 = np.column_stack([t_N & p_N, (1 - t_N) & p_N, t_N & (1 - p_N), (1 - t_N) & (1 - p_N)])
    counts_G4 = np.zeros((n_groups, 4))
    np.add.at(counts_G4, gid_N, cells_N4)
    totals_B4 = mult_BG @ counts_G4
    boot = _from_counts(*totals_B4.T)
    point = binary_metrics(t_N, p_N, s_N)
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for name in metrics:
        if name in ("pr_auc", "roc_auc"):
            score_fn = average_precision_score if name == "pr_auc" else roc_auc_score
            values = np.full(n_boot, np.nan)
            for b in range(n_boot):
                w_N = mult_BG[b, gid_N]
                pos = np.sum(w_N * t_N)
                if 0 < pos < w_N.sum():
                    values[b] = score_fn(t_N, s_N, sample_weight=w_N)
        else:
            values = boot[name]
        low, high = np.nanquantile(values, [alpha, 1.0 - alpha]) if np.isfinite(values).any() else (np.nan, np.nan)
        rows.append(
            {
                "metric": name,
                "estimate": point[name],
                "low": float(low),
                "high": float(high),
                "n_boot": int(n_boot),
                "n_groups": n_groups,
            }
        )
    return pd.DataFrame(rows)
