"""The exhaustive single-neuron probe: equals a brute-force loop, prefers the neuron without false positives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from sparse_probing.probes import ProbeInputError, SingleNeuronProbe, best_single_neuron, single_neuron_table
from sparse_probing.probes.single import fit_thresholds


def brute_force(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best training F1 per neuron over every threshold and both signs, by explicit loops."""
    best_f1 = np.zeros(X.shape[1])
    best_sign = np.ones(X.shape[1])
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        cuts = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
        for sign in (1.0, -1.0):
            for t in cuts:
                f1 = f1_score(y, (sign * (X[:, j] - t) > 0).astype(int), zero_division=0)
                if f1 > best_f1[j] + 1e-12:
                    best_f1[j], best_sign[j] = f1, sign
    return best_f1, best_sign


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholds_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d = 60, 7
    y = (rng.random(n) < 0.3).astype(int)
    X = rng.standard_normal((n, d)) + np.outer(y, rng.normal(0, 1.5, d))
    X[:, 0] = np.round(X[:, 0])  # ties between examples
    X[:, 1] = -X[:, 1] - 2 * y  # a neuron that goes down for the positives
    sign, threshold, f1 = fit_thresholds(X, y)
    bf_f1, _ = brute_force(X, y)
    np.testing.assert_allclose(f1, bf_f1, atol=1e-12)
    # the returned thresholds achieve the reported F1
    for j in range(d):
        assert f1_score(y, (sign[j] * (X[:, j] - threshold[j]) > 0).astype(int)) == pytest.approx(f1[j])
    assert sign[1] == -1


def test_selection_on_validation_auc_and_estimator() -> None:
    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.25).astype(int)
    X = rng.standard_normal((n, 50))
    X[:, 7] += 3.0 * y  # clean detector
    X[:, 11] += 6.0 * y + 6.0 * (rng.random(n) < 0.3)  # larger mean shift, but fires on many negatives too
    tr, va = np.arange(0, 300), np.arange(300, n)
    table = single_neuron_table(X[tr], y[tr], X[va], y[va])
    for j in (7, 11, 20):
        assert table.loc[j, "roc_auc_val"] == pytest.approx(roc_auc_score(y[va], X[va, j] * table.loc[j, "sign"]))
    fit = best_single_neuron(X[tr], y[tr], X[va], y[va], n_finalists=None)  # validation chooses among all
    assert fit.support.tolist() == [int(table["roc_auc_val"].idxmax())] == [7]
    # with finalists, validation only arbitrates among the best neurons on the training rows
    finalists = table.sort_values("roc_auc_train", ascending=False).head(3)
    fit3 = best_single_neuron(X[tr], y[tr], X[va], y[va], n_finalists=3)
    assert fit3.support[0] == finalists.loc[finalists["roc_auc_val"].idxmax(), "neuron"]
    probe = SingleNeuronProbe().fit(X[tr], y[tr], validation=(X[va], y[va]))
    assert probe.neuron_ == 7 and probe.support_.tolist() == [7]
    pred = probe.predict(X[va])
    assert f1_score(y[va], pred) == pytest.approx(table.loc[7, "f1_val"])
    assert np.array_equal(pred, (probe.sign_ * (X[va, 7] - probe.threshold_) > 0).astype(int))


def test_bad_metric_and_shapes() -> None:
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.array([0, 1] * 10)
    with pytest.raises(ProbeInputError, match="metric must be one of"):
        best_single_neuron(X, y, metric="accuracy")
    with pytest.raises(ProbeInputError, match="must match"):
        single_neuron_table(X, y, X[:, :2], y)
