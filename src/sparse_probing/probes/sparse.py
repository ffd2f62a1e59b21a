"""k-sparse probes: rank the neurons, keep the top k, fit a logistic regression on them.

The heuristic sparse probes of Gurnee et al. (2023), "Finding Neurons in a Haystack":

* :class:`SparseProbe`: rank the neurons once (mean difference by default, see
  :mod:`~sparse_probing.probes.ranking`), keep the top k, and fit an L2 logistic regression with balanced class
  weights on them, for every k of the paper's grid (1..8, 10, 12, 16, 32, 64, 128, 256).
* :class:`TelescopicProbe`: the paper's "adaptive thresholding". Start from the top 256
  neurons by mean difference, fit an elastic-net logistic regression, keep the k neurons with the largest
  standardized |coef|, refit (warm-started from the previous coefficients), and so on down the k grid. One pass
  over the grid replaces the paper's independent saga fits per k (the first fit starts from the ridge solution),
  and each k's support is chosen jointly rather than one neuron at a time.

All fits standardize the kept neurons on the training data; coefficients are reported in raw activation units.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from ._base import (
    K_GRID,
    SparseFit,
    SparseLinearClassifierMixin,
    Timer,
    check_binary_problem,
    fit_logistic,
    order_by_importance,
    path_ks,
    resolve_k,
    resolve_ks,
    standardize,
    to_raw_scale,
    validate_fit_data,
)
from .ranking import RANKERS, ProbeInputError, mean_difference, rank_checked


def _fit_top_k(
    X_ND: np.ndarray, y_N: np.ndarray, ranking_D: np.ndarray, k: int, method: str, C: float, max_iter: int
) -> SparseFit:
    with Timer() as timer:
        support_K = ranking_D[:k]
        coef_K, intercept, coef_std_K, n_iter = fit_logistic(X_ND[:, support_K], y_N, C=C, max_iter=max_iter)
        perm_K, support_K = order_by_importance(support_K, coef_std_K)
    return SparseFit(
        k=k,
        support=support_K,
        coef=coef_K[perm_K],
        intercept=intercept,
        method=method,
        fit_time=timer.seconds,
        info={"n_iter": n_iter},
    )


def _top_k_path(
    X_ND: np.ndarray,
    y_N: np.ndarray,
    ks: tuple[int, ...],
    *,
    ranker: str,
    C: float,
    ranker_C: float | None,
    max_iter: int,
    random_state: Any,
) -> tuple[list[SparseFit], np.ndarray, np.ndarray]:
    """Rank once with ``ranker``, then fit a class-balanced L2 logistic regression on the top k for every k.

    Takes validated 0/1 data and resolved ``ks``; returns one :class:`SparseFit` per k (ascending), the ranking and
    the ranker's scores. The ranking time is counted in the first fit.
    """
    if ranker not in RANKERS:
        raise ProbeInputError(f"Unknown ranker {ranker!r}; choose one of {RANKERS}.")
    with Timer() as timer:
        ranking_D, scores_D = rank_checked(X_ND, y_N, ranker, C=ranker_C, random_state=random_state)
    fits = [_fit_top_k(X_ND, y_N, ranking_D, k, ranker, C, max_iter) for k in ks]
    first = fits[0]
    fits[0] = SparseFit(
        k=first.k,
        support=first.support,
        coef=first.coef,
        intercept=first.intercept,
        method=first.method,
        fit_time=first.fit_time + timer.seconds,
        info=first.info,
    )
    return fits, ranking_D, scores_D


def _telescopic_path(
    X_ND: np.ndarray,
    y_N: np.ndarray,
    ks: tuple[int, ...],
    *,
    n_start: int,
    C: float,
    l1_ratio: float,
    refit: bool,
    max_iter: int,
    tol: float,
    random_state: int | None,
) -> list[SparseFit]:
    """The telescopic (adaptive-thresholding) sweep over ``ks`` in one descending pass.

    Starts from the ``n_start`` neurons with the largest mean difference (or ``max(ks)`` if larger); at every k
    (descending) fits an elastic-net logistic regression (saga, balanced class weights, ``C`` and ``l1_ratio`` on
    standardized neurons) warm-started from the previous fit, records it, and keeps the top neurons by |coef| for
    the next k. The first fit starts from the ridge solution. ``tol`` is saga's stopping tolerance (relative
    change of the coefficients per epoch); the loose default suffices to rank neurons, and with ``refit=True`` the
    recorded probe at each k is a fully converged L2 logistic regression on the selected neurons instead of the
    elastic-net fit (the selection is the same). Takes validated 0/1 data and resolved ``ks``; returns one
    :class:`SparseFit` per k, ascending; the elastic net may zero some of the k coefficients.
    """
    D = X_ND.shape[1]
    if not 0.0 <= l1_ratio <= 1.0:
        raise ProbeInputError(f"l1_ratio must lie in [0, 1], got {l1_ratio}.")
    n_start = min(max(int(n_start), max(ks)), D)
    fits: list[SparseFit] = []
    with Timer() as timer:
        candidates_C = np.lexsort((np.arange(D), -mean_difference(X_ND, y_N)))[:n_start]
        Z_NC, mean_C, scale_C = standardize(X_ND[:, candidates_C])
    shared_time = timer.seconds
    levels = sorted(ks, reverse=True)
    recorded = set(levels)
    if levels[0] < n_start:
        levels = [n_start, *levels]
    order_C = np.arange(n_start)  # positions into candidates_C, most important first
    coef_prev_C: np.ndarray | None = None
    intercept_prev = 0.0
    for k in levels:
        with Timer() as timer:
            keep_K = order_C[:k]
            clf = LogisticRegression(
                C=C,
                l1_ratio=l1_ratio,
                solver="saga",
                class_weight="balanced",
                max_iter=max_iter,
                tol=tol,
                warm_start=True,
                random_state=random_state,
            )
            if coef_prev_C is None:
                # the first (largest) fit starts from the ridge solution: lbfgs gets there in a few iterations and
                # saga then needs far fewer epochs than from zero
                ridge = LogisticRegression(C=C, class_weight="balanced", max_iter=1000).fit(Z_NC[:, keep_K], y_N)
                coef_prev_C, intercept_prev = ridge.coef_[0], float(ridge.intercept_[0])
            # scikit-learn's warm start reads the initial point from coef_/intercept_
            clf.coef_ = coef_prev_C[:k][None, :].copy()
            clf.intercept_ = np.array([intercept_prev])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(Z_NC[:, keep_K], y_N)
            coef_std_K = clf.coef_[0]
            perm_K = np.argsort(-np.abs(coef_std_K), kind="stable")
            order_C, coef_prev_C, intercept_prev = keep_K[perm_K], coef_std_K[perm_K], float(clf.intercept_[0])
            if k in recorded:
                support_K = candidates_C[order_C]
                if refit:
                    coef_K, intercept, _, _ = fit_logistic(X_ND[:, support_K], y_N)
                else:
                    coef_K, intercept = to_raw_scale(coef_prev_C, intercept_prev, mean_C[order_C], scale_C[order_C])
        seconds = timer.seconds + shared_time
        shared_time = 0.0
        if k in recorded:
            info = {"n_nonzero": int(np.count_nonzero(coef_prev_C)), "n_iter": int(np.max(clf.n_iter_))}
            fits.append(
                SparseFit(
                    k=k,
                    support=support_K,
                    coef=coef_K,
                    intercept=intercept,
                    method="telescopic",
                    fit_time=seconds,
                    info=info,
                )
            )
        else:
            shared_time = seconds
    return fits[::-1]


class SparseProbe(SparseLinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Rank neurons, keep the top ``k``, fit a class-balanced L2 logistic regression on them.

    Parameters
    ----------
    k : int
        Neurons to keep (clipped to the number of neurons with a warning).
    ranker : str
        One of :data:`~sparse_probing.probes.ranking.RANKERS`; ``"mean_diff"`` is the paper's default.
    C : float
        Inverse L2 regularization of the logistic regression (on standardized neurons).
    ranker_C : float or None
        Inverse regularization of the ``l1``/``svm`` rankers.
    max_iter : int
        Iteration cap of the logistic regression.
    random_state : int, RandomState or None
        Seeds the ``mutual_info`` and ``random`` rankers.

    Attributes
    ----------
    support_ : ndarray (k_,)
        Kept neurons, most important (largest standardized |coef|) first.
    coef_ : ndarray (1, D)
        Weights in raw activation units, zero outside the support.
    intercept_ : ndarray (1,)
    ranking_, scores_ : ndarray (D,)
        The full ranking (best first) and the ranker's scores.
    classes_ : ndarray (2,)
        ``classes_[1]`` is the positive class.
    """

    def __init__(
        self,
        k: int = 1,
        ranker: str = "mean_diff",
        C: float = 1.0,
        ranker_C: float | None = None,
        max_iter: int = 1000,
        random_state: Any = None,
    ):
        self.k = k
        self.ranker = ranker
        self.C = C
        self.ranker_C = ranker_C
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> SparseProbe:
        if self.ranker not in RANKERS:
            raise ProbeInputError(f"Unknown ranker {self.ranker!r}; choose one of {RANKERS}.")
        X_ND, y_N, classes = validate_fit_data(self, X, y)
        k = resolve_k(self.k, X_ND.shape[1])
        (fit,), self.ranking_, self.scores_ = self._path(X_ND, y_N, (k,))
        self._store_fit(fit, X_ND.shape[1], classes)
        return self

    def fit_path(self, X: Any, y: Any, ks: Iterable[int] | None = None) -> list[SparseFit]:
        """Fit every k of ``ks`` with this probe's parameters, ranking once (``self.k`` is not used).

        ``ks=None`` is the paper's grid (:data:`~sparse_probing.probes.K_GRID`) up to the number of neurons; larger
        explicit values are clipped with a :class:`~sparse_probing.probes.KClippedWarning`. Returns one
        :class:`~sparse_probing.probes.SparseFit` per k (ascending; the ranking time is counted in the first);
        the estimator itself is left as it was.
        """
        if self.ranker not in RANKERS:
            raise ProbeInputError(f"Unknown ranker {self.ranker!r}; choose one of {RANKERS}.")
        X_ND, y_N, _ = check_binary_problem(X, y)
        fits, _, _ = self._path(X_ND, y_N, path_ks(ks, K_GRID, X_ND.shape[1]))
        return fits

    def _path(
        self, X_ND: np.ndarray, y_N: np.ndarray, ks: tuple[int, ...]
    ) -> tuple[list[SparseFit], np.ndarray, np.ndarray]:
        return _top_k_path(
            X_ND,
            y_N,
            ks,
            ranker=self.ranker,
            C=self.C,
            ranker_C=self.ranker_C,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )


