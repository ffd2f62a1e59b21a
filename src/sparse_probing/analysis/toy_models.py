"""Toy models of superposition with known ground truth (Elhage et al. 2022, "Toy Models of Superposition").

The MLP toy of Elhage et al.'s "computation in superposition": ``n`` sparse signed features go through ``m < n``
hidden MLP neurons, which must compute their absolute values::

    x (n) -> h = act(W_in x + b_in) (m) -> y = ReLU(W_out h + b_out) (n),   target |x|

Feature ``i`` is active with probability ``p`` (then ``x_i = s u`` with a random sign ``s`` and ``u`` uniform on
(0, 1], else 0); the loss is the squared error weighted by an importance ``decay**i``. The absolute value needs a
nonlinearity per sign, so the hidden neurons form a privileged basis, like the MLP neurons that the study probes
(``blocks.{l}.mlp.hook_post``); a reconstruction toy with a linear read-out would not. Two twins share the neuron
budget ``m``: a ReLU (or GELU) MLP with input bias, as in Pythia, and a gated MLP ``h = SiLU(W_gate x) * (W_up x)``
without biases, as in SmolLM2 and Gemma.

The units of ground truth are *half-features*: "feature i is positive" and "feature i is negative" (a ReLU neuron
sees one sign). Because the model is known, so is the truth that the study's diagnostics try to read:
:func:`ground_truth` measures every neuron's response to every half-feature presented alone, and from it which
half-features are represented, by how many neurons, whether one owns a dedicated (monosemantic) neuron, and how
polysemantic each neuron is. :func:`probe_data` draws labelled activations for one half-feature, balanced like the
book's probing tasks.

Shapes: N examples, F features (``n``), H half-features (``2n``: feature ``i`` positive is ``2i``, negative
``2i + 1``), M hidden neurons (``m``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

ACTIVATIONS = ("relu", "gelu", "gated")
"""Hidden-layer kinds: ReLU or GELU MLP with input bias (Pythia-like), or SiLU(gate) * up without biases
(SmolLM2/Gemma-like)."""


@dataclass(frozen=True)
class ToyConfig:
    """One toy model: its sizes, feature distribution and training schedule."""

    n_features: int = 20
    """Number of sparse signed input features ``n``."""
    n_hidden: int = 10
    """Number of hidden MLP neurons ``m`` (the neurons that are probed)."""
    feature_probability: float = 0.05
    """Probability that a feature is active in an example (1: dense, 0.01: very sparse)."""
    importance_decay: float = 0.9
    """Importance of feature ``i`` is ``importance_decay**i`` (1: all features equally important)."""
    activation: str = "relu"
    """One of :data:`ACTIVATIONS`."""
    n_steps: int = 1500
    """Adam steps."""
    batch_size: int = 512
    """Examples per step (drawn fresh from the feature distribution)."""
    lr: float = 1e-2
    """Adam learning rate (cosine-decayed to zero)."""
    seed: int = 0
    """Seed of the initialisation and of the training data."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}.")
        if not 0 < self.feature_probability <= 1:
            raise ValueError(f"feature_probability must be in (0, 1], got {self.feature_probability}.")
        if self.n_features < 1 or self.n_hidden < 1:
            raise ValueError(f"n_features and n_hidden must be positive, got {self.n_features}, {self.n_hidden}.")
        if self.n_steps < 1 or self.batch_size < 1:
            raise ValueError(f"n_steps and batch_size must be positive, got {self.n_steps}, {self.batch_size}.")

    @property
    def importance(self) -> np.ndarray:
        """Importance of every feature, shape (F,)."""
        return self.importance_decay ** np.arange(self.n_features, dtype=np.float64)


class ToyMLP(nn.Module):
    """``x -> h = act(W_in x + b_in) -> ReLU(W_out h + b_out)``; the gated kind has ``h = SiLU(W_gate x) * (W_up x)``
    with ``W_up`` stored as ``w_in`` and no input biases."""

    def __init__(self, n_features: int, n_hidden: int, activation: str):
        super().__init__()
        self.activation = activation
        gated = activation == "gated"
        self.w_in = nn.Linear(n_features, n_hidden, bias=not gated)
        self.w_gate = nn.Linear(n_features, n_hidden, bias=False) if gated else None
        self.w_out = nn.Linear(n_hidden, n_features, bias=True)

    def pre_activation(self, x_NF: torch.Tensor) -> torch.Tensor:
        """``W_in x + b_in`` (the gate ``W_gate x`` for the gated kind): what decides whether a neuron fires."""
        return self.w_gate(x_NF) if self.w_gate is not None else self.w_in(x_NF)

    def hidden(self, x_NF: torch.Tensor) -> torch.Tensor:
        """The hidden neurons (the analogue of ``hook_post``), shape (N, M)."""
        if self.w_gate is not None:
            return nn.functional.silu(self.w_gate(x_NF)) * self.w_in(x_NF)
        pre_NM = self.w_in(x_NF)
        return torch.relu(pre_NM) if self.activation == "relu" else nn.functional.gelu(pre_NM)

    def forward(self, x_NF: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.w_out(self.hidden(x_NF)))


