"""Optimal sparse probing (OSP): exact k-sparse linear classification as a mixed-integer program.

Gurnee et al. (2023) solve, for k = 1..8 and over a prefiltered candidate set (the top 50 neurons by mean
difference), the sparse support-vector problem of Bertsimas, Pauphilet & Van Parys ("Sparse classification: a
scalable discrete optimization perspective", Machine Learning 2021) by outer approximation. For a support
``s in {0,1}^d`` with ``sum(s) = k`` the inner problem is a class-weighted hinge-loss SVM with a ridge penalty,

    c(s) = min_{w, b}  sum_i c_i max(0, 1 - y_i (x_i[s] . w + b)) + (||w||^2 + (b / sigma)^2) / (2 gamma),

with balanced class weights ``c_i = n / (2 n_{y_i})`` and the intercept treated as an always-selected constant
feature of value ``sigma`` (``intercept_scaling``, as in liblinear). The candidate neurons are standardized on the
training data and multiplied by ``feature_scale``. The paper's code uses ``feature_scale=0.1`` and
``gamma = 1/sqrt(n)``: a ridge so strong that the objective becomes separable and its exact optimum is the top-k by
standardized mean difference (measured: 30 of 30 planted-data runs, 9 of 9 real tasks), so a block of neurons that
is informative only jointly is never found. Here ``feature_scale=1`` and gamma is chosen per task on validation data
from :data:`GAMMA_GRID` (:func:`validate_gamma`); every fit records the gamma and whether its support equals the
mean-difference top-k. The candidate set merges the top lists of several rankers (mean difference, the L1 path,
the telescopic probe: :func:`candidate_union`), whose supports also warm-start the solver. Through its dual,

    c(s) = max_{0 <= alpha <= c}  sum_i alpha_i - (gamma / 2) [sigma^2 (y . alpha)^2 + sum_j s_j (X_j . (alpha * y))^2],

``c`` is a maximum of functions that are linear in ``s``: every dual-feasible ``alpha`` gives a valid cut
``t >= f(alpha, s)``, tight at the support where ``alpha`` is optimal. The master problem ``min t`` over
``{sum s = k, s binary}`` and the cuts found so far is a MILP whose optimum is a lower bound on the sparse optimum;
the primal objective of any evaluated support is an upper bound. A support is proven optimal when the two meet
within the relative gap ``mip_gap``.

The same dual also defines ``c`` at a fractional ``s`` in ``[0, 1]^d``: the ridge on neuron j becomes the
perspective ``w_j^2 / (2 gamma s_j)``, i.e. the SVM on the neurons scaled by ``sqrt(s_j)``. Its minimum over
``{sum s = k, 0 <= s <= 1}`` is the Boolean relaxation (Bertsimas, Pauphilet & Van Parys 2021; the perspective
formulation of Dedieu, Hazimeh & Mazumder, "Learning sparse classifiers", JMLR 2021), a convex problem whose
value bounds the sparse optimum from below. Before branching, every k solves it by a stabilised cutting-plane
method (:func:`_boolean_relaxation`); its cuts, tight at fractional points, give the masters an LP relaxation
close to the Boolean one, and with a strong ridge the relaxation alone often proves the incumbent optimal. With a
weak ridge (the hinge loss dominates) the relaxation is loose and branching has to close the gap.

Two interchangeable master solvers:

* ``"gurobi"``: one branch-and-cut with the cuts added lazily at every integer solution (the paper's choice) and
  perspective cuts at fractional node relaxations (user cuts). The model has d + 1 variables and a handful of
  rows regardless of n, far inside the size-limited pip licence.
* ``"highs"``: HiGHS has no lazy-constraint callback, so the outer approximation runs as a cutting-plane loop:
  solve the master MILP (its dual bound is the proof), evaluate c at its solutions, add the cuts, repeat until the
  bounds meet; cheap rounds driven by a local search on the cut model come in between.

``solver="auto"`` uses Gurobi when it can be imported and the model fits its licence, else HiGHS. The inner SVM is
solved by liblinear (scikit-learn's ``LinearSVC``); its dual variables are recovered from the primal solution and
clipped into the box, so every cut stays valid even when liblinear stops early.

The neurons are ranked once per fit. Sparsity levels are solved in ascending order, sharing all cuts; each k
starts from the best of the rankers' supports and the previous k's support grown by its best neuron, so the
objective never increases with k. Every solve is recorded (:class:`SolveInfo`): solver, status, objective, best
bound (and the relaxation's root bound), gap, solve time and the path's shared set-up time, whether optimality was
proven, and whether the solver improved on its best warm start; a time limit or a solver without an incumbent
returns the best support found with ``proven_optimal=False`` (the best heuristic support when nothing better was
found) instead of failing. When gamma validation picks an edge of its grid the grid is widened, and the solve
records a warning (``gamma_note``).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC
from sklearn.utils.metaestimators import available_if

from ._base import (
    OSP_K_GRID,
    ProbeInputError,
    SparseFit,
    SparseLinearClassifierMixin,
    check_binary_problem,
    fit_logistic,
    path_ks,
    resolve_k,
    resolve_ks,
    standardize,
    to_raw_scale,
    validate_fit_data,
)
from .ranking import mean_difference

SOLVERS: tuple[str, ...] = ("auto", "gurobi", "highs")
"""Accepted values of ``solver``."""

GUROBI_SIZE_LIMIT = 2000
"""Variables and linear constraints allowed by the size-limited licence shipped with the gurobipy pip wheel."""

_MAX_GUROBI_START_CUTS = 1000  # cuts from earlier k copied into a Gurobi model as ordinary rows

RELAXATION_SHARE = 0.4
"""Largest share of a k's time limit spent on the Boolean relaxation before the master starts."""


# --------------------------------------------------------------------------------------------------------------------
# the inner problem
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SubproblemSolution:
    """The SVM on one support: bounds on ``c(s)``, the weights, and the cut it yields."""

    support: np.ndarray
    """Sorted candidate positions of the support."""
    upper: float
    """Primal objective of ``(coef, intercept)``: an upper bound on ``c(s)``."""
    lower: float
    """Dual objective of the recovered ``alpha``: a lower bound on ``c(s)`` (and the cut's value at ``s``)."""
    coef: np.ndarray
    """SVM weights on the standardized candidates, aligned with ``support``."""
    intercept: float
    """SVM intercept on the standardized scale."""
    cut_constant: float
    """``sum(alpha) - gamma/2 sigma^2 (y . alpha)^2``."""
    cut_coef: np.ndarray
    """``gamma/2 (X_j . (alpha * y))^2`` for every candidate j: the cut is ``t + cut_coef . s >= cut_constant``."""