class TelescopicProbe(SparseLinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """A k-sparse probe found by the telescopic (adaptive-thresholding) sweep.

    Starts from the ``n_start`` neurons with the largest mean difference (or the largest k if larger); at every k
    (descending) fits an elastic-net logistic regression (saga, balanced class weights, ``C`` and ``l1_ratio`` on
    standardized neurons) warm-started from the previous fit, and keeps the top neurons by |coef| for the next k.
    ``tol`` and ``max_iter`` are saga's stopping tolerance and epoch cap; with ``refit=True`` the probe at each k is a
    fully converged L2 logistic regression on the selected neurons instead of the elastic-net fit. ``fit`` descends
    through the paper's k grid values above ``k`` (up to ``n_start``), then ``k``; :meth:`fit_path` records every k
    of a grid in one pass. Fitted attributes as in :class:`SparseProbe` plus ``path_``,
    the :class:`~sparse_probing.probes.SparseFit` of every level visited.
    """

    def __init__(
        self,
        k: int = 1,
        n_start: int = 256,
        C: float = 1.0,
        l1_ratio: float = 0.5,
        refit: bool = False,
        max_iter: int = 100,
        tol: float = 1e-2,
        random_state: int | None = 0,
    ):
        self.k = k
        self.n_start = n_start
        self.C = C
        self.l1_ratio = l1_ratio
        self.refit = refit
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> TelescopicProbe:
        X_ND, y_N, classes = validate_fit_data(self, X, y)
        k = resolve_k(self.k, X_ND.shape[1])
        ks = [g for g in K_GRID if k < g <= min(self.n_start, X_ND.shape[1])] + [k]
        self.path_ = self._path(X_ND, y_N, resolve_ks(ks, X_ND.shape[1]))
        self._store_fit(self.path_[0], X_ND.shape[1], classes)
        return self

    def fit_path(self, X: Any, y: Any, ks: Iterable[int] | None = None) -> list[SparseFit]:
        """The telescopic sweep over ``ks`` in one descending pass with this probe's parameters (``self.k`` is not
        used).

        ``ks=None`` is the paper's grid (:data:`~sparse_probing.probes.K_GRID`) up to the number of neurons; larger
        explicit values are clipped with a :class:`~sparse_probing.probes.KClippedWarning`. Returns one
        :class:`~sparse_probing.probes.SparseFit` per k, ascending; the estimator itself is left as it was.
        """
        X_ND, y_N, _ = check_binary_problem(X, y)
        return self._path(X_ND, y_N, path_ks(ks, K_GRID, X_ND.shape[1]))

    def _path(self, X_ND: np.ndarray, y_N: np.ndarray, ks: tuple[int, ...]) -> list[SparseFit]:
        return _telescopic_path(
            X_ND,
            y_N,
            ks,
            n_start=self.n_start,
            C=self.C,
            l1_ratio=self.l1_ratio,
            refit=self.refit,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
        )
