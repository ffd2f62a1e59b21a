"""Leakage-free train / validation / test splits, grouped by document and stratified by label.

Gurnee et al. (2023) split examples 70/30 at random, so tokens of one document (and, for some families,
translations of one text) land on both sides, and they chose the best neurons by test F1. Here every group
(a document id, or a coarser group such as "all translations of one chapter") goes to exactly one of train,
validation and test; neurons, k and regularization are chosen on validation; test is touched once, for the report.
Stratification (``sklearn.model_selection.StratifiedGroupKFold``) keeps class proportions close across splits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold


class SplitError(ValueError):
    """A split cannot be made or is not leakage-free."""


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of the three parts of a grouped split (sorted, disjoint)."""

    train: np.ndarray
    """Training rows."""
    val: np.ndarray
    """Validation rows (model selection); may be empty when ``val_size=0``."""
    test: np.ndarray
    """Test rows (reporting only)."""

    @property
    def n(self) -> int:
        """Total number of rows."""
        return int(self.train.size + self.val.size + self.test.size)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": int(self.train.size), "val": int(self.val.size), "test": int(self.test.size)}

    def masks(self, n: int | None = None) -> dict[str, np.ndarray]:
        """Boolean masks of length ``n`` (default: the largest index + 1) for every part."""
        n = int(max((a.max() for a in (self.train, self.val, self.test) if a.size), default=-1)) + 1 if n is None else n
        out = {}
        for name, idx in (("train", self.train), ("val", self.val), ("test", self.test)):
            m = np.zeros(n, dtype=bool)
            m[idx] = True
            out[name] = m
        return out

    def check(self, groups: Any) -> None:
        """Raise :class:`SplitError` if rows repeat or a group appears in more than one part."""
        groups_N = np.asarray(groups)
        parts = {"train": self.train, "val": self.val, "test": self.test}
        all_idx = np.concatenate(list(parts.values()))
        if np.unique(all_idx).size != all_idx.size:
            raise SplitError("A row appears in more than one part of the split.")
        if all_idx.size and all_idx.max() >= groups_N.size:
            raise SplitError(f"The split indexes row {all_idx.max()} but only {groups_N.size} groups were given.")
        seen: dict[str, set] = {name: set(groups_N[idx].tolist()) for name, idx in parts.items()}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            shared = seen[a] & seen[b]
            if shared:
                raise SplitError(
                    f"{len(shared)} group(s) appear in both {a} and {b} (e.g. {sorted(map(str, shared))[:3]}): "
                    "the split leaks documents."
                )


