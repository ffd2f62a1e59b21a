"""How many examples and test positives each binary task of a dataset has, under the chapters' grouped split.

A classification feature gives one binary task per class (one-vs-rest), or one task when its values are 0/1. The
split is the one the chapters use (:func:`sparse_probing.splits.grouped_split`, 70/15/15 by group, stratified by the
first feature when every example has it), computed on the tokenizer-agnostic examples of
:meth:`~sparse_probing.datasets.base.ProbingDataset.label_table` (before any truncation by a context length).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..splits import grouped_split
from .base import ProbingDataset


def binary_columns(table: pd.DataFrame, features: list[str]) -> dict[str, np.ndarray]:
    """``{task: y}`` with y 1/0 where the feature is labelled and NaN elsewhere (``feature`` or ``feature=value``)."""
    out: dict[str, np.ndarray] = {}
    for name in features:
        column = table[name]
        present = column.notna().to_numpy()
        values = column[present]
        if values.empty:
            continue
        if values.isin([0, 1]).all():
            candidates = [(name, 1)]
        else:
            candidates = [(f"{name}={v}", v) for v in sorted(pd.unique(values), key=str)]
        for task, positive in candidates:
            y = np.full(len(table), np.nan)
            y[present] = (values.to_numpy() == positive).astype(float)
            out[task] = y
    return out


def strata(table: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Per example, ``"<feature>=<value>"`` of its first labelled feature (in ``features`` order), ``""`` if none.

    Pass it as ``y`` to :func:`~sparse_probing.splits.grouped_split` so that every feature's classes are spread
    evenly over train, validation and test: ``grouped_split(examples["group"], strata(examples, features))``.
    """
    out = np.full(len(table), "", dtype=object)
    todo = np.ones(len(table), dtype=bool)
    for name in features:
        column = table[name]
        hit = todo & column.notna().to_numpy()
        out[hit] = [f"{name}={v}" for v in column[hit]]
        todo &= ~hit
    return out.astype(str)


def task_sizes(
    dataset: ProbingDataset, *, val_size: float = 0.15, test_size: float = 0.15, seed: int = 0
) -> pd.DataFrame:
    """One row per binary task: ``feature, task, examples, positives, test_examples, test_positives``.

    Token-level datasets have no examples before tokenization and give an empty frame; regression features are
    skipped. When the strata are too small to stratify (smoke slices), the split is grouped but not stratified.
    """
    cols = ["feature", "task", "examples", "positives", "test_examples", "test_positives"]
    if dataset.level == "token":
        return pd.DataFrame(columns=cols)
    table = dataset.label_table()
    features = [f.name for f in dataset.features if f.task == "classification"]
    groups = table["group"].to_numpy()
    try:
        split = grouped_split(
            groups, strata(table, features), val_size=val_size, test_size=test_size, random_state=seed
        )
    except ValueError:  # strata too small to stratify (smoke slices): an unstratified grouped split
        split = grouped_split(groups, None, val_size=val_size, test_size=test_size, random_state=seed)
    test = np.zeros(len(table), dtype=bool)
    test[split.test] = True
    rows = []
    for task, y in binary_columns(table, features).items():
        labelled = np.isfinite(y)
        rows.append(
            {
                "feature": task.split("=", 1)[0],
                "task": task,
                "examples": int(labelled.sum()),
                "positives": int(np.nansum(y)),
                "test_examples": int((labelled & test).sum()),
                "test_positives": int(np.nansum(y[test])),
            }
        )
    return pd.DataFrame(rows, columns=cols)
