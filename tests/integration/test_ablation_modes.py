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
