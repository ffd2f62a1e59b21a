"""The shipped mini family: corpus, tokenizer and models load offline and reproduce their recorded held-out loss.

Each model test is skipped (with the reason) until its directory is built by ``make models``.
"""

from __future__ import annotations

import json

import pytest

from sparse_probing.models import fingerprint, list_models, load_model
from sparse_probing.paths import MODELS_DIR
from sparse_probing.training.corpus import CORPUS_FILE, MANIFEST_FILE, corpus_dir, file_sha256, read_manifest
from sparse_probing.training.family import MINI_FAMILY, MiniModelSpec, TrainSpec
from sparse_probing.training.tokenizer import load_tokenizer, tokenizer_dir
from sparse_probing.training.trainer import SUMMARY_FILE, TrainPaths, heldout_loss, heldout_sequences

CORPUS = corpus_dir() / CORPUS_FILE
needs_corpus = pytest.mark.skipif(
    not CORPUS.exists() or not (tokenizer_dir() / "tokenizer.json").exists(),
    reason="the corpus or the tokenizer is not built (python -m sparse_probing.training corpus / tokenizer)",
)


@needs_corpus
def test_shipped_corpus_and_tokenizer_are_consistent():
    manifest = read_manifest()
    assert manifest["file"]["sha256"] == file_sha256(CORPUS)
    shares = {d: v["train_share"] for d, v in manifest["domains"].items()}
    assert shares["english"] > 0.4 and shares["languages"] > 0.1 and shares["code"] > 0.2
    assert len(manifest["domains"]["languages"]["languages"]) >= 8
    assert len(manifest["domains"]["code"]["languages"]) >= 9
    meta = json.loads((tokenizer_dir() / "training.json").read_text())
    assert meta["corpus_sha256"] == manifest["file"]["sha256"]
    tok = load_tokenizer()
    assert len(tok) == meta["vocab_size"] and tok("Hallo Welt")["input_ids"][0] == 0
    assert (corpus_dir() / MANIFEST_FILE).exists()


@pytest.mark.slow
@needs_corpus
def test_shipped_corpus_holds_no_probing_text():
    """No training document holds text of the probing datasets the corpus was built to exclude."""
    from sparse_probing.training.corpus import leaked_documents

    assert leaked_documents(files=read_manifest()["exclusion"]["dataset_files"]) == []


@pytest.mark.slow
@needs_corpus
def test_overlap_with_the_papers_own_datasets_is_the_documented_one():
    """The paper's datasets came after the corpus (GitHub and Pile text): three training documents share text with
    paper_code, listed in data/README.md; the other paper families share none."""
    from sparse_probing.datasets import dataset_path
    from sparse_probing.training.corpus import leaked_documents

    paper = [dataset_path(name, variant).name for name in ("paper_code", "paper_compound_words", "paper_factual")
             for variant in ("smoke", "default")]  # fmt: skip
    overlap = sorted(leaked_documents(files=paper))
    assert overlap == [
        "code-c/glibc-2.36/malloc/memusage.c",
        "code-c/glibc-2.36/sysdeps/ieee754/dbl-64/s_ceil.c",
        "manpages-fr/halt.5#1",
    ]
    readme = (MODELS_DIR.parent / "README.md").read_text()
    assert all(doc in readme for doc in overlap)


def test_mini_models_are_registered():
    text = list_models()
    assert all(spec.name in text for spec in MINI_FAMILY)


@pytest.fixture(scope="module")
def heldout():
    if not CORPUS.exists():
        pytest.skip("the corpus is not built")
    return heldout_sequences(TrainPaths(), TrainSpec())


@pytest.mark.parametrize("spec", MINI_FAMILY, ids=lambda s: s.name)
def test_shipped_model_loads_and_reproduces_its_heldout_loss(spec: MiniModelSpec, heldout):
    directory = MODELS_DIR / spec.name
    if not (directory / SUMMARY_FILE).exists():
        pytest.skip(f"{spec.name} is not trained yet ({directory} missing): run `make models`")
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    assert summary["corpus_sha256"] == file_sha256(CORPUS), "the corpus changed after this model was trained"
    model = load_model(spec.name)
    assert model.n_layers == spec.n_layers and model.d_mlp == spec.d_mlp
    assert fingerprint(spec.name) == model.weights_digest
    n = summary["check_slice"]["first_sequences_per_domain"]
    for domain, expected in summary["check_loss"].items():
        assert heldout_loss(model.bridge, heldout[domain][:n]) == pytest.approx(expected, abs=2e-3), domain
    tokens = model.tokenizer(["def f(x):\n    return x", "Le chat est noir."], return_tensors="pt", padding=True)
    names = [f"blocks.{layer}.mlp.hook_post" for layer in range(spec.n_layers)]
    _, cache = model.bridge.run_with_cache(tokens["input_ids"], names_filter=names)
    assert all(cache[name].shape[-1] == spec.d_mlp for name in names)
