import json

import pandas as pd
import pytest

from sparse_probing.analysis.verdicts import (
    VERDICTS,
    ClaimEvidence,
    combine,
    describe_correlation,
    describe_difference,
    format_ci,
    verdict,
    verdict_and_reason,
    verdict_markdown,
    verdict_table,
)


def evidence(**kw):
    base = dict(
        claim="c",
        chapter="ch",
        measure="m",
        paper="p",
        estimate=0.1,
        ci_low=0.05,
        ci_high=0.15,
        minimal_effect=0.03,
        minimal_effect_source="half the paper's gain",
        mde=0.02,
        estimator="one split",
        n_tasks=10,
        min_test_positives=40,
    )
    base.update(kw)
    return ClaimEvidence(**base)


def test_reproduced_when_ci_above_the_minimal_effect_and_surface():
    assert verdict(evidence()) == "reproduced"
    assert verdict(evidence(surface_margin=(0.05, 0.01, 0.09))) == "reproduced"
    # CI above 0 but not above the minimal effect: not a reproduction
    assert verdict(evidence(ci_low=0.02)) == "inconclusive"


def test_surface_baseline_can_block_or_refute():
    assert verdict(evidence(surface_margin=(0.02, -0.01, 0.05))) == "inconclusive"
    v, why = verdict_and_reason(evidence(surface_margin=(-0.05, -0.08, -0.01)))
    assert v == "not reproduced" and "surface baseline does better" in why


def test_ci_wholly_below_the_minimal_effect_is_not_reproduced():
    v, why = verdict_and_reason(evidence(estimate=0.01, ci_low=0.0, ci_high=0.02))
    assert v == "not reproduced"
    assert "below the minimal effect 0.03" in why and "MDE" in why
    # a tiny but significant effect is still smaller than the paper's
    assert verdict(evidence(estimate=0.01, ci_low=0.005, ci_high=0.02)) == "not reproduced"


def test_ci_wholly_below_zero_differs():
    v, why = verdict_and_reason(evidence(estimate=-0.15, ci_low=-0.16, ci_high=-0.13))
    assert v == "differs" and "opposite sign" in why


def test_straddling_the_minimal_effect_is_inconclusive_and_says_what_would_resolve_it():
    v, why = verdict_and_reason(evidence(estimate=0.02, ci_low=-0.01, ci_high=0.05, n_tasks=10))
    assert v == "inconclusive"
    assert "straddles the minimal effect" in why and "0.02 or more (MDE)" in why and "tasks would resolve" in why


def test_not_testable_needs_no_estimate():
    ev = ClaimEvidence(claim="c", chapter="ch", measure="m", paper="p", not_testable="no model family at scale")
    assert verdict_and_reason(ev) == ("not testable here", "no model family at scale")
    with pytest.raises(ValueError, match="not_testable"):
        ClaimEvidence(claim="c", chapter="ch", measure="m", paper="p")


def test_too_few_test_positives_or_tasks_is_inconclusive_even_when_significant():
    assert verdict(evidence(min_test_positives=29)) == "inconclusive"
    v, why = verdict_and_reason(evidence(n_tasks=3))
    assert v == "inconclusive" and why.startswith("3 tasks < 8: too few for a 95% interval")


def test_parts_are_decided_part_by_part():
    good = evidence()
    small = evidence(estimate=0.01, ci_low=0.0, ci_high=0.02)
    opposite = evidence(estimate=-0.1, ci_low=-0.15, ci_high=-0.05)
    unclear = evidence(estimate=0.03, ci_low=-0.02, ci_high=0.08)
    untestable = ClaimEvidence(claim="u", chapter="ch", measure="m", paper="p", not_testable="why")
    assert verdict(evidence(parts=(good, good))) == "reproduced"
    v, why = verdict_and_reason(evidence(parts=(good, opposite)))
    assert v == "differs in part" and "1 part reproduced" in why and "1 part differs" in why
    assert verdict(evidence(parts=(good, unclear))) == "differs in part"
    assert verdict(evidence(parts=(opposite, opposite))) == "differs"
    assert verdict(evidence(parts=(small, opposite))) == "not reproduced"
    assert verdict(evidence(parts=(good, untestable))) == "reproduced"
    assert combine(["not testable here"]) == "not testable here"
    with pytest.raises(ValueError, match="unknown verdicts"):
        combine(["maybe"])


def test_bad_evidence_is_refused():
    with pytest.raises(ValueError, match="outside its CI"):
        evidence(estimate=0.5)
    with pytest.raises(ValueError, match="finite"):
        evidence(estimate=float("nan"))
    with pytest.raises(ValueError, match="minimal effect of interest must be > 0"):
        evidence(minimal_effect=0.0)
    with pytest.raises(ValueError, match="minimal detectable effect"):
        evidence(mde=-1.0)


