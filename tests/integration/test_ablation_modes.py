"""Zero- and mean-ablation on the tiny model: the mean is taken over real tokens only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_probing.analysis import ablation


def test_mean_ablation_uses_the_token_mean(tiny_model):
    texts = {"a": ["Héllo wörld café", "sparse probe neuron data"], "b": ["naïve straße 日本"]}
    neurons = [3, 7]
    means = ablation._mean_activations(tiny_model, "blocks.1.mlp.hook_post", neurons, texts["a"] + texts["b"], 64, 2)
    acts = []
    for text in texts["a"] + texts["b"]:  # one text at a time: no padding at all
        ids = tiny_model.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            _, cache = tiny_model.bridge.run_with_cache(ids, names_filter="blocks.1.mlp.hook_post")
        acts.append(cache["blocks.1.mlp.hook_post"][0][:, neurons].double())
    expected = torch.cat(acts).mean(dim=0).tolist()
    assert [means[n] for n in neurons] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    zero = ablation.ablation_effect(tiny_model, 1, neurons, texts, max_length=64)
    mean = ablation.ablation_effect(tiny_model, 1, neurons, texts, max_length=64, mode="mean")
    assert set(zero["mode"]) == {"zero"} and set(mean["mode"]) == {"mean"}
    np.testing.assert_allclose(zero["loss"], mean["loss"])  # the same clean pass
    assert not np.allclose(zero["ablated"], mean["ablated"])
    with pytest.raises(ValueError, match="mode must be"):
        ablation.ablation_effect(tiny_model, 1, neurons, texts, mode="resample")


def test_attribution_matches_exact_mean_and_zero_ablation(tiny_model):
    texts = ["The cat sat on the mat and looked around.", "A dog ran in the park today.", "Der Hund lief im Park.",
             "Le chat est sur le tapis."]  # fmt: skip
    att = ablation.attribution_effects(tiny_model, [0, 1], texts, max_length=16, batch_size=3)
    assert att.loss.shape == (4,) and att.delta(1).shape == (4, tiny_model.d_mlp)
    means = ablation._mean_activations(tiny_model, "blocks.1.mlp.hook_post", [3, 5], texts, 16, 2)
    assert [att.mean[1][3], att.mean[1][5]] == pytest.approx([means[3], means[5]], rel=1e-4, abs=1e-6)
    neurons = [3, 5, 11, 20]
    for mode, values in (("mean", {n: float(att.mean[1][n]) for n in neurons}), ("zero", None)):
        exact = ablation.ablation_effect(tiny_model, 1, neurons, {"all": texts}, max_length=16, mode=mode,
                                         values=values)  # fmt: skip
        np.testing.assert_allclose(exact.groupby("text")["loss"].first(), att.loss, rtol=1e-5)
        table = exact.pivot_table(index="text", columns="neuron", values="delta").to_numpy()
        estimate = att.delta(1, mode)[:, neurons]
        assert np.corrcoef(table.ravel(), estimate.ravel())[0, 1] > 0.95  # first order in a small change
    with pytest.raises(ValueError, match="not layers"):
        ablation.attribution_effects(tiny_model, [5], texts)
    with pytest.raises(ValueError, match="values has no entry"):
        ablation.ablation_effect(tiny_model, 1, [3], {"all": texts}, mode="mean", values={4: 0.0})
