"""The scaling chapter's config, and the pure functions that build its claims and tables (synthetic tables, no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis.verdicts import verdict
from sparse_probing.chapters import ConfigError
from sparse_probing.chapters import scaling as sc

MODELS = ["small", "mid", "large"]


def _neurons(
    f1: dict[str, float] | None = None,
    *,
    control: dict[str, float] | None = None,
    n_tasks: int = 12,
    positives: int = 40,
    units: dict[str, str] | None = None,
    noise: float = 0.02,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per model x primary task x method, with per-model mean F1 and a little per-task noise."""
    f1 = f1 or {"small": 0.6, "mid": 0.7, "large": 0.8}
    control = control or {m: 0.3 for m in f1}
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_tasks):
        offset = rng.normal(0, 0.05)
        for model in f1:
            for method, level in (("neuron", f1[model]), ("control", control[model])):
                value = float(np.clip(level + offset + rng.normal(0, noise), 0, 1))
                unit = (units or {}).get(model, "unique")
                rows.append(
                    {
                        "model": model,
                        "family": "paper_compound_words",
                        "role": "primary",
                        "task": f"bigram_{t}",
                        "method": method,
                        "layer": 1,
                        "relative_layer": 0.5,
                        "unit": "1:7" if unit == "shared" else f"1:{t}",
                        "f1_val": value,
                        "roc_auc_val": value,
                        "f1_test": value,
                        "roc_auc_test": min(1.0, value + 0.15),
                        "f1_test_low": np.nan,
                        "f1_test_high": np.nan,
                        "test_positives": positives,
                        "status": "ok" if positives >= 30 else sc.INCONCLUSIVE,
                    }
                )
    return pd.DataFrame(rows)


def _models_table(models: list[str] = MODELS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": models,
            "in_family": True,
            "identity": models,
            "n_layers": 2,
            "layers": "0, 1",
            "d_mlp": [512 * (i + 1) for i in range(len(models))],
            "non_embedding_params": [10**6 * 4**i for i in range(len(models))],
        }
    )


# ---------------------------------------------------------------------------------------------- config
def test_config_defaults_and_from_params():
    cfg = sc.ScalingConfig.from_params({"models": ["mini-1", "mini-2"], "family_models": ["mini-1", "mini-2"]})
    assert cfg.models == ("mini-1", "mini-2")
    assert cfg.families == (*cfg.primary, *cfg.secondary)
    assert sc.ScalingConfig().control == "random_basis"


def test_unknown_parameter_is_refused():
    with pytest.raises(ConfigError, match="no parameter 'layers'"):
        sc.ScalingConfig.from_params(layers=[0, 1])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_layers": "six"}, "max_layers"),
        ({"test_size": "0.3"}, "test_size"),
        ({"models": "mini-1"}, "must be a list"),
        ({"control": "dense"}, "control"),
        ({"family_models": ["pythia-70m"]}, "not in models"),
        ({"n_documents": {"syntax": 10}}, "not probed"),
        ({"primary": ["paper_code"], "secondary": ["paper_code"]}, "both primary and secondary"),
        ({"val_size": 0.5, "test_size": 0.45}, "at least 10%"),
        ({"max_layers": 0}, "max_layers must be at least 1"),
        ({"n_boot": 10}, "n_boot must be at least 100"),
    ],
)
def test_ill_typed_or_invalid_parameters_are_refused(params, message):
    with pytest.raises(ConfigError, match=message):
        sc.ScalingConfig.from_params(params)


def test_probe_layers_are_evenly_spaced_with_first_and_last():
    assert sc.probe_layers(30, 6) == [0, 6, 12, 17, 23, 29]
    assert sc.probe_layers(4, 6) == [0, 1, 2, 3]
    assert sc.probe_layers(18, 1) == [17]
    with pytest.raises(ValueError):
        sc.probe_layers(0, 3)


