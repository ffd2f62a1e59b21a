"""Statistics shared by the chapters: group bootstrap, paired comparisons, and the one definition of a dedicated neuron.

* Examples from one document (or page, or translated chapter) are not independent, so every interval here
  resamples whole groups (:func:`group_bootstrap_indices`, :func:`bootstrap_statistic`).
* Two methods (or models, or bases) evaluated on the same tasks are compared task by task: the paired bootstrap of
  the per-task difference (:func:`paired_bootstrap`, :func:`paired_comparison`) resamples tasks and states how many
  there were. Comparing two separately bootstrapped means would ignore that the tasks are shared.
* The smallest effect a chapter can detect (:func:`minimal_detectable_effect`, 80% power at the 5% level) is read
  from its own per-task values at its real number of tasks, or from a CI when the estimate is not a mean of
  per-task values (:func:`mde_from_interval`); :func:`samples_to_resolve` says how many tasks would separate a CI
  from a claim's minimal effect.
* A neuron is *dedicated* to a feature (:func:`is_dedicated`, :data:`DEDICATED_AUC`) when its activation alone,
  in the direction fixed on training data, ranks held-out positives above negatives with ROC-AUC at least
  :data:`DEDICATED_AUC`. One threshold-free definition for every chapter; F1 at a fitted threshold is reported
  beside it but does not define it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEDICATED_AUC",
    "bootstrap_statistic",
    "group_bootstrap_indices",
    "is_dedicated",
    "mark_dedicated",
    "mde_from_interval",
    "minimal_detectable_effect",
    "paired_bootstrap",
    "paired_comparison",
    "samples_to_resolve",
]

DEDICATED_AUC = 0.95
"""A neuron is dedicated to a feature when its held-out ROC-AUC (sign fixed on training data) is at least this."""


def _check(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")


def group_bootstrap_indices(groups: Any, n_boot: int = 1000, random_state: Any = 0) -> Iterator[np.ndarray]:
    """Row indices of ``n_boot`` bootstrap resamples that draw whole groups with replacement.

    Every resample holds as many groups as there are (some repeated, some absent) and all rows of each drawn group,
    so a group is never split.
    """
    groups_N = np.asarray(groups)
    if groups_N.ndim != 1 or groups_N.size == 0:
        raise ValueError(f"groups must be a non-empty 1-d array (one group id per row), got shape {groups_N.shape}.")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}.")
    _, gid_N = np.unique(groups_N, return_inverse=True)
    order_N = np.argsort(gid_N, kind="stable")
    counts_G = np.bincount(gid_N)
    starts_G = np.concatenate([[0], np.cumsum(counts_G)[:-1]])
    rng = np.random.default_rng(random_state)
    G = counts_G.size
    for _ in range(n_boot):
        drawn = rng.integers(0, G, size=G)
        yield np.concatenate([order_N[starts_G[g] : starts_G[g] + counts_G[g]] for g in drawn])


def bootstrap_statistic(
    statistic: Callable[..., float],
    *arrays: Any,
    groups: Any | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: Any = 0,
) -> dict[str, float]:
    """Percentile interval of ``statistic(*arrays)`` over resamples of whole groups (rows when ``groups`` is None).

    Returns ``estimate, low, high, n_groups, n_boot`` (resamples where the statistic is NaN, e.g. one class only,
    are dropped from the percentiles).
    """
    _check(n_boot, confidence)
    arrays_N = [np.asarray(a) for a in arrays]
    if not arrays_N:
        raise ValueError("pass at least one array to resample.")
    n = arrays_N[0].shape[0]
    if any(a.shape[0] != n for a in arrays_N):
        raise ValueError(f"arrays differ in length {[a.shape[0] for a in arrays_N]}: pass one value per row.")
    groups_N = np.arange(n) if groups is None else np.asarray(groups)
    if groups_N.shape[0] != n:
        raise ValueError(f"groups has {groups_N.shape[0]} entries for {n} rows: pass one group id per row.")
    values = np.array(
        [statistic(*(a[idx] for a in arrays_N)) for idx in group_bootstrap_indices(groups_N, n_boot, random_state)],
        dtype=np.float64,
    )
    alpha = (1.0 - confidence) / 2.0
    finite = values[np.isfinite(values)]
    low, high = np.quantile(finite, [alpha, 1.0 - alpha]) if finite.size else (np.nan, np.nan)
    return {
        "estimate": float(statistic(*arrays_N)),
        "low": float(low),
        "high": float(high),
        "n_groups": int(np.unique(groups_N).size),
        "n_boot": int(n_boot),
    }


def paired_bootstrap(
    a: Any, b: Any, *, n_boot: int = 10_000, confidence: float = 0.95, random_state: Any = 0
) -> dict[str, float]:
    """Paired bootstrap of the mean per-task difference ``a - b`` (one entry per task, same order in both).

    Tasks are resampled with replacement. Returns ``n_tasks, mean_a, mean_b, mean_diff, low, high`` (percentile
    interval of the mean difference), ``p_value`` (two-sided: twice the smaller share of resampled means on either
    side of zero, at most 1) and ``frac_positive`` (share of tasks with ``a > b``). Tasks where either value is
    NaN are dropped and not counted.
    """
    _check(n_boot, confidence)
    a_T, b_T = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_T.shape != b_T.shape or a_T.ndim != 1:
        raise ValueError(f"a and b must be 1-d with one value per task each, got shapes {a_T.shape} and {b_T.shape}.")
    keep = np.isfinite(a_T) & np.isfinite(b_T)
    diff_T = a_T[keep] - b_T[keep]
    T = diff_T.size
    if T == 0:
        raise ValueError("no task has finite values in both a and b: nothing to compare.")
    rng = np.random.default_rng(random_state)
    means_B = diff_T[rng.integers(0, T, size=(n_boot, T))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means_B, [alpha, 1.0 - alpha])
    p = min(1.0, 2.0 * min(np.mean(means_B <= 0), np.mean(means_B >= 0)))
    return {
        "n_tasks": int(T),
        "mean_a": float(a_T[keep].mean()),
        "mean_b": float(b_T[keep].mean()),
        "mean_diff": float(diff_T.mean()),
        "low": float(low),
        "high": float(high),
        "p_value": float(p),
        "frac_positive": float(np.mean(diff_T > 0)),
    }


def paired_comparison(
    table: pd.DataFrame,
    *,
    column: str,
    value: str,
    a: Any,
    b: Any,
    on: Sequence[str] = ("feature",),
    n_boot: int = 10_000,
    confidence: float = 0.95,
    random_state: Any = 0,
) -> dict[str, Any]:
    """Compare the rows where ``column == a`` with those where ``column == b``, paired on the task keys ``on``.

    For example ``paired_comparison(chosen, column="method", value="f1_test", a="telescopic", b="random basis")``
    or ``column="model"`` to compare two models on shared tasks. Only tasks present for both sides enter; the
    result of :func:`paired_bootstrap` gains ``a``, ``b``, ``value`` and ``tasks`` (the task keys used).
    """
    missing = [c for c in (column, value, *on) if c not in table.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the table; it has {list(table.columns)}.")
    keys = list(on)
    sides = []
    for side in (a, b):
        rows = table[table[column] == side]
        if rows.empty:
            raise ValueError(
                f"no rows with {column} == {side!r}; values present: {sorted(map(str, table[column].unique()))}."
            )
        if rows.duplicated(keys).any():
            raise ValueError(f"several rows per task for {column} == {side!r}: select one row per {keys} first.")
        sides.append(rows.set_index(keys)[value])
    joined = pd.concat(sides, axis=1, keys=["a", "b"], join="inner").dropna()
    out: dict[str, Any] = paired_bootstrap(
        joined["a"].to_numpy(), joined["b"].to_numpy(), n_boot=n_boot, confidence=confidence, random_state=random_state
    )
    out.update(a=a, b=b, value=value, tasks=[k if isinstance(k, tuple) else (k,) for k in joined.index.tolist()])
    return out


def minimal_detectable_effect(
    values: Any = None, *, sd: float | None = None, n: int | None = None, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest true mean effect a two-sided one-sample test at level ``alpha`` detects with ``power``.

    From per-task values (e.g. paired differences, one per task; NaN dropped) or from their standard deviation
    ``sd`` and count ``n``: ``(t[1 - alpha/2, n-1] + t[power, n-1]) * sd / sqrt(n)`` (the t approximation of the
    test the paired bootstrap performs). NaN with fewer than two tasks.
    """
    from scipy.stats import t as student_t

    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power must lie in (0, 1), got {alpha} and {power}.")
    if values is not None:
        v_T = np.asarray(values, dtype=np.float64).ravel()
        v_T = v_T[np.isfinite(v_T)]
        n, sd = v_T.size, (float(v_T.std(ddof=1)) if v_T.size > 1 else float("nan"))
    if sd is None or n is None:
        raise ValueError("pass the per-task values, or both sd and n.")
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    df = n - 1
    return float((student_t.ppf(1 - alpha / 2, df) + student_t.ppf(power, df)) * sd / np.sqrt(n))


