"""The activation cache: MLP neuron activations per (model, dataset, layers, pooling), computed once.

For every example of a probing dataset (a whole document, a labelled span, an entity name) the cache stores
one row per layer: the MLP post-nonlinearity activations (``blocks.{l}.mlp.hook_post``) pooled over the
example's tokens (masked mean, max, or the last token). One forward pass per batch computes all requested
layers and stops after the last of them; the logits are never computed.

On disk an entry is a directory ``data/cache/activations/<key>/`` holding one fp16 ``.npy`` array per hook
(N examples x D neurons, memory-mappable), ``examples.json`` (the labels) and ``meta.json`` (the spec, the
identities of model and dataset, sizes and checksums). The key is a hash of everything that changes the
content. Entries are built in ``<key>.partial/`` and renamed into place when complete; a complete entry is never
overwritten.

Integrity: ``meta.json`` records the sha256 of every array and of ``examples.json``; every load checks the shape of
``meta.json``, the array headers and sizes, and the checksums (memoized per file in a process, so a second load of an
unchanged entry costs only a ``stat``). A malformed, truncated or altered entry is recomputed with a
:class:`CacheRepairWarning` that names it.

Resume: an interrupted run leaves only the ``.partial`` directory, whose ``progress.json`` lists the documents whose
rows are on disk, in chunks with a checksum each. The next run, whatever its batch size, keeps every chunk whose rows
still match their checksum and computes only the remaining documents. Documents are batched by token length (little
padding); rows are written at their example's index, so the arrays are in the dataset's example order.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from sparse_probing.datasets import is_dataset_file, load_dataset
from sparse_probing.datasets.base import ProbingDataset, align
from sparse_probing.models import LoadedModel, ModelSpec, check_layers, fingerprint, load_model
from sparse_probing.paths import (
    UnsafePathError,
    activation_cache_dir,
    check_name,
    file_sha256,
    file_sha256_cached,
    inside,
    links_inside,
    write_file,
)

from ._progress import tqdm

__all__ = [
    "ActivationSpec",
    "CacheRepairWarning",
    "CachedActivations",
    "EntryPlan",
    "cache_root",
    "compute_rows",
    "entry_plan",
    "load_or_compute",
    "write_rows",
]

CACHE_FORMAT = 1
Reduce = Literal["mean", "max", "last"]


CHECKPOINT_SECONDS = 1.0
"""Finished rows are made durable (fsync) and recorded in ``progress.json`` at most this often, and at the end."""

_SITE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class CacheRepairWarning(UserWarning):
    """A cache entry or an interrupted run's progress was damaged; the warning says which and what is recomputed."""


def cache_root() -> Path:
    """Where entries live: ``$SPARSE_PROBING_CACHE`` or ``data/cache/activations`` in the repository."""
    return activation_cache_dir()


