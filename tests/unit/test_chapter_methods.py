"""The methods chapter's config, tables and sentences, on synthetic results tables (no model)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from sparse_probing.chapters import ConfigError, methods
from sparse_probing.chapters.methods import MethodsConfig, MethodsResult

SMALL = MethodsConfig.from_params(ks=[1, 2, 4], osp_ks=[1, 2], families=["fam"], n_documents={})


def synthetic_results(
    k1_f1: dict[str, float] | None = None,
    *,
    base: float = 0.7,
    proven: bool = True,
    picks: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Two tasks, every method of the chapter at ks (1, 2, 4) (OSP at 1, 2), dense once.

    F1 rises with k from ``base``; ``k1_f1`` overrides a method's test F1 at k = 1; ``picks`` its k = 1 neuron.
    Validation ROC-AUC equals test F1, so the validation choice is the best test k.
    """
    k1_f1, picks = k1_f1 or {}, picks or {}
    rows = []
    labels = [s.label for s in methods.probe_specs(SMALL)]
    for feature in ("a=1", "a=2"):
        for method in labels:
            ks = (1, 2) if method == "optimal" else (None,) if method == "dense" else (1, 2, 4)
            for k in ks:
                if method == "dense":
                    f1 = 0.95
                elif method == "shuffled labels":
                    f1 = 0.3
                else:
                    f1 = min(1.0, base + 0.05 * np.log2(k))
                if k == 1 and method in k1_f1:
                    f1 = k1_f1[method]
                support = (
                    ()
                    if method == "random basis"
                    else tuple(range(picks.get(method, 7), picks.get(method, 7) + (k or 64)))
                )
                rows.append(
                    {
                        "family": "fam",
                        "feature": feature,
                        "method": method,
                        "k": k if k is not None else 64,
                        "layer": 3,
                        "f1_test": f1,
                        "f1_test_low": f1 - 0.1,
                        "f1_test_high": min(1.0, f1 + 0.1),
                        "f1_val": f1,
                        "roc_auc_val": f1,
                        "support": support,
                        "osp_status": "optimal" if method == "optimal" else None,
                        "osp_proven_optimal": proven if method == "optimal" else np.nan,
                        "osp_mip_gap": 0.0 if method == "optimal" else np.nan,
                        "osp_wall_time": 0.5 * (k or 1) if method == "optimal" else np.nan,
                        "osp_solver": "highs" if method == "optimal" else None,
                        "n_pos_test": 30 + (feature == "a=2"),
                        "error": None,
                    }
                )
    return pd.DataFrame(rows)


def make_result(results: pd.DataFrame) -> MethodsResult:
    tasks = pd.DataFrame(
        {"family": ["fam", "fam"], "task": ["a=1", "a=2"], "documents": [60, 60], "positives": [30, 30]}
    )
    return MethodsResult.from_results(
        SMALL, results, tasks, model="toy", n_layers=6, d_mlp=64, layer=3, datasets={"fam": "fam-smoke-v1-abc"}
    )


# ---------------------------------------------------------------------------------------------------------------
# config


def test_defaults_are_the_notebooks_parameters():
    config = MethodsConfig()
    assert config.families == ("natural_language", "code_language", "data_source")
    assert config.ks == (1, 2, 3, 4, 6, 8, 16, 32, 64, 256)
    assert config.osp_ks == tuple(range(1, 9))
    assert (config.layer, config.solver, config.osp_candidates, config.n_boot) == (None, "auto", 50, 200)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nope": 1}, "has no parameter 'nope'"),
        ({"ks": "1,2"}, "must be a list"),
        ({"layer": "3"}, "parameter 'layer'"),
        ({"families": []}, "families is empty"),
        ({"families": ["a", "a"]}, "families repeat"),
        ({"ks": [2, 1]}, "ks must be increasing"),
        ({"osp_ks": [0, 1]}, "osp_ks must be positive"),
        ({"osp_ks": [1, 60]}, "only searches 50 candidates"),
        ({"solver": "cplex"}, "solver must be one of auto, gurobi, highs"),
        ({"layer": -1}, "layer must be None"),
        ({"classes_per_family": 0}, "classes_per_family must be at least 1"),
        ({"n_documents": {"natural_language": 1}}, "n_documents values"),
        ({"osp_time_limit": 0}, "osp_time_limit must be positive"),
        ({"n_boot": -1}, "n_boot must be 0 or more"),
    ],
)
def test_bad_parameters_raise_one_line_config_errors(params, message):
    with pytest.raises(ConfigError, match=message) as err:
        MethodsConfig.from_params(params)
    assert "\n" not in str(err.value)