def test_legacy_records_load_and_ask_for_a_rerun():
    legacy = {"claim": "c", "chapter": "ch", "measure": "m", "paper": "p", "estimate": 0.1, "ci_low": 0.0,
              "ci_high": 0.2, "threshold": 0.0, "power": 0.3, "n_tasks": 3, "min_test_positives": 40}  # fmt: skip
    v, why = verdict_and_reason(ClaimEvidence.from_dict(legacy))
    assert v == "inconclusive" and "re-run" in why


def test_round_trip_through_json_and_table():
    ev = evidence(parts=(evidence(), evidence(surface_margin=(0.0, -0.1, 0.1))), surface_margin=(0.1, 0.0, 0.2))
    record = {"name": "ch", "metrics": {"claims": [json.loads(json.dumps(ev.to_dict()))]}}
    assert ClaimEvidence.from_dict(record["metrics"]["claims"][0]) == ev
    table = verdict_table([record, {"name": "other", "metrics": {}}])
    assert list(table["verdict"]) == ["differs in part"]
    assert table.loc[0, "ours (95% CI)"] == "0.10 (0.05-0.15)"
    assert table.loc[0, "minimal effect"] == "0.03" and table.loc[0, "MDE"] == "0.02"
    assert not table.isna().any().any()
    with pytest.raises(ValueError, match=r"'bad'.*unknown fields"):
        verdict_table([{"name": "bad", "metrics": {"claims": [{"oops": 1}]}}])


def test_every_verdict_reachable_in_a_table():
    claims = [
        evidence(),
        evidence(estimate=0.01, ci_low=0.0, ci_high=0.02),
        evidence(estimate=-0.1, ci_low=-0.15, ci_high=-0.05),
        evidence(parts=(evidence(), evidence(estimate=-0.1, ci_low=-0.15, ci_high=-0.05))),
        evidence(min_test_positives=3),
        ClaimEvidence(claim="c", chapter="ch", measure="m", paper="p", not_testable="why"),
    ]
    table = verdict_table([{"name": "x", "metrics": {"claims": [c.to_dict() for c in claims]}}])
    assert list(table["verdict"]) == list(VERDICTS)


def test_prose_helpers_say_what_the_numbers_say():
    assert format_ci(0.95, 0.82, 1.0) == "0.95 (0.82-1.00)"
    assert format_ci(-0.122, -0.186, -0.07) == "\u22120.12 (\u22120.19 to \u22120.07)"
    assert format_ci(float("nan"), 0, 1) == "n/a"
    assert "reliably lower" in describe_difference("middle", "first", -0.122, -0.186, -0.070)
    assert "reliably higher" in describe_difference("a", "b", 0.1, 0.01, 0.2)
    assert describe_difference("a", "b", 0.05, 0.002, 0.1).endswith("0.050 (0.002-0.100)")  # never "(0.00-0.10)"
    assert format_ci(0.05, 0.0, 0.1) == "0.05 (0.00-0.10)"
    assert "not reliably different" in describe_difference("a", "b", 0.1, -0.01, 0.2)
    assert "(positive" in describe_correlation("Spearman", 0.69)
    assert "(negative" in describe_correlation("Spearman", -0.3, -0.5, -0.1)
    assert "CI excludes 0" in describe_correlation("Spearman", -0.3, -0.5, -0.1)
    assert "CI includes 0" in describe_correlation("Spearman", 0.1, -0.2, 0.3)


def test_markdown_opens_with_the_bottom_line_and_links_each_claim_to_its_box():
    claims = [evidence(chapter="03_superposition").to_dict(), evidence(claim="d", min_test_positives=3).to_dict()]
    table = verdict_table([{"name": "x", "metrics": {"claims": claims}}])
    md = verdict_markdown(table, labels={"claim-03-superposition-c"}, figure="glance.png")
    bottom, figure, caption, tally, table_md, how_title, how = md.strip().split("\n\n")
    assert bottom.startswith("**Bottom line.** Of the paper's 2 claims checked here, 2 could be tested offline")
    assert "Reproduced: c." in bottom and "Undecided at this sample size (see each claim's MDE): d." in bottom
    assert figure.startswith("```{figure} glance.png\n") and caption.endswith("\n```")
    assert tally == "**2 claims:** reproduced 1; inconclusive 1."
    lines = table_md.splitlines()
    assert len(lines) == 4 and lines[0] == "| claim | ours (95% CI) | minimal effect | verdict |"
    assert lines[2] == "| {ref}`c <claim-03-superposition-c>` | 0.10 (0.05-0.15) | 0.03 | **reproduced** |"
    assert lines[3].startswith("| {doc}`d <executed/ch>` |")  # no box labelled for it: the chapter's page
    assert (
        how_title == "**Each claim.**" and how.count("- *") == 2 and "**inconclusive**: fewest test positives 3" in how
    )
    assert "{ref}`c <claim-03-superposition-c>`" in verdict_markdown(table)  # every box assumed when not told
    assert "no verdict" in verdict_markdown(verdict_table([]))


