"""Dense probe, random orthogonal basis and shuffled-label control."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from sparse_probing.metrics import binary_metrics
from sparse_probing.probes import (
    DenseProbe,
    RandomRotation,
    ShuffledLabelProbe,
    SparseProbe,
    control_selectivity,
    random_orthogonal,
    shuffled_labels,
)
from sparse_probing.probes.synthetic import make_planted
from sparse_probing.splits import grouped_split


@pytest.fixture(scope="module")
def data():
    d = make_planted(n=1600, d=120, effects=(4.0,), doc_effect=0.0, random_state=5)  # one monosemantic neuron
    split = grouped_split(d.groups, d.y, val_size=0.0, test_size=0.3, random_state=0)
    return d, split


def f1(estimator, X, y) -> float:
    return binary_metrics(y, estimator.predict(X))["f1"]


def test_random_orthogonal_is_orthogonal_and_seeded() -> None:
    Q = random_orthogonal(50, random_state=1)
    np.testing.assert_allclose(Q.T @ Q, np.eye(50), atol=1e-10)
    np.testing.assert_array_equal(Q, random_orthogonal(50, random_state=1))
    assert not np.allclose(Q, random_orthogonal(50, random_state=2))
    # Haar: no privileged axis, entries of one column spread over all coordinates
    assert np.abs(Q).max() < 0.8
    assert abs(np.linalg.det(random_orthogonal(1, random_state=0))) == 1


def test_dense_probe_uses_all_neurons(data) -> None:
    d, split = data
    probe = DenseProbe().fit(d.X[split.train], d.y[split.train])
    assert probe.support_.size == d.X.shape[1] and np.count_nonzero(probe.coef_) == d.X.shape[1]
    assert probe.support_[0] == d.planted[0]  # largest standardized weight
    assert f1(probe, d.X[split.test], d.y[split.test]) > 0.8


def test_random_basis_hides_a_monosemantic_neuron(data) -> None:
    d, split = data
    Xtr, ytr, Xte, yte = d.X[split.train], d.y[split.train], d.X[split.test], d.y[split.test]
    neuron = SparseProbe(k=1).fit(Xtr, ytr)
    rotated = make_pipeline(RandomRotation(random_state=0), SparseProbe(k=1)).fit(Xtr, ytr)
    assert neuron.support_[0] == d.planted[0]
    assert f1(neuron, Xte, yte) > f1(rotated, Xte, yte) + 0.2
    # the dense probe does not care about the basis
    dense = DenseProbe().fit(Xtr, ytr)
    dense_rot = make_pipeline(RandomRotation(random_state=0), DenseProbe()).fit(Xtr, ytr)
    assert abs(f1(dense, Xte, yte) - f1(dense_rot, Xte, yte)) < 0.05
    rot = RandomRotation(random_state=0).fit(Xtr)
    np.testing.assert_allclose(rot.transform(Xtr) @ rot.rotation_.T, Xtr, rtol=1e-3, atol=1e-3)


def test_control_probe_has_low_selectivity_and_real_probe_high(data) -> None:
    d, split = data
    Xtr, ytr, Xte, yte = d.X[split.train], d.y[split.train], d.X[split.test], d.y[split.test]
    result = control_selectivity(SparseProbe(k=1), Xtr, ytr, Xte, yte, n_repeats=3, random_state=0)
    assert result["f1"] > 0.8
    assert result["control_f1"] < 0.6
    assert result["selectivity"] == pytest.approx(result["f1"] - result["control_f1"])
    assert result["selectivity"] > 0.3
    control = ShuffledLabelProbe(SparseProbe(k=1), random_state=0).fit(Xtr, ytr)
    assert control.support_.shape == (1,) and control.coef_.shape == (1, d.X.shape[1])


def test_shuffled_labels_keep_counts_and_groups() -> None:
    y = np.array([1, 1, 0, 0, 0, 0, 1, 1, 0, 0])
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    s = shuffled_labels(y, random_state=0)
    assert sorted(s.tolist()) == sorted(y.tolist())
    g = shuffled_labels(y, random_state=3, groups=groups)
    assert sorted(g.tolist()) == sorted(y.tolist())
    for grp in np.unique(groups):
        assert np.unique(g[groups == grp]).size == 1  # a document keeps one label
    with pytest.raises(ValueError, match="labels vary within a group"):
        shuffled_labels(np.arange(10) % 2, groups=groups)