@dataclass(frozen=True)
class ActivationSpec:
    """What to cache. Every field but ``batch_size`` changes the content and so enters the key."""

    model: str
    """Model name as understood by :func:`sparse_probing.models.load_model`."""
    dataset: str
    """Dataset family name (see :func:`sparse_probing.datasets.list_datasets`), or the path of a dataset file
    (``.csv``/``.tsv``/``.jsonl``, see :mod:`sparse_probing.datasets.user`; its content digest enters the key)."""
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
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty name or directory, got {self.model!r}")
        if not is_dataset_file(self.dataset):  # a user's file is named by its path
            check_name(self.dataset, "dataset")
        check_name(self.variant, "variant")
        if not isinstance(self.site, str) or not _SITE.fullmatch(self.site):
            raise ValueError(f"site must be a hook name inside a block such as 'mlp.hook_post', got {self.site!r}")
        if self.layers is not None:
            if isinstance(self.layers, str | bytes) or not all(_is_int(x) for x in self.layers):
                raise ValueError(f"layers must be a tuple of layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))
            if not self.layers or min(self.layers) < 0:
                raise ValueError(f"layers must be non-negative layer indices, got {self.layers}")
        if self.reduce not in (None, "mean", "max", "last"):
            raise ValueError(f"reduce must be 'mean', 'max', 'last' or None, got {self.reduce!r}")
        for name, low in (("max_length", 2), ("batch_size", 1)):
            if not _is_int(getattr(self, name)) or getattr(self, name) < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {getattr(self, name)!r}")
        if self.n_documents is not None and (not _is_int(self.n_documents) or self.n_documents < 1):
            raise ValueError(
                f"n_documents must be a positive number of documents (or None for all), got {self.n_documents!r}"
            )

    @property
    def model_spec(self) -> ModelSpec:
        return ModelSpec(name=self.model, dtype=self.dtype, revision=self.revision)

    def hook_name(self, layer: int) -> str:
        return f"blocks.{layer}.{self.site}"

    def content_fields(self) -> dict[str, Any]:
        """The fields that change an entry's content (see :func:`_content_fields`)."""
        return _content_fields(asdict(self))


def _content_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Spec fields without ``batch_size``; a dataset file is named by its file name only and has no variant: its
    content digest (in the dataset key) identifies it, so ``mine.csv`` and its absolute path share one entry."""
    d = {k: v for k, v in fields.items() if k != "batch_size"}
    if is_dataset_file(str(d.get("dataset", ""))):
        d["dataset"] = Path(d["dataset"]).name
        d["variant"] = "file"
    return d


def site_width(model: LoadedModel, site: str) -> int:
    """Width of the activations at ``blocks.{l}.{site}``: ``d_mlp`` inside the MLP (its pre- and post-activation
    hooks), ``d_model`` elsewhere (the residual stream, attention and MLP outputs)."""
    if site in ("mlp.hook_post", "mlp.hook_pre"):
        return model.d_mlp
    return int(model.bridge.cfg.d_model)


def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


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
@functools.cache
def _versions() -> dict[str, str]:
    """Major.minor versions of the libraries whose changes can alter activations."""
    return {pkg: ".".join(version(pkg).split(".")[:2]) for pkg in ("torch", "transformers", "transformer-lens")}


def _tokenizer_digest(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(spec: ActivationSpec, dataset: ProbingDataset, model_digest: str) -> str:
    """Hash of everything that changes an entry's content."""
    fields = spec.content_fields()
    payload = {
        "format": CACHE_FORMAT,
        "spec": fields,
        "dataset": dataset.key,
        "model_digest": model_digest,
        "versions": dict(_versions()),
    }
    if spec.site not in ("mlp.hook_post", "mlp.hook_pre"):
        # entries of other sites written before their width was read from the site (d_model) were laid out with
        # d_mlp columns: a new key keeps them from being read
        payload["site_width"] = "d_model"
    blob = json.dumps(payload, sort_keys=True).encode()
    slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", f"{spec.model}-{fields['dataset']}-{fields['variant']}")
    slug = re.sub(r"\.{2,}", "_", slug).strip("._-")[:80]  # one plain path component, whatever the names hold
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
        # one batched matmul: row j of document b averages that document's window j (weights 1/len inside it)
        n_B = torch.bincount(b, minlength=acts_BPD.shape[0])
        slot_N = torch.zeros_like(b)
        order = torch.argsort(b, stable=True)
        first_B = torch.cumsum(n_B, 0) - n_B
        slot_N[order] = torch.arange(len(b)) - first_B[b[order]]
        pos_P = torch.arange(acts_BPD.shape[1])
        inside_NP = (pos_P >= s.unsqueeze(1)) & (pos_P < e.unsqueeze(1))
        weights_BMP = torch.zeros(acts_BPD.shape[0], int(n_B.max()), acts_BPD.shape[1], dtype=acts_BPD.dtype)
        weights_BMP[b, slot_N] = inside_NP.to(acts_BPD.dtype) / (e - s).unsqueeze(1).to(acts_BPD.dtype)
        out_ND = torch.bmm(weights_BMP, acts_BPD)[b, slot_N]
    else:
        out_ND = torch.stack([acts_BPD[bi, si:ei].amax(dim=0) for bi, si, ei in zip(b, s, e, strict=True)])
    return out_ND.float().numpy()


# ---------------------------------------------------------------------------------------------- writing
def _batches(lengths: np.ndarray, docs: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``docs`` grouped into batches of similar token length (longest first, little padding), deterministically."""
    order = docs[np.argsort(-lengths[docs], kind="stable")]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # never through a link (and never truncating): a lock file holds nothing
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as err:
        raise UnsafePathError(f"cannot open the lock file {path} ({err}): is it a symbolic link? delete it") from None
    with os.fdopen(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header size in bytes) of a ``.npy`` file; ValueError if the header is broken."""
    with open(path, "rb") as fh:
        major, _ = np.lib.format.read_magic(fh)
        if major != 1:
            raise ValueError(f"unexpected .npy format version {major}")
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        return shape, fortran, dtype, fh.tell()


def _header_size(path: Path) -> int:
    return _read_header(path)[3]


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


def _rows_digest(files: dict[str, Any], offsets: dict[str, int], rows: np.ndarray, d: int) -> str:
    """sha256 of the stored rows ``rows`` (sorted) of every hook's array, read back from the open files."""
    h = hashlib.sha256()
    for hook, fh in files.items():
        for r in np.sort(rows):
            fh.seek(offsets[hook] + int(r) * d * 2)
            h.update(fh.read(d * 2))
    return h.hexdigest()


def _fresh_partial(partial: Path, key: str, hooks: list[str], n: int, d: int) -> dict:
    if partial.exists() or partial.is_symlink():
        _discard(partial)
    partial.mkdir(parents=True)
    for hook in hooks:
        np.lib.format.open_memmap(partial / _array_name(hook), mode="w+", dtype=np.float16, shape=(n, d)).flush()
    progress = {"format": 2, "key": key, "chunks": []}
    _write_json(partial / "progress.json", progress)
    return progress


def _write_json(path: Path, obj: Any) -> None:
    write_file(path, json.dumps(obj))


def _resume(partial: Path, key: str, hooks: list[str], n: int, d: int, batches_of: Any, rows_by_doc: dict) -> dict:
    """The progress record of a ``.partial`` directory: resumed if it belongs to this key, else started afresh.

    Kept: every recorded chunk of documents whose rows still match the chunk's checksum. Anything else is dropped
    with a :class:`CacheRepairWarning` that says how many documents will be computed again.
    """
    progress_path = partial / "progress.json"
    if not partial.is_dir() or partial.is_symlink():
        return _fresh_partial(partial, key, hooks, n, d)
    links = links_inside(partial)
    if links:  # a planted link would make the run write outside the cache
        warnings.warn(
            f"unfinished cache run {partial} holds symbolic links ({', '.join(p.name for p in links[:3])}); starting "
            "it again without them", CacheRepairWarning, stacklevel=3,
        )  # fmt: skip
        return _fresh_partial(partial, key, hooks, n, d)
    try:
        progress = json.loads(progress_path.read_text())
    except (OSError, ValueError):
        progress = None
    if not isinstance(progress, dict) or progress.get("key") != key:
        if progress_path.exists() or any(partial.iterdir()):
            warnings.warn(
                f"unfinished cache run {partial} has a progress record that is unreadable or belongs to another key;"
                " starting it again", CacheRepairWarning, stacklevel=3,
            )  # fmt: skip
        return _fresh_partial(partial, key, hooks, n, d)
    if progress.get("format") != 2:  # the older record: finished batches of a given batch size
        try:
            batches = batches_of(int(progress["batch_size"]))
            chunks = [{"docs": [int(x) for x in batches[int(bi)]], "sha256": None} for bi in progress["done"]]
        except (KeyError, TypeError, ValueError, IndexError):
            chunks = []
        progress = {"format": 2, "key": key, "chunks": chunks}
    chunks = progress.get("chunks")
    try:
        for hook in hooks:
            shape, fortran, dtype, _ = _read_header(partial / _array_name(hook))
            if shape != (n, d) or fortran or dtype != np.float16:
                raise ValueError(f"{hook} has shape {shape}, dtype {dtype}")
            if (partial / _array_name(hook)).stat().st_size != _header_size(partial / _array_name(hook)) + n * d * 2:
                raise ValueError(f"{hook} is truncated")
        if not isinstance(chunks, list):
            raise ValueError("chunks is not a list")
    except (OSError, ValueError) as err:
        warnings.warn(
            f"unfinished cache run {partial} is damaged ({err}); starting it again", CacheRepairWarning, stacklevel=3
        )
        return _fresh_partial(partial, key, hooks, n, d)
    offsets = {hook: _header_size(partial / _array_name(hook)) for hook in hooks}
    files = {hook: open(partial / _array_name(hook), "rb") for hook in hooks}
    kept, lost = [], 0
    try:
        for chunk in chunks:
            try:
                docs = [int(x) for x in chunk["docs"]]
                if not all(0 <= x < len(rows_by_doc) for x in docs):
                    raise ValueError
                rows = np.concatenate([rows_by_doc[x] for x in docs]) if docs else np.empty(0, dtype=np.int64)
                ok = chunk.get("sha256") is None or _rows_digest(files, offsets, rows, d) == chunk["sha256"]
            except (KeyError, TypeError, ValueError, AttributeError):
                ok, docs = False, []
            if ok:
                kept.append({"docs": docs, "sha256": chunk.get("sha256")})
            else:
                lost += len(docs) if docs else 1
    finally:
        for fh in files.values():
            fh.close()
    if lost:
        warnings.warn(
            f"unfinished cache run {partial}: {lost} finished document(s) no longer match their checksum (or their "
            "record is malformed); computing them again", CacheRepairWarning, stacklevel=3,
        )  # fmt: skip
    progress = {"format": 2, "key": key, "chunks": kept}
    _write_json(progress_path, progress)
    return progress


def _compute(
    spec: ActivationSpec, dataset: ProbingDataset, model: LoadedModel, key: str, partial: Path, model_digest: str
) -> None:
    layers = sorted(set(spec.layers)) if spec.layers is not None else list(range(model.n_layers))
    if max(layers) >= model.n_layers:
        raise ValueError(
            f"layer {max(layers)} requested, but {spec.model} has layers 0..{model.n_layers - 1}: pick layers in "
            "that range"
        )
    reduce: Reduce = spec.reduce or dataset.default_reduce
    hooks = [spec.hook_name(layer) for layer in layers]
    alignment = align(dataset, model.tokenizer, spec.max_length)
    ex = alignment.examples
    if len(ex) == 0:
        raise ValueError(f"no example of {dataset.key} survives tokenization at max_length={spec.max_length}")
    n, d = len(ex), site_width(model, spec.site)
    lengths = np.array([len(ids) for ids in alignment.input_ids])
    n_docs = len(lengths)
    ex_doc, ex_start, ex_end = (ex[c].to_numpy() for c in ("doc", "tok_start", "tok_end"))
    by_doc = ex.groupby("doc").indices
    rows_by_doc = {i: np.asarray(by_doc.get(i, np.empty(0, dtype=np.int64)), dtype=np.int64) for i in range(n_docs)}
    with_rows = np.array([i for i in range(n_docs) if rows_by_doc[i].size], dtype=np.int64)

    def batches_of(batch_size: int) -> list[np.ndarray]:
        return _batches(lengths, with_rows, batch_size)

    progress = _resume(partial, key, hooks, n, d, batches_of, rows_by_doc)
    progress_path = partial / "progress.json"
    done = {x for chunk in progress["chunks"] for x in chunk["docs"]}
    todo = np.array([x for x in with_rows if int(x) not in done], dtype=np.int64)
    offsets = {hook: _header_size(partial / _array_name(hook)) for hook in hooks}
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    files = {hook: open(partial / _array_name(hook), "r+b") for hook in hooks}
    pending: list[int] = []  # documents written since the last checkpoint
    last_checkpoint = time.monotonic()

    def checkpoint() -> None:
        """Make the pending rows durable, then record them (with their checksum) as finished."""
        nonlocal pending, last_checkpoint
        if pending:
            for fh in files.values():
                fh.flush()
                os.fsync(fh.fileno())
            rows = np.concatenate([rows_by_doc[x] for x in pending])
            progress["chunks"].append({"docs": sorted(pending), "sha256": _rows_digest(files, offsets, rows, d)})
            _write_json(progress_path, progress)  # only rows already on disk are ever recorded
            pending = []
        last_checkpoint = time.monotonic()

    try:
        batches = _batches(lengths, todo, spec.batch_size)
        bar = tqdm(total=len(with_rows), initial=len(with_rows) - len(todo), unit="doc",
                   desc=f"caching {spec.model} x {spec.dataset}")  # fmt: skip
        for docs in batches:
            rows = np.concatenate([rows_by_doc[int(doc)] for doc in docs])
            local = {int(doc): j for j, doc in enumerate(docs)}
            windows = (np.array([local[int(x)] for x in ex_doc[rows]]), ex_start[rows], ex_end[rows])
            tokens_BP, mask_BP = _pad([alignment.input_ids[doc] for doc in docs], pad_id)
            pooled = _forward_pooled(model, tokens_BP, mask_BP, hooks, windows, reduce)
            order = np.argsort(rows, kind="stable")
            for hook, fh in files.items():
                for r, row_D in zip(rows[order], pooled[hook][order], strict=True):
                    fh.seek(offsets[hook] + int(r) * d * 2)
                    fh.write(row_D.tobytes())
            pending.extend(int(x) for x in docs)
            if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                checkpoint()
            bar.update(len(docs))
        checkpoint()
        bar.close()
    finally:
        for fh in files.values():
            fh.close()

    write_file(partial / "examples.json", ex.to_json(orient="split", index=False))
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
        "versions": dict(_versions()),
        "sha256": {hook: file_sha256(partial / _array_name(hook)) for hook in hooks},
        "examples_sha256": file_sha256(partial / "examples.json"),
    }
    _write_meta(partial, meta)  # a complete meta.json marks the directory complete
    progress_path.unlink(missing_ok=True)


def _meta_digest(meta: dict) -> str:
    """sha256 of a meta record's canonical JSON, without its own ``meta_sha256``."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _write_meta(directory: Path, meta: dict) -> None:
    links = links_inside(directory)
    if links:
        raise UnsafePathError(
            f"cache entry {directory} holds symbolic links ({', '.join(p.name for p in links[:3])}): refusing to "
            "complete it; delete the directory and run again"
        )
    meta = {**meta, "meta_sha256": _meta_digest(meta)}
    write_file(directory / "meta.json", json.dumps(meta, indent=1, sort_keys=True))


# ---------------------------------------------------------------------------------------------- reading
class _Corrupt(Exception):
    """A cache entry that cannot be used; the message says why."""


_SHA = re.compile(r"[0-9a-f]{64}")


def _expect(ok: bool, problem: str) -> None:
    if not ok:
        raise _Corrupt(problem)


def _jsonish(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _read_entry(path: Path, key: str, spec: ActivationSpec, verify: bool) -> CachedActivations:
    """The entry at ``path``, checked: shape of ``meta.json``, headers, sizes and (``verify``) checksums.

    Raises :class:`_Corrupt` with the reason when anything is wrong.
    """
    _expect(path.is_dir(), "it is not a directory")
    meta_path = path / "meta.json"
    _expect(meta_path.is_file(), "meta.json is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise _Corrupt("meta.json is not valid JSON") from None
    _expect(isinstance(meta, dict), f"meta.json holds {type(meta).__name__}, not an object")
    # without its own checksum and that of examples.json, nothing shows whether examples.json (the labels) or meta.json
    # was edited: such an entry (an older version's, or one whose checksums were stripped) is computed again
    _expect("meta_sha256" in meta and "examples_sha256" in meta, "meta.json has no checksum of itself or examples.json")
    _expect(meta.get("meta_sha256") == _meta_digest(meta), "meta.json does not match its own sha256")
    types = {"key": str, "layers": list, "hooks": dict, "n_examples": int, "d_mlp": int, "sha256": dict,
             "features": list, "dataset": dict, "spec": dict, "model": dict, "reduce": str}  # fmt: skip
    for name, kind in types.items():
        _expect(isinstance(meta.get(name), kind), f"meta.json has no valid {name!r}")
    _expect(meta["key"] == key, f"meta.json belongs to key {meta['key']!r}")
    _expect(_content_fields(meta["spec"]) == _jsonish(spec.content_fields()), "meta.json describes another spec")
    layers = meta["layers"]
    _expect(layers and all(_is_int(x) and x >= 0 for x in layers), "meta.json has invalid layers")
    if spec.layers is not None:
        _expect(layers == sorted(set(spec.layers)), "meta.json lists other layers than the spec")
    hooks = {str(layer): spec.hook_name(layer) for layer in layers}
    _expect(meta["hooks"] == hooks, "meta.json names hooks that do not match its layers")
    _expect(set(meta["sha256"]) == set(hooks.values()), "meta.json does not list one checksum per hook")
    _expect(all(isinstance(v, str) and _SHA.fullmatch(v) for v in meta["sha256"].values()), "bad checksum")
    _expect(isinstance(meta["dataset"].get("key"), str), "meta.json has no dataset key")
    n, d = meta["n_examples"], meta["d_mlp"]
    _expect(_is_int(n) and _is_int(d) and n > 0 and d > 0, f"meta.json has impossible sizes ({n} x {d})")

    examples_path = path / "examples.json"
    _expect(examples_path.is_file(), "examples.json is missing")
    if verify:
        _expect(
            file_sha256_cached(examples_path) == meta["examples_sha256"],
            "examples.json does not match its sha256 in meta.json",
        )
    try:
        examples = pd.read_json(examples_path, orient="split", dtype=False)
    except Exception as err:  # an unreadable file of any shape is a finding, not a crash
        raise _Corrupt(f"examples.json cannot be read ({type(err).__name__})") from None
    _expect(isinstance(examples, pd.DataFrame), "examples.json does not hold a table")
    _expect(len(examples) == n, f"examples.json has {len(examples)} rows, expected {n}")
    missing = {"doc", "tok_start", "tok_end", "group", *meta["features"]} - set(examples.columns)
    _expect(not missing, f"examples.json lacks the columns {sorted(map(str, missing))}")

    for hook, digest in meta["sha256"].items():
        f = path / _array_name(hook)
        _expect(f.is_file(), f"{f.name} is missing")
        try:
            shape, fortran, dtype, header = _read_header(f)
        except (ValueError, OSError, SyntaxError) as err:
            raise _Corrupt(f"{f.name} has a broken header ({err})") from None
        _expect(shape == (n, d) and not fortran and dtype == np.float16, f"{f.name} header says {shape} {dtype}")
        size = f.stat().st_size
        _expect(size == header + n * d * 2, f"{f.name} has {size} bytes, expected {header + n * d * 2} (truncated?)")
        if verify:
            _expect(file_sha256_cached(f) == digest, f"{f.name} does not match its sha256 in meta.json")
    return CachedActivations(path=path, meta=meta, examples=examples)


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def load_or_compute(
    spec: ActivationSpec,
    *,
    model: LoadedModel | None = None,
    dataset: ProbingDataset | None = None,
    root: str | Path | None = None,
    verify: bool = True,
) -> CachedActivations:
    """Return the cache entry for ``spec``, computing (or resuming) it if needed.

    ``model`` and ``dataset`` may be passed to reuse objects already in memory (they must match the spec);
    otherwise the dataset is loaded from ``data/datasets`` and the model is loaded only when something must be
    computed. Every load checks the entry (``meta.json``, headers, sizes, and with ``verify`` the sha256 of every
    file); a damaged entry is recomputed with a :class:`CacheRepairWarning`. Layers are checked against the
    model's configuration before its weights are loaded.
    """
    if not isinstance(spec, ActivationSpec):
        raise TypeError(f"spec must be an ActivationSpec, got {type(spec).__name__}")
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
    final, partial = inside(root, key), inside(root, f"{key}.partial")

    with _lock(inside(root, f"{key}.lock")):
        if final.exists() or final.is_symlink():
            try:
                return _read_entry(final, key, spec, verify)
            except _Corrupt as err:
                warnings.warn(f"activation cache entry {final} is corrupt ({err}); recomputing it",
                              CacheRepairWarning, stacklevel=2)  # fmt: skip
                _discard(final)
        if (partial / "meta.json").exists():  # complete, but killed before its rename
            try:
                _read_entry(partial, key, spec, verify)
                partial.rename(final)
                return _read_entry(final, key, spec, verify=False)
            except _Corrupt as err:
                warnings.warn(f"unfinished cache run {partial} has an unusable meta.json ({err}); resuming it",
                              CacheRepairWarning, stacklevel=2)  # fmt: skip
                (partial / "meta.json").unlink()
        if model is None:
            check_layers(spec.model_spec, spec.layers)  # before the weights are loaded
            model = load_model(spec.model_spec)
        _compute(spec, dataset, model, key, partial, model_digest)
        partial.rename(final)
        return _read_entry(final, key, spec, verify=False)


# ---------------------------------------------------------------------------------------------- computing elsewhere
@dataclass(frozen=True)
class EntryPlan:
    """What :func:`load_or_compute` computes for a spec: the entry's key, hooks, tokenized dataset and batches.

    A plan lets an entry be computed in parts, e.g. on several machines (:mod:`sparse_probing.distributed`):
    :func:`compute_rows` runs any of ``batches``, each with the same documents as in a single-machine run, so the
    rows are the same bytes. :func:`write_rows` then completes the entry from all the rows through the
    single-machine code.
    """

    spec: ActivationSpec
    source: ProbingDataset | None
    """The dataset as passed to :func:`entry_plan` (None: loaded from the spec)."""
    dataset: ProbingDataset
    """The documents in use (after ``spec.n_documents``)."""
    model: LoadedModel
    root: Path
    key: str
    layers: tuple[int, ...]
    hooks: tuple[str, ...]
    reduce: str
    alignment: Any
    """The :class:`~sparse_probing.datasets.base.Alignment` of the dataset to the model's tokenizer."""
    batches: tuple[np.ndarray, ...]
    """Document indices of each forward pass, in the order :func:`load_or_compute` runs them."""

    @property
    def n_examples(self) -> int:
        return len(self.alignment.examples)

    @property
    def complete(self) -> bool:
        """A complete entry (its ``meta.json``) is on disk; :func:`load_or_compute` checks and returns it."""
        return (inside(self.root, self.key) / "meta.json").is_file()


def entry_plan(
    spec: ActivationSpec,
    model: LoadedModel,
    *,
    dataset: ProbingDataset | None = None,
    root: str | Path | None = None,
) -> EntryPlan:
    """The :class:`EntryPlan` of ``spec`` with a loaded model. It tokenizes the dataset and computes no activations.

    The key is the one :func:`load_or_compute` uses when it is given ``model``.
    """
    if not isinstance(spec, ActivationSpec):
        raise TypeError(f"spec must be an ActivationSpec, got {type(spec).__name__}")
    if model.spec.name != spec.model:
        raise ValueError(f"model {model.spec.name!r} passed for a spec of model {spec.model!r}")
    if dataset is not None and dataset.name != spec.dataset:
        raise ValueError(f"dataset {dataset.name!r} passed for a spec of dataset {spec.dataset!r}")
    used = dataset if dataset is not None else load_dataset(spec.dataset, spec.variant)
    if spec.n_documents is not None:
        used = used.subset(spec.n_documents)
    layers = sorted(set(spec.layers)) if spec.layers is not None else list(range(model.n_layers))
    if max(layers) >= model.n_layers:
        raise ValueError(
            f"layer {max(layers)} requested, but {spec.model} has layers 0..{model.n_layers - 1}: pick layers in "
            "that range"
        )
    alignment = align(used, model.tokenizer, spec.max_length)
    ex = alignment.examples
    if len(ex) == 0:
        raise ValueError(f"no example of {used.key} survives tokenization at max_length={spec.max_length}")
    lengths = np.array([len(ids) for ids in alignment.input_ids])
    with_rows = np.unique(ex["doc"].to_numpy()).astype(np.int64)
    return EntryPlan(
        spec=spec, source=dataset, dataset=used, model=model,
        root=Path(root) if root is not None else cache_root(), key=cache_key(spec, used, model.weights_digest),
        layers=tuple(layers), hooks=tuple(spec.hook_name(layer) for layer in layers),
        reduce=spec.reduce or used.default_reduce, alignment=alignment,
        batches=tuple(_batches(lengths, with_rows, spec.batch_size)),
    )  # fmt: skip


def compute_rows(plan: EntryPlan, batches: list[np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The pooled float16 rows of the examples in ``batches`` (document indices, each one of ``plan.batches``).

    Returns the example indices (sorted) and one (rows, D) array per hook, in that row order.
    """
    ex = plan.alignment.examples
    ex_doc, ex_start, ex_end = (ex[c].to_numpy() for c in ("doc", "tok_start", "tok_end"))
    by_doc = ex.groupby("doc").indices
    pad_id = plan.model.tokenizer.pad_token_id if plan.model.tokenizer.pad_token_id is not None else 0
    all_rows: list[np.ndarray] = []
    out: dict[str, list[np.ndarray]] = {hook: [] for hook in plan.hooks}
    for docs in batches:
        rows = np.concatenate([np.asarray(by_doc[int(doc)], dtype=np.int64) for doc in docs])
        local = {int(doc): j for j, doc in enumerate(docs)}
        windows = (np.array([local[int(x)] for x in ex_doc[rows]]), ex_start[rows], ex_end[rows])
        tokens_BP, mask_BP = _pad([plan.alignment.input_ids[int(doc)] for doc in docs], pad_id)
        pooled = _forward_pooled(plan.model, tokens_BP, mask_BP, list(plan.hooks), windows, plan.reduce)
        all_rows.append(rows)
        for hook in plan.hooks:
            out[hook].append(pooled[hook])
    if not all_rows:
        width = site_width(plan.model, plan.spec.site)
        return np.empty(0, dtype=np.int64), {h: np.empty((0, width), np.float16) for h in plan.hooks}
    rows = np.concatenate(all_rows)
    order = np.argsort(rows, kind="stable")
    return rows[order], {hook: np.concatenate(parts)[order] for hook, parts in out.items()}


def write_rows(plan: EntryPlan, rows: np.ndarray, arrays: dict[str, np.ndarray]) -> CachedActivations:
    """Complete the entry of ``plan`` from the pooled rows of all its examples (from :func:`compute_rows`).

    Under the cache lock the rows go into the entry's ``.partial`` directory and are recorded as finished, with
    their checksum. :func:`load_or_compute` then completes the entry exactly as it resumes an interrupted run, so
    the bytes equal a single-machine run's. An entry that already exists is left as it is.
    """
    n, d = plan.n_examples, site_width(plan.model, plan.spec.site)
    rows = np.asarray(rows, dtype=np.int64)
    if not np.array_equal(np.sort(rows), np.arange(n)):
        raise ValueError(
            f"rows must hold every example index 0..{n - 1} once, got {len(rows)} rows: compute every batch"
        )
    for hook in plan.hooks:
        if hook not in arrays or np.shape(arrays[hook]) != (len(rows), d):
            raise ValueError(f"arrays[{hook!r}] must have shape ({len(rows)}, {d}), got {np.shape(arrays.get(hook))}")
    final, partial = inside(plan.root, plan.key), inside(plan.root, f"{plan.key}.partial")
    with _lock(inside(plan.root, f"{plan.key}.lock")):
        if not (final / "meta.json").is_file():
            hooks = list(plan.hooks)
            progress = _fresh_partial(partial, plan.key, hooks, n, d)
            offsets = {hook: _header_size(partial / _array_name(hook)) for hook in hooks}
            order = np.argsort(rows, kind="stable")
            files = {hook: open(partial / _array_name(hook), "r+b") for hook in hooks}
            try:
                for hook, fh in files.items():
                    fh.seek(offsets[hook])
                    fh.write(np.ascontiguousarray(np.asarray(arrays[hook], dtype=np.float16)[order]).tobytes())
                    fh.flush()
                    os.fsync(fh.fileno())
                docs = sorted({int(x) for x in plan.alignment.examples["doc"]})
                progress["chunks"] = [{"docs": docs, "sha256": _rows_digest(files, offsets, np.arange(n), d)}]
            finally:
                for fh in files.values():
                    fh.close()
            _write_json(partial / "progress.json", progress)
    return load_or_compute(plan.spec, model=plan.model, dataset=plan.source, root=plan.root)
