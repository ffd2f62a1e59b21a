"""Metrics agree with scikit-learn; bootstrap intervals resample whole documents."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from sparse_probing.metrics import METRICS, binary_metrics, bootstrap_ci


def test_binary_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    score = y + rng.normal(0, 0.8, 300)
    pred = (score > 0.5).astype(int)
    m = binary_metrics(y, pred, score)
    assert set(m) == set(METRICS)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, score))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))


def test_degenerate_cases() -> None:
    m = binary_metrics([0, 0, 1], [0, 0, 0])
    assert m["f1"] == 0 and m["precision"] == 0 and m["recall"] == 0 and m["mcc"] == 0 and np.isnan(m["pr_auc"])
    assert np.isnan(m["roc_auc"])
    assert binary_metrics([True, False], [True, False])["f1"] == 1
    with pytest.raises(ValueError, match="binary 0/1"):
        binary_metrics([0, 2], [0, 1])
    with pytest.raises(ValueError, match="different lengths"):
        binary_metrics([0, 1, 1], [0, 1])


def test_bootstrap_over_groups_is_wider_than_over_examples() -> None:
    # ten tokens per document, the probe is right or wrong for a whole document: tokens are not independent
    rng = np.random.default_rng(1)
    n_docs, per_doc = 60, 10
    groups = np.repeat(np.arange(n_docs), per_doc)
    y = np.repeat(rng.integers(0, 2, n_docs), per_doc)
    correct = np.repeat(rng.random(n_docs) < 0.8, per_doc)
    pred = np.where(correct, y, 1 - y)
    by_doc = bootstrap_ci(y, pred, groups=groups, n_boot=800, random_state=0).iloc[0]
    by_token = bootstrap_ci(y, pred, n_boot=800, random_state=0).iloc[0]
    assert by_doc["low"] <= by_doc["estimate"] <= by_doc["high"]
    assert by_doc["n_groups"] == n_docs and by_token["n_groups"] == n_docs * per_doc
    assert (by_doc["high"] - by_doc["low"]) > 2 * (by_token["high"] - by_token["low"])


def test_bootstrap_all_metrics_and_seed() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    score = y + rng.normal(0, 1, 200)
    pred = (score > 0.5).astype(int)
    groups = np.arange(200) // 4
    a = bootstrap_ci(y, pred, score, groups, metrics=METRICS, n_boot=100, random_state=3)
    b = bootstrap_ci(y, pred, score, groups, metrics=METRICS, n_boot=100, random_state=3)
    assert a["metric"].tolist() == list(METRICS)
    assert a.equals(b)
    assert (a["low"] <= a["high"]).all()
    with pytest.raises(ValueError, match="need y_score"):
        bootstrap_ci(y, pred, metrics=("pr_auc",))
    with pytest.raises(ValueError, match="Unknown metrics"):
        bootstrap_ci(y, pred, metrics=("auc",))