# ---------------------------------------------------------------------------------------------- size claim
def test_size_claim_reproduced_when_the_largest_model_is_better():
    claim = sc.size_claim(_neurons(), ["small", "mid", "large"], _models_table(), n_boot=500)
    assert claim.chapter == sc.CHAPTER
    assert claim.estimate == pytest.approx(0.2, abs=0.03)
    assert claim.ci_low > 0
    assert claim.n_tasks == 12 and claim.min_test_positives == 40
    assert claim.minimal_effect == sc.MIN_SIZE and claim.mde is not None
    assert "random basis" in claim.control and "Spearman" in claim.control
    assert verdict(claim) == "reproduced"


def test_size_claim_verdict_follows_the_data():
    flat = _neurons({"small": 0.7, "mid": 0.7, "large": 0.7})
    claim = sc.size_claim(flat, ["small", "mid", "large"], _models_table(), n_boot=500)
    assert claim.ci_low <= 0 <= claim.ci_high
    assert verdict(claim) == "not reproduced"  # the CI excludes the paper's smallest rise
    falling = _neurons({"small": 0.8, "mid": 0.7, "large": 0.6})
    assert verdict(sc.size_claim(falling, ["small", "mid", "large"], n_boot=500)) == "differs"


def test_size_claim_with_too_few_test_positives_is_inconclusive():
    claim = sc.size_claim(_neurons(positives=12), ["small", "large"], n_boot=200)
    assert claim.min_test_positives == 12
    assert "no task has enough test positives" in claim.control
    assert verdict(claim) == "inconclusive"


def test_size_claim_only_uses_primary_tasks():
    secondary = _neurons({"small": 0.9, "mid": 0.5, "large": 0.1}).assign(role="secondary", family="natural_language")
    table = pd.concat([_neurons(), secondary], ignore_index=True)
    claim = sc.size_claim(table, ["small", "mid", "large"], n_boot=200)
    assert claim.estimate == pytest.approx(0.2, abs=0.03)
    assert claim.n_tasks == 12


def test_size_claim_with_one_family_model_is_recorded_not_testable():
    claim = sc.size_claim(_neurons(), ["large"])
    assert claim.n_tasks == 0 and "two are needed" in claim.not_testable
    assert verdict(claim) == "not testable here"


def test_control_margin_removes_a_rise_the_control_shares():
    same = {"small": 0.4, "mid": 0.5, "large": 0.6}
    table = _neurons({"small": 0.6, "mid": 0.7, "large": 0.8}, control=same)
    margin = sc.control_margin(table, ["small", "large"], n_boot=300)
    assert margin["neuron"] == pytest.approx(0.2, abs=0.03)
    assert margin["control"] == pytest.approx(0.2, abs=0.03)
    assert margin["low"] <= 0 <= margin["high"]


def test_size_correlation_is_positive_for_a_monotone_rise():
    sizes = dict(zip(MODELS, [1, 4, 16], strict=True))
    corr = sc.size_correlation(_neurons(), MODELS, sizes, n_boot=300)
    assert corr["rho"] == pytest.approx(1.0)
    assert corr["n_models"] == 3
    assert sc.size_correlation(_neurons(), ["small", "large"], sizes) == {}


# ---------------------------------------------------------------------------------------------- splitting claim
def test_shared_units_groups_classes_by_feature_or_family():
    rows = pd.DataFrame(
        {
            "model": "m",
            "method": "neuron",
            "family": ["natural_language"] * 3 + ["paper_code"] * 2 + ["paper_compound_words"],
            "role": "secondary",
            "task": ["language=de", "language=nl", "language=fr", "code_c", "code_python", "high_school"],
            "unit": ["1:5", "1:5", "1:6", "2:1", "2:2", "0:0"],
            "test_positives": 40,
            "status": "ok",
        }
    )
    s = sc.shared_units(rows).set_index("task")
    assert s.loc["language=de", "shared"] and s.loc["language=nl", "shared"]
    assert not s.loc["language=fr", "shared"] and not s.loc["code_c", "shared"]
    assert "high_school" not in s.index  # a group of one class says nothing about sharing


