"""Weight fingerprint with the norm folded in, the gated-MLP hook identity, activation sparsity and the basis
comparison, on tiny locally built models (GPT-NeoX with LayerNorm, Llama with RMSNorm and a gated MLP)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from sparse_probing.analysis import weights
from sparse_probing.models import LoadedModel, ModelSpec, _wrap, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_llama() -> LoadedModel:
    """A randomly initialised 2-layer Llama (gated MLP, RMSNorm with non-trivial gains, no MLP biases)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, architectures=["LlamaForCausalLM"],
    )  # fmt: skip
    torch.manual_seed(0)
    hf = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in hf.model.layers:
            layer.post_attention_layernorm.weight.uniform_(0.5, 2.0)
    return LoadedModel(_wrap(hf, tok, ModelSpec("tiny-llama"), "tiny-llama"), ModelSpec("tiny-llama"), "memory", "0")


TEXTS = ["The cat sat on the mat in 1999.", "Paris, France: 42 cafés!", "a b c d e f g", "Hello World again"]


def test_gated_hook_post_is_silu_gate_times_up_and_the_down_proj_input(tiny_llama):
    names = [f"blocks.1.mlp.{n}" for n in ("hook_post", "gate.hook_out", "in.hook_out", "out.hook_in")]
    ids = tiny_llama.tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        _, cache = tiny_llama.bridge.run_with_cache(ids, names_filter=names)
    post, gate, up, down_in = (cache[n] for n in names)
    torch.testing.assert_close(post, torch.nn.functional.silu(gate) * up)
    torch.testing.assert_close(post, down_in)
    assert weights.is_gated(tiny_llama)


def test_neox_hook_post_is_gelu_of_the_pre_activation(tiny_model):
    names = ["blocks.0.mlp.hook_post", "blocks.0.mlp.in.hook_out"]
    ids = tiny_model.tokenizer(TEXTS[1], return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        _, cache = tiny_model.bridge.run_with_cache(ids, names_filter=names)
    torch.testing.assert_close(cache[names[0]], torch.nn.functional.gelu(cache[names[1]]))
    assert not weights.is_gated(tiny_model)


def test_folded_layernorm_reproduces_the_pre_activation(tiny_model):
    """Folded weights on the normalized input equal dense_h_to_4h(LayerNorm(x)), and match an explicit fold."""
    hf = tiny_model.bridge.original_model
    layer = hf.gpt_neox.layers[1]
    ln, lin = weights._orig(layer.post_attention_layernorm), weights._orig(layer.mlp.dense_h_to_4h)
    with torch.no_grad():
        ln.weight.copy_(torch.linspace(0.5, 2.0, ln.weight.numel()))
        ln.bias.copy_(torch.linspace(-0.3, 0.3, ln.bias.numel()))
    try:
        stats = weights.mlp_input_stats(tiny_model)
        x = torch.randn(5, ln.weight.numel(), dtype=torch.float64)
        x_hat = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + ln.eps)
        d = {
            k: v.detach().double() for k, v in (("g", ln.weight), ("beta", ln.bias), ("W", lin.weight), ("b", lin.bias))
        }
        normed = torch.nn.functional.layer_norm(x, (x.shape[-1],), d["g"], d["beta"], ln.eps)
        expected = torch.nn.functional.linear(normed, d["W"], d["b"]).numpy()
        p = weights.mlp_input_weights(tiny_model)[1]
        w, b = weights.fold_norm(p["w_in"], p["b_in"], p["norm_scale"], p["norm_bias"], p["center"])
        np.testing.assert_allclose(x_hat.numpy() @ w + b, expected, rtol=1e-6, atol=1e-6)
        W = lin.weight.detach().double().numpy().T * ln.weight.detach().double().numpy()[:, None]
        W -= W.mean(axis=0)
        b_explicit = ln.bias.detach().double().numpy() @ lin.weight.detach().double().numpy().T
        b_explicit += lin.bias.detach().double().numpy()
        got = stats[stats["layer"] == 1]
        np.testing.assert_allclose(got["w_in_norm"], np.linalg.norm(W, axis=0), rtol=1e-6)
        np.testing.assert_allclose(got["b_in"], b_explicit, rtol=1e-6, atol=1e-9)
        raw = weights.mlp_input_stats(tiny_model, fold=False)
        assert not np.allclose(raw["b_in"], stats["b_in"])
    finally:
        with torch.no_grad():
            ln.weight.fill_(1.0)
            ln.bias.zero_()


