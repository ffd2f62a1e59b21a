"""The ground-truth chapter: its config, and the tables, captions and summary built from small synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis import calibration as cal
from sparse_probing.chapters import ConfigError
from sparse_probing.chapters import ground_truth as gt


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_layers": 3}, "has no parameter 'n_layers'"),
        ({"ks": "1,2"}, "must be a list"),
        ({"ks": [2, 4]}, "must include 1"),
        ({"ks": [0, 1]}, "positive"),
        ({"toy_activations": ["tanh"]}, "unknown toy_activations"),
        ({"toy_activations": []}, "toy_activations is empty"),
        ({"toy_probabilities": [1.5]}, r"lie in \(0, 1\]"),
        ({"osp_n_trains": [500]}, "not among n_trains"),
        ({"n_trains": [84, 84]}, "repeat"),
        ({"method": "magic"}, "method must be one of"),
        ({"n_tasks": 2}, "at least 3"),
        ({"variant": "huge"}, "variant must be"),
        ({"width_probability": 0.0}, "width_probability"),
        ({"n_steps": 2.5}, "must be int"),
        ({"basis_models": ["a", "a"]}, "basis_models repeat"),
    ],
)
def test_config_refuses_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        gt.GroundTruthConfig.from_params(params)


def test_config_builds_the_grid_and_the_spec() -> None:
    config = gt.GroundTruthConfig.from_params(toy_probabilities=[1, 0.1], n_trains=[84, 300], osp_n_trains=[])
    assert config.grid.probabilities == (1.0, 0.1) and config.grid.n_trains == (84, 300)
    assert config.grid.osp_n_trains == () and config.diagnostics.osp_k == 2
    spec = config.spec({"compound_words": "compound_words@v1"})
    assert list(spec)[:5] == ["variant", "seed", "grid", "diagnostics", "rules"]
    assert spec["datasets"] == {"compound_words": "compound_words@v1"} and spec["rules"] == cal.RULES
    assert spec["basis_models"] == ["smollm2-135m", "gemma-3-270m", "mini-4"]


def _studies(gain_superposed: list[float], dedicated_fp: list[float]) -> pd.DataFrame:
    """Studies at two sizes: gain fires on superposed studies, `dedicated` on superposed (false positives)."""
    rows = []
    for n_train in (84, 1000):
        for i, (g, d) in enumerate(zip(gain_superposed, dedicated_fp, strict=True)):
            big = n_train == 1000
            rows.append({"activation": "relu", "p": 0.1, "seed": i, "n_train": n_train, "status": "superposed",
                         "gain": 1.0 if big else g, "gain_mean": 0.1, "dedicated": d, "dedicated_mean": 0.9})  # fmt: skip
    return pd.DataFrame(rows)


def test_power_at_book_size_has_the_shape_other_chapters_read() -> None:
    from sparse_probing.analysis.verdicts import calibrated_power

    power = cal.power_table(_studies([1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]))
    table = gt.power_at_book_size(power, 84).reset_index()
    rows = table.to_dict("records")
    assert {r["diagnostic"] for r in rows} == {"gain", "dedicated"}
    record = {"name": "02_ground_truth", "metrics": {"power_at_book_size": rows}}
    assert calibrated_power("gain", [record]) == pytest.approx(0.25)
    assert gt.rate(power, "gain", "power", 1000) == 1.0
    assert gt.rate(power, "dedicated", "false positive rate", 84) == 0.5
    assert np.isnan(gt.rate(power, "osp", "power", 84))


def test_caption_and_summary_follow_the_data() -> None:
    weak = cal.power_table(_studies([0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]))
    strong = cal.power_table(_studies([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]))
    assert "`gain`: power 0.25 to 0.25 over regimes" in gt.caption_power(weak, 84)
    assert "`gain`: power 1.00" in gt.caption_power(strong, 84)
    lines = gt.summary_lines(weak, [84, 1000], -0.8).splitlines()
    assert lines[0] == (
        "- **gain**: power 0.25, false-positive rate n/a (no such study) at 84 rows; "
        "power 1.00, false-positive rate n/a (no such study) at 1000 rows."
    )
    assert "- **dedicated**: power n/a (no such study), false-positive rate 0.00 at 84 rows" in lines[4]
    assert lines[-1].startswith("Loss against width in the scaling family: slope -0.80")
    assert "- **osp**: not studied in this run." in lines


def test_findings_box_names_only_the_diagnostics_studied_at_the_books_size() -> None:
    from types import SimpleNamespace

    from sparse_probing.analysis.verdicts import findings_box

    weak = cal.power_table(_studies([0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]))
    lines = gt.findings(SimpleNamespace(power=weak, book_size=84, loss_width_slope=-0.8)).splitlines()
    assert lines[0].startswith("- ") and "dedicated" in lines[0]
    assert "- **gain** at the book's size (84 training rows per task): power 0.25." in lines
    assert any(x.startswith("- **dedicated**") and "false-positive rate up to" in x for x in lines)
    assert not any("osp" in x or "n/a" in x for x in lines) and "slope -0.80" in lines[-1]
    box = findings_box("What this chapter establishes", "\n".join(lines))
    assert box.startswith("````{admonition} What this chapter establishes\n:class: note\n- ") and box.endswith("````\n")


def test_truth_table_and_caption() -> None:
    toys = pd.DataFrame({
        "activation": ["relu", "relu", "gated", "gated"], "p": [0.1, 1.0, 0.1, 1.0], "seed": 0,
        "n_dedicated": [4, 10, 2, 8], "n_superposed": [12, 2, 14, 4], "n_absent": [0, 4, 0, 4],
        "n_feature_dedicated": [1, 3, 0, 2], "mean_neuron_features": [3.0, 1.2, 3.4, 1.5], "loss": [0.02, 0.1, 0.02, 0.1],
    })  # fmt: skip
    table = gt.truth_table(toys)
    assert list(table.columns[:2]) == ["activation", "p"] and len(table) == 4
    assert gt.caption_truth(toys).endswith("13.0 at p = 0.1 (sparsest features), 3.0 at p = 1.")


def test_basis_site_table_is_a_paired_comparison_over_tasks() -> None:
    rows = []
    for site, gap in (("post", 0.2), ("resid", 0.0)):
        for layer in (0, 1):
            for t in range(6):
                f1 = 0.5 + 0.05 * t
                rows.append({"model": "m", "site": site, "layer": layer, "task": f"t{t}", "f1_neurons": f1 + gap,
                             "f1_rotated": f1, "diff": gap})  # fmt: skip
    table = gt.basis_site_table(pd.DataFrame(rows), n_boot=200, seed=0).set_index("site")
    assert list(table.columns) == ["model", "tasks", "F1 neurons", "F1 rotated", "difference", "low", "high"]
    assert table.loc["post", "difference"] == pytest.approx(0.2) and table.loc["post", "low"] > 0
    assert table.loc["resid", "difference"] == pytest.approx(0.0)
    shown = gt.basis_display(table.reset_index())
    assert shown.loc[0, "difference (95% CI)"] == "0.20 (0.20-0.20)"
    assert gt.basis_site_table(pd.DataFrame(), n_boot=10, seed=0).empty


def test_book_size_and_width_tables() -> None:
    power = cal.power_table(_studies([1.0, 0.0], [0.0, 1.0]))
    from types import SimpleNamespace

    fake = SimpleNamespace(power=power, book_size=84)
    table = gt.book_size_table(fake)
    assert list(table.columns) == ["diagnostic", "activation", "p", "power", "false positive rate"]
    scaling = pd.DataFrame({"width": [4, 4, 8], "seed": [0, 1, 0], "loss": [1.0, 3.0, 1.0], "share_dedicated": 0.5})
    width = gt.width_table(scaling)
    assert list(width.columns) == ["width", "loss", "share_dedicated"] and width.loc[0, "loss"] == 2.0
    assert gt.fmt_rate(float("nan")) == "n/a (no such study)" and gt.fmt_rate(0.254) == "0.25"
    html = gt.styled(pd.DataFrame({"a": [np.nan, 0.12345]})).to_html()
    assert "n/a" in html and "0.123" in html


def test_metrics_keep_the_keys_other_chapters_read() -> None:
    toys = pd.DataFrame({"activation": "relu", "p": [0.1, 1.0], "seed": 0, "n_dedicated": [2, 8],
                         "n_superposed": [10, 1], "detected": [1.0, 0.0], "median_bias": -0.1, "spearman": -0.5})  # fmt: skip
    result = gt.GroundTruthResult(
        config=gt.GroundTruthConfig(basis_models=(), n_trains=(84, 1000), osp_n_trains=(84,)), studies=_studies([1.0, 0.0], [0.0, 1.0]), toys=toys,
        scaling=pd.DataFrame({"width": [4, 8], "loss": [0.2, 0.1]}), basis=pd.DataFrame(), sparsity=pd.DataFrame(),
        weight_fingerprint=pd.DataFrame(), mlp_stats={}, datasets={},
    )  # fmt: skip
    metrics = result.metrics()
    assert list(metrics) == ["power", "power_at_book_size", "power_by_effect", "sizes", "dedicated_false_positives",
                             "studies", "toys", "fingerprint", "width_scaling", "loss_width_slope", "basis",
                             "activation_sparsity", "weight_fingerprint"]  # fmt: skip
    assert metrics["basis"] == [] and metrics["loss_width_slope"] == pytest.approx(-1.0)
    book = metrics["power_at_book_size"].set_index("diagnostic")
    assert book.loc["gain", "power"] == 0.5 and book.loc["dedicated", "false positive rate"] == 0.5
    assert result.power is result.power  # computed once


def test_power_at_book_size_is_per_regime_and_readers_take_the_worst() -> None:
    from sparse_probing.analysis.verdicts import calibrated_rates

    a = _studies([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    b = _studies([0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]).assign(p=0.03)
    power = cal.power_table(pd.concat([a, b], ignore_index=True))
    table = gt.power_at_book_size(power, 84).reset_index()
    assert len(table[table["diagnostic"] == "gain"]) == 2  # one row per regime, no average
    record = {"name": "02_ground_truth", "metrics": {"power_at_book_size": table.to_dict("records")}}
    assert calibrated_rates("dedicated", [record]) == (None, 1.0)
    assert calibrated_rates("gain", [record])[0] == pytest.approx(0.25)
    finding = gt.dedicated_finding(power, 84)
    assert finding.startswith("**Finding:** a single neuron with held-out ROC-AUC >= 0.95")
    assert "in 1.00 of studies in the relu toys with p = 0.03" in finding and "relu p = 0.1: 0.00" in finding
    quiet = gt.dedicated_finding(cal.power_table(a), 84)
    assert "at most 0.00" in quiet


def test_sizes_are_read_from_the_chapter_results() -> None:
    tasks = [{"family": "paper_compound_words", "task": f"t{i}", "examples": 400 + 20 * i, "test_positives": 30 + i,
              "status": "ok"} for i in range(5)]  # fmt: skip
    tasks.append({"family": "compound_words", "task": "x", "examples": 10, "test_positives": 2, "status": "ok"})
    records = [{"name": "03_superposition", "metrics": {"tasks": tasks}}]
    config, source = gt.resolve_sizes(gt.GroundTruthConfig(n_trains=(84, 2000), osp_n_trains=(84,)), records)
    assert config.n_tasks == 5 and config.n_trains == (308, 2000) and config.osp_n_trains == (308,)
    assert config.n_test == 66 and config.diagnostics.n_test == 66
    assert source.startswith("03_superposition, family paper_compound_words: 5 tasks")
    same, why = gt.resolve_sizes(gt.GroundTruthConfig(n_trains=(84, 2000), osp_n_trains=(84,)), [])
    assert same.n_trains == (84, 2000) and "no results of 03_superposition" in why
    assert gt.resolve_sizes(gt.GroundTruthConfig(sizes_from=""), records)[1] == "parameters"


def test_power_by_effect_bins_studies_by_their_true_effect() -> None:
    rows = []
    for seed, (effect, fired) in enumerate([(0.0, 0.0), (0.005, 0.0), (0.05, 1.0), (0.05, 0.0), (0.2, 1.0)]):
        for n_train, mean in ((300, effect + 0.01), (2000, effect)):
            rows.append({"activation": "relu", "p": 0.1, "seed": seed, "status": "superposed", "n_train": n_train,
                         "gain": fired, "gain_mean": mean})  # fmt: skip
    studies = cal.attach_true_effects(pd.DataFrame(rows), 2000)
    assert studies.loc[studies["n_train"] == 300, "true_gain"].tolist() == [0.0, 0.005, 0.05, 0.05, 0.2]
    table = cal.power_by_effect(studies, 300).set_index("true effect")
    assert table.loc["0.03 to 0.06", "rate"] == 0.5 and table.loc["0.03 to 0.06", "n_studies"] == 2
    assert table.loc[">= 0.1", "rate"] == 1.0 and table.loc["0 to 0.01", "n_studies"] == 2
