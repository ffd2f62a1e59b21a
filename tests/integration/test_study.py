"""The chapter helpers of ``sparse_probing.study`` on the tiny model and the toy dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_toy_dataset

from sparse_probing import study
from sparse_probing.activations import ActivationSpec, load_or_compute
from sparse_probing.analysis import ablation, inspection, weights
from sparse_probing.probes import ProbeSpec


def test_binary_tasks_one_vs_rest_binary_and_skipped():
    ex = pd.DataFrame(
        {
            "doc": range(8),
            "tok_start": 0,
            "tok_end": 1,
            "group": list("aabbccdd"),
            "lang": ["de", "de", "en", "en", "en", "fr", "fr", "fr"],
            "compound": [1.0, 0.0, np.nan, 1.0, 0.0, 0.0, np.nan, 1.0],
            "position": np.linspace(0.1, 7.3, 8),  # a regression target: no task
        }
    )
    tasks = study.binary_tasks(ex, min_positives=2, min_negatives=2)
    assert sorted(tasks) == ["compound", "lang=de", "lang=en", "lang=fr"]
    np.testing.assert_array_equal(tasks["lang=de"], [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(tasks["compound"], [1, 0, np.nan, 1, 0, 0, np.nan, 1])
    assert sorted(study.binary_tasks(ex, min_positives=3, min_negatives=2)) == ["compound", "lang=en", "lang=fr"]
    with pytest.raises(KeyError, match="available"):
        study.binary_tasks(ex, ["nope"])


def _toy_cache(tiny_model, level: str = "document"):
    ds = make_toy_dataset(n_docs=48, name=f"toy_{level}", level=level)
    spec = ActivationSpec(model="tiny-neox", dataset=ds.name, variant="smoke", max_length=32)
    return load_or_compute(spec, model=tiny_model, dataset=ds), ds


def test_probe_cache_and_best_neurons(tiny_model):
    acts, _ = _toy_cache(tiny_model)
    df = study.probe_cache(acts, [ProbeSpec("mean_diff", ks=(1, 2))], n_boot=10)
    assert set(df["feature"]) == {"parity=even", "parity=odd"}
    assert set(df["layer"]) == {0, 1} and set(df["k"]) == {1, 2}
    assert (df["model"] == "tiny-neox").all()
    best = study.best_single_neurons(df)
    assert len(best) == 4 and best["neuron"].between(0, 255).all()
    top = study.best_layer(best)
    assert len(top) == 2  # one layer per task, chosen on validation ROC-AUC (ties reported)
    for _, row in top.iterrows():
        rows = best[best["feature"] == row["feature"]]
        assert row["roc_auc_val"] == rows["roc_auc_val"].max() and row["layer"] in row["tied_layer"]
    with pytest.raises(ValueError, match="k=1"):
        study.best_single_neurons(df[df["k"] == 2])


def test_top_examples_mark_the_span(tiny_model):
    acts, ds = _toy_cache(tiny_model, level="span")
    x = np.asarray(acts.layer(1)[:, 5], dtype=np.float32)
    out = inspection.top_examples(acts, 1, 5, tiny_model.tokenizer, n=4, width=10, dataset=ds)
    assert len(out) == 4
    np.testing.assert_allclose(out["activation"], np.sort(x)[::-1][:4])
    for text in out["text"]:
        inner = text.split("⟦", 1)[1].split("⟧", 1)[0]
        assert inner.strip() in {w for d in ds.documents for w in d.text.split()}


def test_ablation_clean_loss_matches_the_model(tiny_model):
    texts = {"a": ["Héllo wörld café", "sparse probe neuron data"], "b": ["naïve straße 日本"]}
    df = ablation.ablation_effect(tiny_model, 1, [3, 7], texts, max_length=64)
    assert len(df) == 2 * 3
    np.testing.assert_allclose(df["delta"], df["ablated"] - df["loss"])
    for j, text in enumerate(texts["a"]):  # the shorter text is padded in its batch: padding must not change it
        ids = tiny_model.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            logits = tiny_model.bridge(ids, return_type="logits")
        expected = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).item()
        got = df[(df["group"] == "a") & (df["text"] == j) & (df["neuron"] == 3)]["loss"].iloc[0]
        assert got == pytest.approx(expected, rel=1e-4)
    assert df["delta"].abs().max() > 0  # zeroing a neuron changes the output of a random model


def test_mlp_input_stats_and_size(tiny_model):
    stats = weights.mlp_input_stats(tiny_model, fold=False)
    assert len(stats) == tiny_model.n_layers * tiny_model.d_mlp
    w = tiny_model.bridge.W_in.detach()
    np.testing.assert_allclose(stats["w_in_norm"].iloc[: tiny_model.d_mlp], w[0].norm(dim=0).numpy(), rtol=1e-6)
    d, n_layers = 64, 2  # tiny-neox: 12 d^2 + 13 d per block, plus the final LayerNorm
    assert weights.non_embedding_params(tiny_model) == n_layers * (12 * d * d + 13 * d) + 2 * d
