"""Neuron rankers: score every neuron for a binary feature, best first.

Sparse probing (Gurnee et al. 2023, "Finding Neurons in a Haystack") first ranks the D neurons of a layer by how
well each one (or a cheap multivariate model) separates the positive from the negative examples, then trains a
classifier on the top k. The rankers of the paper:

``mean_diff``
    ``|mean(x_j | y=1) - mean(x_j | y=0)| / std(x_j)``: the class mean difference of activations standardized per
    neuron, the paper's heuristic as its experiments ran it: its ranker (``get_heuristic_neuron_ranking(...,
    'mean_dif')`` in ``experiments/probes.py`` of github.com/wesg52/sparse-probing-paper) takes the plain difference
    of activations that the scripts of its final experiments (``scripts/experiments/``, e.g. the compound-word
    superposition and sparsity-sweep runs) first divide by ``10 * max(std, 1e-3)`` per neuron
    (``--normalize_activations``, ``split_and_preprocess`` in ``experiments/inner_loops.py``; a few exploratory
    scripts run without it). Here the standard
    deviation is floored at 1e-3 times its median over neurons instead, so near-constant neurons cannot win by
    division on any scale. The default ranker and the prefilter of the telescopic and optimal probes.
``mean_diff_raw``
    ``|mean(x_j | y=1) - mean(x_j | y=0)|`` on the activations as they are: the paper's function without its
    normalization. It favours neurons with a large scale (planted neurons among neurons of unequal scale: support
    recall 0.80-0.88 where ``mean_diff`` recovers all, ``benchmarks/RESULTS.md``); the methods chapter shows both
    on real tasks.
``f_stat``
    The one-way ANOVA F statistic (``sklearn.feature_selection.f_classif``).
``mutual_info``
    Estimated mutual information between a neuron and the label (``mutual_info_classif``, k-NN estimator).
``l1``
    ``|coef|`` of an L1-penalized, class-balanced logistic regression on standardized neurons.
``l1_path``
    The order in which neurons enter the L1 regularization path of a class-balanced logistic regression on
    standardized neurons (from the smallest C with a non-zero coefficient upwards; ties by |coef| at the end of the
    path). A neuron that only helps jointly with others enters once they are in, which a univariate ranker misses.
``svm``
    ``|coef|`` of a class-balanced linear SVM (L2 penalty, hinge loss) on standardized neurons.
``random``
    A random order (a floor for the other rankers).

Ties (for example the many zero coefficients of the L1 ranker) are broken by mean difference and then by neuron
index, so every ranking is a deterministic total order.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin, f_classif, mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from sklearn.utils import check_random_state

from ._base import (
    ProbeInputError,
    check_binary_problem,
    resolve_k,
    standardize,
    validate_fit_data,
)

RANKERS: tuple[str, ...] = ("mean_diff", "mean_diff_raw", "f_stat", "mutual_info", "l1", "l1_path", "svm", "random")
"""Names accepted by :func:`score_neurons`, :func:`rank_neurons` and :class:`NeuronRanker`."""

DEFAULT_RANKER_C: dict[str, float] = {"l1": 0.1, "svm": 0.01}
"""Default inverse regularization strength of the model-based rankers (on standardized neurons)."""


def mean_difference(X_ND: np.ndarray, y_N: np.ndarray, *, standardize: bool = True) -> np.ndarray:
    """``|mean(X | y=1) - mean(X | y=0)|`` per neuron, divided by the neuron's standard deviation by default.

    The standard deviation is floored at 1e-3 times the median over neurons, so near-constant neurons cannot win
    by division (the paper floors at 1e-3 in raw units). Accumulates in float64 (works on float16 memmaps).
    """
    pos_N = np.asarray(y_N).astype(bool)
    mean_pos_D = np.mean(X_ND[pos_N], axis=0, dtype=np.float64)
    mean_neg_D = np.mean(X_ND[~pos_N], axis=0, dtype=np.float64)
    diff_D = np.abs(mean_pos_D - mean_neg_D)
    if not standardize:
        return diff_D
    std_D = np.std(X_ND, axis=0, dtype=np.float64)
    floor = 1e-3 * float(np.median(std_D)) if np.any(std_D > 0) else 1.0
    return diff_D / np.maximum(std_D, max(floor, 1e-12))


def _check_method(method: str) -> None:
    if method not in RANKERS:
        raise ProbeInputError(f"Unknown ranker {method!r}; choose one of {RANKERS}.")


def _scores(
    X_ND: np.ndarray, y_N: np.ndarray, method: str, C: float | None, random_state: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Primary scores and the mean-difference tie-breaker, both ``(D,)``; ``y_N`` is 0/1."""
    _check_method(method)
    mean_diff_D = mean_difference(X_ND, y_N)
    if method == "mean_diff":
        return mean_diff_D, mean_diff_D
    if method == "mean_diff_raw":
        return mean_difference(X_ND, y_N, standardize=False), mean_diff_D
    if method == "f_stat":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant neurons: 0/0
            f_D, _ = f_classif(X_ND, y_N)
        return np.nan_to_num(f_D, nan=0.0, posinf=np.finfo(np.float64).max), mean_diff_D
    if method == "mutual_info":
        rng = check_random_state(random_state)
        mi_D = mutual_info_classif(X_ND, y_N, discrete_features=False, random_state=rng.randint(2**31 - 1))
        return np.asarray(mi_D, dtype=np.float64), mean_diff_D
    if method == "random":
        rng = check_random_state(random_state)
        return rng.permutation(X_ND.shape[1]).astype(np.float64), mean_diff_D
    Z_ND, _, _ = standardize(X_ND)
    if method == "l1_path":
        return l1_path_scores(Z_ND, y_N), mean_diff_D
    C = DEFAULT_RANKER_C[method] if C is None else float(C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if method == "l1":
            model = LogisticRegression(
                C=C, l1_ratio=1.0, solver="liblinear", class_weight="balanced", max_iter=1000, random_state=0
            )
        else:
            model = LinearSVC(C=C, class_weight="balanced", dual=True, max_iter=5000, random_state=0)
        model.fit(Z_ND, y_N)
    return np.abs(model.coef_[0]).astype(np.float64), mean_diff_D


L1_PATH_STEPS = 12
"""Values of C on the L1 path of the ``l1_path`` ranker (log-spaced over 2.5 decades from the first entry)."""


def l1_path_scores(Z_ND: np.ndarray, y_N: np.ndarray, n_steps: int = L1_PATH_STEPS) -> np.ndarray:
    """Entry order on the L1 logistic-regression path of standardized neurons ``Z_ND`` (higher = entered earlier).

    The score is ``n_steps - i`` for a neuron that first gets a non-zero coefficient at the i-th C, plus a fraction
    below 1 that orders neurons entering together by their |coef| at the end of the path; 0 for neurons that never
    enter.
    """
    from sklearn.svm import l1_min_c

    c_start = 0.5 * float(l1_min_c(Z_ND, y_N, loss="log"))
    Cs = c_start * np.logspace(0.0, 2.5, n_steps)
    D = Z_ND.shape[1]
    entry_D = np.full(D, n_steps)
    coef_D = np.zeros(D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i, C in enumerate(Cs):
            model = LogisticRegression(
                C=C, l1_ratio=1.0, solver="liblinear", class_weight="balanced", max_iter=1000, random_state=0
            ).fit(Z_ND, y_N)
            coef_D = np.abs(model.coef_[0])
            entry_D[(coef_D > 0) & (entry_D == n_steps)] = i
    tail_D = coef_D / (1.0 + coef_D.max()) if coef_D.max() > 0 else coef_D
    return np.where(entry_D < n_steps, (n_steps - entry_D) + tail_D, 0.0).astype(np.float64)


def _order(score_D: np.ndarray, tie_D: np.ndarray) -> np.ndarray:
    # lexsort: last key is primary; negate for descending, index ascending as the final tie-break
    return np.lexsort((np.arange(score_D.size), -tie_D, -score_D)).astype(np.int64)


def score_neurons(
    X: Any, y: Any, method: str = "mean_diff", *, C: float | None = None, random_state: Any = None
) -> np.ndarray:
    """Score every neuron for a binary label (higher is better), shape ``(D,)``.

    ``C`` is the inverse regularization of the ``l1`` and ``svm`` rankers (default :data:`DEFAULT_RANKER_C`);
    ``random_state`` seeds ``mutual_info`` and ``random``.
    """
    _check_method(method)
    X_ND, y_N, _ = check_binary_problem(X, y)
    return _scores(X_ND, y_N, method, C, random_state)[0]


def rank_neurons(
    X: Any, y: Any, method: str = "mean_diff", *, C: float | None = None, random_state: Any = None
) -> np.ndarray:
    """All neuron indices, best first, shape ``(D,)`` (ties broken by mean difference, then index)."""
    _check_method(method)
    X_ND, y_N, _ = check_binary_problem(X, y)
    return _order(*_scores(X_ND, y_N, method, C, random_state))


def rank_checked(
    X_ND: np.ndarray, y_N: np.ndarray, method: str, *, C: float | None = None, random_state: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_neurons` for already validated data (``y_N`` 0/1); returns ``(ranking_D, scores_D)``."""
    score_D, tie_D = _scores(X_ND, y_N, method, C, random_state)
    return _order(score_D, tie_D), score_D


class NeuronRanker(SelectorMixin, BaseEstimator):
    """Keep the top ``k`` neurons of a ranking (a scikit-learn feature selector).

    With more than two classes every neuron gets its best one-vs-rest score.

    Parameters
    ----------
    method : str
        One of :data:`RANKERS`.
    k : int
        Neurons to keep; clipped to the number of neurons with a :class:`~sparse_probing.probes.KClippedWarning`.
    C : float or None
        Inverse regularization strength of the ``l1``/``svm`` rankers (None: :data:`DEFAULT_RANKER_C`).
    random_state : int, RandomState or None
        Seeds the ``mutual_info`` and ``random`` rankers.

    Attributes
    ----------
    scores_ : ndarray (D,)
        Score of every neuron (higher is better).
    ranking_ : ndarray (D,)
        All neuron indices, best first.
    support_ : ndarray (k_,)
        The kept neurons, best first (``get_support()`` gives the boolean mask; ``transform`` keeps the selected
        columns in their original order).
    k_ : int
        The number of neurons kept after clipping.
    """

    def __init__(self, method: str = "mean_diff", k: int = 1, C: float | None = None, random_state: Any = None):
        self.method = method
        self.k = k
        self.C = C
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> NeuronRanker:
        _check_method(self.method)
        X_ND, y_N, classes = validate_fit_data(self, X, y, multiclass=True)
        self.k_ = resolve_k(self.k, X_ND.shape[1])
        if classes.size == 2:
            self.ranking_, self.scores_ = rank_checked(X_ND, y_N, self.method, C=self.C, random_state=self.random_state)
        else:  # one-vs-rest: a neuron's score is its best score for any class
            per_class = [
                _scores(X_ND, (y_N == c).astype(np.int64), self.method, self.C, self.random_state)
                for c in range(classes.size)
            ]
            self.scores_ = np.max([s for s, _ in per_class], axis=0)
            self.ranking_ = _order(self.scores_, np.max([t for _, t in per_class], axis=0))
        self.support_ = self.ranking_[: self.k_].copy()
        self.classes_ = classes
        return self

    def _get_support_mask(self) -> np.ndarray:
        mask_D = np.zeros(self.n_features_in_, dtype=bool)
        mask_D[self.support_] = True
        return mask_D

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
