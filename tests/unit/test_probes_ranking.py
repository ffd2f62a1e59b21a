"""Neuron rankers: planted neurons come first, orders are deterministic, bad input fails clearly."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_probing.probes import (
    RANKERS,
    KClippedWarning,
    NeuronRanker,
    ProbeInputError,
    mean_difference,
    rank_neurons,
    score_neurons,
)


def planted(n: int = 400, d: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    X = rng.standard_normal((n, d)) * np.exp(rng.normal(0, 0.3, d))
    idx = np.array([7, 23, 41])
    X[:, idx] += np.outer(y, [2.5, 2.0, 1.5]) * X[:, idx].std(axis=0)
    return X, y, idx


@pytest.mark.parametrize("method", [m for m in RANKERS if m != "random"])
def test_rankers_put_planted_neurons_first(method: str) -> None:
    X, y, idx = planted()
    ranking = rank_neurons(X, y, method, random_state=0)
    assert sorted(ranking.tolist()) == list(range(X.shape[1]))
    assert set(ranking[:3].tolist()) == set(idx.tolist())


def test_mean_difference_value() -> None:
    X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 5.0], [6.0, 3.0]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(mean_difference(X, y, standardize=False), [4.0, 3.0])
    np.testing.assert_allclose(mean_difference(X, y), [4.0 / X[:, 0].std(), 3.0 / X[:, 1].std()])
    np.testing.assert_allclose(score_neurons(X, y, "mean_diff"), mean_difference(X, y))
    np.testing.assert_allclose(score_neurons(X, y, "mean_diff_raw"), [4.0, 3.0])
    # scale-free: multiplying a neuron by 1000 does not change its standardized score
    X_scaled = X * np.array([1000.0, 1.0])
    np.testing.assert_allclose(mean_difference(X_scaled, y), mean_difference(X, y))
    assert mean_difference(np.column_stack([X, np.ones(4)]), y)[2] == 0.0  # a constant neuron scores 0
    # the raw difference is not scale-free: the scaled neuron wins by its scale alone
    assert (
        rank_neurons(X_scaled, y, "mean_diff_raw")[0] == 0
        and rank_neurons(X_scaled / [1000.0, 0.001], y, "mean_diff_raw")[0] == 1
    )


def test_mean_diff_matches_the_papers_normalized_pipeline() -> None:
    """The paper's ranker (plain difference) on activations divided by 10 * max(std, 1e-3) gives mean_diff's order."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 30)) * rng.uniform(0.01, 50, size=30)
    y = (rng.random(200) < 0.3).astype(int)
    X[:, 5] = 0.05 * rng.normal(size=200) + 0.1 * y  # planted, on a small scale
    normalized = X / (10 * np.maximum(X.std(axis=0), 1e-3))
    paper = np.argsort(-np.abs(normalized[y == 1].mean(0) - normalized[y == 0].mean(0)), kind="stable")
    np.testing.assert_array_equal(rank_neurons(X, y, "mean_diff"), paper)
    assert paper[0] == 5 and rank_neurons(X, y, "mean_diff_raw")[0] != 5  # the planted neuron loses to scale


def test_random_ranker_is_seeded_permutation() -> None:
    X, y, _ = planted()
    a = rank_neurons(X, y, "random", random_state=3)
    b = rank_neurons(X, y, "random", random_state=3)
    c = rank_neurons(X, y, "random", random_state=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(a.tolist()) == list(range(X.shape[1]))


def test_ties_are_broken_deterministically() -> None:
    # two identical columns and an L1 fit that zeroes most coefficients: order is by mean difference then index
    X, y, _ = planted()
    X = np.column_stack([X, X[:, 7]])
    r1 = rank_neurons(X, y, "mean_diff")
    assert r1.tolist().index(7) < r1.tolist().index(X.shape[1] - 1)
    r_l1 = rank_neurons(X, y, "l1", C=0.005)
    np.testing.assert_array_equal(r_l1, rank_neurons(X, y, "l1", C=0.005))


def test_labels_of_any_type() -> None:
    X, y, _idx = planted()
    labels = np.where(y == 1, "fr", "other")  # "other" > "fr": positive class is the larger label
    np.testing.assert_allclose(score_neurons(X, labels), score_neurons(X, 1 - y))


def test_selector_keeps_top_k() -> None:
    X, y, idx = planted()
    sel = NeuronRanker(method="f_stat", k=3).fit(X, y)
    assert set(sel.support_.tolist()) == set(idx.tolist())
    assert sel.get_support().sum() == 3
    np.testing.assert_array_equal(sel.transform(X), X[:, np.sort(idx)])
    assert sel.scores_.shape == (X.shape[1],) and sel.ranking_.shape == (X.shape[1],)


def test_selector_clips_k_with_warning() -> None:
    X, y, _ = planted()
    X = X[:, :5]
    with pytest.warns(KClippedWarning, match="exceeds the 5 available neurons"):
        sel = NeuronRanker(k=10).fit(X, y)
    assert sel.k_ == 5 and sel.support_.size == 5


def test_bad_input() -> None:
    X, y, _ = planted()
    with pytest.raises(ProbeInputError, match="exactly 2 classes"):
        rank_neurons(X, np.ones(len(y)))
    with pytest.raises(ProbeInputError, match="Unknown ranker"):
        rank_neurons(X, y, "pca")
    X_nan = X.copy()
    X_nan[3, 4] = np.nan
    with pytest.raises(ProbeInputError, match=r"NaN.*activation cache"):
        rank_neurons(X_nan, y)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ProbeInputError, match=r"infinity|inf"):
        NeuronRanker().fit(X_inf, y)
    with pytest.raises(ProbeInputError, match="inconsistent numbers of samples"):
        rank_neurons(X, y[:-1])
    with pytest.raises(ProbeInputError, match="Only binary classification"):
        from sparse_probing.probes import SparseProbe

        SparseProbe().fit(X, np.arange(len(y)) % 3)