class SparseSVMObjective:
    """The OSP objective ``c(s)`` on a fixed candidate matrix (see the module docstring).

    Parameters
    ----------
    X_ND : ndarray (n, d)
        Candidate neurons (raw; standardized here unless ``standardize=False``).
    y_N : ndarray (n,)
        0/1 labels.
    gamma : float or None
        Ridge parameter; None means ``1 / sqrt(n)`` as in the paper.
    feature_scale : float
        Standardized neurons are multiplied by this (0.1 reproduces the paper's normalization).
    intercept_scaling : float
        Value ``sigma`` of the constant feature that carries the intercept.
    tol : float
        liblinear's stopping tolerance; solutions whose duality gap exceeds ``gap_tol`` (relative) are re-solved
        with a 100x tighter tolerance.
    """

    def __init__(
        self,
        X_ND: np.ndarray,
        y_N: np.ndarray,
        gamma: float | None = None,
        *,
        feature_scale: float = 1.0,
        intercept_scaling: float = 1.0,
        standardize_X: bool = True,
        tol: float = 1e-6,
        gap_tol: float = 1e-7,
        random_state: int = 0,
    ):
        X_ND = np.asarray(X_ND, dtype=np.float64)
        y_N = np.asarray(y_N).astype(np.int64)
        n = X_ND.shape[0]
        counts = np.bincount(y_N, minlength=2)
        if counts.min() == 0:
            raise ProbeInputError("The OSP objective needs both classes in y.")
        if not feature_scale > 0:
            raise ProbeInputError(f"feature_scale must be positive, got {feature_scale}.")
        if standardize_X:
            Z_ND, self.mean_D, scale_D = standardize(X_ND)
        else:
            Z_ND, self.mean_D, scale_D = X_ND, np.zeros(X_ND.shape[1]), np.ones(X_ND.shape[1])
        self.feature_scale = float(feature_scale)
        self.X_ND = Z_ND * self.feature_scale
        self.scale_D = scale_D / self.feature_scale
        self.y_N = y_N
        self.ys_N = 2.0 * y_N - 1.0
        self.class_weight = {0: n / (2.0 * counts[0]), 1: n / (2.0 * counts[1])}
        self.c_N = np.where(y_N == 1, self.class_weight[1], self.class_weight[0])
        self.gamma = float(1.0 / math.sqrt(n) if gamma is None else gamma)
        if not self.gamma > 0:
            raise ProbeInputError(f"gamma must be positive, got {gamma}.")
        self.intercept_scaling = float(intercept_scaling)
        self.tol = tol
        self.gap_tol = gap_tol
        self.random_state = random_state
        self.n_evaluations = 0
        self._cache: dict[tuple[int, ...], SubproblemSolution] = {}

    @property
    def n_features(self) -> int:
        return self.X_ND.shape[1]

    def _svm(self, A_NK: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
        model = LinearSVC(
            loss="hinge",
            dual=True,
            C=self.gamma,
            class_weight=self.class_weight,
            intercept_scaling=self.intercept_scaling,
            tol=tol,
            max_iter=100_000,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(A_NK, self.y_N)
        return model.coef_[0].astype(np.float64), float(model.intercept_[0])

    def _bounds(self, A_NK: np.ndarray, coef_K: np.ndarray, intercept: float) -> tuple[float, float, np.ndarray]:
        """Primal value of ``(coef, intercept)``, and the best dual value over a few alpha recoveries."""
        gamma, sigma = self.gamma, self.intercept_scaling
        wa_K1 = np.append(coef_K, intercept / sigma)  # weights of the augmented features [x, sigma]
        margin_N = self.ys_N * (A_NK @ coef_K + intercept)
        upper = float(self.c_N @ np.maximum(0.0, 1.0 - margin_N) + wa_K1 @ wa_K1 / (2.0 * gamma))
        Aaug_NK1 = np.column_stack([A_NK, np.full(A_NK.shape[0], sigma)])
        best_lower, best_alpha = -np.inf, np.zeros_like(self.c_N)
        for delta in (1e-2, 1e-3, 1e-4, 1e-6, 0.0):
            alpha_N = np.where(margin_N < 1.0 - delta, self.c_N, 0.0)
            free_N = np.abs(margin_N - 1.0) <= delta
            if free_N.any():
                # stationarity: wa = gamma * Aaug^T (alpha * y), solved for the alphas of the points on the margin
                fixed_N = ~free_N
                rhs_K1 = wa_K1 / gamma - Aaug_NK1[fixed_N].T @ (alpha_N[fixed_N] * self.ys_N[fixed_N])
                M_K1F = Aaug_NK1[free_N].T * self.ys_N[free_N]
                alpha_F, *_ = np.linalg.lstsq(M_K1F, rhs_K1, rcond=None)
                alpha_N[free_N] = np.clip(alpha_F, 0.0, self.c_N[free_N])
            v_K1 = Aaug_NK1.T @ (alpha_N * self.ys_N)
            lower = float(alpha_N.sum() - 0.5 * gamma * (v_K1 @ v_K1))
            if lower > best_lower:
                best_lower, best_alpha = lower, alpha_N
        return upper, best_lower, best_alpha

    def evaluate(self, support: Iterable[int]) -> SubproblemSolution:
        """Solve the SVM on ``support`` (candidate positions); results are cached."""
        support_K = np.unique(np.asarray(list(support), dtype=np.int64))
        key = tuple(support_K.tolist())
        if key in self._cache:
            return self._cache[key]
        A_NK = self.X_ND[:, support_K]
        best = None
        for tol in (self.tol, self.tol * 1e-2, self.tol * 1e-4):
            self.n_evaluations += 1
            coef_K, intercept = self._svm(A_NK, tol)
            upper, lower, alpha_N = self._bounds(A_NK, coef_K, intercept)
            if best is None or upper - lower < best[1] - best[2]:
                best = (alpha_N, upper, lower, coef_K, intercept)
            if upper - lower <= self.gap_tol * max(1.0, abs(upper)):
                break
        assert best is not None
        alpha_N, upper, lower, coef_K, intercept = best
        ay_N = alpha_N * self.ys_N
        z_D = self.X_ND.T @ ay_N
        gamma, sigma = self.gamma, self.intercept_scaling
        solution = SubproblemSolution(
            support=support_K,
            upper=upper,
            lower=lower,
            coef=coef_K,
            intercept=intercept,
            cut_constant=float(alpha_N.sum() - 0.5 * gamma * sigma**2 * ay_N.sum() ** 2),
            cut_coef=0.5 * gamma * z_D**2,
        )
        self._cache[key] = solution
        return solution

    def evaluate_fractional(self, s_D: np.ndarray) -> tuple[float, float, np.ndarray]:
        """The perspective relaxation at a fractional ``s`` in ``[0, 1]^d``, and the cut it yields.

        For fractional ``s`` the ridge on neuron j becomes ``w_j^2 / (2 gamma s_j)`` (the perspective of the ridge
        term; ``s_j = 0`` forces ``w_j = 0``), and substituting ``w_j = sqrt(s_j) v_j`` turns it into the plain SVM
        on the neurons scaled by ``sqrt(s_j)``. Its dual solution ``alpha`` gives the cut ``t + cut_coef . s >=
        cut_constant`` that is tight at ``s`` and, like every cut, valid at every support. Returns
        ``(c(s) upper bound, cut_constant, cut_coef)``.
        """
        s_D = np.clip(np.asarray(s_D, dtype=np.float64), 0.0, 1.0)
        support_K = np.flatnonzero(s_D > 1e-12)
        A_NK = self.X_ND[:, support_K] * np.sqrt(s_D[support_K])
        self.n_evaluations += 1
        coef_K, intercept = self._svm(A_NK, self.tol * 10)
        upper, _, alpha_N = self._bounds(A_NK, coef_K, intercept)
        ay_N = alpha_N * self.ys_N
        z_D = self.X_ND.T @ ay_N
        constant = float(alpha_N.sum() - 0.5 * self.gamma * self.intercept_scaling**2 * ay_N.sum() ** 2)
        return upper, constant, 0.5 * self.gamma * z_D**2

    def raw_coef(self, solution: SubproblemSolution) -> tuple[np.ndarray, float]:
        """The SVM of ``solution`` in raw units of the candidate columns."""
        return to_raw_scale(
            solution.coef, solution.intercept, self.mean_D[solution.support], self.scale_D[solution.support]
        )


class _CutPool:
    """All cuts found so far; valid for every support and every k."""

    def __init__(self, d: int):
        self.constant_C: list[float] = []
        self.coef_CD: list[np.ndarray] = []
        self._keys: set[tuple[int, ...]] = set()
        self.d = d

    def __len__(self) -> int:
        return len(self.constant_C)

    def add(self, solution: SubproblemSolution) -> bool:
        """Add the cut of an evaluated support (once per support); True if it was new."""
        return self.add_cut(solution.cut_constant, solution.cut_coef, tuple(solution.support.tolist()))

    def add_cut(self, constant: float, coef_D: np.ndarray, key: Any) -> bool:
        """Add the cut ``t + coef . s >= constant`` under ``key`` (a support, or a fractional point); True if new."""
        if key in self._keys:
            return False
        self._keys.add(key)
        self.constant_C.append(float(constant))
        self.coef_CD.append(np.asarray(coef_D, dtype=np.float64))
        return True

    def single_cut_bound(self, k: int) -> tuple[float, int]:
        """The best bound one cut proves alone at sparsity k, ``max_c (constant_c - sum of the k largest coef_c)``,
        and the index of that cut (``(-inf, -1)`` without cuts)."""
        if not self.constant_C:
            return -math.inf, -1
        coef_CD = np.asarray(self.coef_CD)
        k = min(k, coef_CD.shape[1])
        top_C = -np.partition(-coef_CD, k - 1, axis=1)[:, :k].sum(axis=1) if k > 0 else 0.0
        value_C = np.asarray(self.constant_C) - top_C
        best = int(np.argmax(value_C))
        return float(value_C[best]), best

    def value(self, s_D: np.ndarray) -> float:
        """The master's lower model ``max_c (constant_c - coef_c . s)`` at ``s``."""
        if not self.constant_C:
            return 0.0
        return float(np.max(np.asarray(self.constant_C) - np.asarray(self.coef_CD) @ s_D))


# --------------------------------------------------------------------------------------------------------------------
# solve records
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SolveInfo:
    """What happened in one OSP solve (one k)."""

    k: int
    """Sparsity level."""
    solver: str
    """Master solver actually used: ``"gurobi"`` or ``"highs"``."""
    solver_requested: str
    """The ``solver`` argument (``"auto"``, ``"gurobi"`` or ``"highs"``)."""
    status: str
    """``"optimal"``, ``"time_limit"``, ``"interrupted"``, ``"evaluator_tolerance"`` or the solver's status name."""
    proven_optimal: bool
    """True only if the relative gap between objective and best bound is at most ``mip_gap``."""
    objective: float
    """``c(s)`` (primal SVM objective) of the returned support: an upper bound on the optimum."""
    best_bound: float
    """Proven lower bound on the optimum (``-inf`` if the solver proved nothing)."""
    mip_gap: float
    """``(objective - best_bound) / |objective|`` (``inf`` without a bound)."""
    wall_time: float
    """Seconds of this k's solve (warm starts, local search, relaxation, master, SVM evaluations); the shared
    set-up of the path is in ``setup_time``."""
    n_candidates: int
    """Size of the prefiltered candidate set."""
    n_cuts: int
    """Outer-approximation cuts known at the end of this solve (shared across k)."""
    n_evaluations: int
    """Inner SVM solves during this k."""
    n_master_solves: int
    """HiGHS master MILPs solved (cutting-plane iterations); for Gurobi the number of lazy-cut callbacks."""
    gamma: float
    """Ridge parameter of the objective."""
    note: str = ""
    """Why a fallback or an early stop happened, if one did."""
    gamma_multiple: float = float("nan")
    """``gamma * sqrt(n)``."""
    gamma_source: str = ""
    """How gamma was set: ``"validated"`` (on the given validation rows), ``"validated (internal holdout)"``,
    ``"paper (1/sqrt(n))"`` or ``"given"``."""
    gamma_scores: dict[float, float] = field(default_factory=dict)
    """Validation ROC-AUC of every multiple tried (empty unless validated)."""
    feature_scale: float = 1.0
    """Scale of the standardized neurons in the objective."""
    candidate_rankers: tuple[str, ...] = ()
    """Rankers merged into the candidate set."""
    candidates: tuple[int, ...] = ()
    """The candidate neurons (column indices of ``X``) the solver chose from."""
    warm_start: str = ""
    """Which heuristic support started the solve (a ranker, ``"previous k"`` or ``"candidates"``)."""
    warm_start_objective: float = float("nan")
    """Objective of that warm start (compare with ``objective``)."""
    equals_mean_diff_topk: bool | None = None
    """True when the returned support is the top-k by mean difference: the optimal probe then added nothing."""
    setup_time: float = 0.0
    """Seconds of the set-up shared by every k of the path (ranking once, candidates, gamma validation, the warm
    starts' cuts): one fit costs ``setup_time`` plus the sum of ``wall_time`` over its k."""
    ranking_time: float = 0.0
    """The part of ``setup_time`` spent ranking neurons (done once per fit)."""
    root_bound: float = float("-inf")
    """Lower bound of the Boolean (perspective) relaxation at this k, before branching (part of ``best_bound``)."""
    n_relaxation_iterations: int = 0
    """Frank-Wolfe steps on the relaxation (each one SVM solve and one cut)."""
    improved_on_warm_start: bool = False
    """True when the returned support beats the best warm start (``warm_start_objective``)."""
    improved_by_master: bool = False
    """True when the relaxation or the master found a better support than the warm start after the local swap
    search (an improvement found by the MIO itself, not by a heuristic)."""
    gamma_note: str = ""
    """A warning when validation chose an edge of the gamma grid (see :func:`gamma_edge_note`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Outcome:
    status: str
    bound: float
    n_master: int
    note: str = ""


def _relative_gap(upper: float, lower: float) -> float:
    if not np.isfinite(lower):
        return math.inf
    return max(0.0, upper - lower) / max(abs(upper), 1e-10)


# --------------------------------------------------------------------------------------------------------------------
# master solvers
# --------------------------------------------------------------------------------------------------------------------


@functools.cache
def gurobi_available() -> bool:
    """True when gurobipy imports and a licence (e.g. the pip wheel's size-limited one) starts an environment."""
    if importlib.util.find_spec("gurobipy") is None:
        return False
    try:
        _gurobi_env()
    except Exception:
        return False
    return True


@functools.cache
def _gurobi_env() -> Any:
    import gurobipy as gp

    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    env.start()
    return env


class _GurobiLicenceError(RuntimeError):
    pass


def _choose_solver(solver: str, d: int) -> tuple[str, str]:
    if solver not in SOLVERS:
        raise ProbeInputError(f"Unknown solver {solver!r}; choose one of {SOLVERS}.")
    if solver == "highs":
        return "highs", ""
    fits_licence = d + 1 <= GUROBI_SIZE_LIMIT
    if solver == "gurobi":
        if not gurobi_available():
            raise ProbeInputError(
                "solver='gurobi' but gurobipy is not installed or has no licence: install gurobipy "
                "(pip install gurobipy) or use solver='highs' / 'auto'."
            )
        return "gurobi", "" if fits_licence else "model may exceed the size-limited Gurobi licence"
    if not gurobi_available():
        return "highs", "gurobipy not available"
    if not fits_licence:
        return "highs", f"{d} candidates exceed the Gurobi size-limited licence ({GUROBI_SIZE_LIMIT})"
    return "gurobi", ""


def _improve_by_swaps(
    objective: SparseSVMObjective, pool: _CutPool, start: SubproblemSolution, max_steps: int = 25, n_try: int = 4
) -> SubproblemSolution:
    """Best-improvement swap search with true evaluations, to start the MIP from a good incumbent.

    Swaps (one neuron out, one in) are tried in the order of the cut at the current support, which predicts the
    change ``coef_out - coef_in``; the ``n_try`` most promising are evaluated and the best improving one is taken.
    Every evaluation also adds its cut to the pool. A heuristic: it proves nothing.
    """
    current = start
    d = objective.n_features
    for _ in range(max_steps):
        inside_D = np.zeros(d, dtype=bool)
        inside_D[current.support] = True
        out_K, rest_R = np.flatnonzero(inside_D), np.flatnonzero(~inside_D)
        if rest_R.size == 0:
            break
        g_D = current.cut_coef
        predicted_KR = g_D[out_K][:, None] - g_D[rest_R][None, :]
        order = np.argsort(predicted_KR, axis=None, kind="stable")[:n_try]
        best = current
        for flat in order:
            i, j = np.unravel_index(flat, predicted_KR.shape)
            candidate = objective.evaluate(np.append(np.delete(current.support, i), rest_R[j]))
            pool.add(candidate)
            if candidate.upper < best.upper:
                best = candidate
        if best.upper >= current.upper - 1e-9 * abs(current.upper):
            break
        current = best
    return current


def _search_lower_model(
    pool: _CutPool,
    k: int,
    starts: Sequence[np.ndarray],
    cutoff: float,
    rng: np.random.Generator,
    n_random: int = 4,
    max_moves: int = 50,
) -> list[np.ndarray]:
    """Supports whose lower model ``max_c (constant_c - coef_c . s)`` lies below ``cutoff``, not yet evaluated.

    Steepest-descent swap search (one neuron out, one in) on the lower model from the given supports and a few
    random ones. A heuristic that only proposes where to cut next; it proves nothing.
    """
    d = pool.d
    if not len(pool) or k >= d:
        return []
    const_C = np.asarray(pool.constant_C)
    coef_CD = np.asarray(pool.coef_CD)
    starts = [*starts, *(rng.choice(d, size=k, replace=False) for _ in range(n_random))]
    found: dict[tuple[int, ...], np.ndarray] = {}
    for start in starts:
        in_D = np.zeros(d, dtype=bool)
        in_D[np.asarray(start)] = True
        value_C = const_C - coef_CD[:, in_D].sum(axis=1)
        for _ in range(max_moves):
            if value_C.max() < cutoff:
                support_K = np.flatnonzero(in_D)
                key = tuple(support_K.tolist())
                if key not in pool._keys:
                    found[key] = support_K
                break
            out_K, rest_R = np.flatnonzero(in_D), np.flatnonzero(~in_D)
            base_CR = value_C[:, None] - coef_CD[:, rest_R]
            # model value after swapping out_K[i] for rest_R[j]: max_c (value_c + coef_c,out_i - coef_c,rest_j)
            model_KR = np.stack([(base_CR + coef_CD[:, [i]]).max(axis=0) for i in out_K])
            i, j = np.unravel_index(np.argmin(model_KR), model_KR.shape)
            if model_KR[i, j] >= value_C.max():
                break
            value_C = base_CR[:, j] + coef_CD[:, out_K[i]]
            in_D[out_K[i]], in_D[rest_R[j]] = False, True
    return list(found.values())


def _extend_support(
    objective: SparseSVMObjective, pool: _CutPool, previous: SubproblemSolution, k: int, n_try: int = 5
) -> SubproblemSolution:
    """The support of a smaller k grown to size k, one best neuron at a time (the ``n_try`` neurons the cut at the
    current support predicts to help most are evaluated, the best kept).

    Adding a neuron can never raise the objective (its weight may stay zero), so when the inner solver returns a
    worse value than before, the previous weights padded with a zero are returned instead: the grown support's
    objective is never above the smaller one's, and the path over k stays monotone."""
    current = previous
    while current.support.size < k:
        outside_R = np.setdiff1d(np.arange(objective.n_features), current.support)
        if outside_R.size == 0:
            break
        order = outside_R[np.argsort(-current.cut_coef[outside_R], kind="stable")[:n_try]]
        grown = [objective.evaluate(np.append(current.support, j)) for j in order]
        for solution in grown:
            pool.add(solution)
        best = min(grown, key=lambda sol: sol.upper)
        if best.upper > current.upper:
            new_j = int(np.setdiff1d(best.support, current.support)[0])
            at = int(np.searchsorted(best.support, new_j))
            best = SubproblemSolution(
                support=best.support,
                upper=current.upper,
                lower=min(best.lower, current.upper),
                coef=np.insert(current.coef, at, 0.0),
                intercept=current.intercept,
                cut_constant=best.cut_constant,
                cut_coef=best.cut_coef,
            )
        current = best
    return current


def _boolean_relaxation(
    objective: SparseSVMObjective,
    pool: _CutPool,
    k: int,
    incumbent: SubproblemSolution,
    deadline: float,
    cutoff: float,
    max_iter: int = 200,
    rel_tol: float = 1e-5,
    blend: float = 0.5,
    min_iter: int = 5,
) -> tuple[float, int, np.ndarray]:
    """A lower bound on the k-sparse optimum from the Boolean (perspective) relaxation ``s in [0, 1]^d``.

    The relaxation ``min {c(s) : sum s = k, 0 <= s <= 1}`` (Bertsimas, Pauphilet & Van Parys 2021, section 3; the
    perspective formulation of Dedieu, Hazimeh & Mazumder 2021) is convex: ``c`` is a maximum of functions linear
    in ``s``, and at a fractional point it is the SVM on the neurons scaled by ``sqrt(s_j)``
    (:meth:`SparseSVMObjective.evaluate_fractional`), whose dual gives a cut tight there. It is solved by a
    stabilised cutting-plane method (in-out, Ben-Ameur & Neto 2007): the LP ``min t`` over all cuts of the pool and
    the relaxed constraints gives a lower bound and a point ``s_lp``; the next cut is taken between ``s_lp`` and the
    best point so far (the centre, first the incumbent), which converges much faster than cutting at ``s_lp``
    itself. Every cut enters the pool, so the masters start from an LP relaxation close to the Boolean one. Stops
    when the bound reaches ``cutoff``, when the relaxation is solved within ``rel_tol``, after ``min_iter`` steps
    once a relaxed point below the cutoff shows that the relaxation cannot prove the incumbent (a weak ridge:
    branching has to), or at ``deadline``. Returns
    ``(bound, iterations, s)`` with ``s`` the best relaxed point found.
    """
    import highspy

    d = objective.n_features
    bound, _ = pool.single_cut_bound(k)
    center_D = np.zeros(d)
    center_D[incumbent.support] = 1.0
    if k >= d or bound >= cutoff:
        return bound, 0, center_D
    center_value = incumbent.upper
    h, cols = _highs_cardinality_model(d, k)
    n_rows = 0

    def add_rows() -> None:
        nonlocal n_rows
        _highs_add_cuts(h, pool, n_rows, cols)
        n_rows = len(pool)

    n_iter = 0
    while n_iter < max_iter and time.perf_counter() < deadline:
        n_iter += 1
        add_rows()
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        col = np.asarray(h.getSolution().col_value)
        lp_D, lp_value = np.clip(col[:d], 0.0, 1.0), float(col[d])
        bound = max(bound, lp_value)
        if bound >= cutoff or center_value - bound <= rel_tol * max(abs(center_value), 1e-10):
            break
        if n_iter > min_iter and center_value < cutoff:
            break  # the relaxation's optimum lies below the cutoff: it cannot prove the incumbent, branching must
        query_D = blend * center_D + (1.0 - blend) * lp_D
        upper, constant, coef_D = objective.evaluate_fractional(query_D)
        pool.add_cut(constant, coef_D, ("fractional", len(pool)))
        if upper < center_value:
            center_D, center_value = query_D, upper
        elif constant - coef_D @ lp_D <= lp_value + 1e-9 * max(1.0, abs(lp_value)):
            # the cut at the blended point does not separate the LP point: cut at the LP point itself
            _, constant, coef_D = objective.evaluate_fractional(lp_D)
            pool.add_cut(constant, coef_D, ("fractional", len(pool)))
    return bound, n_iter, center_D


def _highs_cardinality_model(d: int, k: int) -> tuple[Any, np.ndarray]:
    """A silent HiGHS model with columns ``s_1..s_d`` in [0, 1] and ``eta`` >= 0 (the objective), and the row
    ``sum(s) = k``; returns the model and the column indices ``0..d``."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addCols(
        d + 1,
        np.append(np.zeros(d), 1.0),
        np.zeros(d + 1),
        np.append(np.ones(d), highspy.kHighsInf),
        0,
        np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32),
        np.zeros(0),
    )
    cols = np.arange(d + 1, dtype=np.int32)
    h.addRow(float(k), float(k), d, cols[:d], np.ones(d))
    return h, cols


def _highs_add_cuts(h: Any, pool: _CutPool, start: int, cols: np.ndarray) -> None:
    """Add the pool's cuts from ``start`` on as rows ``coef . s + eta >= constant`` of a
    :func:`_highs_cardinality_model` (``cols`` its column indices ``0..d``)."""
    import highspy

    m = len(pool) - start
    if m <= 0:
        return
    width = cols.size
    h.addRows(
        m,
        np.asarray(pool.constant_C[start:], dtype=np.float64),
        np.full(m, highspy.kHighsInf),
        m * width,
        np.arange(0, m * width, width, dtype=np.int32),
        np.tile(cols, m),
        np.column_stack([np.asarray(pool.coef_CD[start:]), np.ones(m)]).ravel(),
    )


def _solve_highs(
    objective: SparseSVMObjective,
    pool: _CutPool,
    k: int,
    incumbent: SubproblemSolution,
    deadline: float,
    mip_gap: float,
    seed: int,
    max_solutions: int = 5,
    extra_cuts: int = 5,
    milp_every: int = 4,
    milp_after: float = 0.5,
) -> tuple[SubproblemSolution, _Outcome]:
    """Outer approximation as a cutting-plane loop around HiGHS (which has no lazy-constraint callback).

    A master round solves the MILP over all cuts so far, asking for supports whose lower model lies below the
    cutoff ``UB - mip_gap |UB|`` (HiGHS prunes everything above it and stops after ``max_solutions`` improving
    solutions); their cuts, and those of up to ``extra_cuts`` supports a local search on the lower model finds near
    them, are added before the next round. Between master rounds, cheaper rounds add the cuts of supports that a
    local search on the lower model finds below the cutoff; the MILP runs when that search finds none, at least
    every ``milp_every`` rounds, and at the latest once ``milp_after`` of the time is spent. When the master proves
    that no support lies below the cutoff, the incumbent is optimal within ``mip_gap``. Each master solve's dual
    bound, capped at the cutoff, is a valid lower bound.
    """
    import highspy

    d = objective.n_features
    h, all_cols = _highs_cardinality_model(d, k)
    h.setOptionValue("random_seed", int(seed))
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.0)
    h.setOptionValue("mip_max_improving_sols", int(max_solutions))
    h.setOptionValue("mip_improving_solution_save", True)
    # the master is tiny and dense: HiGHS's presolve-and-restart cycles at the root cost far more than they save
    h.setOptionValue("presolve", "off")
    h.changeColsIntegrality(
        d, np.arange(d, dtype=np.int32), np.full(d, int(highspy.HighsVarType.kInteger), dtype=np.uint8)
    )

    def add_cuts(start: int) -> None:
        _highs_add_cuts(h, pool, start, all_cols)

    add_cuts(0)
    n_rows_cuts = len(pool)
    best, lower, n_master = incumbent, -math.inf, 0
    status, note = "time_limit", ""
    rng = np.random.default_rng(seed)
    no_cutoff_status = {highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kObjectiveBound}
    t_begin, n_round = time.perf_counter(), 0
    proposed: list[np.ndarray] = []
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        cutoff = best.upper - mip_gap * abs(best.upper)
        if lower >= cutoff:
            status = "optimal"
            break
        # cheap rounds: supports below the cutoff found by local search on the lower model add cuts without a MILP
        # solve; the master MILP runs whenever the search comes back empty, and at least every `milp_every` rounds
        # and once the share `milp_after` of the time is spent, so a bound is always proved
        n_round += 1
        due = n_master == 0 and time.perf_counter() - t_begin >= milp_after * (deadline - t_begin)
        if not due and n_round % milp_every:
            proposals = _search_lower_model(pool, k, [best.support, *proposed], cutoff, rng)
            if proposals:
                for support_K in proposals:
                    solution = objective.evaluate(support_K)
                    if solution.upper < best.upper:
                        best = solution
                    pool.add(solution)
                add_cuts(n_rows_cuts)
                n_rows_cuts = len(pool)
                continue
        h.setOptionValue("time_limit", float(remaining))
        h.setOptionValue("objective_bound", float(cutoff))
        h.run()
        n_master += 1
        model_status = h.getModelStatus()
        info = h.getInfo()
        if model_status in no_cutoff_status:
            lower = max(lower, cutoff)  # no support has a lower model below the cutoff
            status = "optimal"
            break
        if np.isfinite(info.mip_dual_bound):
            lower = max(lower, min(float(info.mip_dual_bound), cutoff))
        found = [np.asarray(sol.col_value[:d]) for sol in h.getSavedMipSolutions()]
        if info.primal_solution_status == 2:  # feasible
            found.append(np.asarray(h.getSolution().col_value[:d]))
        n_new = 0
        proposed = []
        for col_D in found:
            support_K = np.flatnonzero(col_D > 0.5)
            if support_K.size != k:
                continue
            proposed.append(support_K)
            solution = objective.evaluate(support_K)
            if solution.upper < best.upper:
                best = solution
            n_new += pool.add(solution)
        if model_status == highspy.HighsModelStatus.kTimeLimit:
            break
        if model_status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kSolutionLimit):
            status, note = "error", f"HiGHS master status {h.modelStatusToString(model_status)}"
            break
        # more cuts per round: supports near the master's whose lower model still undercuts the incumbent
        cutoff = best.upper - mip_gap * abs(best.upper)
        for support_K in _search_lower_model(pool, k, [best.support, *proposed], cutoff, rng)[:extra_cuts]:
            solution = objective.evaluate(support_K)
            if solution.upper < best.upper:
                best = solution
            n_new += pool.add(solution)
        if n_new == 0:
            # every support the master proposed was evaluated before: its lower model there equals c(s) up to the
            # SVM's duality gap, which then limits the proof (the master's dual bound above is the valid bound)
            status = "optimal" if lower >= best.upper - mip_gap * abs(best.upper) else "evaluator_tolerance"
            note = "" if status == "optimal" else "master re-proposed evaluated supports (SVM duality gap)"
            break
        add_cuts(n_rows_cuts)
        n_rows_cuts = len(pool)
    return best, _Outcome(status=status, bound=lower, n_master=n_master, note=note)


def _select_cuts(pool: _CutPool, k: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` cuts for a master at sparsity k: half the most recent, half those with the best
    bound on their own at k."""
    n = len(pool)
    if n <= limit:
        return np.arange(n)
    coef_CD = np.asarray(pool.coef_CD)
    value_C = np.asarray(pool.constant_C) - (-np.partition(-coef_CD, k - 1, axis=1)[:, :k]).sum(axis=1)
    recent = np.arange(n - limit // 2, n)
    strongest = np.argsort(-value_C[: n - limit // 2], kind="stable")[: limit - recent.size]
    return np.sort(np.concatenate([strongest, recent]))


def _solve_gurobi(
    objective: SparseSVMObjective,
    pool: _CutPool,
    k: int,
    incumbent: SubproblemSolution,
    deadline: float,
    mip_gap: float,
    seed: int,
    threads: int,
    extra_cuts: int = 3,
    fractional_cuts: int = 50,
) -> tuple[SubproblemSolution, _Outcome]:
    """Outer approximation in one Gurobi branch-and-cut: the cuts of the pool as rows, a lazy cut at every integer
    solution (plus up to ``extra_cuts`` from supports nearby), and a perspective cut at up to ``fractional_cuts``
    fractional node relaxations (:meth:`SparseSVMObjective.evaluate_fractional`)."""
    import gurobipy as gp
    from gurobipy import GRB

    d = objective.n_features
    model = gp.Model(env=_gurobi_env())
    try:
        s = model.addVars(d, vtype=GRB.BINARY, name="s")
        t = model.addVar(lb=0.0, name="t")
        s_list = [s[j] for j in range(d)]
        model.addConstr(gp.quicksum(s_list) == k)
        for c in _select_cuts(pool, k, _MAX_GUROBI_START_CUTS):
            model.addConstr(t + gp.LinExpr(pool.coef_CD[c].tolist(), s_list) >= pool.constant_C[c])
        model.setObjective(t, GRB.MINIMIZE)
        remaining = max(deadline - time.perf_counter(), 1e-3)
        model.Params.LazyConstraints = 1
        model.Params.PreCrush = 1  # user cuts at fractional nodes
        model.Params.TimeLimit = remaining
        model.Params.MIPGap = mip_gap / 4.0
        model.Params.MIPGapAbs = 1e-9
        model.Params.Threads = threads
        model.Params.Seed = int(seed) % 2_000_000_000
        for j in range(d):
            s_list[j].Start = 0.0
        for j in incumbent.support:
            s_list[j].Start = 1.0
        s_D = np.zeros(d)
        s_D[incumbent.support] = 1.0
        t.Start = max(pool.value(s_D), incumbent.upper)

        state = {"best": incumbent, "n_callbacks": 0, "n_fractional": 0}
        rng = np.random.default_rng(seed)

        def fractional_cut(m: Any) -> None:
            # the perspective relaxation at the node's LP point: a cut tight there (a user cut, valid everywhere)
            if state["n_fractional"] >= fractional_cuts or m.cbGet(GRB.Callback.MIPNODE_STATUS) != GRB.OPTIMAL:
                return
            rel_D = np.clip(np.asarray(m.cbGetNodeRel(s_list)), 0.0, 1.0)
            if np.all((rel_D < 1e-6) | (rel_D > 1 - 1e-6)):
                return
            state["n_fractional"] += 1
            _, constant, coef_D = objective.evaluate_fractional(rel_D)
            pool.add_cut(constant, coef_D, ("fractional", len(pool)))
            if float(m.cbGetNodeRel(t)) < constant - coef_D @ rel_D - 1e-9 * max(1.0, abs(constant)):
                m.cbCut(t + gp.LinExpr(coef_D.tolist(), s_list) >= constant)

        def callback(m: Any, where: int) -> None:
            if where == GRB.Callback.MIPNODE:
                fractional_cut(m)
                return
            if where != GRB.Callback.MIPSOL:
                return
            state["n_callbacks"] += 1
            values_D = np.asarray(m.cbGetSolution(s_list))
            t_value = float(m.cbGetSolution(t))
            support_K = np.flatnonzero(values_D > 0.5)
            if support_K.size != k:
                return
            solution = objective.evaluate(support_K)
            pool.add(solution)
            if solution.upper < state["best"].upper:
                state["best"] = solution
            if t_value < solution.lower - 1e-9 * max(1.0, abs(solution.lower)):
                m.cbLazy(t + gp.LinExpr(solution.cut_coef.tolist(), s_list) >= solution.cut_constant)
            if extra_cuts > 0 and not np.array_equal(support_K, incumbent.support):
                # (not for the MIP start: Gurobi drops a start solution whose callback adds lazy constraints)
                # more cuts per round: supports near this one whose lower model still undercuts the incumbent
                best_upper = state["best"].upper
                cutoff = best_upper - mip_gap * abs(best_upper)
                proposals = _search_lower_model(pool, k, [support_K], cutoff, rng, n_random=0)[:extra_cuts]
                for proposal in proposals:
                    extra = objective.evaluate(proposal)
                    pool.add(extra)
                    if extra.upper < state["best"].upper:
                        state["best"] = extra
                    m.cbLazy(t + gp.LinExpr(extra.cut_coef.tolist(), s_list) >= extra.cut_constant)

        try:
            model.optimize(callback)
        except gp.GurobiError as err:
            if getattr(err, "errno", None) == 10010:
                raise _GurobiLicenceError(str(err)) from err
            raise
        status_names = {
            GRB.OPTIMAL: "optimal",
            GRB.TIME_LIMIT: "time_limit",
            GRB.INTERRUPTED: "interrupted",
            GRB.NODE_LIMIT: "node_limit",
            GRB.INFEASIBLE: "infeasible",
            GRB.SUBOPTIMAL: "suboptimal",
            GRB.NUMERIC: "numeric",
        }
        status = status_names.get(model.Status, f"gurobi_status_{model.Status}")
        try:
            bound = float(model.ObjBound)
        except (AttributeError, gp.GurobiError):
            bound = -math.inf
        note = "" if model.SolCount > 0 else "Gurobi found no incumbent; the best heuristic support is returned"
        return state["best"], _Outcome(status=status, bound=bound, n_master=state["n_callbacks"], note=note)
    finally:
        model.dispose()


# --------------------------------------------------------------------------------------------------------------------
# candidates, warm starts and the validated ridge
# --------------------------------------------------------------------------------------------------------------------

GAMMA_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
"""Ridge strengths tried on validation data, as multiples of ``1/sqrt(n)`` (``gamma = multiple / sqrt(n)``).

With ``feature_scale=1`` the multiple 0.01 puts the same ridge on the weights as the paper's setting
(``gamma = 1/sqrt(n)`` on neurons scaled to 0.1 standard deviations), at which the objective is separable and the
optimum is the top-k by mean difference; larger multiples weaken the ridge until the hinge loss, and so the
neurons' joint behaviour, decides the support."""

GAMMA_TOLERANCE = 0.005
"""Validation ROC-AUC within which a stronger ridge is preferred to the best-scoring one (see :func:`validate_gamma`)."""

GAMMA_WIDEN = 2
"""How many times :func:`validate_gamma` widens the grid by a factor of 10 beyond an edge it chose."""

CANDIDATE_RANKERS: tuple[str, ...] = ("mean_diff", "l1_path", "telescopic")
"""Rankers whose top lists are merged into the candidate set of an optimal probe (and give its warm starts)."""


@dataclass(frozen=True, eq=False)
class Heuristics:
    """Rankings of all neurons by the candidate rankers, and the telescopic supports, on one training set."""

    orders: dict[str, np.ndarray]
    """Ranker name -> all neuron indices, best first."""
    telescopic: dict[int, np.ndarray]
    """k -> the telescopic probe's support at k."""
    seconds: float
    """Time spent ranking."""

    def supports(self, k: int, allowed_D: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each ranker's k-sparse support (restricted to ``allowed_D`` when given)."""
        out = {}
        for name, order in self.orders.items():
            if name == "telescopic" and k in self.telescopic:
                sup = self.telescopic[k]
                if allowed_D is None or allowed_D[sup].all():
                    out[name] = np.asarray(sup)
                    continue
            kept = order if allowed_D is None else order[allowed_D[order]]
            if kept.size >= k:
                out[name] = kept[:k]
        return out


def rank_for_candidates(
    X_ND: np.ndarray, y_N: np.ndarray, ks: Sequence[int], rankers: Sequence[str] = CANDIDATE_RANKERS
) -> Heuristics:
    """Rank all neurons with each of ``rankers`` (``"telescopic"`` runs the telescopic path through ``ks``)."""
    from ._base import K_GRID
    from .ranking import rank_checked
    from .sparse import TelescopicProbe

    unknown = [r for r in rankers if r not in ("mean_diff", "l1", "l1_path", "svm", "f_stat", "telescopic")]
    if unknown or not rankers:
        raise ProbeInputError(
            f"candidate_rankers must be a non-empty subset of ('mean_diff', 'l1_path', 'l1', 'svm', 'f_stat', "
            f"'telescopic'), got {tuple(rankers)}."
        )
    t0 = time.perf_counter()
    D = X_ND.shape[1]
    orders: dict[str, np.ndarray] = {}
    telescopic: dict[int, np.ndarray] = {}
    for name in rankers:
        if name != "telescopic":
            orders[name] = rank_checked(X_ND, y_N, name)[0]
            continue
        n_start = min(256, D)
        levels = sorted({*(g for g in K_GRID if g <= n_start), *(k for k in ks if k <= n_start)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = TelescopicProbe(n_start=n_start).fit_path(X_ND, y_N, levels)
        depth_D = np.full(D, np.inf)  # smallest level a neuron survived to, then its rank within that support
        for fit in sorted(path, key=lambda f: -f.k):
            depth_D[fit.support] = fit.k + np.arange(fit.support.size) / (fit.support.size + 1.0)
            telescopic[fit.k] = np.asarray(fit.support)
        md_order = orders.get("mean_diff")
        if md_order is None:
            md_order = np.lexsort((np.arange(D), -mean_difference(X_ND, y_N)))
        md_rank_D = np.empty(D)
        md_rank_D[md_order] = np.arange(D)
        orders[name] = np.lexsort((md_rank_D, depth_D)).astype(np.int64)
    return Heuristics(orders=orders, telescopic=telescopic, seconds=time.perf_counter() - t0)


def candidate_union(heuristics: Heuristics, n_candidates: int, ks: Sequence[int]) -> np.ndarray:
    """``n_candidates`` neurons: every ranker's k-sparse support for each k in ``ks``, then the rankers' top lists
    taken in turn (round robin) until the set is full."""
    D = next(iter(heuristics.orders.values())).size
    n_candidates = min(int(n_candidates), D)
    chosen: dict[int, None] = {}
    for k in sorted(ks):
        for sup in heuristics.supports(k).values():
            chosen.update(dict.fromkeys(int(j) for j in sup))
    orders = list(heuristics.orders.values())
    depth = 0
    while len(chosen) < n_candidates and depth < D:
        for order in orders:
            chosen.setdefault(int(order[depth]), None)
            if len(chosen) >= n_candidates:
                break
        depth += 1
    return np.fromiter(chosen, dtype=np.int64)[: max(n_candidates, 1)]


def _auc(y_N: np.ndarray, score_N: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if y_N.min() == y_N.max():
        return float("nan")
    return float(roc_auc_score(y_N, score_N))


def validate_gamma(
    X_ND: np.ndarray,
    y_N: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    ks: Sequence[int],
    candidates_C: np.ndarray,
    heuristics: Heuristics,
    *,
    grid: Sequence[float] = GAMMA_GRID,
    feature_scale: float = 1.0,
    intercept_scaling: float = 1.0,
    tolerance: float = GAMMA_TOLERANCE,
    widen: int = GAMMA_WIDEN,
) -> tuple[float, float, dict[float, float]]:
    """Choose the ridge ``gamma`` on validation data; returns ``(gamma, multiple, {multiple: validation AUC})``.

    For every multiple of ``1/sqrt(n)`` in ``grid`` and every k, the support with the lowest OSP objective among
    the heuristic supports (each candidate ranker's top k) is the one the optimal probe would start from; its SVM
    is scored by ROC-AUC on the validation rows. The strongest ridge (smallest multiple) whose mean AUC over k
    lies within ``tolerance`` of the best wins: its master problem is much easier, and a difference that small is
    within the noise of a validation set (a one-standard-error rule in spirit). When the winner is an edge of the
    grid, the grid is widened by a factor of 10 beyond that edge, up to ``widen`` times per edge; the returned
    scores hold every multiple tried (:func:`gamma_edge_note` says whether the edge was reached).
    """
    grid = tuple(sorted(float(g) for g in grid))
    if not grid or grid[0] <= 0:
        raise ProbeInputError(f"gamma_grid must hold positive multiples of 1/sqrt(n), got {grid}.")
    n = X_ND.shape[0]
    allowed_D = np.zeros(X_ND.shape[1], dtype=bool)
    allowed_D[candidates_C] = True
    position_D = np.full(X_ND.shape[1], -1)
    position_D[candidates_C] = np.arange(candidates_C.size)
    Xc_NC, Xv_VC = X_ND[:, candidates_C], np.asarray(X_val, dtype=np.float64)[:, candidates_C]

    def score(multiple: float) -> float:
        objective = SparseSVMObjective(
            Xc_NC, y_N, multiple / math.sqrt(n), feature_scale=feature_scale, intercept_scaling=intercept_scaling
        )
        aucs = []
        for k in ks:
            sols = [objective.evaluate(position_D[sup]) for sup in heuristics.supports(k, allowed_D).values()]
            if not sols:
                continue
            best = min(sols, key=lambda s: s.upper)
            coef_K, intercept = objective.raw_coef(best)
            aucs.append(_auc(np.asarray(y_val), Xv_VC[:, best.support] @ coef_K + intercept))
        return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")

    def choose(scores: dict[float, float]) -> float:
        finite = {m: s for m, s in scores.items() if np.isfinite(s)}
        if not finite:
            return min(scores)
        top = max(finite.values())
        return min(m for m, s in finite.items() if s >= top - tolerance - 1e-12)

    scores = {multiple: score(multiple) for multiple in grid}
    chosen = choose(scores)
    n_up = n_down = 0
    while True:
        edge = _gamma_edge(scores, chosen, tolerance)
        if edge == "top" and n_up < widen:
            n_up += 1
            scores[max(scores) * 10.0] = score(max(scores) * 10.0)
        elif edge == "bottom" and n_down < widen:
            n_down += 1
            scores[min(scores) / 10.0] = score(min(scores) / 10.0)
        else:
            break
        chosen = choose(scores)
    return chosen / math.sqrt(n), chosen, dict(sorted(scores.items()))


def _gamma_edge(scores: dict[float, float], chosen: float, tolerance: float = GAMMA_TOLERANCE) -> str:
    """``"top"`` when the weakest ridge tried wins, ``"bottom"`` when the strongest wins by more than
    ``tolerance`` (the validation score still rises towards that edge), else ``""``. A strongest ridge that only
    ties the others is the rule's preference, not an edge."""
    if len(scores) < 2 or not np.isfinite(scores.get(chosen, math.nan)):
        return ""
    if chosen == max(scores):
        return "top"
    others = [v for m, v in scores.items() if m != chosen and np.isfinite(v)]
    if chosen == min(scores) and (not others or scores[chosen] > max(others) + tolerance):
        return "bottom"
    return ""


def gamma_edge_note(grid: Sequence[float], multiple: float, scores: dict[float, float]) -> str:
    """A warning when validation chose an edge of the gamma grid (empty when the choice is inside it).

    ``grid`` is the grid asked for, ``scores`` every multiple tried (with the widening of :func:`validate_gamma`)."""
    if len(scores) < 2:
        return ""
    widened = sorted(set(scores) - {float(g) for g in grid})
    note = ""
    if widened:
        note = f"validation chose an edge of the gamma grid; the grid was widened to {', '.join(f'{m:g}' for m in widened)}"
    edge = _gamma_edge(scores, multiple)
    if edge:
        edge = "top (weakest ridge)" if edge == "top" else "bottom (strongest ridge)"
        note = (note + "; " if note else "") + (
            f"the chosen multiple {multiple:g} is still at the {edge} edge of the grid tried: the validation score "
            "may keep improving beyond it"
        )
    return note


def _holdout(y_N: np.ndarray, groups: Any | None, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified (grouped, when groups are given) 75/25 split of the training rows for choosing gamma."""
    from ..splits import SplitError, grouped_split

    groups_N = np.arange(y_N.size) if groups is None else np.asarray(groups)
    try:
        split = grouped_split(groups_N, y_N, val_size=0.0, test_size=0.25, random_state=random_state)
    except SplitError as err:
        raise ProbeInputError(
            f"gamma='validate' needs validation data: pass validation=(X_val, y_val) or enough training groups "
            f"for an internal holdout ({err})"
        ) from err
    return split.train, split.test


# --------------------------------------------------------------------------------------------------------------------
# the path over k
# --------------------------------------------------------------------------------------------------------------------


def _solution_fit(
    objective: SparseSVMObjective,
    solution: SubproblemSolution,
    candidates_C: np.ndarray,
    X_ND: np.ndarray,
    y_N: np.ndarray,
    k: int,
    refit: bool,
    info: SolveInfo,
    C: float,
) -> SparseFit:
    order_K = np.argsort(-np.abs(solution.coef), kind="stable")
    support_K = candidates_C[solution.support[order_K]]
    if refit:
        coef_K, intercept, _, _ = fit_logistic(X_ND[:, support_K], y_N, C=C)
    else:
        coef_raw_K, intercept = objective.raw_coef(solution)
        coef_K = coef_raw_K[order_K]
    return SparseFit(
        k=k,
        support=support_K,
        coef=coef_K,
        intercept=intercept,
        method="optimal",
        fit_time=info.wall_time,
        info=info.as_dict(),
    )


def _optimal_sparse_path(
    X_ND: np.ndarray,
    y_N: np.ndarray,
    classes: np.ndarray,
    ks: tuple[int, ...],
    *,
    n_candidates: int,
    candidates: Sequence[int] | None,
    candidate_rankers: Sequence[str],
    solver: str,
    time_limit: float,
    mip_gap: float,
    gamma: float | str | None,
    gamma_grid: Sequence[float],
    validation: tuple[Any, Any] | None,
    groups: Any | None,
    feature_scale: float,
    intercept_scaling: float,
    refit: bool,
    C: float,
    threads: int,
    random_state: int,
) -> list[SparseFit]:
    """Optimal k-sparse probes for every k in ``ks`` (solved in ascending order, sharing cuts).

    Takes validated 0/1 data with its ``classes`` (the validation labels are compared with ``classes[1]``) and
    resolved ``ks``; the parameters are those of :class:`OptimalSparseProbe`. Returns one :class:`SparseFit` per k
    (ascending).
    """
    D = X_ND.shape[1]
    if not time_limit > 0:
        raise ProbeInputError(f"time_limit must be positive (seconds per k), got {time_limit}.")
    if not 0 <= mip_gap < 1:
        raise ProbeInputError(f"mip_gap must lie in [0, 1), got {mip_gap}.")
    if isinstance(gamma, str) and gamma != "validate":
        raise ProbeInputError(f"gamma must be 'validate', None (1/sqrt(n)) or a positive number, got {gamma!r}.")
    t_start = time.perf_counter()
    # the neurons are ranked once per fit: on the rows that fit gamma when gamma is validated on an internal
    # holdout (the held-out rows then stay unseen by the rankers), else on all training rows
    holdout = gamma == "validate" and validation is None
    if holdout:
        fit_rows, val_rows = _holdout(y_N, groups, random_state)
        heuristics = rank_for_candidates(X_ND[fit_rows], y_N[fit_rows], ks, candidate_rankers)
    else:
        heuristics = rank_for_candidates(X_ND, y_N, ks, candidate_rankers)
    if candidates is None:
        candidates_C = candidate_union(heuristics, max(int(n_candidates), max(ks)), ks)
    else:
        candidates_C = np.asarray(candidates, dtype=np.int64).reshape(-1)
        if candidates_C.size == 0 or candidates_C.min() < 0 or candidates_C.max() >= D:
            raise ProbeInputError(f"candidates must be neuron indices in [0, {D}).")
        if np.unique(candidates_C).size != candidates_C.size:
            raise ProbeInputError("candidates contains duplicates.")
        ks = resolve_ks(ks, candidates_C.size)
    d = candidates_C.size
    allowed_D = np.zeros(D, dtype=bool)
    allowed_D[candidates_C] = True
    position_D = np.full(D, -1)
    position_D[candidates_C] = np.arange(d)
    gamma_scores: dict[float, float] = {}
    gamma_multiple = float("nan")
    gamma_note = ""
    if gamma == "validate":
        if holdout:
            X_fit, y_fit, X_val, y_val = X_ND[fit_rows], y_N[fit_rows], X_ND[val_rows], y_N[val_rows]
            gamma_source = "validated (internal holdout)"
        else:
            assert validation is not None
            X_val = np.asarray(validation[0], dtype=np.float64)
            y_val = (np.asarray(validation[1]) == classes[1]).astype(np.int64)
            if X_val.ndim != 2 or X_val.shape[1] != D or X_val.shape[0] != y_val.size:
                raise ProbeInputError(
                    f"validation must be (X_val, y_val) with {D} neurons and one label per row, got "
                    f"{X_val.shape} and {y_val.shape}."
                )
            X_fit, y_fit = X_ND, y_N
            gamma_source = "validated"
        _, gamma_multiple, gamma_scores = validate_gamma(
            X_fit, y_fit, X_val, y_val, ks, candidates_C, heuristics,
            grid=gamma_grid, feature_scale=feature_scale, intercept_scaling=intercept_scaling,
        )  # fmt: skip
        gamma_value = gamma_multiple / math.sqrt(X_ND.shape[0])
        gamma_note = gamma_edge_note(gamma_grid, gamma_multiple, gamma_scores)
        if gamma_note:
            warnings.warn(f"OSP gamma validation: {gamma_note}.", RuntimeWarning, stacklevel=3)
    elif gamma is None:
        gamma_value, gamma_multiple, gamma_source = 1.0 / math.sqrt(X_ND.shape[0]), 1.0, "paper (1/sqrt(n))"
    else:
        gamma_value, gamma_source = float(gamma), "given"
        gamma_multiple = gamma_value * math.sqrt(X_ND.shape[0])
    objective = SparseSVMObjective(
        X_ND[:, candidates_C],
        y_N,
        gamma_value,
        feature_scale=feature_scale,
        intercept_scaling=intercept_scaling,
        random_state=random_state,
    )
    pool = _CutPool(d)
    # every heuristic support at every k is a cut valid for all k: the master starts well informed
    starts_by_k = {k: {name: position_D[sup] for name, sup in heuristics.supports(k, allowed_D).items()} for k in ks}
    for starts in starts_by_k.values():
        for sup in starts.values():
            pool.add(objective.evaluate(sup))
    md_rank_D = heuristics.orders.get("mean_diff")
    if md_rank_D is None:
        md_rank_D = np.lexsort((np.arange(D), -mean_difference(X_ND, y_N)))
    chosen, choice_note = _choose_solver(solver, d)
    setup_time = time.perf_counter() - t_start
    fits: list[SparseFit] = []
    previous: SubproblemSolution | None = None
    for k in sorted(ks):  # ascending: each k starts from the previous support plus its best neuron
        t0 = time.perf_counter()
        n_eval0 = objective.n_evaluations
        deadline = t0 + time_limit
        starts = {name: objective.evaluate(sup) for name, sup in starts_by_k[k].items()}
        starts.setdefault("candidates", objective.evaluate(np.arange(k)))
        if previous is not None:
            starts["previous k + best neuron"] = _extend_support(objective, pool, previous, k)
        for start in starts.values():
            pool.add(start)
        warm_name, warm = min(starts.items(), key=lambda item: item[1].upper)
        incumbent = searched = _improve_by_swaps(objective, pool, warm)
        cutoff = incumbent.upper - mip_gap * abs(incumbent.upper)
        relax_deadline = min(deadline, t0 + RELAXATION_SHARE * time_limit)
        root_bound, n_relax, relax_s = _boolean_relaxation(objective, pool, k, incumbent, relax_deadline, cutoff)
        rounded = objective.evaluate(np.argsort(-relax_s, kind="stable")[:k])  # the relaxation rounded
        pool.add(rounded)
        if rounded.upper < incumbent.upper:
            incumbent = rounded
            cutoff = incumbent.upper - mip_gap * abs(incumbent.upper)
        used, note = chosen, choice_note
        if root_bound >= cutoff:  # the relaxation alone proves the incumbent optimal
            best, outcome = incumbent, _Outcome(status="optimal", bound=root_bound, n_master=0)
        else:
            try:
                if used == "gurobi":
                    best, outcome = _solve_gurobi(
                        objective, pool, k, incumbent, deadline, mip_gap, random_state, threads
                    )
                else:
                    best, outcome = _solve_highs(objective, pool, k, incumbent, deadline, mip_gap, random_state)
            except _GurobiLicenceError as err:
                used, note = "highs", f"Gurobi licence refused the model ({err}); fell back to HiGHS"
                best, outcome = _solve_highs(objective, pool, k, incumbent, deadline, mip_gap, random_state)
        if best.upper > incumbent.upper:
            best = incumbent
        if best.support.size != k:  # a broken warm start must never pass as a solution
            raise RuntimeError(f"OSP internal error: support of size {best.support.size} returned for k={k}")
        bound = max(root_bound, outcome.bound)
        gap = _relative_gap(best.upper, bound)
        # a valid lower bound that meets the objective is a proof, whatever stopped the master
        proven = gap <= mip_gap * (1 + 1e-9) + 1e-12
        status = "optimal" if proven else outcome.status
        if status == "optimal" and not proven:
            status = "gap_not_closed"
        wall = time.perf_counter() - t0
        support_set = set(candidates_C[best.support].tolist())
        tol = 1e-9 * max(1.0, abs(warm.upper))
        info = SolveInfo(
            k=k,
            solver=used,
            solver_requested=solver,
            status=status,
            proven_optimal=bool(proven),
            objective=best.upper,
            best_bound=bound,
            mip_gap=gap,
            wall_time=wall,
            n_candidates=d,
            n_cuts=len(pool),
            n_evaluations=objective.n_evaluations - n_eval0,
            n_master_solves=outcome.n_master,
            gamma=objective.gamma,
            note="; ".join(x for x in (note, outcome.note, gamma_note) if x),
            gamma_multiple=float(gamma_multiple),
            gamma_source=gamma_source,
            gamma_scores={float(m): float(s) for m, s in gamma_scores.items()},
            feature_scale=float(feature_scale),
            candidate_rankers=tuple(candidate_rankers),
            candidates=tuple(int(j) for j in candidates_C),
            warm_start=warm_name,
            warm_start_objective=float(warm.upper),
            equals_mean_diff_topk=support_set == set(md_rank_D[:k].tolist()),
            setup_time=float(setup_time),
            ranking_time=float(heuristics.seconds),
            root_bound=float(root_bound),
            n_relaxation_iterations=int(n_relax),
            improved_on_warm_start=bool(best.upper < warm.upper - tol),
            improved_by_master=bool(best.upper < searched.upper - tol),
            gamma_note=gamma_note,
        )
        if not proven:
            warnings.warn(
                f"OSP k={k}: optimality not proven ({status}, gap {gap:.2g}); the best support found is returned.",
                RuntimeWarning,
                stacklevel=2,
            )
        fits.append(_solution_fit(objective, best, candidates_C, X_ND, y_N, k, refit, info, C))
        previous = best
    return fits


def brute_force_sparse_svm(
    X: Any,
    y: Any,
    k: int,
    *,
    gamma: float | None = None,
    feature_scale: float = 1.0,
    intercept_scaling: float = 1.0,
) -> list[tuple[float, tuple[int, ...]]]:
    """Evaluate the OSP objective on every support of size ``k`` (all columns of ``X`` are candidates).

    ``gamma=None`` is ``1/sqrt(n)``. Returns ``(objective, support)`` pairs sorted by objective (best first).
    Exponential in ``k``: for tests and small checks only.
    """
    X_ND, y_N, _ = check_binary_problem(X, y)
    d = X_ND.shape[1]
    if math.comb(d, k) > 200_000:
        raise ProbeInputError(f"brute force over C({d}, {k}) = {math.comb(d, k)} supports is too large.")
    objective = SparseSVMObjective(X_ND, y_N, gamma, feature_scale=feature_scale, intercept_scaling=intercept_scaling)
    results = [(objective.evaluate(sup).upper, tuple(sup)) for sup in itertools.combinations(range(d), k)]
    return sorted(results)


class OptimalSparseProbe(SparseLinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """The optimal k-sparse probe (see the module docstring); :meth:`fit_path` solves a whole k grid.

    Parameters
    ----------
    k : sparsity of :meth:`fit` (not used by :meth:`fit_path`).
    n_candidates : size of the candidate set: every candidate ranker's k-sparse supports for each k, filled up
        with the rankers' top lists in turn (see :func:`candidate_union`), so a neuron that only helps jointly is
        not dropped before the solver sees it.
    solver : ``"auto"``, ``"gurobi"`` or ``"highs"`` (see the module docstring).
    time_limit : seconds per k (the paper: 60).
    mip_gap : relative gap at which a support counts as proven optimal.
    gamma : the ridge: ``"validate"`` (default) chooses it from ``gamma_grid`` on validation data
        (:func:`validate_gamma`); ``None`` is the paper's ``1/sqrt(n)``; a number is used as given.
    feature_scale, intercept_scaling : the SVM objective's neuron scale (1.0: standardized neurons; the paper's
        code uses 0.1) and intercept feature value.
    refit : report a class-balanced L2 logistic regression (inverse strength ``C``) on the optimal support (the
        other probes' classifier) instead of the SVM weights.
    threads, random_state : solver threads (Gurobi) and seeds.
    candidates : explicit candidate neuron indices instead of the ranker union.
    candidate_rankers : rankers merged into the candidate set (default mean difference, L1 path, telescopic);
        their supports at each k are also the warm starts.
    gamma_grid : multiples of ``1/sqrt(n)`` tried with ``gamma="validate"``.

    ``fit(X, y, validation=None, groups=None)`` and ``fit_path(X, y, ks, validation=None, groups=None)`` take the
    validation data ``(X_val, y_val)`` that choose gamma; without it a stratified 25 % of the training rows (grouped
    by ``groups`` when given) is held out to choose gamma, and the probes are then fitted on all rows. Fitted
    attributes as in :class:`~sparse_probing.probes.SparseProbe` plus ``solve_info_`` (the :class:`SolveInfo` of
    the fit, with the gamma used). ``predict_proba`` is only offered with ``refit=True``.
    """

    def __init__(
        self,
        k: int = 1,
        n_candidates: int = 200,
        solver: str = "auto",
        time_limit: float = 60.0,
        mip_gap: float = 1e-4,
        gamma: float | str | None = "validate",
        feature_scale: float = 1.0,
        refit: bool = True,
        C: float = 1.0,
        threads: int = 1,
        random_state: int = 0,
        candidates: Sequence[int] | None = None,
        candidate_rankers: Sequence[str] = CANDIDATE_RANKERS,
        gamma_grid: Sequence[float] = GAMMA_GRID,
        intercept_scaling: float = 1.0,
    ):
        self.k = k
        self.n_candidates = n_candidates
        self.solver = solver
        self.time_limit = time_limit
        self.mip_gap = mip_gap
        self.gamma = gamma
        self.feature_scale = feature_scale
        self.refit = refit
        self.C = C
        self.threads = threads
        self.random_state = random_state
        self.candidates = candidates
        self.candidate_rankers = candidate_rankers
        self.gamma_grid = gamma_grid
        self.intercept_scaling = intercept_scaling

    def fit(
        self, X: Any, y: Any, validation: tuple[Any, Any] | None = None, groups: Any | None = None
    ) -> OptimalSparseProbe:
        X_ND, y_N, classes = validate_fit_data(self, X, y)
        k = resolve_k(self.k, X_ND.shape[1])
        (fit,) = self._path(X_ND, y_N, classes, (k,), validation, groups)
        self._store_fit(fit, X_ND.shape[1], classes)
        self.solve_info_ = SolveInfo(**fit.info)
        return self

    def fit_path(
        self,
        X: Any,
        y: Any,
        ks: Iterable[int] | None = None,
        *,
        validation: tuple[Any, Any] | None = None,
        groups: Any | None = None,
    ) -> list[SparseFit]:
        """Optimal probes for every k in ``ks``, solved in ascending order sharing cuts (``self.k`` is not used).

        ``ks=None`` is :data:`~sparse_probing.probes.OSP_K_GRID` (1..8) up to the number of neurons; larger explicit
        values are clipped with a :class:`~sparse_probing.probes.KClippedWarning`. Returns one
        :class:`~sparse_probing.probes.SparseFit` per k (ascending); ``fit.info`` holds the :class:`SolveInfo` as a
        dict, including the gamma used and how it was chosen, the candidate rankers, and ``equals_mean_diff_topk``
        (whether the optimal support is the top-k by mean difference, i.e. whether the optimal probe added
        anything). The estimator itself is left as it was.
        """
        X_ND, y_N, classes = check_binary_problem(X, y)
        return self._path(X_ND, y_N, classes, path_ks(ks, OSP_K_GRID, X_ND.shape[1]), validation, groups)

    def _path(
        self,
        X_ND: np.ndarray,
        y_N: np.ndarray,
        classes: np.ndarray,
        ks: tuple[int, ...],
        validation: tuple[Any, Any] | None,
        groups: Any | None,
    ) -> list[SparseFit]:
        return _optimal_sparse_path(
            X_ND,
            y_N,
            classes,
            ks,
            n_candidates=self.n_candidates,
            candidates=self.candidates,
            candidate_rankers=self.candidate_rankers,
            solver=self.solver,
            time_limit=self.time_limit,
            mip_gap=self.mip_gap,
            gamma=self.gamma,
            gamma_grid=self.gamma_grid,
            validation=validation,
            groups=groups,
            feature_scale=self.feature_scale,
            intercept_scaling=self.intercept_scaling,
            refit=self.refit,
            C=self.C,
            threads=self.threads,
            random_state=self.random_state,
        )

    @available_if(lambda self: self.refit)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the logistic regression refitted on the optimal support (``refit=True`` only)."""
        return super().predict_proba(X)
