"""The broad-sample test: labels found in the characters, readouts equal to a direct forward pass, residual-stream
cache entries as wide as the residual stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_probing.activations import ActivationSpec, load_or_compute
from sparse_probing.analysis.specificity import (
    bigram_words,
    build_broad_sample,
    readout,
    specificity,
    top_positions,
)

TEXTS = {
    "contexts": ["He went to High School in Ohio.", "the high-school gym and the high road", "no bigram here"],
    "corpus": ["School is high on the list; high school again."],
}


def test_broad_sample_labels_every_occurrence_at_its_last_token(tiny_model):
    sample = build_broad_sample(tiny_model.tokenizer, TEXTS, ["high_school"], max_length=64)
    y = sample.labels["high_school"]
    assert y.sum() == 3  # case, hyphen and repeated occurrences; "School is high" is not one
    marked = [sample.snippet(int(r)) for r in np.flatnonzero(y)]
    assert all(m.split("]]")[0].lower().endswith("l") and not m.split("]]")[1][:1].isalnum() for m in marked)
    assert set(sample.positions["source"]) == {"contexts", "corpus"}
    assert (sample.positions["pos"] > 0).all()  # the BOS token is not a position
    assert bigram_words("social_security") == ("social", "security")
    with pytest.raises(ValueError, match="two or more words"):
        bigram_words("school")


def test_readout_equals_the_activations_of_a_direct_forward_pass(tiny_model):
    sample = build_broad_sample(tiny_model.tokenizer, TEXTS, ["high_school"], max_length=64)
    rng = np.random.default_rng(0)
    W_mlp = rng.normal(size=(tiny_model.d_mlp, 3)).astype(np.float32)
    d_model = int(tiny_model.bridge.cfg.d_model)
    W_res = rng.normal(size=(d_model, 2)).astype(np.float32)
    hooks = {"blocks.0.mlp.hook_post": W_mlp, "blocks.1.hook_resid_post": W_res}
    out = readout(tiny_model, sample, hooks, batch_size=2)
    for d, ids in enumerate(sample.ids):
        with torch.inference_mode():
            _, cache = tiny_model.bridge.run_with_cache(
                torch.as_tensor(np.asarray(ids))[None], names_filter=list(hooks)
            )
        rows = np.flatnonzero(sample.positions["doc"].to_numpy() == d)
        pos = sample.positions["pos"].to_numpy()[rows]
        for hook, W in hooks.items():
            expected = cache[hook][0].numpy()[pos] @ W
            np.testing.assert_allclose(out[hook][rows], expected, rtol=1e-4, atol=1e-4)


def test_specificity_metrics():
    target = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    perfect = specificity(np.array([2.0, 1.5, -1, -1, -1, -1, -1, -1]), target)
    assert perfect["ap"] == 1.0 and perfect["precision_at_n"] == 1.0 and perfect["fire_rate"] == 0.0
    poly = specificity(np.array([2.0, 1.5, 3, 3, -1, -1, -1, -1]), target)  # fires on two other positions first
    assert poly["precision_at_n"] == 0.0 and poly["fire_rate"] == pytest.approx(2 / 6) and poly["recall"] == 1.0
    assert np.isnan(specificity(np.zeros(3), np.zeros(3, dtype=bool))["ap"])


def test_top_positions_are_plain_text(tiny_model):
    texts = {"x": ["<script>alert(1)</script> high school"]}
    sample = build_broad_sample(tiny_model.tokenizer, texts, ["high_school"], max_length=64)
    score = np.arange(sample.n_positions, dtype=float)
    top = top_positions(sample, score, sample.labels["high_school"], n=3)
    assert list(top["rank"]) == [1, 2, 3] and top["target"].iloc[0]  # the last token scores highest here
    assert top["snippet"].str.contains("[[", regex=False).all()


def test_residual_stream_entries_have_the_residual_width(tiny_model, toy_dataset, tmp_path):
    spec = ActivationSpec(model="tiny-neox", dataset="toy", variant="smoke", layers=(1,), site="hook_resid_post",
                          max_length=48, batch_size=4)  # fmt: skip
    acts = load_or_compute(spec, model=tiny_model, dataset=toy_dataset, root=tmp_path)
    d_model = int(tiny_model.bridge.cfg.d_model)
    assert (
        acts.layer(1).shape == (len(toy_dataset.documents), d_model) != (len(toy_dataset.documents), tiny_model.d_mlp)
    )
    ids = tiny_model.tokenizer(toy_dataset.documents[0].text)["input_ids"][:48]
    with torch.inference_mode():
        _, cache = tiny_model.bridge.run_with_cache(
            torch.as_tensor(np.asarray(ids))[None], names_filter=["blocks.1.hook_resid_post"]
        )
    expected = cache["blocks.1.hook_resid_post"][0, 1:].mean(0).numpy()
    row = int(np.flatnonzero(acts.examples["doc"].to_numpy() == 0)[0])
    np.testing.assert_allclose(acts.layer(1)[row].astype(np.float32), expected, atol=2e-3, rtol=2e-3)


def test_broad_study_reads_every_scorer_on_both_samples_including_the_optimal_probe(tiny_model):
    from sparse_probing.chapters.broad import broad_study, choose

    r = broad_study(tiny_model, "paper_compound_words", "smoke", methods=("mean_diff", "optimal"), ks=(1, 2),
                    corpus_documents=4, residual=False, min_positives=2, max_length=64, optimal_time_limit=2.0)  # fmt: skip
    scorers = set(r.scores["scorer"])
    assert {"single unit", "mean_diff k=2", "optimal k=1", "optimal k=2", "random basis, single direction",
            "current token", "bigram one-hot (ceiling)"} <= scorers  # fmt: skip
    assert set(r.scores["sample"]) == {"val", "test"} and r.sample["validation"]["positions"] > 0
    chosen = choose(r.scores, 2)
    assert set(chosen["scorer"]) <= {"mean_diff k=2", "optimal k=2"}


def test_token_matched_auc_separates_context_from_token_detectors():
    from sparse_probing.analysis.specificity import token_matched_auc

    rng = np.random.default_rng(0)
    token = rng.integers(0, 30, 4000)
    inside = rng.random(4000) < 0.3
    detector = token + 0.01 * rng.standard_normal(4000)  # fires on token ids, whatever the context
    assert token_matched_auc(detector, inside, token)["auc"] == pytest.approx(0.5, abs=0.03)
    context = inside + 0.1 * rng.standard_normal(4000)
    out = token_matched_auc(context, inside, token)
    assert out["auc"] > 0.99 and out["tokens"] == 30
    from sklearn.metrics import roc_auc_score

    one = token_matched_auc(context, inside, np.zeros(4000, dtype=int))  # one token: the plain ROC-AUC
    assert one["auc"] == pytest.approx(roc_auc_score(inside, context))
    assert np.isnan(token_matched_auc([1.0, 2.0], [True, False], [1, 2])["auc"])  # no token on both sides
    with pytest.raises(ValueError, match="one value per position"):
        token_matched_auc([1.0], [True, False], [1, 2])


def test_neuron_contexts_read_the_neuron_on_every_token(tiny_model) -> None:
    """A card's values are the neuron's activation at each token: a direct forward pass gives the same numbers."""
    import torch

    from sparse_probing.analysis.cards import neuron_contexts

    texts = [("a", "The cat sat on the mat and looked at the door."), ("b", "Über naïve café: 日本 data neuron.")]
    got = neuron_contexts(tiny_model, {(1, 5): texts, (0, 2): texts[:1]}, signs={(0, 2): -1.0}, window=3)
    assert set(got) == {(1, 5), (0, 2)} and len(got[(1, 5)]) == 2 and len(got[(0, 2)]) == 1
    for ctx in got[(1, 5)]:
        assert len(ctx.pieces) == len(ctx.values) <= 7 and ctx.values[ctx.peak] == ctx.values.max()
    enc = tiny_model.tokenizer(texts[0][1], return_tensors="pt")
    seen = {}
    with torch.inference_mode():
        tiny_model.bridge.run_with_hooks(enc["input_ids"], return_type=None,
                                         fwd_hooks=[("blocks.1.mlp.hook_post", lambda a, hook: seen.setdefault("a", a))])  # fmt: skip
    direct = seen["a"][0, :, 5].numpy()
    assert np.isclose(got[(1, 5)][0].values.max(), direct.max(), atol=1e-5)
    assert "".join(got[(1, 5)][0].pieces) in texts[0][1]  # windows are pieces of the text itself
