"""The broad-sample claim and its tables, on fixture scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis.verdicts import verdict, verdict_and_reason
from sparse_probing.chapters import broad as bs


def _result(
    model: str, single: float, combo: float, n: int = 12, targets: int = 40, spread: float = 0.02
) -> bs.BroadResult:
    rng = np.random.default_rng(len(model))
    rows = []
    for sample in ("val", "test"):
        for i in range(n):
            task = f"b{i}"
            common = {"model": model, "sample": sample, "task": task, "fire_rate": 0.01, "recall": 0.9,
                      "n_targets": targets, "n_positions": 60_000}  # fmt: skip
            for basis in ("neurons", "residual stream"):
                for scorer, method, k, ap in (
                    ("single unit", "single_neuron", 1, single + rng.normal(0, spread)),
                    ("telescopic k=1", "telescopic", 1, single - 0.1),
                    ("telescopic k=5", "telescopic", 5, combo + rng.normal(0, spread)),
                    ("mean_diff k=5", "mean_diff", 5, combo - 0.2),
                    ("random basis, single direction", "random_basis", 1, single - 0.05),
                ):
                    rows.append({**common, "basis": basis, "scorer": scorer, "method": method, "k": k, "ap": ap,
                                 "precision_at_n": ap})  # fmt: skip
            for scorer, ap in (("current token", 0.05), ("bigram one-hot (ceiling)", 0.95)):
                rows.append({**common, "basis": "tokens", "scorer": scorer, "method": "token", "k": 1, "ap": ap,
                             "precision_at_n": ap})  # fmt: skip
    top = pd.DataFrame({"model": model, "task": "b0", "neuron": 7, "layer": 2, "rank": [1, 2, 3],
                        "score": [3.0, 2.0, 1.0], "target": [False, True, False], "token_text": "x",
                        "snippet": ["a [[x]] b"] * 3})  # fmt: skip
    return bs.BroadResult(model=model, layer=2, n_layers=30, scores=pd.DataFrame(rows), top=top,
                          sample={"positions": 60_000, "texts": {}, "targets_min": targets}, seconds=1.0)  # fmt: skip


def test_claim_follows_the_specificity_gain():
    gain = bs.specificity_claim([_result("m", 0.3, 0.7)], chapter="03_superposition", n_boot=500)
    assert gain.claim == bs.CLAIM and gain.minimal_effect == bs.MIN_SPECIFICITY and gain.mde > 0
    assert gain.estimate == pytest.approx(0.4, abs=0.03) and verdict(gain) == "reproduced"
    assert "0 of 12 bigrams have a near-dedicated neuron" in gain.control and "residual stream" in gain.control
    assert (
        "chosen single units: single unit 12" in gain.control
        and "chosen combinations: telescopic k=5 12" in gain.control
    )
    none = bs.specificity_claim([_result("m", 0.8, 0.81)], chapter="03_superposition", n_boot=500)
    assert verdict(none) == "not reproduced" and "12 of 12 bigrams have a near-dedicated" in none.control
    worse = bs.specificity_claim([_result("m", 0.8, 0.5)], chapter="03_superposition", n_boot=500)
    assert verdict(worse) == "differs"
    few = bs.specificity_claim([_result("m", 0.3, 0.7, targets=12)], chapter="03_superposition", n_boot=500)
    assert verdict_and_reason(few) == ("inconclusive", "fewest test positives 12 < 30")


def test_two_models_are_parts_and_may_disagree():
    both = bs.specificity_claim([_result("a", 0.3, 0.7), _result("bb", 0.8, 0.5)], chapter="c", n_boot=500)
    assert [p.claim for p in both.parts] == [f"{bs.CLAIM}: a, layer 2", f"{bs.CLAIM}: bb, layer 2"]
    assert verdict(both) == "differs in part"


def test_tables():
    r = _result("m", 0.3, 0.7)
    table = bs.summary_table([r], bs.headline_scorers(["telescopic", "mean_diff"], 5))
    assert set(table["scorer"]) == {"single unit", "telescopic k=1", "telescopic k=5", "mean_diff k=5",
                                    "random basis, single direction", "current token", "bigram one-hot (ceiling)"}  # fmt: skip
    per = bs.bigram_table(r, 5)
    assert len(per) == 12 and per["difference"].is_monotonic_decreasing
    assert per.loc[per["bigram"] == "b0", "targets in its top 20"].item() == pytest.approx(1 / 3, abs=1e-3)
    top = bs.top_table(r, ["b0"], n=2)
    assert list(top["rank"]) == [1, 2] and list(top["target"]) == ["no", "yes"] and top["neuron"].iloc[0] == "L2 N7"
    assert "best 5-neuron combination 0.70" in bs.caption_k([r], 5)
    chosen = bs.choose(r.scores, 5)
    assert set(chosen["scorer"]) == {"telescopic k=5"} and len(chosen) == 12  # chosen on validation, not on test
    with pytest.raises(ValueError, match="not in the table"):
        bs.paired_scores(r.scores, "optimal k=5", "single unit")


def test_choice_is_made_on_validation_and_reported_on_test():
    r = _result("m", 0.3, 0.7)
    s = r.scores.copy()
    # mean_diff is best on validation, telescopic on test: the choice must follow validation
    s.loc[(s["sample"] == "val") & (s["scorer"] == "mean_diff k=5"), "ap"] = 0.99
    s.loc[(s["sample"] == "test") & (s["scorer"] == "mean_diff k=5"), "ap"] = 0.1
    chosen = bs.choose(s, 5)
    assert set(chosen["scorer"]) == {"mean_diff k=5"} and (chosen["test"] == 0.1).all()
