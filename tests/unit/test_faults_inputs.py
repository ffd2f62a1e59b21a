"""Bad group ids are refused with a message that says what to do, not a raw TypeError."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.splits import SplitError, grouped_split


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (pd.Series(["a", None, "b", "c"] * 10), "no group id"),
        (np.array([1.0, np.nan, 2.0, 3.0] * 10), "no group id"),
        (pd.Series(["a", 1, "b", 2] * 10, dtype=object), "mix types"),
    ],
)
def test_missing_or_mixed_group_ids_are_refused(groups, expected):
    """Before: None or mixed-type group ids gave a raw TypeError from sorting."""
    with pytest.raises(SplitError, match=expected):
        grouped_split(groups)


def test_string_group_ids_still_split():
    split = grouped_split(pd.Series([f"g{i}" for i in range(40)], dtype=object))
    assert split.n == 40


def test_nan_labels_are_reported_as_labels():
    """Before: NaN labels were reported as "activations must be finite"."""
    from sparse_probing.probes import SparseProbe
    from sparse_probing.probes._base import ProbeInputError

    X = np.random.default_rng(0).random((40, 5))
    y = np.array([0.0, 1.0] * 20)
    y[3] = np.nan
    with pytest.raises(ProbeInputError, match="Labels must be known") as info:
        SparseProbe(k=1).fit(X, y)
    assert "Activations must be finite" not in str(info.value)


def test_layer_count_of_a_model_directory_is_read_without_weights(tmp_path):
    from sparse_probing.models import check_layers, layer_count

    (tmp_path / "config.json").write_text('{"architectures": ["GPTNeoXForCausalLM"], "num_hidden_layers": 6}')
    assert layer_count(str(tmp_path)) == 6
    with pytest.raises(ValueError, match=r"layers 0\.\.5"):
        check_layers(str(tmp_path), (2, 6))
    (tmp_path / "config.json").write_text("{not json")
    assert layer_count(str(tmp_path)) is None  # unknown before loading: the forward pass checks later
