"""The context-neuron chapter: its config, the thirds, the per-class rule and the four claims from synthetic tables."""

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
        ({"max_tasks": {"factual": 0}}, "not probed"),
        ({"max_tasks": {"paper_code": 0}}, "max_tasks values"),
        ({"surface_baselines": ["unigram"]}, "unknown surface baselines"),
        ({"surface_baselines": ["embedding"]}, "embedding baseline"),
        ({"case_classes": {"syntax": ["x"]}}, "case_classes names families"),
        ({"ablation_families": ["syntax"]}, "ablation_families names families"),
        ({"ablation_families": ["paper_factual"]}, "fact families"),
        ({"n_ablation_texts": 1}, "n_ablation_texts"),
        ({"n_folds": 1}, "n_folds must be at least 2"),
        ({"n_checked_neurons": 0}, "n_checked_neurons"),
        ({"n_boot": 2.5}, "must be int"),
    ],
)
def test_config_refuses_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mono.MonosemanticConfig.from_params(params)


def test_config_freezes_values_and_keeps_null_layers() -> None:
    config = mono.MonosemanticConfig.from_params(
        layers_per_third=None, case_classes={"paper_code": ["code_python"]}, max_lengths={"paper_code": 64}
    )
    assert config.layers_per_third is None
    assert config.case_classes["paper_code"] == ("code_python",)
    assert config.context_length("paper_code") == 64 and config.context_length("paper_factual") == 128
    assert mono.MonosemanticConfig.from_params(layers_per_third=4).to_dict()["layers_per_third"] == 4


def test_searched_layers_spread_over_each_third() -> None:
    assert mono.searched_layers(30, 4) == (0, 3, 6, 9, 10, 13, 16, 19, 20, 23, 26, 29)
    assert mono.searched_layers(18, 4) == (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17)
    assert mono.searched_layers(6, 4) == tuple(range(6))  # thirds smaller than 4: every layer
    assert mono.searched_layers(30, None) == tuple(range(30))
    assert mono.searched_layers(30, 1) == (0, 10, 20)


def test_thirds_and_depth() -> None:
    thirds = [mono.third_of(x, 30) for x in (0, 9, 10, 19, 20, 29)]
    assert thirds == ["first", "first", "middle", "middle", "last", "last"]
    assert [mono.third_of(x, 6) for x in range(6)] == ["first"] * 2 + ["middle"] * 2 + ["last"] * 2
    assert [mono.third_of(x, 2) for x in range(2)] == ["first", "last"]  # no middle third
    with pytest.raises(ValueError, match="outside"):
        mono.third_of(6, 6)
    np.testing.assert_allclose(mono.relative_depth([0, 3, 5], 6), [0.0, 0.6, 1.0])
    assert mono.is_primary("paper_code") and not mono.is_primary("code_language")
    assert mono.is_factual("paper_factual") and not mono.is_factual("paper_code")


def test_a_two_valued_feature_gives_one_task() -> None:
    nan = np.nan
    tasks = {
        "gender=female": np.array([1.0, 0.0, nan, 1.0]),
        "gender=male": np.array([0.0, 1.0, nan, 0.0]),
        "sport=a": np.array([1.0, 0.0, 0.0]),
        "sport=b": np.array([0.0, 1.0, 0.0]),
        "sport=c": np.array([0.0, 0.0, 1.0]),
        "is_alive": np.array([1.0, 0.0, 1.0, 0.0]),
    }
    kept = mono._one_per_binary_feature(tasks)
    assert sorted(kept) == ["gender=female", "is_alive", "sport=a", "sport=b", "sport=c"]


