"""Surface baselines on the tiny model: a token-identity task is solved by the token baselines (F1 1.0)."""

from __future__ import annotations

import numpy as np
from conftest import make_toy_dataset

from sparse_probing import study
from sparse_probing.activations import ActivationSpec, load_or_compute
from sparse_probing.analysis.surface import best_surface, embedding_cache, surface_baselines, token_windows


def test_surface_baselines_on_span_task(tiny_model):
    ds = make_toy_dataset(n_docs=90, name="toy_span_surface", level="span")
    spec = ActivationSpec(model="tiny-neox", dataset=ds.name, variant="smoke", max_length=32)
    acts = load_or_compute(spec, model=tiny_model, dataset=ds)
    tokens = token_windows(acts, tiny_model.tokenizer, dataset=ds)
    assert tokens.current.size == len(acts.examples)
    emb = embedding_cache(acts, model=tiny_model, dataset=ds)
    assert emb.layers == [0] and emb.layer(0).shape[0] == len(acts.examples)
    tasks = study.binary_tasks(acts.examples)
    split = study.split_examples(acts.examples)
    table = surface_baselines(acts, tasks, split, tiny_model.tokenizer, embeddings=emb, dataset=ds)
    assert set(table["baseline"]) == {"token", "bigram", "bag_of_tokens", "embedding"}
    # "is_cafe" is a token identity: the bag of the span's tokens decides it exactly
    bag = table[table["baseline"] == "bag_of_tokens"].iloc[0]
    assert bag["f1_test"] == 1.0
    best = best_surface(table)
    assert best["surface_f1_test"].iloc[0] == 1.0 and np.isfinite(best["surface_roc_auc_test"]).all()
