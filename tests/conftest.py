"""Shared fixtures and marker handling.

Tiers: unit (no model), integration (the tiny locally built model; real pretrained models behind ``slow``),
notebooks (papermill runs of the smoke variants). ``network`` tests need a model hub and are skipped offline;
``gpu`` tests need CUDA.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub call must fail at once, not retry for ~23 s

import pytest
import torch

from sparse_probing.datasets.base import Document, Feature, ProbingDataset, Span


def _hub_reachable() -> bool:
    from sparse_probing.models import _hub_reachable as reachable

    return reachable(timeout=2.0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_network = pytest.mark.skip(reason="needs a model hub (offline here; set HF_HUB_OFFLINE=0 with a network)")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    has_network = any("network" in item.keywords for item in items) and _hub_reachable()
    for item in items:
        if "network" in item.keywords and not has_network:
            item.add_marker(skip_network)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read or write the user's activation cache."""
    monkeypatch.setenv("SPARSE_PROBING_CACHE", str(tmp_path_factory.getbasetemp() / "activation-cache"))


@pytest.fixture(scope="session")
def tiny_model():
    """The randomly initialised 2-layer GPT-NeoX, shared read-only by the integration tests."""
    from sparse_probing.models import load_model

    return load_model("tiny-neox")


def make_toy_dataset(n_docs: int = 24, name: str = "toy", level: str = "document") -> ProbingDataset:
    """A small dataset with multi-byte text and varied lengths (so batches need padding).

    Document level: label ``parity`` (odd/even index). Span level: ``is_cafe``, 1 on every word "café" and 0 on
    every other word.
    """
    words = ["Héllo", "wörld", "naïve", "café", "straße", "data", "neuron", "probe", "日本", "sparse"]
    docs = []
    for i in range(n_docs):
        tokens = [words[(i + j) % len(words)] for j in range(3 + (i * 7) % 23)]
        text = " ".join(tokens)
        spans, pos = [], 0
        for w in tokens:
            spans.append(Span(pos, pos + len(w), int(w == "café")))
            pos += len(w) + 1
        docs.append(
            Document(
                doc_id=f"d{i}",
                group=f"g{i // 3}",
                text=text,
                labels={"parity": "odd" if i % 2 else "even"},
                spans={"is_cafe": tuple(spans)},
            )
        )
    feature = Feature("parity") if level == "document" else Feature("is_cafe")
    return ProbingDataset(
        name=name, version="1", variant="smoke", level=level, features=(feature,), documents=tuple(docs)
    )


@pytest.fixture
def toy_dataset() -> ProbingDataset:
    return make_toy_dataset()
