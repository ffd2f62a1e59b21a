"""Fault injection on training checkpoints: a damaged checkpoint is discarded with a warning and training starts
again, ending with the same weights as an undisturbed run; a half-written temporary file is ignored."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_training_run import TINY, TINY_TRAIN, _docs, _paths

from sparse_probing.training.corpus import CORPUS_FILE, write_corpus
from sparse_probing.training.tokenizer import TokenizerSpec, train_tokenizer
from sparse_probing.training.trainer import TrainPaths, train_model


@pytest.fixture(scope="module")
def base_paths(tmp_path_factory) -> TrainPaths:
    root = tmp_path_factory.mktemp("mini-faults")
    (root / "corpus").mkdir()
    docs = _docs()
    write_corpus(docs, root / "corpus" / CORPUS_FILE)
    train_tokenizer(docs, TokenizerSpec(vocab_size=300), root / "models" / "tokenizer")
    return TrainPaths(root / "corpus" / CORPUS_FILE, root / "models" / "tokenizer", root / "models", root / "work")


@pytest.fixture(scope="module")
def straight_weights(base_paths, tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    paths = _paths(base_paths, tmp_path_factory.mktemp("straight"))
    assert train_model(TINY, TINY_TRAIN, paths, progress=False).status == "finished"
    yield load_file(paths.models_dir / TINY.name / "model.safetensors")
    torch.set_num_threads(before)


@pytest.mark.parametrize("damage", ["flip", "zero", "truncate", "empty", "wrong content", "stale tmp"])
def test_damaged_checkpoint_still_ends_with_the_undisturbed_weights(base_paths, straight_weights, tmp_path, damage):
    paths = _paths(base_paths, tmp_path)
    assert train_model(TINY, TINY_TRAIN, paths, stop_after_steps=5, progress=False).status == "interrupted"
    ckpt = paths.work_dir / TINY.name / "checkpoint.pt"
    original = torch.load(ckpt, map_location="cpu", weights_only=True)
    data = bytearray(ckpt.read_bytes())
    rng = np.random.default_rng(zlib.crc32(damage.encode()))
    if damage in ("flip", "zero"):
        start = int(rng.integers(0, len(data) - 64))
        for i in range(start, start + 64):
            data[i] = data[i] ^ 0xFF if damage == "flip" else 0
        ckpt.write_bytes(bytes(data))
    elif damage == "truncate":
        ckpt.write_bytes(bytes(data[: int(rng.integers(1, len(data)))]))
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "wrong content":
        torch.save({"step": 3}, ckpt)
    else:  # killed while writing the next checkpoint: the temporary file is half written
        ckpt.with_suffix(".tmp").write_bytes(bytes(data[: len(data) // 2]))

    harmless = damage == "stale tmp" or _same_state(ckpt, original)  # e.g. zeroed bytes of the zip's padding
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train_model(TINY, TINY_TRAIN, paths, progress=False)
    noticed = any("checkpoint" in str(w.message) and "damaged" in str(w.message) for w in caught)
    assert noticed or harmless, "a damaged checkpoint went unnoticed"
    assert result.status == "finished"
    weights = load_file(paths.models_dir / TINY.name / "model.safetensors")
    assert all(torch.equal(weights[k], straight_weights[k]) for k in straight_weights)


def _same_state(path: Path, original: dict[str, Any]) -> bool:
    """True when the damaged file still loads as exactly the original state."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return _digest(state) == _digest(original)


def _digest(state: dict[str, Any]) -> str:
    from sparse_probing.training.trainer import _state_digest

    return _state_digest(state)
