"""The monosemantic-neuron chapter: its config, the thirds, and the two claims built from small synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis.verdicts import verdict
from sparse_probing.chapters import ConfigError
from sparse_probing.chapters import monosemantic as mono


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_layers": 3}, "has no parameter 'n_layers'"),
        ({"families": "paper_code"}, "must be a list"),
        ({"families": []}, "families is empty"),
        ({"layers": [0, 2]}, "has no parameter 'layers'"),
        ({"layers_per_third": 0}, "layers_per_third must be at least 1"),
        ({"n_documents": {"syntax": 50}}, "not probed"),
        ({"max_tasks": {"factual": 0}}, "max_tasks values"),
        ({"surface_baselines": ["unigram"]}, "unknown surface baselines"),
        ({"surface_baselines": ["embedding"]}, "embedding baseline"),
        ({"claim_metric": "mcc"}, "must be one of"),
        ({"ablation_classes": {"syntax": ["x"]}}, "ablation_classes names families"),
        ({"n_ablation_texts": 1}, "n_ablation_texts"),
        ({"n_boot": 2.5}, "must be int"),
    ],
)
def test_config_refuses_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mono.MonosemanticConfig.from_params(params)


def test_config_freezes_values_and_keeps_null_layers() -> None:
    config = mono.MonosemanticConfig.from_params(
        layers_per_third=None, ablation_classes={"paper_code": ["code_python"]}, max_lengths={"paper_code": 64}
    )
    assert config.layers_per_third is None
    assert config.ablation_classes["paper_code"] == ("code_python",)
    assert config.context_length("paper_code") == 64 and config.context_length("factual") == 128
    assert mono.MonosemanticConfig.from_params(layers_per_third=4).to_dict()["layers_per_third"] == 4


def test_searched_layers_spread_over_each_third() -> None:
    assert mono.searched_layers(30, 4) == (0, 3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29)
    assert mono.searched_layers(18, 4) == (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17)
    assert mono.searched_layers(6, 4) == tuple(range(6))  # thirds smaller than 4: every layer
    assert mono.searched_layers(30, None) == tuple(range(30))
    assert mono.searched_layers(30, 1) == (0, 10, 20)


def test_thirds_by_relative_depth() -> None:
    thirds = [mono.third_of(x, 30) for x in (0, 9, 10, 19, 20, 29)]
    assert thirds == ["first", "first", "middle", "middle", "last", "last"]
    assert [mono.third_of(x, 6) for x in range(6)] == ["first"] * 2 + ["middle"] * 2 + ["last"] * 2
    assert [mono.third_of(x, 2) for x in range(2)] == ["first", "last"]  # no middle third
    with pytest.raises(ValueError, match="outside"):
        mono.third_of(6, 6)
    assert mono.is_primary("paper_code") and not mono.is_primary("code_language")


def _summary(middle_gain: float, *, n: int = 20, primary: int = 10, test_positives: int = 40, seed: int = 0):
    """Synthetic per-class summary: the middle third beats the better outer third by ``middle_gain`` (plus noise)."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0.6, 0.8, n)
    last = rng.uniform(0.6, 0.8, n)
    middle = np.maximum(first, last) + middle_gain + rng.normal(0, 0.01, n)
    return pd.DataFrame(
        {
            "family": ["paper_code"] * primary + ["code_language"] * (n - primary),
            "task": [f"t{i}" for i in range(n)],
            "primary": [True] * primary + [False] * (n - primary),
            "status": "ok",
            "test_positives": test_positives,
            "f1_test": middle,
            "first_f1": first,
            "middle_f1": middle,
            "last_f1": last,
            "first_roc_auc": 0.9,
            "middle_roc_auc": np.where(middle_gain > 0, 0.97, 0.9),
            "last_roc_auc": 0.9,
            "surface_f1": middle - 0.2,
            "dense_f1": 0.95,
            "random_basis_f1": 0.5,
            "control_f1": 0.1,
        }
    )


def test_middle_contrast_takes_the_better_outer_third() -> None:
    s = _summary(0.1)
    c = mono.middle_contrast(s, "f1")
    np.testing.assert_allclose(c["outer"], np.maximum(s["first_f1"], s["last_f1"]))
    np.testing.assert_allclose(c["diff"], s["middle_f1"] - c["outer"])
    # no middle third (two-layer model): no contrast, no claim
    assert mono.middle_contrast(s.assign(middle_f1=np.nan), "f1").empty
    assert mono.middle_layers_claim(s.assign(middle_f1=np.nan), n_boot=50) is None


