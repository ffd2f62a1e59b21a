"""Top-k and telescopic sparse probes on planted-neuron data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from sparse_probing.metrics import binary_metrics
from sparse_probing.probes import (
    K_GRID,
    KClippedWarning,
    ProbeInputError,
    SparseProbe,
    TelescopicProbe,
)
from sparse_probing.probes.synthetic import make_planted, support_recovery


@pytest.fixture(scope="module")
def data():
    return make_planted(n=1200, d=300, effects=(2.5, 1.5, 1.5, 1.0), random_state=3)


def test_default_grid_is_the_papers() -> None:
    assert K_GRID == (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64, 128, 256)


def test_sparse_probe_is_a_linear_classifier_on_raw_activations(data) -> None:
    probe = SparseProbe(k=4).fit(data.X, data.y)
    assert probe.coef_.shape == (1, data.X.shape[1]) and probe.intercept_.shape == (1,)
    assert np.count_nonzero(probe.coef_) == 4
    assert set(np.flatnonzero(probe.coef_[0]).tolist()) == set(probe.support_.tolist())
    manual = data.X[:, probe.support_].astype(np.float64) @ probe.coef_[0, probe.support_] + probe.intercept_[0]
    np.testing.assert_allclose(probe.decision_function(data.X), manual, rtol=1e-6, atol=1e-6)
    # the support is ordered by importance: the strongest planted neuron first
    assert probe.support_[0] == data.planted[np.argmax(data.effects)]
    assert binary_metrics(data.y, probe.predict(data.X))["f1"] > 0.8


def test_sparse_probe_recovers_planted_neurons(data) -> None:
    probe = SparseProbe(k=4, ranker="f_stat").fit(data.X, data.y)
    precision, recall = support_recovery(probe.support_, data.planted)
    assert precision >= 0.75 and recall >= 0.75


def test_string_labels_and_pipeline(data) -> None:
    labels = np.where(data.y == 1, "yes", "no")
    probe = SparseProbe(k=2).fit(data.X, labels)
    assert set(probe.predict(data.X[:5]).tolist()) <= {"yes", "no"}
    assert probe.classes_.tolist() == ["no", "yes"]
    scores = cross_val_score(make_pipeline(clone(probe)), data.X, data.y, cv=3, scoring="f1")
    assert scores.mean() > 0.7


def test_top_k_path_uses_one_ranking(data) -> None:
    fits = SparseProbe().fit_path(data.X, data.y, ks=(1, 2, 4, 8))
    assert [f.k for f in fits] == [1, 2, 4, 8]
    for small, large in itertools.pairwise(fits):
        assert set(small.support.tolist()) <= set(large.support.tolist())  # nested: one ranking
    assert all(f.method == "mean_diff" for f in fits)


def test_telescopic_path_descends_and_recovers(data) -> None:
    fits = TelescopicProbe(n_start=128).fit_path(data.X, data.y, ks=(1, 2, 4, 8, 16, 64))
    assert [f.k for f in fits] == [1, 2, 4, 8, 16, 64]
    for small, large in itertools.pairwise(fits):
        assert set(small.support.tolist()) <= set(large.support.tolist())  # each k is chosen within the next
    four = fits[2]
    strong = data.planted[data.effects >= 1.5]  # the weakest planted neuron may lose to correlated neighbours
    assert set(strong.tolist()) <= set(four.support.tolist())
    score = four.decision_function(data.X)
    assert binary_metrics(data.y, (score > 0).astype(int))["f1"] > 0.8
    refit = TelescopicProbe(n_start=128, refit=True).fit_path(data.X, data.y, ks=(1, 2, 4, 8, 16, 64))
    for a, b in zip(refit, fits, strict=True):  # refit changes the weights, not the selection
        np.testing.assert_array_equal(a.support, b.support)


def test_telescopic_probe_estimator(data) -> None:
    probe = TelescopicProbe(k=3, n_start=64).fit(data.X, data.y)
    assert probe.support_.size == 3
    assert [f.k for f in probe.path_] == [3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64]


def test_k_clipping_warns(data) -> None:
    X = data.X[:, :6]
    with pytest.warns(KClippedWarning):
        fits = SparseProbe().fit_path(X, data.y, ks=(2, 8, 300))
    assert [f.k for f in fits] == [2, 6]
    with pytest.warns(KClippedWarning):
        assert SparseProbe(k=50).fit(X, data.y).k_ == 6


def test_invalid_k_and_input(data) -> None:
    with pytest.raises(ProbeInputError, match="positive integer"):
        SparseProbe(k=0).fit(data.X, data.y)
    with pytest.raises(ProbeInputError, match="ks is empty"):
        SparseProbe().fit_path(data.X, data.y, ks=())
    with pytest.raises(ProbeInputError, match="exactly 2 classes"):
        TelescopicProbe().fit_path(data.X, np.zeros(len(data.y)))
    with pytest.raises(ProbeInputError, match="l1_ratio"):
        TelescopicProbe(l1_ratio=2.0).fit_path(data.X, data.y)
    X16 = data.X.astype(np.float16)
    X16[0, 0] = np.inf
    with pytest.raises(ProbeInputError, match="finite"):
        SparseProbe().fit(X16, data.y)
