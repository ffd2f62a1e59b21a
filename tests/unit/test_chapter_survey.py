"""The survey chapter: its config, run() on the tiny model and smoke data, and the ElasticNet regression path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.chapters import ConfigError, survey
from sparse_probing.splits import grouped_split


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_layers": 3}, "has no parameter 'n_layers'"),
        ({"ks": "1,2"}, "must be a list"),
        ({"ks": [4, 2, 1]}, "increasing"),
        ({"ks": [0, 1]}, "positive"),
        ({"layers": [-1, 2]}, "non-negative"),
        ({"families": []}, "families is empty"),
        ({"n_documents": {"syntax": 50}, "families": ["position"]}, "not probed"),
        ({"surface_baselines": ["unigram"]}, "unknown surface baselines"),
        ({"l1_ratio": 0.0}, "l1_ratio"),
        ({"max_tasks": 2.5}, "must be int"),
    ],
)
def test_config_refuses_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        survey.SurveyConfig.from_params(params)


def test_config_from_params_freezes_values() -> None:
    config = survey.SurveyConfig.from_params(layers=[0, 1], features={"syntax": ["upos"]})
    assert config.layers == (0, 1)
    assert config.features["syntax"] == ("upos",)
    assert config.context_length("syntax") == 128
    assert config.to_dict()["layers"] == [0, 1]


def _planted(n_docs: int = 60, per_doc: int = 20, d: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_docs * per_doc, d))
    y = 3.0 * X[:, 3] - 2.0 * X[:, 7] + 0.5 * X[:, 11] + 0.01 * rng.standard_normal(len(X))
    groups = np.repeat(np.arange(n_docs), per_doc)
    return X, y, grouped_split(groups, None, random_state=seed)


def test_regression_recovers_a_planted_linear_target() -> None:
    X, y, split = _planted()
    fits = survey.sparse_regression(X, y, split, [1, 2, 4, 8], alphas=(0.001, 0.01))
    by_k = {f["k"]: f for f in fits}
    assert set(by_k) == {1, 2, 4, 8, 40}
    assert by_k[40]["dense"] and not by_k[4]["dense"]
    assert set(by_k[4]["support"][:3]) == {3, 7, 11}  # ranked by |correlation| on train
    assert by_k[4]["r2_test"] > 0.99
    assert by_k[40]["r2_test"] > 0.99
    assert by_k[1]["r2_test"] < 0.9  # one neuron cannot explain three planted ones
    assert by_k[4]["pred_test"].shape == (split.test.size,)


def test_regression_control_on_shuffled_targets_explains_nothing() -> None:
    X, y, split = _planted()
    fits = survey.sparse_regression(X, y, split, [4], alphas=(0.01, 0.1), dense=False, shuffle_seed=0)
    assert len(fits) == 1
    assert fits[0]["r2_test"] < 0.1


def test_regression_refuses_mismatched_shapes() -> None:
    X, y, split = _planted()
    with pytest.raises(ValueError, match="X must be"):
        survey.sparse_regression(X, y[:-1], split, [1])


def test_run_on_tiny_model_returns_the_tables(tiny_model) -> None:
    config = survey.SurveyConfig.from_params(
        model="tiny-neox",
        variant="smoke",
        families=["text_features", "position"],
        layers=[0, 1],
        ks=[1, 2],
        n_documents={"text_features": 16},
        features={"text_features": ["has_leading_space", "contains_capital"], "position": ["position"]},
        max_tasks=2,
        max_examples=400,
        alphas=[0.1],
        surface_baselines=["token"],
        single_neuron=False,
        n_boot=10,
    )
    result = survey.run(config, model=tiny_model)
    assert list(result.tasks.columns) == [
        "family", "task", "kind", "metric", "examples", "test_examples", "test_positives", "status",
    ]  # fmt: skip
    assert set(result.tasks["task"]) == {"has_leading_space", "contains_capital", "position"}
    assert set(result.tasks["status"]) <= {"ok", survey.INCONCLUSIVE}
    small = result.tasks[(result.tasks["kind"] == "classification") & (result.tasks["test_positives"] < 30)]
    assert (small["status"] == survey.INCONCLUSIVE).all()
    scores = result.scores
    assert {"family", "task", "metric", "method", "k", "layer", "select_val", "val", "test"} <= set(scores.columns)
    assert set(scores["method"]) == {"sparse", "dense", "control"}
    assert set(scores["layer"]) == {0, 1}
    assert set(scores.loc[scores["method"] == "sparse", "k"]) == {1, 2}
    assert set(scores.loc[scores["metric"] == "r2", "task"]) == {"position"}
    by_k = result.by_k
    assert len(by_k) == by_k[["task", "method", "k"]].drop_duplicates().shape[0]
    assert {"status"} <= set(by_k.columns)
    summary = result.summary
    assert len(summary) == 3
    for column in ("k1_test", "k1_test_low", "sparse_test", "sparse_k", "dense_test", "control_test", "surface_test"):
        assert column in summary.columns
    cls = summary[summary["kind"] == "classification"]
    assert cls["surface_baseline"].eq("token").all() and cls["k1_test"].between(0, 1).all()
    assert summary.loc[summary["kind"] == "regression", "surface_test"].isna().all()
    assert list(result.timings["family"]) == ["text_features", "position"]
    table = survey.family_table(result)
    assert list(table["family"]) == ["text_features", "position"]
    assert not table.isna().any().any()
    tasks = survey.task_table(result)
    assert len(tasks) == 2 and not tasks.isna().any().any()
    assert tasks["k=1 (95% CI)"].str.fullmatch(r"[0-9.]+ \([0-9.]+-[0-9.]+\)|n/a").all()
    curves = survey.family_curves(result, "layer")
    assert set(curves["method"]) == {"sparse", "dense", "control"}
    assert survey.caption_by_k(result).startswith("**Figure 1.**")
    assert "layer" in survey.caption_by_layer(result)
    assert "`position`" in survey.findings(result)
    fig = survey.plot_family_curves(result, "k")
    assert len(fig.axes) == 2
    metrics = result.metrics()
    assert isinstance(metrics["summary"], pd.DataFrame)


def test_run_refuses_layers_the_model_lacks(tiny_model) -> None:
    config = survey.SurveyConfig.from_params(families=["position"], layers=[0, 5])
    with pytest.raises(ConfigError, match="do not exist"):
        survey.run(config, model=tiny_model)
