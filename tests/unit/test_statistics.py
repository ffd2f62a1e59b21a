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


def test_minimal_detectable_effect_matches_the_t_formula_and_shrinks_with_n():
    from scipy.stats import t

    from sparse_probing.analysis.statistics import mde_from_interval, minimal_detectable_effect, samples_to_resolve

    rng = np.random.default_rng(0)
    v = rng.normal(0.0, 0.04, size=21)
    expected = (t.ppf(0.975, 20) + t.ppf(0.8, 20)) * v.std(ddof=1) / np.sqrt(21)
    assert minimal_detectable_effect(v) == pytest.approx(expected)
    assert minimal_detectable_effect(sd=0.04, n=84) < minimal_detectable_effect(sd=0.04, n=21)
    assert np.isnan(minimal_detectable_effect([0.1]))
    with pytest.raises(ValueError, match="sd and n"):
        minimal_detectable_effect()
    # a 95% CI of half-width 1.96 SE: MDE = 2.80 SE
    assert mde_from_interval(-1.96, 1.96) == pytest.approx(1.96 + 0.8416, abs=1e-3)
    assert samples_to_resolve(0.02, -0.01, 0.05, 0.03, 10) == 90  # 10 * (0.03 / 0.01)^2
    assert samples_to_resolve(0.03, 0.0, 0.06, 0.03, 10) is None


def test_mde_calibrated_by_simulation():
    """At the MDE, a paired bootstrap over tasks detects the effect in about 80% of simulated studies."""
    from sparse_probing.analysis.statistics import minimal_detectable_effect, paired_bootstrap

    rng = np.random.default_rng(1)
    n, sd = 21, 0.03
    mde = minimal_detectable_effect(sd=sd, n=n)
    hits = [
        paired_bootstrap(rng.normal(mde, sd, n), np.zeros(n), n_boot=400, random_state=i)["low"] > 0 for i in range(200)
    ]
    assert 0.7 <= np.mean(hits) <= 0.92
