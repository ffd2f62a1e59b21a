"""Toy models of superposition: deterministic training, ground truth, labelled probing data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_probing.analysis import toy_models as tm
from sparse_probing.probes.single import best_single_neuron

WIDE = tm.ToyConfig(n_features=4, n_hidden=8, feature_probability=0.3, importance_decay=1.0, n_steps=400)
"""Twice as many neurons as features: most half-features get a neuron of their own."""


@pytest.fixture(scope="module")
def wide():
    return tm.train_toy(WIDE)


def test_training_is_deterministic_by_seed():
    cfg = tm.ToyConfig(n_features=6, n_hidden=3, n_steps=50, batch_size=64)
    a, b = tm.train_toy(cfg), tm.train_toy(cfg)
    for pa, pb in zip(a.module.parameters(), b.module.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    c = tm.train_toy(tm.ToyConfig(n_features=6, n_hidden=3, n_steps=50, batch_size=64, seed=1))
    assert not torch.equal(a.module.w_in.weight, c.module.w_in.weight)
    assert a.final_loss == b.final_loss


def test_gated_twin_has_no_input_bias_and_hidden_is_silu_gate_times_up():
    model = tm.train_toy(tm.ToyConfig(n_features=6, n_hidden=3, n_steps=20, batch_size=32, activation="gated"))
    assert model.module.w_in.bias is None
    x = tm.sample_features(model.config, 10, np.random.default_rng(0))
    with torch.no_grad():
        xt = torch.as_tensor(x)
        expected = torch.nn.functional.silu(model.module.w_gate(xt)) * model.module.w_in(xt)
    np.testing.assert_allclose(model.hidden(x), expected.numpy(), rtol=1e-6)


def test_ground_truth_of_a_wide_toy(wide):
    truth = tm.ground_truth(wide)
    f = truth.features
    assert len(f) == 2 * WIDE.n_features and len(truth.neurons) == WIDE.n_hidden
    assert set(f["status"]) <= {"dedicated", "superposed", "absent"}
    dedicated = f[f["status"] == "dedicated"]
    assert len(dedicated) >= 3
    assert (truth.neurons.loc[dedicated["dedicated_neuron"], "n_features"] == 1).all()
    assert not f.loc[f["status"] == "absent", "represented"].any()
    assert f.loc[f["status"] == "dedicated", "feature_dedicated"].all()  # dedicated to a half: also to its feature
    assert not f.loc[~f["represented"], "feature_dedicated"].any()
    s = truth.summary
    assert s["n_dedicated"] + s["n_superposed"] + s["n_absent"] == 2 * WIDE.n_features


def test_single_neuron_probe_finds_the_dedicated_neuron(wide):
    truth = tm.ground_truth(wide)
    rng = np.random.default_rng(0)
    for _, row in truth.features[truth.features["status"] == "dedicated"].iterrows():
        X, y = tm.probe_data(wide, int(row["half"]), 300, rng)
        Xv, yv = tm.probe_data(wide, int(row["half"]), 100, rng)
        assert best_single_neuron(X, y, Xv, yv).support[0] == row["dedicated_neuron"]


def test_probe_data_is_balanced_with_hard_negatives(wide):
    rng = np.random.default_rng(1)
    X, y = tm.probe_data(wide, 3, 200, rng)
    assert X.shape == (200, WIDE.n_hidden) and y.sum() == 100
    with pytest.raises(ValueError, match="half must be in"):
        tm.probe_data(wide, 8, 10, rng)
    with pytest.raises(ValueError, match="leaves a class empty"):
        tm.probe_data(wide, 0, 1, rng)


def test_bad_configs_say_what_is_wrong():
    with pytest.raises(ValueError, match="activation must be one of"):
        tm.ToyConfig(activation="tanh")
    with pytest.raises(ValueError, match="feature_probability"):
        tm.ToyConfig(feature_probability=0.0)
