"""Sparse autoencoders (SAEs) trained here, on activations held in memory: a TopK SAE, its quality, a content cache.

A TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") writes an activation ``x`` (D) as a
sparse non-negative combination of ``L`` learned directions (latents)::

    z = TopK_k(ReLU((x / s - b_dec) W_enc + b_enc))     (L, at most k non-zero)
    x_hat = s (z W_dec + b_dec)                          (W_dec rows of unit norm)

``s`` is a fixed scalar that gives the training activations a mean squared norm of ``D`` (so one learning rate suits
every model). Training minimises the squared reconstruction error plus the auxiliary "AuxK" loss of Gao et al.:
latents that have not fired for ``dead_after`` training examples reconstruct the remaining error with their own top
``aux_k``, which brings dead latents back. Everything runs on the CPU in float32, seeded.

Why a trainer of its own: the two maintained SAE libraries cannot be installed beside this package. ``sae-lens``
(6.x) requires ``transformer-lens < 4``, and this package is built on TransformerLens 4 (``TransformerBridge``).
``dictionary-learning`` (0.1.0) imports ``nnsight < 0.4`` when the package is imported (its buffer module), which
requires ``torchvision``, ``diffusers`` and ``python-socketio``, and its training loop imports ``wandb``; its trainers
cannot be imported without them. The trainer here follows the TopK recipe of those libraries (decoder rows kept at
unit norm, encoder initialised as the decoder's transpose, decoder bias at the data mean, AuxK loss).

* :func:`train_sae` trains one SAE on an (N, D) array; :func:`load_or_train` returns the cached SAE for the same
  activations (by the sha256 of their bytes) and hyperparameters, or trains and caches it.
* :func:`sae_quality` measures fraction of variance explained, L0 and dead latents on held-out activations.
* :func:`spliced_losses` measures the model's next-token loss with the SAE's reconstruction spliced in at a hook
  (and with the site mean-ablated, to say how much of the loss the reconstruction recovers).
* :func:`unit_dedication` applies the toy models' ground-truth rule (a unit that carries one half-feature and
  nothing else is dedicated to it) to any units' responses, e.g. SAE latents.

Shapes: N rows (activations), D input width, L latents, B batch, H half-features, U units.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..paths import activation_cache_dir, check_name, inside, write_file

__all__ = [
    "SAE_FORMAT",
    "SAEConfig",
    "TopKSAE",
    "TrainedSAE",
    "activations_digest",
    "load_or_train",
    "sae_cache_dir",
    "sae_key",
    "sae_quality",
    "spliced_losses",
    "train_sae",
    "unit_dedication",
]

SAE_FORMAT = 1
"""Version of the cached file layout and of the training recipe (part of every key)."""
SMALL = 1 << 16
"""SAEs with fewer encoder weights than this train on one thread."""


@dataclass(frozen=True)
class SAEConfig:
    """Hyperparameters of one TopK SAE (every field enters the cache key)."""

    n_latents: int
    """Dictionary size ``L``."""
    k: int
    """Latents kept per row (the L0 of the SAE)."""
    n_steps: int = 1000
    """Adam steps."""
    batch_size: int = 512
    """Rows per step, drawn with replacement from the training activations."""
    lr: float = 1e-3
    """Adam learning rate (constant, then linearly to zero over the last fifth of the steps)."""
    aux_k: int = 64
    """Dead latents used by the AuxK loss (0: no AuxK loss)."""
    aux_coef: float = 1 / 32
    """Weight of the AuxK loss (Gao et al.'s 1/32)."""
    dead_after: int = 50_000
    """A latent that has not fired on this many consecutive training rows counts as dead for the AuxK loss."""
    seed: int = 0
    """Seed of the initialisation and of the batches."""

    def __post_init__(self) -> None:
        ints = {"n_latents": 1, "k": 1, "n_steps": 1, "batch_size": 1, "aux_k": 0, "dead_after": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"SAE {name} must be an integer >= {low}, got {value!r}")
        if self.k > self.n_latents:
            raise ValueError(f"SAE k ({self.k}) cannot exceed n_latents ({self.n_latents})")
        if not (self.lr > 0 and self.aux_coef >= 0):
            raise ValueError(f"SAE lr must be > 0 and aux_coef >= 0, got {self.lr} and {self.aux_coef}")


class TopKSAE(nn.Module):
    """The TopK SAE of the module docstring; ``scale`` is the fixed input scale ``s``."""

    def __init__(self, d_in: int, n_latents: int, k: int, scale: float = 1.0) -> None:
        super().__init__()
        self.k = k
        self.W_enc = nn.Parameter(torch.zeros(d_in, n_latents))
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.W_dec = nn.Parameter(torch.zeros(n_latents, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("scale", torch.tensor(float(scale)))

    @property
    def n_latents(self) -> int:
        return int(self.W_enc.shape[1])

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    def pre_activation(self, x_BD: torch.Tensor) -> torch.Tensor:
        return (x_BD / self.scale - self.b_dec) @ self.W_enc + self.b_enc

    def top(self, x_BD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values (B, k) after ReLU, indices (B, k), pre-activations (B, L))."""
        pre_BL = self.pre_activation(x_BD)
        values_BK, idx_BK = pre_BL.topk(self.k, dim=-1, sorted=False)
        return torch.relu(values_BK), idx_BK, pre_BL

    def decode_sparse(self, values_BK: torch.Tensor, idx_BK: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the kept latents, in input units (B, D)."""
        out_BD = nn.functional.embedding_bag(idx_BK, self.W_dec, per_sample_weights=values_BK, mode="sum")
        return (out_BD + self.b_dec) * self.scale

    def encode(self, x_BD: torch.Tensor) -> torch.Tensor:
        """Dense latent activations (B, L), zero outside each row's top k."""
        values_BK, idx_BK, pre_BL = self.top(x_BD)
        return torch.zeros_like(pre_BL).scatter_(-1, idx_BK, values_BK)

    def decode(self, z_BL: torch.Tensor) -> torch.Tensor:
        return (z_BL @ self.W_dec + self.b_dec) * self.scale

    def forward(self, x_BD: torch.Tensor) -> torch.Tensor:
        values_BK, idx_BK, _ = self.top(x_BD)
        return self.decode_sparse(values_BK, idx_BK)


@dataclass
class TrainedSAE:
    """An SAE with its config, what it was trained on, and its training record."""

    module: TopKSAE
    config: SAEConfig
    key: str
    """The cache key: sha256 of the training activations' digest, the config and :data:`SAE_FORMAT`."""
    activations_digest: str
    history: Mapping[str, Any]
    """``final_mse`` (fraction of variance unexplained on the last 50 batches), ``seconds``, ``n_train``,
    ``dead_at_end`` (latents dead by the AuxK rule after training)."""
    cached: bool = False
    """True when it was read from the cache rather than trained in this call."""

    def encode(self, x_ND: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Latent activations (N, L), float32."""
        return _batched(self.module.encode, x_ND, batch_size)

    def reconstruct(self, x_ND: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
        """Reconstructions (N, D), float32."""
        return _batched(self.module.forward, x_ND, batch_size)


def _batched(fn: Any, x_ND: np.ndarray, batch_size: int) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for start in range(0, len(x_ND), batch_size):
            out.append(fn(torch.as_tensor(np.asarray(x_ND[start : start + batch_size], dtype=np.float32))).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


# ---------------------------------------------------------------------------------------------- training
def _check_activations(x_ND: Any) -> np.ndarray:
    x = np.asarray(x_ND, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"SAE training activations must be an (N, D) array with N >= 2 rows, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("SAE training activations hold NaN or infinite values")
    return x


def train_sae(x_ND: Any, config: SAEConfig) -> TrainedSAE:
    """Train a TopK SAE on the rows of ``x_ND`` (seeded; the same data and config give the same weights)."""
    x = _check_activations(x_ND)
    digest = activations_digest(x)
    return _train(x, config, digest, sae_key(digest, config))


def _train(x: np.ndarray, config: SAEConfig, digest: str, key: str) -> TrainedSAE:
    threads = torch.get_num_threads()
    if x.shape[1] * config.n_latents < SMALL:
        torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        return _train_loop(x, config, digest, key)
    finally:
        torch.set_num_threads(threads)


def _train_loop(x: np.ndarray, config: SAEConfig, digest: str, key: str) -> TrainedSAE:
    t0 = time.perf_counter()
    N, D = x.shape
    data_ND = torch.as_tensor(x)
    scale = float(np.sqrt(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1)) / D)) or 1.0
    gen = torch.Generator().manual_seed(config.seed)
    sae = TopKSAE(D, config.n_latents, config.k, scale)
    with torch.no_grad():
        W_LD = torch.randn(config.n_latents, D, generator=gen)
        W_LD /= W_LD.norm(dim=1, keepdim=True)
        sae.W_dec.copy_(W_LD)
        sae.W_enc.copy_(W_LD.T)
        sae.b_dec.copy_(data_ND.mean(0) / scale)
    opt = torch.optim.Adam(sae.parameters(), lr=config.lr)
    decay_from = int(0.8 * config.n_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 1.0 if s < decay_from else max(0.0, (config.n_steps - s) / max(1, config.n_steps - decay_from))
    )
    # the variance of the data (in SAE units) normalises the losses
    var = float(((data_ND / scale - data_ND.mean(0) / scale) ** 2).sum(1).mean())
    since_fired_L = torch.zeros(config.n_latents, dtype=torch.long)
    recent: list[float] = []
    from .._progress import tqdm

    steps = tqdm(range(config.n_steps), desc=f"training SAE ({D} -> {config.n_latents}, k = {config.k})", unit="step",
                 leave=False)  # fmt: skip
    for _ in steps:
        idx = torch.randint(0, N, (config.batch_size,), generator=gen)
        x_BD = data_ND[idx]
        values_BK, idx_BK, pre_BL = sae.top(x_BD)
        recon_BD = sae.decode_sparse(values_BK, idx_BK)
        err_BD = (x_BD - recon_BD) / scale
        mse = err_BD.pow(2).sum(1).mean() / var
        loss = mse
        with torch.no_grad():
            fired_L = torch.zeros(config.n_latents, dtype=torch.bool)
            fired_L[idx_BK[values_BK > 0]] = True
            since_fired_L += config.batch_size
            since_fired_L[fired_L] = 0
            dead_L = since_fired_L >= config.dead_after
        n_dead = int(dead_L.sum())
        if config.aux_k and config.aux_coef and n_dead:
            aux_pre_BL = pre_BL.masked_fill(~dead_L, -torch.inf)
            k_aux = min(config.aux_k, n_dead)
            aux_values_BK, aux_idx_BK = aux_pre_BL.topk(k_aux, dim=-1, sorted=False)
            aux_recon_BD = nn.functional.embedding_bag(
                aux_idx_BK, sae.W_dec, per_sample_weights=torch.relu(aux_values_BK), mode="sum"
            )
            target_BD = err_BD.detach()
            denom = (target_BD - target_BD.mean(0)).pow(2).sum(1).mean().clamp(min=1e-12)
            aux = (aux_recon_BD - target_BD).pow(2).sum(1).mean() / denom
            loss = loss + config.aux_coef * torch.nan_to_num(aux, nan=0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            sae.W_dec /= sae.W_dec.norm(dim=1, keepdim=True).clamp(min=1e-8)
        recent = [*recent[-49:], float(mse.detach())]
    sae.eval()
    history = {
        "final_mse": float(np.mean(recent)) if recent else float("nan"),
        "seconds": time.perf_counter() - t0,
        "n_train": int(N),
        "dead_at_end": int((since_fired_L >= config.dead_after).sum()),
    }
    return TrainedSAE(sae, config, key, digest, history)


# ---------------------------------------------------------------------------------------------- content cache
def activations_digest(x_ND: Any) -> str:
    """sha256 of an activation array's shape and float32 bytes (row-major)."""
    x = np.ascontiguousarray(np.asarray(x_ND, dtype=np.float32))
    h = hashlib.sha256(json.dumps(list(x.shape)).encode())
    h.update(memoryview(x).cast("B"))
    return h.hexdigest()


def sae_key(digest: str, config: SAEConfig) -> str:
    """The cache key of an SAE: a hash of the training activations' digest, its hyperparameters and the format."""
    blob = json.dumps({"format": SAE_FORMAT, "activations": digest, "config": asdict(config)}, sort_keys=True)
    return f"topk-{config.n_latents}-k{config.k}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


def sae_cache_dir() -> Path:
    """Where SAE weights are cached: ``sae/`` inside the activation cache (``$SPARSE_PROBING_CACHE``)."""
    return activation_cache_dir() / "sae"


def _read_cached(path: Path, key: str, digest: str, config: SAEConfig) -> TrainedSAE | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        if meta.get("key") != key or meta.get("activations_digest") != digest or meta.get("config") != asdict(config):
            return None
        state = blob["state"]
        d_in, n_latents = state["W_enc"].shape
        sae = TopKSAE(int(d_in), int(n_latents), config.k)
        sae.load_state_dict(state)
    except Exception:  # an unreadable file of any shape, or another recipe's: trained again and replaced
        return None
    sae.eval()
    return TrainedSAE(sae, config, key, digest, meta.get("history", {}), cached=True)


def load_or_train(x_ND: Any, config: SAEConfig, *, root: str | Path | None = None) -> TrainedSAE:
    """The SAE for these activations and hyperparameters: read from the cache when an entry with the same key
    (activations' sha256, config, format) exists and holds them, else trained with :func:`train_sae` and cached.

    Entries are written through a fresh file renamed into place (never through a link); an entry that cannot be read
    or belongs to other activations is trained again and replaced.
    """
    x = _check_activations(x_ND)
    digest = activations_digest(x)
    key = sae_key(digest, config)
    check_name(key, "SAE key")
    directory = Path(root) if root is not None else sae_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = inside(directory, f"{key}.pt")
    if path.is_file() and not path.is_symlink():
        found = _read_cached(path, key, digest, config)
        if found is not None:
            return found
    trained = _train(x, config, digest, key)
    meta = {"key": key, "activations_digest": digest, "config": asdict(config), "format": SAE_FORMAT,
            "history": dict(trained.history)}  # fmt: skip
    buffer = io.BytesIO()
    torch.save({"meta": json.dumps(meta, sort_keys=True), "state": trained.module.state_dict()}, buffer)
    write_file(path, buffer.getvalue())
    return trained


# ---------------------------------------------------------------------------------------------- quality
def sae_quality(sae: TrainedSAE, x_ND: Any) -> dict[str, float]:
    """Quality on held-out activations: ``fve`` (fraction of variance explained, ``1 - sum ||x - x_hat||^2 / sum
    ||x - mean x||^2``), ``l0`` (mean non-zero latents per row), ``dead`` (latents that never fire on these rows)
    and ``dead_share``, ``n_rows``."""
    x = _check_activations(x_ND)
    z_NL = sae.encode(x)
    recon_ND = sae.reconstruct(x)
    resid = float(((x.astype(np.float64) - recon_ND) ** 2).sum())
    total = float(((x.astype(np.float64) - x.mean(0)) ** 2).sum())
    fired_L = (z_NL > 0).any(axis=0)
    return {
        "fve": 1.0 - resid / total if total > 0 else float("nan"),
        "l0": float((z_NL > 0).sum(axis=1).mean()),
        "dead": int((~fired_L).sum()),
        "dead_share": float((~fired_L).mean()),
        "n_rows": len(x),
    }


def spliced_losses(
    model: Any,
    hook: str,
    sae: TrainedSAE,
    texts: Sequence[str],
    *,
    mean_activation: np.ndarray,
    max_length: int = 128,
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean next-token loss over ``texts`` (padding excluded) of the model as it is (``clean``), with the SAE's
    reconstruction in place of the activations at ``hook`` (``spliced``), and with every position of ``hook`` set to
    ``mean_activation`` (``mean_ablated``); ``recovered = (mean_ablated - spliced) / (mean_ablated - clean)``, the
    share of the loss the site is worth that the reconstruction keeps (1: nothing lost)."""
    from .ablation import _mean_losses

    if not texts:
        raise ValueError("spliced_losses needs at least one text")
    if model.tokenizer.pad_token is None:
        model.tokenizer.pad_token = model.tokenizer.eos_token
    mean_D = torch.as_tensor(np.asarray(mean_activation, dtype=np.float32))
    if mean_D.shape != (sae.module.d_in,):
        raise ValueError(f"mean_activation must have shape ({sae.module.d_in},), got {tuple(mean_D.shape)}")

    def splice(acts_BPD: torch.Tensor, hook: Any) -> torch.Tensor:
        flat_ND = acts_BPD.reshape(-1, acts_BPD.shape[-1]).float()
        return sae.module(flat_ND).reshape(acts_BPD.shape).to(acts_BPD.dtype)

    def ablate(acts_BPD: torch.Tensor, hook: Any) -> torch.Tensor:
        return mean_D.to(acts_BPD.dtype).expand_as(acts_BPD).clone()

    texts = list(texts)
    clean = _mean_losses(model, texts, max_length, [], batch_size)
    spliced = _mean_losses(model, texts, max_length, [(hook, splice)], batch_size)
    ablated = _mean_losses(model, texts, max_length, [(hook, ablate)], batch_size)
    c, s, a = float(clean.mean()), float(spliced.mean()), float(ablated.mean())
    return {
        "clean": c,
        "spliced": s,
        "mean_ablated": a,
        "recovered": (a - s) / (a - c) if a != c else float("nan"),
        "n_texts": len(texts),
    }


# ---------------------------------------------------------------------------------------------- ground truth
def unit_dedication(response_HU: Any, represented_H: Any, *, relative: float = 0.25) -> np.ndarray:
    """Per half-feature, the unit dedicated to it (or -1), by the rule of
    :func:`sparse_probing.analysis.toy_models.ground_truth` applied to any units (neurons, SAE latents):

    a unit *carries* a represented half-feature when its |response| to it alone is at least ``relative`` times its
    largest |response| to any represented half-feature (and above 1e-3); a unit that carries exactly one half-feature
    is dedicated to it (the strongest such unit when several are)."""
    abs_HU = np.abs(np.asarray(response_HU, dtype=np.float64))
    rep_H = np.asarray(represented_H, dtype=bool)
    if abs_HU.ndim != 2 or rep_H.shape != (abs_HU.shape[0],):
        raise ValueError(f"response must be (H, U) and represented (H,), got {abs_HU.shape} and {rep_H.shape}")
    mass_HU = abs_HU * rep_H[:, None]
    carries_HU = (mass_HU >= relative * mass_HU.max(axis=0, initial=0.0)[None, :]) & (mass_HU > 1e-3)
    dedicated_H = np.full(abs_HU.shape[0], -1)
    for j in np.flatnonzero(carries_HU.sum(axis=0) == 1):
        h = int(np.argmax(mass_HU[:, j]))
        if dedicated_H[h] < 0 or abs_HU[h, j] > abs_HU[h, dedicated_H[h]]:
            dedicated_H[h] = j
    return dedicated_H
