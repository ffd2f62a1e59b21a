"""The activation cache: MLP neuron activations per (model, dataset, layers, pooling), computed once.

For every example of a probing dataset (a whole document, a labelled span, an entity name) the cache stores
one row per layer: the MLP post-nonlinearity activations (``blocks.{l}.mlp.hook_post``) pooled over the
example's tokens (masked mean, max, or the last token). One forward pass per batch computes all requested
layers and stops after the last of them; the logits are never computed.

On disk an entry is a directory ``data/cache/activations/<key>/`` holding one fp16 ``.npy`` array per hook
(N examples x D neurons, memory-mappable), ``examples.json`` (the labels) and ``meta.json`` (the spec, the
identities of model and dataset, sizes and checksums). The key is a hash of everything that changes the
content. Entries are built in ``<key>.partial/`` and renamed into place when complete; a complete entry is never
overwritten. An interrupted run leaves only the ``.partial`` directory, which the next run resumes. A corrupt or
truncated entry is detected on load and recomputed with a warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from sparse_probing.datasets import load_dataset
from sparse_probing.datasets.base import ProbingDataset, align
from sparse_probing.models import REPO_ROOT, LoadedModel, ModelSpec, fingerprint, load_model

from ._progress import tqdm

__all__ = ["ActivationSpec", "CachedActivations", "cache_root", "load_or_compute"]

CACHE_FORMAT = 1
Reduce = Literal["mean", "max", "last"]


def cache_root() -> Path:
    """Where entries live: ``$SPARSE_PROBING_CACHE`` or ``data/cache/activations`` in the repository."""
    return Path(os.environ.get("SPARSE_PROBING_CACHE", REPO_ROOT / "data" / "cache" / "activations"))


@dataclass(frozen=True)
class ActivationSpec:
    """What to cache. Every field but ``batch_size`` changes the content and so enters the key."""

    model: str
    """Model name as understood by :func:`sparse_probing.models.load_model`."""
    dataset: str
    """Dataset family name (see :func:`sparse_probing.datasets.list_datasets`)."""
    variant: str = "default"
    """Dataset size variant (``smoke`` or ``default``)."""
    layers: tuple[int, ...] | None = None
    """Layers to cache; None means every layer of the model."""
    site: str = "mlp.hook_post"
    """Hook inside each block: activations are read at ``blocks.{layer}.{site}``."""
    reduce: Reduce | None = None
    """Pooling over an example's tokens; None uses the dataset's default (mean for documents)."""
    max_length: int = 128
    """Context length in tokens (documents are truncated; spans beyond it are dropped)."""
    n_documents: int | None = None
    """Use only the first n documents of the dataset (None: all)."""
    dtype: str = "float32"
    """Model dtype for the forward pass (activations are stored as float16 whatever this is)."""
    revision: str | None = None
    """Hub revision for hub models."""
    batch_size: int = 8
    """Documents per forward pass (speed and memory only; not part of the key)."""

    def __post_init__(self) -> None:
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))
            if not self.layers or min(self.layers) < 0:
                raise ValueError(f"layers must be non-negative layer indices, got {self.layers}")
        if self.reduce not in (None, "mean", "max", "last"):
            raise ValueError(f"reduce must be 'mean', 'max', 'last' or None, got {self.reduce!r}")
        if self.max_length < 2 or self.batch_size < 1:
            raise ValueError("max_length must be >= 2 and batch_size >= 1")

    @property
    def model_spec(self) -> ModelSpec:
        return ModelSpec(name=self.model, dtype=self.dtype, revision=self.revision)

    def hook_name(self, layer: int) -> str:
        return f"blocks.{layer}.{self.site}"

    def content_fields(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("batch_size")
        return d


@dataclass
class CachedActivations:
    """A complete cache entry, arrays memory-mapped."""

    path: Path
    meta: dict[str, Any]
    examples: pd.DataFrame
    """One row per example: doc, tok_start, tok_end, group and one column per feature."""
    _arrays: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def layers(self) -> list[int]:
        return list(self.meta["layers"])

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    @property
    def dataset_key(self) -> str:
        """The versioned key of the dataset slice behind this entry, e.g. ``natural_language-default[:540]-v1-…``."""
        return self.meta["dataset"]["key"]

    def layer(self, layer: int) -> np.ndarray:
        """Activations of one layer, shape (N examples, D neurons), float16, memory-mapped."""
        if layer not in self.meta["layers"]:
            raise KeyError(f"layer {layer} is not in this cache entry (layers {self.layers}); add it to the spec")
        if layer not in self._arrays:
            self._arrays[layer] = np.load(self.path / _array_name(self.meta["hooks"][str(layer)]), mmap_mode="r")
        return self._arrays[layer]

    def __repr__(self) -> str:
        return (
            f"CachedActivations({self.meta['spec']['model']} x {self.dataset_key}, "
            f"{len(self.examples)} examples, layers {self.layers}, d={self.meta['d_mlp']})"
        )


# ---------------------------------------------------------------------------------------------- keys
def _versions() -> dict[str, str]:
    """Major.minor versions of the libraries whose changes can alter activations."""
    return {pkg: ".".join(version(pkg).split(".")[:2]) for pkg in ("torch", "transformers", "transformer-lens")}


def _tokenizer_digest(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(spec: ActivationSpec, dataset: ProbingDataset, model_digest: str) -> str:
    """Hash of everything that changes an entry's content."""
    payload = {
        "format": CACHE_FORMAT,
        "spec": spec.content_fields(),
        "dataset": dataset.key,
        "model_digest": model_digest,
        "versions": _versions(),
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    slug = f"{spec.model.replace('/', '_').strip('._')}-{spec.dataset}-{spec.variant}"[:80]
    return f"{slug}-{hashlib.sha256(blob).hexdigest()[:16]}"


def _array_name(hook: str) -> str:
    return f"{hook}.npy"


# ---------------------------------------------------------------------------------------------- pooling
def pool(
    acts_BPD: torch.Tensor, batch_idx: np.ndarray, start: np.ndarray, end: np.ndarray, reduce: Reduce
) -> np.ndarray:
    """Pool token activations over each example's window ``[start, end)`` of sequence ``batch_idx``.

    Returns an (N, D) float32 array. Windows hold only real tokens (padding and special tokens excluded by
    :func:`~sparse_probing.datasets.base.align`), so a mean here is the masked mean.
    """
    b = torch.as_tensor(batch_idx)
    s, e = torch.as_tensor(start), torch.as_tensor(end)
    if reduce == "last":
        out_ND = acts_BPD[b, e - 1]
    elif reduce == "mean":
        csum_BPD = torch.cumsum(acts_BPD.double(), dim=1)
        csum_BPD = torch.cat([torch.zeros_like(csum_BPD[:, :1]), csum_BPD], dim=1)
        out_ND = (csum_BPD[b, e] - csum_BPD[b, s]) / (e - s).unsqueeze(1).double()
    else:
        out_ND = torch.stack([acts_BPD[bi, si:ei].amax(dim=0) for bi, si, ei in zip(b, s, e, strict=True)])
    return out_ND.float().numpy()


# ---------------------------------------------------------------------------------------------- writing
def _batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Document indices grouped into batches of similar length (less padding), in a deterministic order."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _header_size(path: Path) -> int:
    with open(path, "rb") as fh:
        np.lib.format.read_magic(fh)
        np.lib.format.read_array_header_1_0(fh)
        return fh.tell()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _pad(ids: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids and attention mask for one batch of documents."""
    width = max(len(x) for x in ids)
    tokens_BP = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask_BP = torch.zeros((len(ids), width), dtype=torch.long)
    for j, x in enumerate(ids):
        tokens_BP[j, : len(x)] = torch.as_tensor(x)
        mask_BP[j, : len(x)] = 1
    return tokens_BP, mask_BP


class _Done(Exception):
    """Raised from the last needed hook: nothing after it (later blocks, unembedding) is computed."""


def _forward_pooled(
    model: LoadedModel, tokens_BP: torch.Tensor, mask_BP: torch.Tensor, hooks: list[str],
    windows: tuple[np.ndarray, np.ndarray, np.ndarray], reduce: Reduce,
) -> dict[str, np.ndarray]:  # fmt: skip
    """One forward pass that stops at the last of ``hooks``; each hook's activations pooled over the windows.

    Pooling happens inside the hook, so only one layer's (B, P, D) activations are alive at a time. The pass is
    cut short by an exception from the last hook (TransformerLens removes the hooks in a ``finally``), which also
    skips the final norm and the unembedding when every layer is requested.
    """
    pooled: dict[str, np.ndarray] = {}
    last = hooks[-1]

    def pool_into(name: str) -> Any:
        def fn(acts_BPD: torch.Tensor, hook: Any) -> None:
            pooled[name] = pool(acts_BPD.float(), *windows, reduce).astype(np.float16)
            if name == last:
                raise _Done

        return fn

    with torch.inference_mode():
        try:
            model.bridge.run_with_hooks(
                tokens_BP,
                fwd_hooks=[(hook, pool_into(hook)) for hook in hooks],
                return_type=None,
                attention_mask=mask_BP,
            )
        except _Done:
            pass
    missing = [h for h in hooks if h not in pooled]
    if missing:
        raise RuntimeError(f"hooks {missing} never fired during the forward pass: are they hooks of this model?")
    return pooled


def _start_or_resume(partial: Path, key: str, spec: ActivationSpec, hooks: list[str], n: int, d: int) -> dict:
    """The progress record of a ``.partial`` directory, resumed if it belongs to this key, else started afresh."""
    progress_path = partial / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else None
    if progress is None or progress.get("key") != key or progress.get("batch_size") != spec.batch_size:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for hook in hooks:
            np.lib.format.open_memmap(partial / _array_name(hook), mode="w+", dtype=np.float16, shape=(n, d)).flush()
        progress = {"key": key, "batch_size": spec.batch_size, "done": []}
        progress_path.write_text(json.dumps(progress))
    return progress


def _compute(
    spec: ActivationSpec, dataset: ProbingDataset, model: LoadedModel, key: str, partial: Path, model_digest: str
) -> None:
    layers = sorted(set(spec.layers)) if spec.layers is not None else list(range(model.n_layers))
    if max(layers) >= model.n_layers:
        raise ValueError(f"layer {max(layers)} requested, but {spec.model} has layers 0..{model.n_layers - 1}")
    reduce: Reduce = spec.reduce or dataset.default_reduce
    hooks = [spec.hook_name(layer) for layer in layers]
    alignment = align(dataset, model.tokenizer, spec.max_length)
    ex = alignment.examples
    if len(ex) == 0:
        raise ValueError(f"no example of {dataset.key} survives tokenization at max_length={spec.max_length}")
    n, d = len(ex), model.d_mlp
    lengths = np.array([len(ids) for ids in alignment.input_ids])
    batches = _batches(lengths, spec.batch_size)
    progress = _start_or_resume(partial, key, spec, hooks, n, d)
    progress_path = partial / "progress.json"
    done = set(progress["done"])
    offsets = {hook: _header_size(partial / _array_name(hook)) for hook in hooks}
    rows_by_doc = ex.groupby("doc").indices
    ex_doc, ex_start, ex_end = (ex[c].to_numpy() for c in ("doc", "tok_start", "tok_end"))
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    files = {hook: open(partial / _array_name(hook), "r+b") for hook in hooks}
    try:
        bar = tqdm(total=len(batches), initial=len(done), desc=f"caching {spec.model} x {spec.dataset}", unit="batch")
        for bi, docs in enumerate(batches):
            if bi in done:
                continue
            rows = np.concatenate([rows_by_doc.get(int(doc), np.empty(0, dtype=np.int64)) for doc in docs])
            if rows.size:
                local = {int(doc): j for j, doc in enumerate(docs)}
                windows = (np.array([local[int(x)] for x in ex_doc[rows]]), ex_start[rows], ex_end[rows])
                tokens_BP, mask_BP = _pad([alignment.input_ids[doc] for doc in docs], pad_id)
                pooled = _forward_pooled(model, tokens_BP, mask_BP, hooks, windows, reduce)
                for hook, fh in files.items():
                    for r, row_D in zip(rows, pooled[hook], strict=True):
                        fh.seek(offsets[hook] + int(r) * d * 2)
                        fh.write(row_D.tobytes())
            for fh in files.values():
                fh.flush()
                os.fsync(fh.fileno())
            done.add(bi)
            progress["done"] = sorted(done)
            tmp = progress_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(progress))
            tmp.replace(progress_path)  # only batches whose rows are on disk are ever marked done
            bar.update(1)
        bar.close()
    finally:
        for fh in files.values():
            fh.close()

    ex.to_json(partial / "examples.json", orient="split", index=False)
    meta = {
        "format": CACHE_FORMAT,
        "key": key,
        "spec": asdict(spec),
        "reduce": reduce,
        "layers": layers,
        "hooks": {str(layer): hook for layer, hook in zip(layers, hooks, strict=True)},
        "n_examples": n,
        "d_mlp": d,
        "n_dropped": alignment.n_dropped,
        "n_tokens": int(lengths.sum()),
        "features": dataset.feature_names,
        "model": {**model.identity, "weights_digest": model_digest},
        "tokenizer_digest": _tokenizer_digest(model.tokenizer),
        "dataset": {"key": dataset.key, "sha256": dataset.sha256, "version": dataset.version},
        "versions": _versions(),
        "sha256": {hook: _file_sha256(partial / _array_name(hook)) for hook in hooks},
    }
    progress_path.unlink()
    (partial / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


# ---------------------------------------------------------------------------------------------- reading
def _check_entry(path: Path, verify: bool) -> str | None:
    """None when the entry is complete and intact, else what is wrong with it."""
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return "meta.json is missing"
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return "meta.json is not valid JSON"
    n, d = meta["n_examples"], meta["d_mlp"]
    if not (path / "examples.json").exists():
        return "examples.json is missing"
    for hook, digest in meta["sha256"].items():
        f = path / _array_name(hook)
        if not f.exists():
            return f"{f.name} is missing"
        try:
            header = _header_size(f)
        except (ValueError, OSError) as err:
            return f"{f.name} has a broken header ({err})"
        if f.stat().st_size != header + n * d * 2:
            return f"{f.name} has {f.stat().st_size} bytes, expected {header + n * d * 2} (truncated?)"
        if verify and _file_sha256(f) != digest:
            return f"{f.name} does not match its sha256 in meta.json"
    return None


def _open_entry(path: Path) -> CachedActivations:
    meta = json.loads((path / "meta.json").read_text())
    examples = pd.read_json(path / "examples.json", orient="split", dtype=False)
    return CachedActivations(path=path, meta=meta, examples=examples)


def load_or_compute(
    spec: ActivationSpec,
    *,
    model: LoadedModel | None = None,
    dataset: ProbingDataset | None = None,
    root: str | Path | None = None,
    verify: bool = False,
) -> CachedActivations:
    """Return the cache entry for ``spec``, computing (or resuming) it if needed.

    ``model`` and ``dataset`` may be passed to reuse objects already in memory (they must match the spec);
    otherwise the dataset is loaded from ``data/datasets`` and the model is loaded only when something must be
    computed. ``verify=True`` also checks every array's sha256 (slower).
    """
    if dataset is None:
        dataset = load_dataset(spec.dataset, spec.variant)
    elif dataset.name != spec.dataset:
        raise ValueError(f"dataset {dataset.name!r} passed for a spec of dataset {spec.dataset!r}")
    if spec.n_documents is not None:
        dataset = dataset.subset(spec.n_documents)
    if model is not None and model.spec.name != spec.model:
        raise ValueError(f"model {model.spec.name!r} passed for a spec of model {spec.model!r}")
    model_digest = model.weights_digest if model is not None else fingerprint(spec.model_spec)
    key = cache_key(spec, dataset, model_digest)
    root = Path(root) if root is not None else cache_root()
    final, partial = root / key, root / f"{key}.partial"

    with _lock(root / f"{key}.lock"):
        if final.exists():
            problem = _check_entry(final, verify)
            if problem is None:
                return _open_entry(final)
            warnings.warn(f"activation cache entry {final} is corrupt ({problem}); recomputing it", stacklevel=2)
            shutil.rmtree(final)
        if model is None:
            model = load_model(spec.model_spec)
        _compute(spec, dataset, model, key, partial, model_digest)
        partial.rename(final)
    return _open_entry(final)
