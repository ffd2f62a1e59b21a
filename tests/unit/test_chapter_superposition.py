"""The superposition chapter's config, selection and claims on small synthetic tables (no model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis.verdicts import verdict
from sparse_probing.chapters import ConfigError
from sparse_probing.chapters.superposition import (
    MIN_GAIN,
    SuperpositionConfig,
    fingerprint_claim,
    summarize,
    superposition_claim,
    toy_fingerprint,
    toy_fingerprint_text,
)


# ---------------------------------------------------------------------------------------------- config
def test_config_from_params_coerces_lists_and_keeps_defaults():
    config = SuperpositionConfig.from_params(layers=[0, 1, 2], early_layers=[0, 1], ks=[1, 2])
    assert config.layers == (0, 1, 2) and config.ks == (1, 2)
    assert config.primary == "paper_compound_words" and config.main_method == "mean_diff"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"no_such_parameter": 1}, "has no parameter 'no_such_parameter'"),
        ({"layers": "0,1"}, "parameter 'layers' must be a list"),
        ({"n_boot": 1.5}, "parameter 'n_boot' must be int"),
        ({"claim_metric": "mcc"}, "claim_metric' must be one of"),
        ({"layers": [0, 1], "early_layers": [0, 3]}, r"early_layers \[3\] are not among the probed layers"),
        ({"ks": [2, 4]}, "ks must start at 1"),
        ({"ks": [1, 4, 2]}, "ks must increase"),
        ({"methods": ["optimal"]}, "methods must be rankers or 'telescopic'"),
        ({"families": []}, "families is empty"),
        ({"n_documents": {"syntax": 10}}, "n_documents names families that are not probed"),
        ({"surface_baselines": ["trigram"]}, "unknown surface baselines"),
        ({"pruning_method": "dense"}, "pruning_method must be a ranker or 'optimal'"),
    ],
)
def test_config_refuses_bad_parameters_with_one_clear_line(params, message):
    with pytest.raises(ConfigError, match=message) as info:
        SuperpositionConfig.from_params(params)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- synthetic sweep
def _scores(gains: dict[str, float], *, k1: float = 0.6, early=(0, 1), later=(5,)) -> pd.DataFrame:
    """A sweep table: per task, the main method improves by ``gains[task]`` from k = 1 to k = 4 at layer 1 (the
    layer and k chosen on validation), a single neuron at the k = 1 level, controls below, a flat later layer."""
    rows = []
    for task, gain in gains.items():
        for layer in (*early, *later):
            best_layer = layer == 1
            for k in (1, 2, 4):
                f1 = k1 + (gain * k / 4 if best_layer else 0.0)
                val = 0.7 + (0.05 * k if best_layer else 0.0)
                rows.append((task, "mean_diff", k, layer, (10 + k, 20), val, f1))
                rows.append((task, "control", k, layer, (), 0.5, 0.3))
                rows.append((task, "random_basis", k, layer, (), 0.6, f1 - 0.1))
            rows.append((task, "single_neuron", 1, layer, (7,), 0.72 if best_layer else 0.6, k1))
            rows.append((task, "dense", 64, layer, (), 0.8, 0.9))
    df = pd.DataFrame(rows, columns=["task", "method", "k", "layer", "support", "roc_auc_val", "f1_test"])
    return df.assign(
        family="fam", f1_val=df["roc_auc_val"], roc_auc_test=df["f1_test"], f1_test_low=df["f1_test"] - 0.05,
        f1_test_high=df["f1_test"] + 0.05,
    )  # fmt: skip


def _tables(gains: dict[str, float], test_positives: int = 40, surface: float = 0.5, **kw):
    scores = _scores(gains, **kw)
    tasks = pd.DataFrame({"family": "fam", "task": list(gains), "test_positives": test_positives, "status": "ok"})
    surf = pd.DataFrame({"family": "fam", "task": list(gains), "baseline": "bigram", "f1_test": surface,
                         "roc_auc_test": surface})  # fmt: skip
    return scores, tasks, surf


def test_summarize_chooses_layer_and_k_on_validation_inside_the_early_layers():
    scores, tasks, surf = _tables({"a": 0.3, "b": 0.1})
    s = summarize(scores, tasks, surf, early_layers=(0, 1), main="mean_diff").set_index("task")
    assert (s["best_layer"] == 1).all() and (s["best_k"] == 4).all()
    assert s.loc["a", "best_test"] == pytest.approx(0.9) and s.loc["a", "k1_test"] == pytest.approx(0.6)
    assert s.loc["a", "gain"] == pytest.approx(0.3) and s.loc["b", "gain"] == pytest.approx(0.1)
    assert (s["k1_neuron"] == 7).all() and (s["k1_layer"] == 1).all()
    assert s.loc["a", "control_test"] == pytest.approx(0.3)
    assert s.loc["a", "random_test"] == pytest.approx(0.8)  # at the chosen k and layer
    assert s.loc["a", "margin"] == pytest.approx(0.4)
    assert s.loc["a", "later_best_test"] == pytest.approx(0.6)
    assert s.loc["a", "best_support"] == (14, 20)


def test_superposition_claim_follows_the_data():
    gains = {f"t{i}": 0.2 + 0.01 * i for i in range(8)}
    scores, tasks, surf = _tables(gains)
    claim = superposition_claim(summarize(scores, tasks, surf, (0, 1), "mean_diff"), power=0.25)
    assert claim.estimate == pytest.approx(np.mean(list(gains.values())))
    assert claim.ci_low > 0 and claim.surface_margin[1] > 0
    assert verdict(claim) == "reproduced"
    assert "shuffled labels" in claim.control and "random basis" in claim.control

    # the surface baseline does better: the gain is there, but the tokens alone decode more
    scores, tasks, surf = _tables(gains, surface=0.95)
    tied = superposition_claim(summarize(scores, tasks, surf, (0, 1), "mean_diff"), power=0.25)
    assert tied.ci_low > MIN_GAIN and tied.surface_margin[2] < 0 and verdict(tied) == "not reproduced"

    # no gain: the CI excludes the paper's smallest gain, whatever the toys' power
    flat = {f"t{i}": 0.0 for i in range(8)}
    scores, tasks, surf = _tables(flat)
    s = summarize(scores, tasks, surf, (0, 1), "mean_diff")
    assert verdict(superposition_claim(s, power=0.25)) == "not reproduced"
    assert superposition_claim(s, power=0.25).minimal_effect == MIN_GAIN

    # too few test positives: inconclusive whatever the effect
    scores, tasks, surf = _tables(gains, test_positives=12)
    claim = superposition_claim(summarize(scores, tasks, surf, (0, 1), "mean_diff"), power=0.9)
    assert claim.min_test_positives == 12 and verdict(claim) == "inconclusive"


# ---------------------------------------------------------------------------------------------- fingerprint
def _weights(early_bias: float, later_bias: float, early_norm: float = 2.0, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for layer in range(6):
        early = layer < 2
        frames.append(pd.DataFrame({
            "layer": layer, "neuron": np.arange(n),
            "w_in_norm": rng.normal(early_norm if early else 1.0, 0.1, n),
            "b_in": rng.normal(early_bias if early else later_bias, 0.5, n), "w_gate_norm": np.nan,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_fingerprint_claim_follows_the_data_and_needs_biases():
    claim = fingerprint_claim(_weights(-1.0, 0.5), (0, 1), n_boot=300)
    assert claim.estimate > 0.5 and claim.ci_low > 0
    assert [p.claim for p in claim.parts] == ["more negative biases early", "larger input norms early",
                                              "strongly negative ||W_in|| b_in early (the paper's statistic)"]  # fmt: skip
    assert claim.parts[2].estimate == pytest.approx(2.0, abs=0.3)  # -median(norm 2 x bias -1)
    assert claim.min_test_positives == 400 and all(p.mde is not None for p in claim.parts)
    assert verdict(claim) == "reproduced"

    # biases the other way round, norms still larger: the parts disagree, shown part by part
    assert verdict(fingerprint_claim(_weights(0.5, -1.0), (0, 1), n_boot=300)) == "differs in part"
    # biases the other way round, norms smaller: both parts opposite to the paper
    assert verdict(fingerprint_claim(_weights(0.5, -1.0, early_norm=0.5), (0, 1), n_boot=300)) == "differs"

    gated = _weights(0.0, 0.0).assign(b_in=np.nan)
    assert fingerprint_claim(gated, (0, 1)) is None
    with pytest.raises(ValueError, match="some but not all layers"):
        fingerprint_claim(_weights(-1.0, 0.5), range(6))


def test_toy_fingerprint_is_read_from_the_ground_truth_record_and_described():
    record = {"name": "02_ground_truth", "metrics": {"fingerprint": [
        {"in_superposition": True, "median_bias": 0.2, "spearman": -0.6},
        {"in_superposition": False, "median_bias": -0.01, "spearman": -0.3},
    ]}}  # fmt: skip
    toy = toy_fingerprint([{"name": "01_methods", "metrics": {}}, record])
    assert len(toy) == 2
    text = toy_fingerprint_text(toy)
    assert "with superposition median bias 0.20 to 0.20" in text and "without superposition" in text
    assert toy_fingerprint([{"name": "01_methods"}]) is None
    assert "not available" in toy_fingerprint_text(None)