@pytest.mark.parametrize(
    ("verdicts", "second"),
    [
        (["reproduced", "differs in part"], "Reproduced: a; reproduced in some parts and not in others: b."),
        (["not reproduced", "differs"], "Not reproduced: a; opposite to the paper: b."),
        (["inconclusive", "not testable here"], "No claim was decided either way."),
    ],
)
def test_bottom_line_names_the_claims_by_verdict(verdicts, second):
    from sparse_probing.analysis.verdicts import bottom_line

    table = pd.DataFrame({"claim": ["a", "b"], "verdict": verdicts})
    text = bottom_line(table)
    assert second in text
    assert text.startswith(f"Of the paper's 2 claims checked here, {2 - verdicts.count('not testable here')} could")


def test_claims_figure_draws_one_row_per_part_relative_to_the_minimal_effect():
    import matplotlib

    matplotlib.use("Agg")
    from sparse_probing.plots import claims_figure

    whole = evidence(claim="whole", estimate=0.06, ci_low=0.03, ci_high=0.3)  # minimal effect 0.03
    split = evidence(claim="split", parts=(evidence(claim="split: a"), evidence(claim="b", estimate=-0.1,
                     ci_low=-0.2, ci_high=-0.05)))  # fmt: skip
    untestable = ClaimEvidence(claim="u", chapter="ch", measure="m", paper="p", not_testable="why")
    fig = claims_figure([whole, split, untestable])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["whole (ch)", "split: a (ch)", "split: b (ch)"]  # top to bottom, one row per part
    assert [t.get_text() for t in ax.texts] == ["10.0", "-6.7"]  # interval ends beyond the axis, with their value
    assert claims_figure([untestable]) is None
    matplotlib.pyplot.close(fig)


def test_calibrated_power_reads_the_ground_truth_record():
    from sparse_probing.analysis.verdicts import calibrated_power, calibrated_rates

    records = [
        {"name": "01_methods", "metrics": {"power_at_book_size": [{"diagnostic": "gain", "power": 0.1}]}},
        {"name": "02_ground_truth", "metrics": {"power_at_book_size": [
            {"diagnostic": "gain", "power": 0.25, "false positive rate": 0.0},
            {"diagnostic": "gain", "power": 0.9, "false positive rate": 0.5},
            {"diagnostic": "osp", "power": None}]}},
    ]  # fmt: skip
    assert calibrated_power("gain", records) == 0.25  # the worst regime, not an average
    assert calibrated_rates("gain", records) == (0.25, 0.5)
    assert calibrated_power("osp", records) is None
    assert calibrated_power("pruning", records) is None
    assert calibrated_power("gain", []) is None


def test_verdict_box_and_what_would_change_follow_the_verdict():
    from sparse_probing.analysis.verdicts import verdict_box, what_would_change

    shown = evidence(claim="early superposition", surface_margin=(0.0, -0.2, 0.1))
    box = verdict_box([shown])
    assert f":name: claim-{shown.chapter.replace('_', '-')}-early-superposition\n" in box
    assert "Claim: early superposition" in box and "**Verdict: inconclusive**" in box
    assert "0.10 (0.05-0.15)" in box and "\u22120.20" in box and "Minimal effect of interest:** 0.03" in box
    assert "MDE 0.02" in box
    assert "surface-baseline margin" in what_would_change([shown])
    few = evidence(min_test_positives=12)
    assert "**Verdict: inconclusive**" in verdict_box([few])
    assert "now 12" in what_would_change([few])
    absent = evidence(estimate=0.0, ci_low=-0.01, ci_high=0.01)
    assert "**Verdict: not reproduced**" in verdict_box([absent])
    assert "would reverse it" in what_would_change([absent])
    unclear = evidence(estimate=0.02, ci_low=-0.01, ci_high=0.05)
    assert "tasks at this spread" in what_would_change([unclear])
    assert verdict_box([]) == what_would_change([]) == "This run recorded no claim.\n"
