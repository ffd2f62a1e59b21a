"""Study helpers of the superposition chapter on the tiny model: iterative pruning scored on held-out rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import make_toy_dataset

from sparse_probing import study
from sparse_probing.activations import ActivationSpec, load_or_compute
from sparse_probing.probes import iterative_pruning

SPEC = ActivationSpec(model="tiny-neox", dataset="toy", variant="smoke", layers=(0, 1), max_length=48, batch_size=4)


@pytest.fixture(scope="module")
def span_cache(tiny_model, tmp_path_factory):
    ds = make_toy_dataset(n_docs=60, level="span")
    spec = dataclasses.replace(SPEC, reduce="last")
    return load_or_compute(spec, model=tiny_model, dataset=ds, root=tmp_path_factory.mktemp("cache"))


def test_pruning_curve_scores_every_step_on_held_out_rows(span_cache):
    ex = span_cache.examples
    y = ex["is_cafe"].to_numpy(dtype=float)
    split = study.split_examples(ex, stratify="is_cafe")
    curve = study.pruning_curve(span_cache, 1, y, split, k=3, n_steps=4, method="mean_diff", n_boot=20)
    assert list(curve["step"]) == [0, 1, 2, 3]
    assert {"support", "removed", "f1_val", "f1_test", "f1_test_low", "f1_test_high"} <= set(curve.columns)
    assert (curve["layer"] == 1).all() and (curve["k"] == 3).all()
    for _, row in curve.iterrows():
        assert 0.0 <= row["f1_test_low"] <= row["f1_test_high"] <= 1.0 and 0.0 <= row["f1_test"] <= 1.0
    # a removed neuron never comes back
    removed = list(curve["removed"])
    for step, support in enumerate(curve["support"]):
        assert not set(support) & set(removed[:step])
    # the validation curve is exactly iterative_pruning's
    X = np.asarray(span_cache.layer(1), dtype=np.float32)
    tr, va = split.train, split.val
    direct = iterative_pruning(X[tr], y[tr], X[va], y[va], k=3, n_steps=4, method="mean_diff")
    assert list(direct["support"]) == list(curve["support"])
    np.testing.assert_allclose(direct["f1"], curve["f1_val"])


def test_pruning_curve_ignores_rows_without_a_label(span_cache):
    ex = span_cache.examples
    y = ex["is_cafe"].to_numpy(dtype=float)
    split = study.split_examples(ex, stratify="is_cafe")
    y_masked = y.copy()
    y_masked[::2] = np.nan  # half of the rows take no part
    curve = study.pruning_curve(span_cache, 0, y_masked, split, k=2, n_steps=2, method="mean_diff")
    assert len(curve) == 2 and "f1_test_low" not in curve.columns
    assert curve["f1_test"].between(0, 1).all()