@dataclass
class ToyModel:
    """A trained toy model with its config and training record."""

    config: ToyConfig
    module: ToyMLP
    final_loss: float
    """Importance-weighted squared error per feature on a fresh batch of 20,000 examples."""
    train_time: float

    def hidden(self, x_NF: np.ndarray) -> np.ndarray:
        """Hidden activations for inputs ``x`` (N, F), as float32 (N, M)."""
        with torch.no_grad():
            return self.module.hidden(torch.as_tensor(x_NF, dtype=torch.float32)).numpy()

    def output(self, x_NF: np.ndarray) -> np.ndarray:
        """The model's estimate of ``|x|``, (N, F)."""
        with torch.no_grad():
            return self.module(torch.as_tensor(x_NF, dtype=torch.float32)).numpy()


def sample_features(config: ToyConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` inputs (N, F): each feature active with probability ``p``, then ``s u`` with a random sign
    ``s`` and ``u`` uniform on (0, 1]."""
    active_NF = rng.random((n, config.n_features)) < config.feature_probability
    sign_NF = np.where(rng.random((n, config.n_features)) < 0.5, -1.0, 1.0)
    magnitude_NF = 1.0 - rng.random((n, config.n_features))
    return (active_NF * sign_NF * magnitude_NF).astype(np.float32)


def _weighted_loss(model: ToyMLP, x_NF: torch.Tensor, importance_F: torch.Tensor) -> torch.Tensor:
    return ((model(x_NF) - x_NF.abs()) ** 2 * importance_F).mean()


def train_toy(config: ToyConfig) -> ToyModel:
    """Train a toy model on CPU; the same config gives the same weights (seeded torch and numpy)."""
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead (and contend on shared machines)
    try:
        return _train(config, t0)
    finally:
        torch.set_num_threads(threads)


def _train(config: ToyConfig, t0: float) -> ToyModel:
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        module = ToyMLP(config.n_features, config.n_hidden, config.activation)
    importance_F = torch.as_tensor(config.importance, dtype=torch.float32)
    opt = torch.optim.Adam(module.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.n_steps)
    shape = (config.batch_size, config.n_features)
    for _ in range(config.n_steps):
        active = torch.rand(shape, generator=gen) < config.feature_probability
        sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
        x_NF = active * sign * (1.0 - torch.rand(shape, generator=gen))
        loss = _weighted_loss(module, x_NF, importance_F)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    module.eval()
    with torch.no_grad():
        x_NF = torch.as_tensor(sample_features(config, 20_000, rng))
        final = float(_weighted_loss(module, x_NF, importance_F))
    return ToyModel(config, module, final, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------- ground truth
def half_feature_inputs(n_features: int) -> np.ndarray:
    """Every half-feature alone at magnitude 1: row ``2i`` is ``+e_i``, row ``2i + 1`` is ``-e_i``; (H, F)."""
    eye_FF = np.eye(n_features, dtype=np.float32)
    return np.stack([eye_FF, -eye_FF], axis=1).reshape(2 * n_features, n_features)


@dataclass(frozen=True)
class GroundTruth:
    """What a toy model represents, read off its responses to single half-features.

    ``response[h, j]`` is neuron ``j``'s activation when half-feature ``h`` alone is present at magnitude 1,
    minus its activation at the all-zero input.
    """

    response: np.ndarray
    """(H, M) single-half-feature responses."""
    features: pd.DataFrame
    """Per half-feature: ``half`` (index), ``feature``, ``sign`` (+1/-1), ``importance``, ``output`` (the model's
    |x_i| estimate for it alone at 1), ``represented``, ``n_neurons`` (neurons that carry it), ``dedicated_neuron``
    (a neuron that carries it and nothing else, or -1), ``feature_dedicated`` (a neuron carries it and only
    half-features of the same feature: monosemantic at the level of features, as a gated neuron computing ``|x_i|``
    is), ``best_neuron`` (largest |response|), and ``status``:
    "dedicated", "superposed" (represented, no dedicated neuron) or "absent" (see :func:`ground_truth`)."""
    neurons: pd.DataFrame
    """Per neuron: ``neuron``, ``n_features`` (represented half-features it carries: its polysemanticity),
    ``n_source_features`` (distinct features among them),
    ``participation`` (effective number of half-features, (sum |r|)^2 / sum r^2 over represented ones),
    ``top_share`` (share of the response mass on its top half-feature)."""

    @property
    def summary(self) -> dict[str, float]:
        f = self.features
        return {
            "n_represented": int(f["represented"].sum()),
            "n_dedicated": int((f["status"] == "dedicated").sum()),
            "n_superposed": int((f["status"] == "superposed").sum()),
            "n_absent": int((f["status"] == "absent").sum()),
            "n_feature_dedicated": int(f["feature_dedicated"].sum()),
            "mean_neuron_features": float(self.neurons["n_features"].mean()),
            "mean_participation": float(self.neurons["participation"].mean()),
        }


def ground_truth(model: ToyModel, *, represented_at: float = 0.5, relative: float = 0.25) -> GroundTruth:
    """Which half-features the toy represents, by which neurons, and how polysemantic each neuron is.

    A half-feature is *represented* when the model outputs ``|x_i| >= represented_at`` for it alone at magnitude 1.
    Neuron ``j`` *carries* a represented half-feature when its |response| to it is at least ``relative`` times its
    largest |response| to any represented half-feature (and above 1e-3). A neuron that carries exactly one
    half-feature is *dedicated* to it; a represented half-feature without a dedicated neuron is *superposed*: the
    neurons that carry it also carry others.
    """
    cfg = model.config
    F = cfg.n_features
    x_HF = half_feature_inputs(F)
    response_HM = model.hidden(x_HF) - model.hidden(np.zeros((1, F), dtype=np.float32))
    feature_H = np.repeat(np.arange(F), 2)
    output_H = model.output(x_HF)[np.arange(2 * F), feature_H].astype(np.float64)
    represented_H = output_H >= represented_at
    abs_HM = np.abs(response_HM).astype(np.float64)
    mass_HM = abs_HM * represented_H[:, None]
    H, M = abs_HM.shape
    col_max_M = mass_HM.max(axis=0)
    carries_HM = (mass_HM >= relative * col_max_M[None, :]) & (mass_HM > 1e-3)
    n_features_M = carries_HM.sum(axis=0)
    dedicated_H = np.full(H, -1)
    for j in np.flatnonzero(n_features_M == 1):
        h = int(np.argmax(mass_HM[:, j]))
        if dedicated_H[h] < 0 or abs_HM[h, j] > abs_HM[h, dedicated_H[h]]:
            dedicated_H[h] = j
    status_H = np.where(~represented_H, "absent", np.where(dedicated_H >= 0, "dedicated", "superposed"))
    # feature level: a neuron whose carried half-features all belong to one feature (e.g. |x_i| in one gated neuron)
    sources_M = np.array([len(set(feature_H[carries_HM[:, j]].tolist())) for j in range(M)])
    one_feature_M = sources_M == 1
    feature_dedicated_H = np.array([bool((carries_HM[h] & one_feature_M).any()) for h in range(H)]) & represented_H
    features = pd.DataFrame(
        {
            "half": np.arange(H),
            "feature": feature_H,
            "sign": np.tile([1, -1], F),
            "importance": cfg.importance[feature_H],
            "output": output_H,
            "represented": represented_H,
            "n_neurons": carries_HM.sum(axis=1),
            "dedicated_neuron": dedicated_H,
            "feature_dedicated": feature_dedicated_H,
            "best_neuron": abs_HM.argmax(axis=1),
            "status": status_H,
        }
    )
    col_mass_M = mass_HM.sum(axis=0)
    sq_M = (mass_HM**2).sum(axis=0)
    neurons = pd.DataFrame(
        {
            "neuron": np.arange(M),
            "n_features": n_features_M,
            "n_source_features": sources_M,
            "participation": np.divide(col_mass_M**2, sq_M, out=np.zeros(M), where=sq_M > 0),
            "top_share": np.divide(col_max_M, col_mass_M, out=np.zeros(M), where=col_mass_M > 0),
        }
    )
    return GroundTruth(response_HM, features, neurons)


def probe_data(
    model: ToyModel, half: int, n: int, rng: np.random.Generator, *, positive_share: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations (N, M) and labels "half-feature ``half`` is present" for ``n`` examples.

    A share ``positive_share`` of the rows has the half-feature present (feature ``half // 2`` active with the
    half's sign); half of the other rows have the feature active with the opposite sign (hard negatives), the rest
    have it inactive. Every other feature follows the model's distribution. This mirrors the book's tasks, which
    hold positives and hard negatives in similar numbers whatever the feature's frequency in text.
    """
    F = model.config.n_features
    if not 0 <= half < 2 * F:
        raise ValueError(f"half must be in [0, {2 * F}) (feature i positive is 2i, negative 2i + 1), got {half}.")
    n_pos = round(n * positive_share)
    if n_pos < 1 or n_pos >= n:
        raise ValueError(f"n={n} with positive_share={positive_share} leaves a class empty; use more examples.")
    feature, sign = half // 2, (1.0 if half % 2 == 0 else -1.0)
    x_NF = sample_features(model.config, n, rng)
    magnitude_N = 1.0 - rng.random(n)
    y_N = np.zeros(n, dtype=np.int64)
    y_N[:n_pos] = 1
    opposite_N = (np.arange(n) >= n_pos) & (rng.random(n) < 0.5)
    x_NF[:, feature] = np.where(y_N == 1, sign * magnitude_N, np.where(opposite_N, -sign * magnitude_N, 0.0))
    order = rng.permutation(n)
    return model.hidden(x_NF[order]), y_N[order]


def config_record(config: ToyConfig) -> dict[str, float | int | str]:
    """The config as a flat dict (for results tables)."""
    return asdict(config)