def test_gated_fingerprint_folds_rmsnorm_and_has_no_bias(tiny_llama):
    hf = tiny_llama.bridge.original_model
    layer = hf.model.layers[0]
    norm, gate = weights._orig(layer.post_attention_layernorm), weights._orig(layer.mlp.gate_proj)
    stats = weights.mlp_input_stats(tiny_llama)
    g = norm.weight.detach().double().numpy()
    expected = np.linalg.norm(gate.weight.detach().double().numpy().T * g[:, None], axis=0)
    np.testing.assert_allclose(stats[stats["layer"] == 0]["w_gate_norm"], expected, rtol=1e-6)
    assert not weights.has_input_bias(stats)
    table = weights.fingerprint_table(stats)
    assert table["median_bias"].isna().all() and table["spearman_norm_bias"].isna().all()
    assert table["median_gate_norm"].notna().all()


def test_fingerprint_figure_of_a_gated_model_skips_the_bias_panel(tiny_llama, tiny_model):
    """A model without MLP input biases used to crash the chapter (a box plot of all-NaN biases)."""
    gated = weights.plot_fingerprint(weights.mlp_input_stats(tiny_llama), title="tiny-llama")
    assert len(gated.axes) == 1
    with_bias = weights.plot_fingerprint(weights.mlp_input_stats(tiny_model), title="tiny-neox")
    assert len(with_bias.axes) == 2


def test_sites_sparsity_and_basis_comparison(tiny_llama):
    sites, tokens = weights.mlp_sites(tiny_llama, TEXTS * 6, layers=[0, 1], max_length=32)
    n = len(tokens)
    assert set(sites) == set(weights.SITES)
    assert sites["post"][1].shape == (n, 64) and sites["resid"][0].shape == (n, 32)
    np.testing.assert_allclose(sites["post"][1], sites["gate"][1] * sites["up"][1], rtol=1e-4, atol=1e-6)
    profile = weights.activation_sparsity(sites)
    assert list(profile["layer"]) == [0, 1] and profile["frac_active"].between(0, 1).all()
    labels = weights.token_property_labels(tokens, min_positives=5)
    assert "leading_space" in labels
    table = weights.basis_comparison({"post": sites["post"]}, labels, n_rotations=2)
    assert len(table) == 2 * len(labels)
    np.testing.assert_allclose(table["diff"], table["f1_neurons"] - table["f1_rotated"])
    with pytest.raises(ValueError, match="out of range"):
        weights.mlp_sites(tiny_llama, TEXTS, layers=[5])


@pytest.mark.slow
def test_smollm2_hook_post_is_silu_gate_times_up():
    from sparse_probing.models import load_model

    lm = load_model("smollm2-135m")
    names = [f"blocks.2.mlp.{n}" for n in ("hook_post", "gate.hook_out", "in.hook_out", "out.hook_in")]
    ids = lm.tokenizer("The Eiffel Tower is located in Paris.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        _, cache = lm.bridge.run_with_cache(ids, names_filter=names)
    post, gate, up, down_in = (cache[n] for n in names)
    torch.testing.assert_close(post, torch.nn.functional.silu(gate) * up, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(post, down_in)
    stats = weights.mlp_input_stats(lm)
    assert not weights.has_input_bias(stats) and stats["w_gate_norm"].notna().all()