def test_splitting_claim_follows_the_sharing():
    splitting = _neurons(units={"small": "shared", "large": "unique"})
    claim = sc.splitting_claim(splitting, ["small", "large"], n_boot=300)
    assert claim.estimate == pytest.approx(1.0)
    assert "proxy" in claim.control
    assert verdict(claim) == "reproduced"
    merging = _neurons(units={"small": "unique", "large": "shared"})
    claim = sc.splitting_claim(merging, ["small", "large"], n_boot=300)
    assert claim.estimate == pytest.approx(-1.0)
    assert verdict(claim) == "differs"


# ---------------------------------------------------------------------------------------------- tables
def _result(neurons: pd.DataFrame) -> sc.ScalingResult:
    config = sc.ScalingConfig.from_params(models=MODELS, family_models=MODELS, primary=["paper_compound_words"],
                                          secondary=[], n_boot=200)  # fmt: skip
    timings = pd.DataFrame({"model": MODELS, "family": "paper_compound_words", "dataset": "key"})
    return sc.ScalingResult(config=config, models=_models_table(), neurons=neurons, timings=timings)


def test_model_table_and_metrics():
    result = _result(_neurons())
    table = sc.model_table(result)
    assert list(table["model"]) == MODELS
    assert table["f1"].is_monotonic_increasing
    assert (table["f1_low"] <= table["f1"]).all() and (table["f1"] <= table["f1_high"]).all()
    text = sc.model_table_text(result)
    assert not text.isna().any().any()
    metrics = result.metrics()
    assert metrics["claims"][0]["claim"] == "sparsity rises with model size"
    assert result.datasets == {"paper_compound_words": "key"}
    assert "Figure 2" in sc.caption_size(result)
    assert "reliably higher" in sc.findings(result)


def test_reported_falls_back_to_every_task_when_none_is_conclusive():
    result = _result(_neurons(positives=5))
    assert len(result.reported) == len(result.neurons)
    assert len(sc.model_table(result)) == 3


def test_change_table_lists_gained_and_lost_dedicated_neurons():
    table = _neurons({"small": 0.6, "mid": 0.7, "large": 0.9}, noise=0.0)
    table.loc[(table["model"] == "small") & (table["task"] == "bigram_0"), "roc_auc_test"] = 0.99
    table.loc[(table["model"] == "large") & (table["task"] == "bigram_0"), "roc_auc_test"] = 0.5
    changes = sc.change_table(table, MODELS, n=50)
    assert "bigram_0" in set(changes["lost"]["task"])
    assert "bigram_0" not in set(changes["gained"]["task"])
    assert len(changes["gained"]) >= 1
    assert sc.change_table(table, ["large"])["gained"].empty


def test_an_undertrained_family_cannot_test_the_size_claims():
    from sparse_probing.analysis.verdicts import verdict_box

    minis = _models_table(["mini-1", "mini-4"]).assign(non_embedding_params=[2_500_000, 13_000_000])
    why = sc.undertrained(minis, ["mini-1", "mini-4"])
    assert why.startswith("no offline model family spans sizes at Pythia's training scale: mini-1, mini-4 saw 0.3-1.7")
    pythia = _models_table(["pythia-70m", "pythia-410m"]).assign(non_embedding_params=[19_000_000, 300_000_000])
    assert sc.undertrained(pythia, ["pythia-70m", "pythia-410m"]) == ""
    assert sc.undertrained(_models_table(), MODELS) == ""  # unknown training: testable
    claim = sc.size_claim(_neurons(), ["small", "mid", "large"], n_boot=200)
    import dataclasses

    described = dataclasses.replace(claim, not_testable=why)
    assert verdict(described) == "not testable here"
    assert "(a description, not a test)" in verdict_box([described])