def _summary(
    n: int = 20, *, f1: float = 0.95, dense: float = 0.96, token: float = 0.6, token_auc: float = 0.8,
    depth: float = 0.5, test_positives: int = 40, kind: str = "context", seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Synthetic per-class summary with the columns the claims read."""
    rng = np.random.default_rng(seed)
    family = "paper_factual" if kind == "fact" else "natural_language"
    return pd.DataFrame(
        {
            "family": family,
            "task": [f"t{i}" for i in range(n)],
            "class": [f"t{i}" for i in range(n)],
            "primary": kind == "fact",
            "kind": kind,
            "status": np.where(test_positives >= 30, "ok", mono.INCONCLUSIVE),
            "test_positives": test_positives,
            "f1_test": f1 + rng.normal(0, 0.01, n),
            "f1_test_sd": 0.02,
            "roc_auc_test": 0.97,
            "dense_f1": dense,
            "random_basis_f1": 0.5,
            "control_f1": 0.1,
            "token_f1": token,
            "bag_of_tokens_f1": token,
            "token_auc": token_auc + rng.normal(0, 0.01, n),
            "depth": np.clip(depth + rng.normal(0, 0.02, n), 0, 1),
            "layer": 15,
            "neuron": np.arange(n),
        }
    )


def test_context_neuron_rule_needs_all_three_conditions() -> None:
    s = _summary(4).assign(f1_test=0.95, token_auc=0.8)
    s.loc[1, "f1_test"] = 0.80  # far below dense
    s.loc[2, "token_f1"] = 0.99  # the current token does better
    s.loc[3, "token_auc"] = 0.55  # a token detector
    assert mono.context_neurons(s).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert mono.context_neurons(s.assign(token_auc=np.nan)).tolist() == [0.0] * 4  # no control: not counted
    assert mono.context_neurons(s.assign(kind="fact")).isna().all()


def test_existence_claim_can_say_yes_and_no() -> None:
    yes = mono.existence_claim(_summary(), n_boot=200)
    assert yes.estimate == pytest.approx(1.0) and verdict(yes) == "reproduced"
    no = mono.existence_claim(_summary(token_auc=0.5), n_boot=200)
    assert no.estimate == 0.0 and no.ci_high < mono.MIN_SHARE and verdict(no) == "not reproduced"
    assert "0 of 20 classes" in no.control
    few = mono.existence_claim(_summary(5), n_boot=200)
    assert verdict(few) == "inconclusive"  # five classes are not a sample
    thin = mono.existence_claim(_summary(test_positives=12), n_boot=200)
    assert verdict(thin) == "inconclusive"
    assert mono.existence_claim(_summary(kind="fact"), n_boot=50) is None
    calibrated = mono.existence_claim(_summary(), n_boot=50, dedicated_calibration=(0.9, 0.25))
    assert "power 0.90" in calibrated.control and "0.25" in calibrated.control


def test_depth_claim_inside_at_the_edge_and_outside_the_middle() -> None:
    middle = mono.depth_claim(_summary(depth=0.5), 30, n_boot=200)
    assert middle.estimate == pytest.approx(1 / 6, abs=0.01) and verdict(middle) == "reproduced"
    edge = mono.depth_claim(_summary(depth=0.35), 30, n_boot=200)
    assert 0 < edge.ci_low and edge.ci_high < mono.MIN_DEPTH and verdict(edge) == "not reproduced"
    early = mono.depth_claim(_summary(depth=0.1), 30, n_boot=200)
    assert early.ci_high < 0 and verdict(early) == "differs"
    assert mono.depth_claim(_summary(), 2) is None  # no middle third
    compound = {"mean": 0.1, "low": 0.05, "high": 0.15, "n": 21, "deepest": 0.34}
    assert "compound words" in mono.depth_claim(_summary(), 30, n_boot=50, compound=compound).control


def test_factual_claim_against_the_name_tokens_and_a_random_direction() -> None:
    above = mono.factual_claim(_summary(12, kind="fact", f1=0.85, token=0.7), n_boot=200)
    assert above.estimate == pytest.approx(0.15, abs=0.02) and verdict(above) == "reproduced"
    assert [verdict(p) for p in above.parts] == ["reproduced", "reproduced"]  # random basis 0.5
    below = mono.factual_claim(_summary(12, kind="fact", f1=0.6, token=0.75), n_boot=200)
    assert verdict(below.parts[0]) == "differs" and verdict(below) == "differs in part"
    unprivileged = mono.factual_claim(_summary(12, kind="fact", f1=0.85, token=0.7).assign(random_basis_f1=0.84))
    assert verdict(unprivileged.parts[1]) == "not reproduced" and verdict(unprivileged) == "differs in part"
    assert mono.factual_claim(_summary(kind="fact").drop(columns="bag_of_tokens_f1"), n_boot=50) is None
    assert mono.factual_claim(_summary(), n_boot=50) is None  # no fact classes


def _ablation(n: int = 10, *, effect: float = 0.5, q95: float = 0.05, n_target: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    e = effect + rng.normal(0, 0.05, n)
    return pd.DataFrame({
        "family": "natural_language", "class": [f"c{i}" for i in range(n)], "layer": 10, "neuron": np.arange(n),
        "n_target": n_target, "n_other": n_target, "clean_loss": 3.0, "effect": e, "effect_attr": e * 0.95,
        "effect_zero_attr": e * 1.2, "layer_q95": q95, "percentile": 99.0, "middle_layer": 12,
        "middle_neuron": 3, "middle_effect_attr": 0.01, "middle_percentile": 50.0,
    })  # fmt: skip


def test_ablation_claim_counts_classes_against_their_layer() -> None:
    check = pd.DataFrame({"chosen": [True, False, False, False, False], "exact": [2.0, 0.1, 0.2, 0.3, 0.0],
                          "estimate": [0.2, 0.11, 0.19, 0.31, 0.01]})  # fmt: skip
    good = mono.ablation_claim(_ablation(), check, n_boot=200)
    assert len(good.parts) == 2 and verdict(good) == "reproduced"
    assert "10 of 10 classes above" in good.control and "on 4 sampled neurons of the layers: r = 1.00" in good.control
    # the chosen neuron enters with its exact effect, not its (underestimated) attribution estimate
    low_attr = mono.ablation_claim(_ablation().assign(effect_attr=0.0), n_boot=200)
    assert verdict(low_attr.parts[1]) == "reproduced"
    flat = mono.ablation_claim(_ablation(effect=0.0), n_boot=200)
    assert verdict(flat) in ("not reproduced", "differs")
    crowded = mono.ablation_claim(_ablation(q95=0.6), n_boot=200)  # effect real, but common in its layer
    assert verdict(crowded.parts[0]) == "reproduced" and verdict(crowded.parts[1]) == "differs"
    assert verdict(crowded) == "differs in part"
    few = mono.ablation_claim(_ablation(n_target=12), n_boot=200)
    assert few.min_test_positives == 12 and verdict(few) == "inconclusive"
    assert mono.ablation_claim(pd.DataFrame()) is None


def test_percent_effect_is_own_minus_other() -> None:
    delta = np.array([[0.3, 0.0], [0.3, 0.0], [0.0, 0.0], [0.0, 0.3]])
    loss = np.full(4, 3.0)
    target = np.array([True, True, False, False])
    np.testing.assert_allclose(mono._pct_effect(delta, loss, target), [10.0, -5.0])


def test_doc_labels_for_categorical_and_binary_tasks() -> None:
    assert mono._doc_label({"language": "fr"}, "language=fr") == 1
    assert mono._doc_label({"language": "de"}, "language=fr") == 0
    assert mono._doc_label({}, "language=fr") is None
    assert mono._doc_label({"code_python": 1}, "code_python") == 1
    assert mono._doc_label({"code_python": 0}, "code_python") == 0
    assert mono._doc_label({"code_c": 1}, "code_python") is None


def test_compound_depth_reads_the_superposition_record() -> None:
    record = {
        "name": "03_superposition",
        "spec": {"layers": [0, 1, 2, 10]},
        "metrics": {"n_layers": 31, "summary": [
            {"family": "paper_compound_words", "any_layer": 1}, {"family": "paper_compound_words", "any_layer": 2},
            {"family": "other", "any_layer": 30},
        ]},
    }  # fmt: skip
    out = mono.compound_depth([record], n_boot=50)
    assert out["n"] == 2 and out["mean"] == pytest.approx(0.05) and out["deepest"] == pytest.approx(1 / 3)
    assert mono.compound_depth([{"name": "02_ground_truth", "metrics": {}}]) is None


def _result() -> mono.MonosemanticResult:
    """A small synthetic result: a context family and a fact family, a 6-layer model, ablated classes."""
    config = mono.MonosemanticConfig.from_params(
        families=["paper_factual", "natural_language"], case_classes={"natural_language": ["t0"]}, n_boot=50,
        ablation_families=["natural_language"],
    )  # fmt: skip
    ctx = _summary(10).assign(layer=[2, 3, 0, 4, 2, 3, 3, 2, 5, 1])
    summary = pd.concat([_summary(4, kind="fact"), ctx], ignore_index=True)
    summary["middle_layer"], summary["middle_neuron"] = 2, 1
    summary["context_neuron"] = mono.context_neurons(summary)
    per_layer = pd.DataFrame(
        [
            {"family": f, "task": t, "class": t, "layer": layer, "roc_auc_test": 0.7 + 0.04 * layer}
            for f, t in zip(summary["family"], summary["task"], strict=True)
            for layer in range(6)
        ]
    )
    cases = pd.DataFrame(
        [{"family": "natural_language", "task": "t0", "class": "t0", "layer": 2, "neuron": 0, "raises": True}]
    )
    rng = np.random.default_rng(0)
    hist = pd.DataFrame(
        {"family": "natural_language", "class": "t0", "activation": rng.normal(size=40), "in_class": np.arange(40) < 10}
    )
    top = pd.DataFrame(
        {"family": "natural_language", "class": "t0", "activation": [2.0, 1.5], "text": ["a", "b"], "labels": "t0"}
    )
    check = pd.DataFrame({"family": "natural_language", "class": "c0", "layer": 10, "neuron": [0, 5, 6],
                          "chosen": [True, False, False], "exact": [0.5, 0.0, 0.01], "estimate": [0.48, 0.0, 0.02]})  # fmt: skip
    timings = pd.DataFrame(
        [{"family": "natural_language", "dataset": "natural_language-x", "examples": 10, "tasks": 2}]
    )
    return mono.MonosemanticResult(
        config=config, model_identity="m", n_layers=6, d_mlp=8, layers=tuple(range(6)), per_layer=per_layer,
        summary=summary, cases=cases, case_activations=hist, top_texts=top, ablation=_ablation(),
        effects=pd.DataFrame(), attribution_check=check, timings=timings,
    )  # fmt: skip


def test_tables_captions_and_findings_from_a_synthetic_result() -> None:
    result = _result()
    fam = mono.family_table(result)
    assert list(fam["family"]) == ["paper_factual", "natural_language"]
    assert list(fam["context neurons"]) == ["-", "10/10"]
    cls = mono.class_table(result)
    assert len(cls) == 14 and list(cls["family"][:4]) == ["paper_factual"] * 4
    assert set(cls["context neuron"]) == {"-", "yes"}
    depth = mono.depth_table(result)
    assert depth["first third"].sum() + depth["middle third"].sum() + depth["last third"].sum() == 14
    table = mono.ablation_table(result)
    assert len(table) == 10 and table["texts"][0] == "30 + 30"
    assert len(mono.attribution_check_table(result)) == 3
    assert "10 of 10 classes exceed" in mono.caption_ablation(result)
    assert "Mean depth of the 10 context classes" in mono.caption_depth(result)
    assert "`t0` F1" in mono.caption_cases(result)
    claims = result.claims(power=1.0)
    assert [c.claim for c in claims] == [
        "context neurons exist",
        "context neurons lie in the middle layers",
        "single neurons decode facts about people",
        "ablating a context neuron raises the loss on its context",
    ]
    text = mono.findings(result, claims)
    assert "10 of 10 classes have a context neuron" in text and "Context neurons exist" in text
    metrics = result.metrics(claims)
    assert len(metrics["claims"][3]["parts"]) == 2 and len(metrics["depth"]) == 2
    for fig in (mono.plot_layers(result), mono.plot_depth(result), mono.plot_cases(result), mono.plot_ablation(result)):
        assert fig.axes
    assert len(mono.top_text_tables(result)) == 1


def test_dedicated_calibration_reads_the_ground_truth_record() -> None:
    record = {
        "name": "02_ground_truth",
        "metrics": {"power_at_book_size": [{"diagnostic": "dedicated", "power": 1.0, "false positive rate": 0.25}]},
    }
    assert mono.dedicated_calibration([record]) == (1.0, 0.25)
    assert mono.dedicated_calibration([{"name": "06_survey", "metrics": {}}]) == (None, None)


def test_named_neurons_link_to_their_cards() -> None:
    from dataclasses import replace

    from sparse_probing.analysis.cards import Context

    result = _result()
    first = result.summary.iloc[0]
    key = (int(first["layer"]), int(first["neuron"]))
    ctx = Context(pieces=("bonjour", " le"), values=np.array([1.0, 0.5]), peak=0, label="language=fr")
    with_cards = replace(result, cards={key: ("natural_language / fr", [ctx])})
    cells = mono.class_table(with_cards)["layer/neuron"]
    linked = [c for c in cells if c.startswith("<a href=")]
    assert linked and all(f"L{key[0]} N{key[1]}" in c for c in linked)
    assert not any(c.startswith("<a") for c in mono.class_table(result)["layer/neuron"])  # no card, no link
    html = mono.neuron_cards(with_cards)
    assert html.count('class="neuron-card"') == 1 and f'id="neuron-l{key[0]}-n{key[1]}"' in html
    assert "The 1 neuron named" in mono.caption_cards(with_cards)


def test_tables_escape_text_but_not_the_card_links() -> None:
    from dataclasses import replace

    from sparse_probing.analysis.cards import Context

    result = _result()
    first = result.summary.iloc[0]
    key = (int(first["layer"]), int(first["neuron"]))
    cards = {key: ("x", [Context(pieces=("a",), values=np.array([1.0]), peak=0)])}
    table = mono.class_table(replace(result, cards=cards)).assign(**{"class": "<script>x</script>"})
    html = mono.styled(table).to_html()
    assert f'<a href="#neuron-l{key[0]}-n{key[1]}">' in html and "&lt;a href" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # dataset text stays text


def test_card_labels_read_the_examples_value() -> None:
    from sparse_probing.chapters.monosemantic import _label_value

    assert [_label_value(v) for v in (1.0, 0.0, True, "fr", np.nan, None)] == ["1", "0", "1", "fr", "unlabelled",
                                                                              "unlabelled"]  # fmt: skip