def test_a_csv_family_with_default_document_counts_is_accepted():
    config = MethodsConfig.from_params(families=["/tmp/x.csv"])
    assert config.n_documents.get("/tmp/x.csv") is None


def test_probe_specs_are_the_chapters_methods():
    specs = methods.probe_specs(MethodsConfig())
    assert [s.label for s in specs] == [
        *methods.HEURISTICS,
        "telescopic",
        "optimal",
        "dense",
        "random basis",
        "shuffled labels",
    ]
    (optimal,) = [s for s in specs if s.label == "optimal"]
    assert optimal.ks == tuple(range(1, 9))
    assert dict(optimal.params) == {"n_candidates": 50, "time_limit": 20.0, "solver": "auto"}


# ---------------------------------------------------------------------------------------------------------------
# tables


def test_tables_are_tidy_and_without_index():
    result = make_result(synthetic_results())
    assert list(result.chosen.columns) == ["method", "mean_test_f1", "median_k", "tasks"]
    assert "dense" in set(result.chosen["method"])
    assert result.chosen["mean_test_f1"].is_monotonic_decreasing
    assert list(result.osp.columns) == ["k", "solves", "proven", "max_gap", "median_s", "max_s", "setup_s", "improved"]
    assert result.osp["solves"].tolist() == [2, 2]
    assert list(result.selectivity.columns) == ["k", "f1_test", "control_f1_test", "selectivity"]
    assert result.selectivity["control_f1_test"].tolist() == pytest.approx([0.3] * 3)
    assert "random basis" not in set(result.k1["method"])  # rotated directions are not neurons
    table = methods.f1_table(result)
    assert list(table.columns) == ["method", "k=1", "k=2", "k=4", "dense"]
    assert table.loc[table["method"] == "optimal", "k=4"].isna().all()
    compare = methods.osp_compare_table(result)
    assert list(compare.columns) == ["k", "mean_diff", "optimal", "telescopic", "optimal - best heuristic"]
    picks = methods.k1_picks(result)
    assert list(picks.columns[:2]) == ["family", "feature"] and not picks.isna().any().any()


def test_failed_fits_are_dropped():
    results = synthetic_results()
    results.loc[0, "error"] = "boom"
    assert len(make_result(results).results) == len(results) - 1


def test_metrics_keep_the_chapters_keys_and_spec_has_datasets():
    result = make_result(synthetic_results())
    metrics = result.metrics()
    assert set(metrics) == {
        "mean_test_f1_at_k1",
        "validation_selected_mean_test_f1",
        "osp_proven",
        "osp_solves",
        "osp_median_seconds",
        "dense_mean_test_f1",
        "claims",
    }
    assert [c["claim"] for c in metrics["claims"]] == ["optimal probing is best at small k"]
    assert (metrics["osp_proven"], metrics["osp_solves"]) == (4, 4)
    assert metrics["dense_mean_test_f1"] == pytest.approx(0.95)
    spec = result.spec()
    assert spec["datasets"] == {"fam": "fam-smoke-v1-abc"} and spec["layer"] == 3 and spec["model"] == "toy"


# ---------------------------------------------------------------------------------------------------------------
# sentences


@pytest.mark.parametrize(("gain", "sign"), [(0.08, 1), (-0.08, -1)])
def test_osp_claim_is_the_paired_gain_over_the_telescopic_probe(gain, sign):
    results = synthetic_results()
    optimal = results["method"] == "optimal"
    results.loc[optimal, "f1_test"] = results.loc[optimal, "f1_test"] + gain
    claim = methods.osp_claim(make_result(results))
    assert claim.estimate == pytest.approx(gain) and np.sign(claim.estimate) == sign
    assert claim.n_tasks == 2 and claim.min_test_positives == 30 and "4 of 4 solves proven" in claim.control
    assert claim.minimal_effect == methods.MIN_OSP_GAIN
    assert methods.osp_claim(make_result(results[~optimal])) is None