def test_middle_claim_verdict_follows_the_data() -> None:
    good = mono.middle_layers_claim(_summary(0.1), n_boot=200, power=1.0, false_positive_rate=0.25)
    assert good is not None and len(good.parts) == 2
    assert good.parts[0].claim.endswith("(paper's data)") and good.parts[0].n_tasks == 10
    assert good.estimate == pytest.approx(good.parts[0].estimate)
    assert good.surface_margin is not None and good.surface_margin[1] > 0
    assert "0/10/0 of 10" in good.control and "0.25" in good.control
    assert verdict(good) == "reproduced"
    bad = mono.middle_layers_claim(_summary(-0.1), n_boot=200, power=1.0)
    assert bad is not None and bad.ci_high < 0
    assert verdict(bad) == "differs"  # the outer thirds do better: the opposite of the paper
    assert bad.minimal_effect == mono.MIN_MIDDLE and bad.mde is not None and bad.mde > 0
    small = mono.middle_layers_claim(_summary(0.01), n_boot=200)
    assert small.ci_high < mono.MIN_MIDDLE and verdict(small) == "not reproduced"  # smaller than the paper's
    few = mono.middle_layers_claim(_summary(0.1, test_positives=12), n_boot=200, power=1.0)
    assert verdict(few) == "inconclusive"  # no class is conclusive: all enter, flagged by their test positives


def test_self_built_families_enter_the_middle_claim_only_when_conclusive() -> None:
    s = _summary(0.1)
    s.loc[~s["primary"], ["status", "test_positives"]] = (mono.INCONCLUSIVE, 9)
    s.loc[~s["primary"], "middle_f1"] -= 0.5  # the inconclusive self-built classes would sink the verdict
    ev = mono.middle_layers_claim(s, n_boot=200, power=1.0)
    assert ev is not None and not ev.parts and ev.n_tasks == 10 and ev.min_test_positives == 40
    assert ev.measure.endswith("on the paper's data") and verdict(ev) == "reproduced"
    s.loc[~s["primary"], ["status", "test_positives"]] = ("ok", 40)
    both = mono.middle_layers_claim(s, n_boot=200, power=1.0)
    assert both is not None and len(both.parts) == 2 and verdict(both) == "differs in part"


def test_middle_claim_leaves_out_inconclusive_classes_and_needs_no_parts_for_one_kind() -> None:
    s = _summary(0.1, primary=0)
    s.loc[0, "status"] = mono.INCONCLUSIVE
    s.loc[0, "test_positives"] = 5
    ev = mono.middle_layers_claim(s, n_boot=100, power=1.0)
    assert ev is not None and not ev.parts
    assert ev.n_tasks == len(s) - 1 and ev.min_test_positives == 40


