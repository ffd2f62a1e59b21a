"""Sweeps produce tidy tables; selection uses validation only; failures are reported, not raised."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from sparse_probing.metrics import binary_metrics
from sparse_probing.probes import (
    DenseProbe,
    OptimalSparseProbe,
    ProbeInputError,
    ProbeSpec,
    SingleNeuronProbe,
    SparseProbe,
    TelescopicProbe,
    make_probe,
    run_sweep,
    select_on_validation,
    selectivity,
)
from sparse_probing.probes.synthetic import make_planted
from sparse_probing.splits import grouped_split


@pytest.fixture(scope="module")
def problem():
    a = make_planted(n=800, d=64, effects=(3.0, 1.5), random_state=11)
    activations = {3: a.X, 7: np.ascontiguousarray(a.X[:, ::-1])}  # the same signal in other neurons
    labels = {"feat": a.y, "maybe": np.where(a.groups % 5 == 0, np.nan, a.y.astype(float))}
    split = grouped_split(a.groups, a.y, random_state=0)
    return activations, labels, split, a.groups


SPECS = [
    ProbeSpec("mean_diff", ks=(1, 2, 4)),
    ProbeSpec("telescopic", ks=(1, 2, 4), params={"n_start": 32}),
    ProbeSpec("optimal", ks=(1, 2), params={"n_candidates": 10, "solver": "highs"}),
    ProbeSpec("single_neuron"),
    ProbeSpec("dense"),
    ProbeSpec("random_basis", ks=(1, 2), params={"n_rotations": 3}),
    ProbeSpec("control", ks=(1, 2)),
]


def test_sweep_table(problem) -> None:
    activations, labels, split, groups = problem
    df = run_sweep(activations, labels, split, SPECS, groups=groups, n_boot=50, progress=False)
    per_task = {
        "mean_diff": 3,
        "telescopic": 3,
        "optimal": 2,
        "single_neuron": 1,
        "dense": 1,
        "random_basis": 2,
        "control": 2,
    }
    assert len(df) == 2 * 2 * sum(per_task.values())
    counts = df.groupby(["feature", "layer", "method"]).size()
    for (_, _, method), n in counts.items():
        assert n == per_task[method]
    for col in ("f1_val", "f1_test", "mcc_test", "pr_auc_test", "roc_auc_val", "roc_auc_test", "support", "fit_time"):
        assert col in df.columns
    assert (df["f1_test_low"] <= df["f1_test"] + 1e-12).all() and (df["f1_test"] <= df["f1_test_high"] + 1e-12).all()
    osp = df[df["method"] == "optimal"]
    assert osp["osp_proven_optimal"].all() and set(osp["osp_solver"]) == {"highs"}
    assert set(osp["osp_gamma_source"]) == {"validated"}  # gamma chosen on the sweep's validation rows
    rotated = df[df["method"] == "random_basis"]
    assert (rotated["n_rotations"] == 3).all() and (rotated["f1_test_sd"] >= 0).all()
    single = df[df["method"] == "single_neuron"]
    assert (single["k"] == 1).all() and (single["roc_auc_test"] > 0.8).all()
    assert (df[df["method"] == "dense"]["k"] == 64).all()
    # the NaN rows of "maybe" are excluded from training
    assert (df[df["feature"] == "maybe"]["n_train"] < df[df["feature"] == "feat"]["n_train"].max()).all()
    good = df[(df["method"] == "mean_diff") & (df["feature"] == "feat")]
    assert good["f1_test"].max() > 0.8
    ctrl = df[df["method"] == "control"]
    assert ctrl["f1_test"].max() < good["f1_test"].max() - 0.2
    sel = selectivity(df, method="mean_diff")
    assert len(sel) == 2 * 2 * 2 and (sel["selectivity"] > 0.2).all()


def test_parallel_equals_serial(problem) -> None:
    activations, labels, split, _ = problem
    specs = [ProbeSpec("mean_diff", ks=(1, 3)), ProbeSpec("telescopic", ks=(1, 3), params={"n_start": 16})]
    serial = run_sweep(activations, labels, split, specs, progress=False)
    parallel = run_sweep(activations, labels, split, specs, n_jobs=2, progress=False)
    cols = ["feature", "layer", "method", "k", "support", "f1_val", "f1_test"]
    pd.testing.assert_frame_equal(serial[cols], parallel[cols])


def test_failed_task_is_reported(problem) -> None:
    activations, labels, split, _ = problem
    bad = {"one_class": np.zeros(len(labels["feat"]), dtype=bool), **labels}
    with pytest.warns(RuntimeWarning, match="task\\(s\\) failed"):
        df = run_sweep(activations, bad, split, [ProbeSpec("mean_diff", ks=(1, 2))], progress=False)
    errors = df[df["feature"] == "one_class"]["error"]
    assert errors.str.contains("single class").all()
    assert df[df["feature"] == "feat"]["error"].isna().all()


def test_select_on_validation_ignores_test_and_reports_ties() -> None:
    df = pd.DataFrame(
        {
            "feature": ["a"] * 4,
            "layer": [0] * 4,
            "method": ["m"] * 4,
            "k": [1, 2, 3, 4],
            "f1_val": [1.0, 1.0, 0.9, 1.0],
            "roc_auc_val": [0.97, 0.99, 0.995, 0.99],
            "f1_test": [0.99, 0.1, 0.2, 0.3],
        }
    )
    best = select_on_validation(df)  # by the continuous score, not the tied F1
    assert best["k"].tolist() == [3] and best["n_tied"].tolist() == [1]
    by_f1 = select_on_validation(df, metric="f1")  # F1 ties at 1.0 for k = 1, 2, 4: the smaller k, ties reported
    assert by_f1["k"].tolist() == [1] and by_f1["n_tied"].tolist() == [3] and by_f1["tied_k"].tolist() == [(1, 2, 4)]
    with pytest.raises(ProbeInputError, match="mcc_val"):
        select_on_validation(df, metric="mcc")


def test_bad_specs_and_labels(problem) -> None:
    activations, labels, split, _ = problem
    with pytest.raises(ProbeInputError, match="Unknown method"):
        ProbeSpec("lasso")
    with pytest.raises(ProbeInputError, match="base must be"):
        ProbeSpec("control", params={"base": "control"})
    with pytest.raises(ProbeInputError, match="bool or 0/1"):
        run_sweep(activations, {"lang": np.array(["en", "fr"] * 400)}, split, ["mean_diff"], progress=False)
    with pytest.raises(ProbeInputError, match="number of rows"):
        run_sweep({0: activations[3][:-1]}, labels, split, ["mean_diff"], progress=False)


def test_sweep_rows_are_the_estimators_fit_paths() -> None:
    """Every sweep row is the estimator of its method, fitted through ``fit_path`` on the train rows."""
    a = make_planted(n=400, d=24, effects=(2.0, 1.0), random_state=5)
    split = grouped_split(a.groups, a.y, random_state=1)
    X = a.X.astype(np.float32)
    specs = [
        ProbeSpec("mean_diff"),
        ProbeSpec("l1", ks=(1, 3), params={"ranker_C": 0.5}, random_state=2),
        ProbeSpec("telescopic", ks=(1, 2, 8), params={"n_start": 16, "refit": True}),
        ProbeSpec("optimal", ks=(1, 2), params={"n_candidates": 8, "solver": "highs"}),
        ProbeSpec("single_neuron", params={"n_finalists": 4}),
        ProbeSpec("dense", params={"C": 0.5}),
    ]
    df = run_sweep({0: X}, {"f": a.y}, split, specs, progress=False)
    assert "error" not in df.columns
    parts = {
        name: (X[idx], a.y[idx]) for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))
    }
    for spec in specs:
        probe = make_probe(spec.method, random_state=spec.random_state, **spec.params)
        fit_params = {"validation": parts["val"]} if spec.method in ("optimal", "single_neuron") else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fits = probe.fit_path(*parts["train"], spec.ks, **fit_params)
        rows = df[df["method"] == spec.label].reset_index(drop=True)
        assert rows["k"].tolist() == [f.k for f in fits]
        for fit, (_, row) in zip(fits, rows.iterrows(), strict=True):
            assert row["support"] == tuple(int(j) for j in fit.support)
            for name in ("val", "test"):
                X_p, y_p = parts[name]
                score = fit.decision_function(X_p)
                expected = binary_metrics(y_p, (score > 0).astype(int), score)
                assert row[f"f1_{name}"] == expected["f1"] and row[f"roc_auc_{name}"] == expected["roc_auc"]


def test_fit_and_fit_path_agree() -> None:
    a = make_planted(n=300, d=20, effects=(2.0, 1.0), random_state=6)
    # fit(k) of the telescopic probe descends through the grid values above k: the same levels as this path
    cases = [
        (SparseProbe(k=3, random_state=0), (3, 4)),
        (TelescopicProbe(k=3, n_start=16), (3, 4, 5, 6, 7, 8, 10, 12, 16)),
        (DenseProbe(), None),
    ]
    for probe, ks in cases:
        path = probe.fit_path(a.X, a.y, ks)
        fitted = clone(probe).fit(a.X, a.y)
        np.testing.assert_array_equal(fitted.support_, path[0].support)
        np.testing.assert_array_equal(fitted.coef_[0, fitted.support_], path[0].coef)
        assert fitted.intercept_[0] == path[0].intercept
    (fit,) = SingleNeuronProbe().fit_path(a.X, a.y)
    assert fit.support[0] == SingleNeuronProbe().fit(a.X, a.y).neuron_
    with pytest.raises(ProbeInputError, match="k=1 only"):
        SingleNeuronProbe().fit_path(a.X, a.y, (1, 2))


def test_make_probe_rejects_unknown_methods_and_parameters() -> None:
    assert make_probe("f_stat", random_state=3).get_params()["ranker"] == "f_stat"
    assert isinstance(make_probe("optimal", gamma=None), OptimalSparseProbe)
    with pytest.raises(ProbeInputError, match=r"takes no parameter\(s\) \['bogus'\]"):
        make_probe("mean_diff", bogus=1)
    with pytest.raises(ProbeInputError, match="takes no parameter"):
        make_probe("telescopic", k=3)
    with pytest.raises(ProbeInputError, match="plain method"):
        make_probe("random_basis")


def test_cross_validated_sweep_tests_every_example_once_and_selects_inside_the_fold(problem) -> None:
    from sparse_probing.probes import cv_summary, run_cv_sweep
    from sparse_probing.splits import grouped_cv

    activations, labels, _, groups = problem
    y = labels["feat"]
    folds = grouped_cv(groups, y, random_state=0)
    specs = [ProbeSpec("mean_diff", ks=(1, 2, 4))]
    df = run_cv_sweep(activations, {"feat": y}, folds, specs, groups=groups, progress=False)
    chosen = select_on_validation(df, by=("feature", "method", "fold"))
    assert len(chosen) == len(folds)
    cv = cv_summary(chosen)
    assert cv.loc[0, "n_folds"] == len(folds)
    assert cv.loc[0, "n_test"] == y.size and cv.loc[0, "n_pos_test"] == y.sum()  # every example tested once
    assert cv.loc[0, "f1_test"] == pytest.approx(chosen["f1_test"].mean())

    # Scramble the test rows of fold 0 (labels flipped, activations replaced by noise): fold 0's choice of layer and
    # k must not move, since it is made on fold 0's validation rows; only its test score may.
    test0 = folds[0].test
    y_bad = y.copy()
    y_bad[test0] = 1 - y_bad[test0]
    rng = np.random.default_rng(0)
    acts_bad = {}
    for layer, X in activations.items():
        X = np.array(X, copy=True)
        X[test0] = rng.normal(size=(test0.size, X.shape[1])) * 10
        acts_bad[layer] = X
    df_bad = run_cv_sweep(acts_bad, {"feat": y_bad}, folds[:1], specs, groups=groups, progress=False)
    chosen_bad = select_on_validation(df_bad, by=("feature", "method", "fold"))
    first = chosen[chosen["fold"] == 0].iloc[0]
    assert (chosen_bad.loc[0, "layer"], chosen_bad.loc[0, "k"]) == (first["layer"], first["k"])
    assert chosen_bad.loc[0, "roc_auc_val"] == first["roc_auc_val"]
    assert chosen_bad.loc[0, "f1_test"] != first["f1_test"]
    with pytest.raises(ProbeInputError, match="one per fold"):
        cv_summary(df)
