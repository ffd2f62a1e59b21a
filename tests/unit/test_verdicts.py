import json

import pytest

from sparse_probing.analysis.verdicts import (
    ClaimEvidence,
    combine,
    describe_correlation,
    describe_difference,
    format_ci,
    verdict,
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
        power=0.9,
        n_tasks=5,
        min_test_positives=40,
    )
    base.update(kw)
    return ClaimEvidence(**base)


def test_reproduced_when_ci_above_threshold_and_surface():
    assert verdict(evidence()) == "reproduced"
    assert verdict(evidence(surface_margin=(0.05, 0.01, 0.09))) == "reproduced"


def test_partly_when_surface_baseline_explains_it():
    assert verdict(evidence(surface_margin=(0.02, -0.01, 0.05))) == "partly"


def test_threshold_is_respected():
    assert verdict(evidence(threshold=0.06)) == "not reproduced"  # ci_low 0.05 is not above 0.06


def test_not_reproduced_only_with_power():
    null = dict(estimate=0.0, ci_low=-0.01, ci_high=0.01)
    assert verdict(evidence(**null, power=0.95)) == "not reproduced"
    assert verdict(evidence(**null, power=0.3)) == "inconclusive"
    assert verdict(evidence(**null, power=None)) == "inconclusive"


def test_too_few_test_positives_is_inconclusive_even_when_significant():
    assert verdict(evidence(min_test_positives=29)) == "inconclusive"


def test_compound_claims_combine_their_parts():
    good, null = evidence(), evidence(estimate=0.0, ci_low=-0.01, ci_high=0.01, power=0.95)
    assert verdict(evidence(parts=(good, good))) == "reproduced"
    assert verdict(evidence(parts=(good, null))) == "partly"
    assert verdict(evidence(parts=(null, null))) == "not reproduced"
    assert combine(["not reproduced", "inconclusive"]) == "inconclusive"
    with pytest.raises(ValueError, match="unknown verdicts"):
        combine(["maybe"])


def test_bad_evidence_is_refused():
    with pytest.raises(ValueError, match="outside its CI"):
        evidence(estimate=0.5)
    with pytest.raises(ValueError, match="finite"):
        evidence(estimate=float("nan"))
    with pytest.raises(ValueError, match="power"):
        evidence(power=1.5)


def test_round_trip_through_json_and_table():
    ev = evidence(parts=(evidence(), evidence(surface_margin=(0.0, -0.1, 0.1))), surface_margin=(0.1, 0.0, 0.2))
    record = {"name": "ch", "metrics": {"claims": [json.loads(json.dumps(ev.to_dict()))]}}
    assert ClaimEvidence.from_dict(record["metrics"]["claims"][0]) == ev
    table = verdict_table([record, {"name": "other", "metrics": {}}])
    assert list(table["verdict"]) == ["partly"]
    assert table.loc[0, "ours (95% CI)"] == "0.10 (0.05-0.15)"
    assert not table.isna().any().any()
    with pytest.raises(ValueError, match=r"'bad'.*unknown fields"):
        verdict_table([{"name": "bad", "metrics": {"claims": [{"oops": 1}]}}])


def test_every_verdict_reachable_in_a_table():
    claims = [
        evidence(),
        evidence(surface_margin=(0.0, -0.1, 0.1)),
        evidence(estimate=0.0, ci_low=-0.1, ci_high=0.1),
        evidence(min_test_positives=3),
    ]
    table = verdict_table([{"name": "x", "metrics": {"claims": [c.to_dict() for c in claims]}}])
    assert list(table["verdict"]) == ["reproduced", "partly", "not reproduced", "inconclusive"]


def test_prose_helpers_say_what_the_numbers_say():
    assert format_ci(0.95, 0.82, 1.0) == "0.95 (0.82-1.00)"
    assert format_ci(-0.122, -0.186, -0.07) == "\u22120.12 (\u22120.19 to \u22120.07)"
    assert format_ci(float("nan"), 0, 1) == "n/a"
    assert "reliably lower" in describe_difference("middle", "first", -0.122, -0.186, -0.070)
    assert "reliably higher" in describe_difference("a", "b", 0.1, 0.01, 0.2)
    assert "not reliably different" in describe_difference("a", "b", 0.1, -0.01, 0.2)
    assert "(positive" in describe_correlation("Spearman", 0.69)
    assert "(negative" in describe_correlation("Spearman", -0.3, -0.5, -0.1)
    assert "CI excludes 0" in describe_correlation("Spearman", -0.3, -0.5, -0.1)
    assert "CI includes 0" in describe_correlation("Spearman", 0.1, -0.2, 0.3)


def test_markdown_table_links_chapters_and_never_prints_an_empty_table():
    claims = [evidence(chapter="03_superposition").to_dict(), evidence(min_test_positives=3).to_dict()]
    md = verdict_markdown(verdict_table([{"name": "x", "metrics": {"claims": claims}}]))
    lines = md.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("| claim | paper |")
    assert "{doc}`executed/03_superposition`" in lines[2] and "**reproduced**" in lines[2]
    assert "**inconclusive**" in lines[3]
    assert "no verdict" in verdict_markdown(verdict_table([]))


def test_calibrated_power_reads_the_ground_truth_record():
    from sparse_probing.analysis.verdicts import calibrated_power

    records = [
        {"name": "01_methods", "metrics": {"power_at_book_size": [{"diagnostic": "gain", "power": 0.1}]}},
        {"name": "02_ground_truth", "metrics": {"power_at_book_size": [
            {"diagnostic": "gain", "power": 0.25}, {"diagnostic": "osp", "power": None}]}},
    ]  # fmt: skip
    assert calibrated_power("gain", records) == 0.25
    assert calibrated_power("osp", records) is None
    assert calibrated_power("pruning", records) is None
    assert calibrated_power("gain", []) is None


def test_verdict_box_and_what_would_change_follow_the_verdict():
    from sparse_probing.analysis.verdicts import verdict_box, what_would_change

    shown = evidence(claim="early superposition", surface_margin=(-0.1, -0.2, -0.01))
    box = verdict_box([shown])
    assert "Claim: early superposition" in box and "**Verdict: partly**" in box
    assert "0.10 (0.05-0.15)" in box and "\u22120.10" in box
    assert "surface baseline" in what_would_change([shown])
    few = evidence(min_test_positives=12)
    assert "**Verdict: inconclusive**" in verdict_box([few])
    assert "now 12" in what_would_change([few])
    absent = evidence(estimate=0.0, ci_low=-0.05, ci_high=0.05, power=0.9)
    assert "**Verdict: not reproduced**" in verdict_box([absent])
    assert "would reverse it" in what_would_change([absent])
    assert verdict_box([]) == what_would_change([]) == "This run recorded no claim.\n"