def mde_from_interval(low: float, high: float, *, confidence: float = 0.95, power: float = 0.8) -> float:
    """The minimal detectable effect implied by a (roughly normal) ``confidence`` interval: its standard error
    ``(high - low) / (2 z)`` times ``z[1 - alpha/2] + z[power]``. For estimates that are not a mean of per-task
    values (a bootstrap over texts or neurons)."""
    from scipy.stats import norm

    _check(1, confidence)
    z = norm.ppf(0.5 + confidence / 2)
    return float((high - low) / (2 * z) * (z + norm.ppf(power)))


def samples_to_resolve(estimate: float, low: float, high: float, minimal_effect: float, n: int) -> int | None:
    """About how many tasks (at the present spread) would make the CI clear ``minimal_effect`` on the side the
    estimate lies: ``n * (half-width / |estimate - minimal_effect|)^2``. None when the estimate sits on the minimal
    effect (no sample size separates them) or the inputs are not finite."""
    gap = abs(estimate - minimal_effect)
    half = (high - low) / 2
    if not (np.isfinite(gap) and np.isfinite(half)) or gap < 1e-12 or n < 1:
        return None
    return int(np.ceil(n * (half / gap) ** 2 - 1e-9))


def is_dedicated(auc: Any, threshold: float = DEDICATED_AUC) -> Any:
    """The one definition: held-out ROC-AUC of the single neuron (in its trained direction) >= ``threshold``.

    Works on a number or an array; NaN is never dedicated.
    """
    auc_arr = np.asarray(auc, dtype=np.float64)
    out = np.where(np.isfinite(auc_arr), auc_arr >= threshold, False)
    return bool(out) if out.ndim == 0 else out


def mark_dedicated(
    table: pd.DataFrame, *, column: str = "roc_auc_test", threshold: float = DEDICATED_AUC
) -> pd.DataFrame:
    """A copy of ``table`` with a boolean ``dedicated`` column (:func:`is_dedicated` of ``column``)."""
    if column not in table.columns:
        raise KeyError(
            f"{column!r} is not in the table: probe with the 'single_neuron' method (its rows carry roc_auc_test)."
        )
    return table.assign(dedicated=is_dedicated(table[column].to_numpy(), threshold))