def _one_fold(
    groups_N: np.ndarray, y_N: np.ndarray | None, size: float, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions into (rest, held) with ``held`` about ``size`` of the groups, stratified if ``y`` given."""
    n_groups = np.unique(groups_N).size
    n_splits = max(2, round(1.0 / size))
    if n_groups < n_splits:
        raise SplitError(
            f"Cannot hold out {size:.0%} of the data with only {n_groups} groups: need at least {n_splits} "
            "distinct groups (documents); use more data or smaller val_size/test_size."
        )
    seed = int(rng.randint(2**31 - 1))
    if y_N is not None:
        splitter: Any = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            rest, held = next(splitter.split(np.zeros(groups_N.size), y_N, groups_N))
    else:
        splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, held = next(splitter.split(np.zeros(groups_N.size), None, groups_N))
    return rest, held


def _check_group_ids(groups_N: np.ndarray) -> None:
    """Refuse missing (None, NaN) or mixed-type group ids, which cannot be sorted or compared."""
    values = groups_N.tolist()
    missing = [i for i, g in enumerate(values) if g is None or (isinstance(g, float) and g != g)]
    if missing:
        raise SplitError(
            f"{len(missing)} row(s) have no group id (None or NaN), e.g. rows {missing[:5]}: give every row a group "
            "(its document id)."
        )
    kinds = {type(g).__name__ for g in values}
    if groups_N.dtype == object and len(kinds) > 1:
        raise SplitError(f"group ids mix types ({', '.join(sorted(kinds))}): use one type, e.g. str(group).")


def _checked(groups: Any, y: Any | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Group ids and labels as arrays, refused with :class:`SplitError` unless one of each per row."""
    groups_N = np.asarray(groups)
    if groups_N.ndim != 1 or groups_N.size == 0:
        raise SplitError(f"groups must be a non-empty 1-d array (one group id per row), got shape {groups_N.shape}.")
    _check_group_ids(groups_N)
    y_N = None if y is None else np.asarray(y)
    if y_N is not None and y_N.shape != groups_N.shape:
        raise SplitError(f"y has {y_N.size} labels but groups has {groups_N.size} entries: pass one per row.")
    return groups_N, y_N


def grouped_split(
    groups: Any,
    y: Any | None = None,
    *,
    val_size: float = 0.15,
    test_size: float = 0.15,
    random_state: int | None = 42,
) -> Split:
    """Split rows into train / validation / test so that no group straddles two parts.

    Parameters
    ----------
    groups : array-like (N,)
        The group of every row (document id, or a coarser group that must stay together).
    y : array-like (N,), optional
        Labels to stratify on (any number of classes, e.g. the language of a document).
    val_size, test_size : float
        Approximate fractions of the groups held out for validation and test (``val_size`` may be 0).
    random_state : int or None
        Seed.
    """
    groups_N, y_N = _checked(groups, y)
    if not (0 < test_size < 1 and 0 <= val_size < 1 and val_size + test_size < 1):
        raise SplitError(
            f"Need 0 < test_size, 0 <= val_size and val_size + test_size < 1; got {val_size}, {test_size}."
        )
    rng = np.random.RandomState(random_state)
    rest_R, test = _one_fold(groups_N, y_N, test_size, rng)
    if val_size > 0:
        fraction = val_size / (1.0 - test_size)
        y_R = None if y_N is None else y_N[rest_R]
        train_r, val_r = _one_fold(groups_N[rest_R], y_R, fraction, rng)
        train, val = rest_R[train_r], rest_R[val_r]
    else:
        train, val = rest_R, np.zeros(0, dtype=np.int64)
    split = Split(train=np.sort(train), val=np.sort(val), test=np.sort(test))
    split.check(groups_N)
    return split


CV_FOLDS = 5
"""Outer folds of :func:`grouped_cv` unless a family has too few groups per class."""


def grouped_cv(
    groups: Any,
    y: Any | None = None,
    *,
    n_folds: int = CV_FOLDS,
    val_size: float = 0.2,
    random_state: int | None = 42,
) -> list[Split]:
    """Grouped K-fold cross-validation with an inner validation split: every row is tested exactly once.

    The groups are dealt into ``n_folds`` test folds (stratified by ``y`` when given, no group in two folds); in fold
    ``i`` the remaining groups are split again into training and validation rows (``val_size`` of them), so that
    anything chosen (layer, k, neuron, regularization) is chosen on the validation rows of that fold and the test fold
    is touched once, for the report. With fewer groups of some class than ``n_folds``, K drops to what the data
    allow (at least 2) and a warning says so; ``len(result)`` is the K used.
    """
    groups_N, y_N = _checked(groups, y)
    if n_folds < 2:
        raise SplitError(f"n_folds must be at least 2, got {n_folds}.")
    if not 0 < val_size < 1:
        raise SplitError(f"val_size must lie in (0, 1), got {val_size}.")
    if y_N is None:
        fewest = np.unique(groups_N).size
    else:
        fewest = min(np.unique(groups_N[y_N == c]).size for c in np.unique(y_N))
    k = min(n_folds, fewest)
    if k < 2:
        raise SplitError(
            f"Cannot cross-validate: some class has {fewest} group(s); each class needs groups (documents) in at "
            "least 2 folds."
        )
    if k < n_folds:
        warnings.warn(f"only {fewest} groups in the smallest class: {k} folds instead of {n_folds}.", stacklevel=2)
    rng = np.random.RandomState(random_state)
    seed = int(rng.randint(2**31 - 1))
    if y_N is not None:
        outer: Any = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        outer = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        folds = list(outer.split(np.zeros(groups_N.size), y_N, groups_N))
    out = []
    for rest_R, test in folds:
        y_R = None if y_N is None else y_N[rest_R]
        train_r, val_r = _one_fold(groups_N[rest_R], y_R, val_size, rng)
        split = Split(train=np.sort(rest_R[train_r]), val=np.sort(rest_R[val_r]), test=np.sort(test))
        split.check(groups_N)
        out.append(split)
    return out