def _effects(target_gain: float, *, n_texts: int = 32, n_cases: int = 2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    cases = [("natural_language", "fr"), ("paper_code", "code_python")] + [("data_source", f"s{i}") for i in range(8)]
    for family, cls in cases[:n_cases]:
        for group in ("target", "other"):
            for t in range(n_texts):
                loss = 3.0 + rng.normal(0, 0.1)
                gain = target_gain if group == "target" else 0.0
                rows.append((family, cls, 1, True, group, t, loss, loss * (1 + gain + rng.normal(0, 0.002))))
                if group == "target":
                    rows.append((family, cls, 7, False, group, t, loss, loss * (1 + rng.normal(0, 0.002))))
    df = pd.DataFrame(rows, columns=["family", "class", "neuron", "chosen", "group", "text", "loss", "ablated"])
    return df.assign(delta=df["ablated"] - df["loss"])


def test_ablation_claim_verdict_follows_the_data() -> None:
    two = mono.ablation_claim(_effects(0.02), n_boot=200)
    assert two.ci_low > 0 and two.n_tasks == 2 and verdict(two) == "inconclusive"  # two cases are not a sample
    specific = mono.ablation_claim(_effects(0.02, n_cases=9), n_boot=200)
    assert specific.estimate == pytest.approx(2.0, abs=0.2)  # percent of the clean loss
    assert specific.ci_low > 0 and specific.n_tasks == 9 and specific.min_test_positives == 32
    assert "random neurons" in specific.control and specific.mde > 0
    assert verdict(specific) == "reproduced"
    flat = mono.ablation_claim(_effects(0.0, n_cases=9), n_boot=200)
    assert flat.ci_low <= 0 <= flat.ci_high
    # no effect, and the CI excludes the minimal effect: smaller than the paper's
    assert flat.ci_high < mono.MIN_ABLATION and verdict(flat) == "not reproduced"
    few = mono.ablation_claim(_effects(0.02, n_texts=8), n_boot=200)
    assert few.min_test_positives == 8 and verdict(few) == "inconclusive"


def test_doc_labels_for_categorical_and_binary_tasks() -> None:
    assert mono._doc_label({"language": "fr"}, "language=fr") == 1
    assert mono._doc_label({"language": "de"}, "language=fr") == 0
    assert mono._doc_label({}, "language=fr") is None
    assert mono._doc_label({"code_python": 1}, "code_python") == 1
    assert mono._doc_label({"code_python": 0}, "code_python") == 0
    assert mono._doc_label({"code_c": 1}, "code_python") is None


def _result() -> mono.MonosemanticResult:
    """A small synthetic result: two families, a 6-layer model, one ablated case."""
    config = mono.MonosemanticConfig.from_params(
        families=["paper_code", "code_language"], ablation_classes={"paper_code": ["t0"]}, n_boot=50
    )
    summary = _summary(0.1, n=5, primary=2).assign(
        **{
            "class": [f"t{i}" for i in range(5)],
            "layer": [2, 3, 0, 4, 2],
            "neuron": [1, 2, 3, 4, 5],
            "f1_test_low": 0.5,
            "f1_test_high": 1.0,
            "roc_auc_test": [0.97, 0.9, 0.96, 0.8, 0.99],
            "roc_auc_test_low": 0.7,
            "roc_auc_test_high": 1.0,
            "surface_baseline": "bag_of_tokens",
            "surface_roc_auc": 0.8,
        }
    )
    summary["dedicated"] = summary["roc_auc_test"] >= 0.95
    per_layer = pd.DataFrame(
        [
            {"family": f, "task": t, "class": t, "layer": layer, "roc_auc_test": 0.7 + 0.04 * layer}
            for f, t in zip(summary["family"], summary["task"], strict=True)
            for layer in range(6)
        ]
    )
    cases = pd.DataFrame(
        [{"family": "paper_code", "task": "t0", "class": "t0", "layer": 2, "neuron": 1, "raises": True}]
    )
    rng = np.random.default_rng(0)
    hist = pd.DataFrame(
        {"family": "paper_code", "class": "t0", "activation": rng.normal(size=40), "in_class": np.arange(40) < 10}
    )
    top = pd.DataFrame(
        {"family": "paper_code", "class": "t0", "activation": [2.0, 1.5], "text": ["a", "b"], "labels": "t0"}
    )
    effects = _effects(0.02, n_texts=6).query("family == 'paper_code'").reset_index(drop=True)
    from sparse_probing.analysis.ablation import ablation_specificity

    stats = ablation_specificity(effects.assign(text=effects["text"]), 1, n_boot=50)
    ablation = pd.DataFrame(
        [{"family": "paper_code", "class": "code_python", "layer": 2, "neuron": 1, "random_neurons": [7],
          "n_target_texts": 6, "clean_loss": 3.0, **stats}]
    )  # fmt: skip
    timings = pd.DataFrame([{"family": "paper_code", "dataset": "paper_code-x", "examples": 10, "tasks": 2}])
    return mono.MonosemanticResult(
        config=config, model_identity="m", n_layers=6, d_mlp=8, layers=tuple(range(6)), per_layer=per_layer,
        summary=summary, cases=cases, case_activations=hist, top_texts=top, effects=effects, ablation=ablation,
        timings=timings,
    )  # fmt: skip


def test_tables_captions_and_findings_from_a_synthetic_result() -> None:
    result = _result()
    fam = mono.family_table(result)
    assert list(fam["family"]) == ["paper_code", "code_language"]
    assert list(fam["dedicated"]) == ["1/2", "2/3"] and fam.notna().all().all()
    cls = mono.class_table(result, n=4)
    assert len(cls) == 4 and list(cls["family"][:2]) == ["paper_code", "paper_code"]
    assert "(" in cls["ROC-AUC (95% CI)"][0]
    thirds = mono.thirds_table(result)
    assert list(thirds["dedicated middle"]) == [2, 3]  # middle_roc_auc 0.97 for every class
    assert not thirds.isna().any().any()
    table = mono.ablation_table(result)
    assert len(table) == 1 and table["texts"][0] == 6
    assert "reliably higher" in mono.caption_thirds(result)
    assert "middle third for 3" in mono.caption_layers(result)  # layers 2, 3, 2 are the middle of six
    assert "1 of 1 neurons are specific" in mono.caption_ablation(result)
    text = mono.findings(result, result.claims(power=1.0))
    assert "Depth, the paper's data: the middle third is reliably higher" in text and "Ablation" in text
    claims = result.claims(power=1.0)
    assert [c.claim for c in claims] == [
        "monosemantic neurons in middle layers",
        "ablating a context neuron raises the loss on its context",
    ]
    metrics = result.metrics(claims)
    assert metrics["claims"][0]["parts"][0]["claim"].endswith("(paper's data)")
    for fig in (
        mono.plot_layers(result),
        mono.plot_thirds(result),
        mono.plot_cases(result),
        mono.plot_ablation(result),
    ):
        assert fig.axes
    assert len(mono.top_text_tables(result)) == 1


def test_dedicated_calibration_reads_the_ground_truth_record() -> None:
    record = {
        "name": "02_ground_truth",
        "metrics": {"power_at_book_size": [{"diagnostic": "dedicated", "power": 1.0, "false positive rate": 0.25}]},
    }
    assert mono.dedicated_calibration([record]) == (1.0, 0.25)
    assert mono.dedicated_calibration([{"name": "06_survey", "metrics": {}}]) == (None, None)


def test_middle_layer_claim_states_the_dedicated_calibration_it_does_not_use() -> None:
    bad = mono.middle_layers_claim(_summary(-0.1), n_boot=200, dedicated_calibration=(1.0, 0.25))
    assert "not where in depth it lies" in bad.control and "power 1.00, false-positive rate up to 0.25" in bad.control
