"""Group bootstrap never splits a group; the paired bootstrap finds a known difference; one dedicated-neuron rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis.statistics import (
    DEDICATED_AUC,
    bootstrap_statistic,
    group_bootstrap_indices,
    is_dedicated,
    mark_dedicated,
    paired_bootstrap,
    paired_comparison,
)


def test_group_bootstrap_never_splits_a_group() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, size=400).astype(str)
    sizes = pd.Series(groups).value_counts()
    for idx in group_bootstrap_indices(groups, n_boot=50, random_state=1):
        drawn = pd.Series(groups[idx]).value_counts()
        # every drawn group appears a whole number of times, all its rows each time
        assert all(drawn[g] % sizes[g] == 0 for g in drawn.index)
        assert drawn.div(sizes[drawn.index]).sum() == sizes.size  # as many groups as there are


def test_bootstrap_statistic_groups_widen_the_interval() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 25)
    x = rng.normal(0, 1, 20)[groups] + rng.normal(0, 0.1, groups.size)  # strongly clustered values
    by_group = bootstrap_statistic(np.mean, x, groups=groups, n_boot=500)
    by_row = bootstrap_statistic(np.mean, x, n_boot=500)
    assert by_group["n_groups"] == 20 and by_row["n_groups"] == x.size
    assert by_group["low"] < by_group["estimate"] < by_group["high"]
    assert (by_group["high"] - by_group["low"]) > 3 * (by_row["high"] - by_row["low"])


def test_paired_bootstrap_known_difference() -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(0.3, 0.9, 40)  # tasks differ a lot; the pairing removes that
    a, b = base + 0.05 + rng.normal(0, 0.01, 40), base
    res = paired_bootstrap(a, b, n_boot=2000)
    assert res["n_tasks"] == 40
    assert res["low"] < 0.05 < res["high"] and res["low"] > 0.04
    assert res["p_value"] < 0.01 and res["frac_positive"] == 1.0
    null = paired_bootstrap(base + rng.normal(0, 0.01, 40), base, n_boot=2000)
    assert null["low"] < 0 < null["high"] and null["p_value"] > 0.05
    a_nan = a.copy()
    a_nan[0] = np.nan
    assert paired_bootstrap(a_nan, b, n_boot=100)["n_tasks"] == 39


def test_paired_comparison_pairs_on_tasks() -> None:
    tasks = [f"t{i}" for i in range(12)]
    rows = [{"feature": t, "method": "neurons", "f1_test": 0.8 + 0.01 * i} for i, t in enumerate(tasks)]
    rows += [{"feature": t, "method": "rotated", "f1_test": 0.7 + 0.01 * i} for i, t in enumerate(tasks[:10])]
    res = paired_comparison(pd.DataFrame(rows), column="method", value="f1_test", a="neurons", b="rotated")
    assert res["n_tasks"] == 10 and res["mean_diff"] == pytest.approx(0.1)
    assert len(res["tasks"]) == 10
    with pytest.raises(ValueError, match="no rows with method"):
        paired_comparison(pd.DataFrame(rows), column="method", value="f1_test", a="neurons", b="dense")


def test_dedicated_definition() -> None:
    assert is_dedicated(DEDICATED_AUC) and not is_dedicated(DEDICATED_AUC - 1e-6) and not is_dedicated(np.nan)
    table = mark_dedicated(pd.DataFrame({"roc_auc_test": [0.99, 0.9, np.nan]}))
    assert table["dedicated"].tolist() == [True, False, False]
    with pytest.raises(KeyError, match="single_neuron"):
        mark_dedicated(pd.DataFrame({"f1_test": [1.0]}))