def test_the_best_sparse_method_is_never_random_and_a_wide_k_is_named():
    results = synthetic_results()
    results.loc[results["method"] == "random", "roc_auc_val"] = 2.0
    results.loc[results["method"] == "random", "f1_test"] = 0.99
    line = next(x for x in methods.summary_lines(make_result(results)) if "chosen on validation" in x)
    assert "**random**" not in line and "of the layer" not in line
    results.loc[(results["method"] == "mean_diff") & (results["k"] == 4), ["k", "roc_auc_val", "f1_test"]] = 64, 2, 1
    line = next(x for x in methods.summary_lines(make_result(results)) if "chosen on validation" in x)
    assert "**mean_diff**" in line and "reads 100% of the layer" in line


def test_k1_sentence_names_a_heuristic_leader_once():
    result = make_result(synthetic_results({"mean_diff": 0.9, "random": 0.4}))
    lead = methods.summary_lines(result)[0]
    assert lead.startswith("- At k = 1 the highest mean test F1 is **mean_diff** (0.900), a ranking heuristic")
    assert lead.count("mean_diff") == 1
    assert "random neurons reach 0.400." in lead


def test_k1_sentence_names_the_best_heuristic_when_another_method_leads():
    result = make_result(synthetic_results({"optimal": 0.95, "f_stat": 0.85, "random": 0.4}))
    lead = methods.summary_lines(result)[0]
    assert "**optimal** (0.950); the best ranking heuristic is f_stat (0.850)" in lead
    assert lead.count("optimal") == 1 and lead.count("f_stat") == 1


def test_k1_sentence_does_not_repeat_random_when_it_leads():
    result = make_result(synthetic_results({"random": 0.99}))
    lead = methods.summary_lines(result)[0]
    assert lead.count("random") == 1


def test_summary_lines_report_validation_choice_osp_and_control():
    result = make_result(synthetic_results({"optimal": 0.9}))
    lines = methods.summary_lines(result)
    assert len(lines) == 4
    assert "the dense probe on all 64 neurons reaches 0.950." in lines[1]
    assert "best neuron-selecting method is" in lines[1] and "dense**" not in lines[1]
    assert lines[2].startswith("- OSP: 4 of 4 solves proven optimal; median 0.75 s per solve")
    assert "+0.100 F1" in lines[2]  # k = 1: 0.9 - 0.7, k = 2: 0.75 - 0.75
    assert lines[3] == "- Shuffled-label control at k = 1: mean test F1 0.300 (selectivity 0.400)."


def test_osp_sentences_follow_the_solver_record():
    proven = make_result(synthetic_results(proven=True))
    unproven = make_result(synthetic_results(proven=False))
    assert "**4 of 4** solves (solver: highs)" in methods.osp_line(proven)
    assert "**0 of 4** solves" in methods.osp_line(unproven)
    assert methods.caption_osp_times(unproven).endswith("0 of 4 solves proven optimal within the time limit.")


def test_figure_one_caption_states_the_leader_and_the_control():
    caption = methods.caption_f1_vs_k(make_result(synthetic_results({"svm": 0.97})))
    assert caption.endswith("At k = 1 `svm` leads (0.97); the shuffled-label control reaches 0.30.")


def test_agreement_counts_tasks_where_the_four_methods_pick_one_neuron():
    agree = make_result(synthetic_results())
    assert "**2 of 2** tasks" in methods.agreement_line(agree)
    disagree = make_result(synthetic_results(picks={"optimal": 11}))
    assert "**0 of 2** tasks" in methods.agreement_line(disagree)


def test_model_and_probe_lines():
    result = make_result(synthetic_results())
    assert methods.model_line(result) == "Model **toy**: 6 layers, 64 MLP neurons per layer. Probed layer: **3**."
    n = len(result.results)
    assert methods.probe_line(dataclasses.replace(result, probe_seconds=12.4)) == f"{n} fitted probes in 12 s."
