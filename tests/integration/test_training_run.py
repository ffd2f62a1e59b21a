"""The training script on a tiny config: runs, logs, resumes to identical weights, skips finished models, saves a
model the registry loads, and the report is generated from the logs. Seconds, not minutes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from sparse_probing.training.corpus import CORPUS_FILE, CorpusDocument, write_corpus
from sparse_probing.training.family import MiniModelSpec, TrainSpec
from sparse_probing.training.report import make_report, scaling_check
from sparse_probing.training.tokenizer import TokenizerSpec, load_tokenizer, train_tokenizer
from sparse_probing.training.trainer import (
    LOG_FILE,
    STOP,
    SUMMARY_FILE,
    TrainPaths,
    heldout_loss,
    heldout_sequences,
    prepare_data,
    train_model,
)

TINY = MiniModelSpec("mini-t", n_layers=1, d_model=32, n_heads=2, lr=3e-3)
TINY_TRAIN = TrainSpec(
    token_budget=12 * 2 * 32,
    batch_size=2,
    seq_len=32,
    eval_every=4,
    curve_sequences=2,
    final_sequences=2,
    check_sequences=1,
)


def _docs() -> list[CorpusDocument]:
    rng = np.random.default_rng(0)
    words = {
        "english": "the cat sat on a mat and the dog ran to the park while birds sang".split(),
        "languages": "der hund lief in den park und die katze sass auf der matte".split(),
        "code": "def f ( x ) : return x + 1 if x else None for i in range".split(),
    }
    docs = []
    for domain, vocab in words.items():
        for i in range(40):
            text = " ".join(rng.choice(vocab, size=60))
            split = "heldout" if i < 6 else "train"
            docs.append(CorpusDocument(f"{domain}/{i}", f"src-{domain}", domain, "xx", f"g{i}", split, text))
    return docs


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory: pytest.TempPathFactory) -> TrainPaths:
    root = tmp_path_factory.mktemp("mini")
    (root / "corpus").mkdir()
    docs = _docs()
    write_corpus(docs, root / "corpus" / CORPUS_FILE)
    train_tokenizer(docs, TokenizerSpec(vocab_size=300), root / "models" / "tokenizer")
    return TrainPaths(root / "corpus" / CORPUS_FILE, root / "models" / "tokenizer", root / "models", root / "work")


def _paths(base: TrainPaths, tmp_path: Path) -> TrainPaths:
    return TrainPaths(base.corpus, base.tokenizer, tmp_path / "models", tmp_path / "work")


def test_tokenizer_prepends_eot_and_round_trips(tiny_paths):
    tok = load_tokenizer(tiny_paths.tokenizer)
    enc = tok("the cat sat", return_offsets_mapping=True)
    assert enc["input_ids"][0] == tok.convert_tokens_to_ids("<|endoftext|>") == 0
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == "the cat sat"
    assert len(tok) == 300


def test_data_order_is_fixed_by_the_seed(tiny_paths, tmp_path):
    a = prepare_data(tiny_paths, TINY_TRAIN, verbose=False)
    b = prepare_data(_paths(tiny_paths, tmp_path), TINY_TRAIN, verbose=False)  # rebuilt, not read from a cache
    assert a.key == b.key and np.array_equal(a.train_NP, b.train_NP)
    assert set(a.heldout) == {"english", "languages", "code"}
    assert torch.equal(a.batch(3, 2), torch.from_numpy(a.train_NP[6:8].astype(np.int64)))


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tiny_paths, tmp_path):
    torch.set_num_threads(1)
    straight = _paths(tiny_paths, tmp_path / "straight")
    resumed = _paths(tiny_paths, tmp_path / "resumed")
    r = train_model(TINY, TINY_TRAIN, straight, progress=False)
    assert r.status == "finished" and r.steps_done == TINY_TRAIN.n_steps == 12

    first = train_model(TINY, TINY_TRAIN, resumed, stop_after_steps=5, progress=False)
    assert first.status == "interrupted" and first.steps_done == 5
    assert (resumed.work_dir / TINY.name / "checkpoint.pt").exists()
    assert not (resumed.models_dir / TINY.name).exists()  # no partial model directory
    STOP.set()  # a signal during the next run: it stops after one step
    try:
        second = train_model(TINY, TINY_TRAIN, resumed, progress=False)
    finally:
        STOP.clear()
    assert second.status == "interrupted" and second.steps_done == 6
    third = train_model(TINY, TINY_TRAIN, resumed, progress=False)
    assert third.status == "finished"

    a = load_file(straight.models_dir / TINY.name / "model.safetensors")
    b = load_file(resumed.models_dir / TINY.name / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.dtype == torch.float16 for v in a.values())

    def train_rows(paths: TrainPaths) -> list[tuple[int, float]]:
        rows = [json.loads(x) for x in (paths.models_dir / TINY.name / LOG_FILE).read_text().splitlines()]
        return [(r["step"], r["loss"]) for r in rows if r["kind"] == "train"]

    assert train_rows(straight) == train_rows(resumed) and len(train_rows(resumed)) == 12
    assert not (resumed.work_dir / TINY.name / "checkpoint.pt").exists()

    again = train_model(TINY, TINY_TRAIN, resumed, progress=False)
    assert again.status == "skipped"


def test_saved_model_loads_in_the_registry_and_reproduces_its_loss(tiny_paths, tmp_path):
    from sparse_probing.models import load_model

    paths = _paths(tiny_paths, tmp_path)
    train_model(TINY, TINY_TRAIN, paths, progress=False)
    directory = paths.models_dir / TINY.name
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    assert summary["params_non_embedding"] == TINY.non_embedding_params
    model = load_model(str(directory))
    assert model.n_layers == 1 and model.d_mlp == 128
    held = heldout_sequences(paths, TINY_TRAIN)
    for domain, expected in summary["check_loss"].items():
        assert heldout_loss(model.bridge, held[domain][: TINY_TRAIN.check_sequences]) == pytest.approx(
            expected, abs=2e-3
        )
    tokens = model.tokenizer(["the cat sat on a mat"], return_tensors="pt")["input_ids"]
    _, cache = model.bridge.run_with_cache(tokens, names_filter="blocks.0.mlp.hook_post")
    assert tuple(cache["blocks.0.mlp.hook_post"].shape) == (1, tokens.shape[1], 128)


def test_report_from_logs(tiny_paths, tmp_path):
    paths = _paths(tiny_paths, tmp_path)
    train_model(TINY, TINY_TRAIN, paths, progress=False)
    report = make_report(paths.models_dir, specs=[TINY])
    text = report.read_text()
    assert "mini-t" in text and "Held-out loss" in text and "Only one model" in text
    assert (paths.models_dir / "training_report.png").stat().st_size > 10_000


def test_scaling_check_names_exceptions():
    df = pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "params_non_embedding": [1, 2, 3],
            "loss_english": [3.0, 2.5, 2.0],
            "loss_code": [3.0, 3.1, 2.0],
        }
    )
    check = scaling_check(df)
    assert check["english"] == [] and len(check["code"]) == 1 and check["code"][0].startswith("b (3.100)")
