"""The ablation summary of the monosemantic-neuron chapter: specificity of a zeroed neuron's loss increase."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis import ablation


def _effects(target_shift: float, other_shift: float, n: int = 30, seed: int = 0) -> pd.DataFrame:
    """An ablation table: neuron 7 under test, neurons 1 and 2 as the random baseline (deltas near zero)."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, shift in (("target", target_shift), ("other", other_shift)):
        for neuron in (7, 1, 2):
            for text in range(n):
                delta = (shift if neuron == 7 else 0.0) + 0.01 * rng.standard_normal()
                rows.append({"neuron": neuron, "group": group, "text": text, "loss": 3.0, "ablated": 3.0 + delta})
    df = pd.DataFrame(rows)
    df["delta"] = df["ablated"] - df["loss"]
    return df


def test_specific_effect_is_detected():
    out = ablation.ablation_specificity(_effects(0.5, 0.0), 7, n_boot=200)
    assert out["specific"] == 1.0
    assert out["target"] == pytest.approx(0.5, abs=0.01) and out["other"] == pytest.approx(0.0, abs=0.01)
    assert out["target_low"] <= out["target"] <= out["target_high"]
    assert out["target_minus_other_low"] > 0.45 and out["target_minus_random_low"] > 0.45
    assert out["frac_above_random"] == 1.0
    assert abs(out["random_target"]) < 0.01


def test_unspecific_effect_is_not_called_specific():
    # the neuron matters everywhere: above the random neurons, but not more on the target texts than elsewhere
    out = ablation.ablation_specificity(_effects(0.5, 0.5), 7, n_boot=200)
    assert out["specific"] == 0.0
    assert out["target_minus_random_low"] > 0
    assert out["target_minus_other_low"] < 0 < out["target_minus_other_high"]


def test_ablation_specificity_refuses_unknown_neuron_or_group():
    df = _effects(0.5, 0.0)
    with pytest.raises(KeyError, match="neuron 99"):
        ablation.ablation_specificity(df, 99)
    with pytest.raises(KeyError, match="group"):
        ablation.ablation_specificity(df, 7, target="missing")


def test_ablation_specificity_on_a_real_ablation(tiny_model):
    texts = {
        "target": ["The cat sat on the mat.", "A dog ran in the park today."],
        "other": ["Der Hund lief heute im Park.", "Le chat est sur le tapis."],
    }
    effects = ablation.ablation_effect(tiny_model, 1, [3, 5, 11], texts, max_length=16)
    assert len(effects) == 3 * 4 and np.isfinite(effects["delta"]).all()
    out = ablation.ablation_specificity(effects, 3, n_boot=50)
    assert set(out) >= {"target", "other", "random_target", "target_minus_random", "frac_above_random", "specific"}
    assert all(np.isfinite(out[k]) for k in ("target", "other", "random_target", "random_other"))
    assert out["specific"] in (0.0, 1.0)
