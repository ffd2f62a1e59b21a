"""Synthetic activations with planted neurons, for tests, benchmarks and sanity checks of the probes.

The generator mimics what sparse probing sees in a language model (Gurnee et al. 2023): examples come in
documents (a label is shared by the whole document, examples of one document are correlated), neurons are
correlated through a few shared latent directions and differ in scale by orders of magnitude, activations pass a
GELU-like nonlinearity, and a known set of *planted* neurons shifts with the label. A method that recovers the
planted set (support precision and recall) finds the right neurons, not just a good classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from ._base import ProbeInputError


@dataclass(frozen=True, eq=False)
class PlantedData:
    """Activations, labels and the ground truth of a planted-neuron problem."""

    X: np.ndarray
    """Activations, (N, D) float32."""
    y: np.ndarray
    """Binary labels, (N,) int (1 = the feature is present)."""
    groups: np.ndarray
    """Document id of every example, (N,) int."""
    planted: np.ndarray
    """Indices of the planted neurons."""
    effects: np.ndarray
    """Shift of each planted neuron's pre-activation for positive examples (in units of its noise std)."""


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def make_planted(
    n: int = 2000,
    d: int = 1536,
    *,
    effects: tuple[float, ...] = (2.0, 1.0, 1.0, 0.75, 0.75),
    prevalence: float = 0.25,
    examples_per_doc: int = 4,
    n_latent: int = 8,
    latent_strength: float = 0.5,
    doc_effect: float = 0.3,
    nonlinear: bool = True,
    scale_spread: float = 0.5,
    random_state: int = 0,
) -> PlantedData:
    """Draw a planted-neuron probing problem.

    Parameters
    ----------
    n, d : examples and neurons.
    effects : pre-activation shift of each planted neuron for positive examples (one entry per planted neuron;
        1 = one noise standard deviation). Strong single effects mimic monosemantic neurons, several weak ones a
        feature spread over neurons.
    prevalence : fraction of positive documents.
    examples_per_doc : examples share a document (and its label) in blocks of this size.
    n_latent, latent_strength : shared latent directions that correlate all neurons.
    doc_effect : std of a per-document, per-neuron offset (examples of a document are not independent).
    nonlinear : apply a GELU to the pre-activations (MLP neurons after the nonlinearity).
    scale_spread : neurons are multiplied by ``exp(N(0, scale_spread))`` (log-normal scales).
    random_state : seed.
    """
    if len(effects) > d:
        raise ProbeInputError(f"cannot plant {len(effects)} neurons among d={d}.")
    if not 0 < prevalence < 1:
        raise ProbeInputError(f"prevalence must lie in (0, 1), got {prevalence}.")
    rng = np.random.default_rng(random_state)
    n_docs = int(np.ceil(n / examples_per_doc))
    groups_N = np.repeat(np.arange(n_docs), examples_per_doc)[:n]
    y_docs = (rng.random(n_docs) < prevalence).astype(np.int64)
    if n_docs >= 2:  # at least one positive and one negative document
        y_docs[0], y_docs[-1] = 1, 0
    y_N = y_docs[groups_N]
    latent_NL = rng.standard_normal((n, n_latent)).astype(np.float32)
    loading_LD = (rng.standard_normal((n_latent, d)) * latent_strength / np.sqrt(n_latent)).astype(np.float32)
    pre_ND = rng.standard_normal((n, d), dtype=np.float32) + latent_NL @ loading_LD
    if doc_effect > 0:
        pre_ND += (rng.standard_normal((n_docs, d), dtype=np.float32) * doc_effect)[groups_N]
    planted_P = np.sort(rng.choice(d, size=len(effects), replace=False))
    effects_P = np.asarray(effects, dtype=np.float32)
    pre_ND[:, planted_P] += y_N[:, None].astype(np.float32) * effects_P[None, :]
    bias_D = rng.normal(-0.5, 0.5, size=d).astype(np.float32)
    scale_D = np.exp(rng.normal(0.0, scale_spread, size=d)).astype(np.float32)  # neurons differ in scale
    act_ND = _gelu(pre_ND + bias_D) if nonlinear else pre_ND + bias_D
    X_ND = (act_ND * scale_D).astype(np.float32)
    return PlantedData(X=X_ND, y=y_N, groups=groups_N, planted=planted_P, effects=effects_P)


def support_recovery(support: np.ndarray, planted: np.ndarray) -> tuple[float, float]:
    """Precision and recall of a support against the planted neurons."""
    support_set, planted_set = set(np.asarray(support).tolist()), set(np.asarray(planted).tolist())
    hits = len(support_set & planted_set)
    precision = hits / len(support_set) if support_set else 0.0
    recall = hits / len(planted_set) if planted_set else 0.0
    return precision, recall


def make_joint_block(
    n: int = 2000,
    d: int = 1536,
    *,
    block_size: int = 4,
    block_effect: float = 1.0,
    shared_noise: float = 3.0,
    n_distractors: int = 0,
    distractor_effect: float = 0.6,
    examples_per_doc: int = 4,
    prevalence: float = 0.3,
    random_state: int = 0,
) -> PlantedData:
    """A block of neurons that is informative only jointly, optionally beside stronger univariate distractors.

    The block's neurons share a large noise component (``shared_noise`` standard deviations) and shift with the
    label in alternating directions (``+block_effect, -block_effect, ...``): each neuron alone is weak (standardized
    mean difference about ``block_effect / shared_noise``), but the signed sum of the block cancels the shared noise
    and separates the classes far better. ``n_distractors`` further neurons shift by ``distractor_effect`` each,
    independently: each is a better single neuron than any block member, and a ranking by mean difference picks
    them first, although together they separate the classes worse than the block. ``planted`` holds the block;
    the distractors are not in it. Activations are linear (no nonlinearity), documents as in :func:`make_planted`.
    """
    if block_size < 2 or block_size + n_distractors > d:
        raise ProbeInputError(f"need 2 <= block_size and block_size + n_distractors <= d, got {block_size}, {d}.")
    rng = np.random.default_rng(random_state)
    n_docs = int(np.ceil(n / examples_per_doc))
    groups_N = np.repeat(np.arange(n_docs), examples_per_doc)[:n]
    y_docs = (rng.random(n_docs) < prevalence).astype(np.int64)
    y_docs[0], y_docs[-1] = 1, 0
    y_N = y_docs[groups_N]
    X_ND = rng.standard_normal((n, d)).astype(np.float32)
    chosen = rng.choice(d, size=block_size + n_distractors, replace=False)
    block_B, distractors = np.sort(chosen[:block_size]), chosen[block_size:]
    signs_B = np.where(np.arange(block_size) % 2 == 0, 1.0, -1.0).astype(np.float32)
    shared_N = rng.standard_normal(n).astype(np.float32) * shared_noise
    X_ND[:, block_B] += shared_N[:, None] + y_N[:, None] * (block_effect * signs_B)[None, :]
    X_ND[:, distractors] += y_N[:, None].astype(np.float32) * distractor_effect
    scale_D = np.exp(rng.normal(0.0, 0.5, size=d)).astype(np.float32)
    return PlantedData(
        X=(X_ND * scale_D).astype(np.float32),
        y=y_N,
        groups=groups_N,
        planted=block_B,
        effects=(block_effect * signs_B).astype(np.float32),
    )
