"""Shared plumbing for the probes: input checks, the k grid, standardized logistic fits and the fitted-path record.

Every probe in this package is a binary linear classifier on raw activations,
``decision(x) = x[support] @ coef + intercept``. Internally the kept neurons are standardized (train mean and
standard deviation) before a regularized fit, because neurons differ in scale by orders of magnitude and an L2 or
L1 penalty is only meaningful on a common scale; the coefficients are mapped back to raw units afterwards, so a
fitted probe applies directly to activations from the cache.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_X_y

K_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 32, 64, 128, 256)
"""The paper's grid of sparsity levels k (Gurnee et al. 2023)."""

OSP_K_GRID: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
"""The sparsity levels the paper solves exactly with optimal sparse probing."""


class ProbeInputError(ValueError):
    """The data handed to a probe cannot be used (wrong shapes, non-finite values, a single class, ...)."""


class KClippedWarning(UserWarning):
    """A requested k exceeded the number of available neurons and was clipped."""


def check_binary_problem(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a binary probing problem.

    Returns ``(X_ND, y_N, classes)`` where ``y_N`` is int 0/1 with 1 meaning ``classes[1]`` (the positive class,
    the larger label after sorting, e.g. ``True`` or ``1``).
    """
    try:
        X_ND, y_N = check_X_y(X, y, dtype=[np.float64, np.float32], ensure_all_finite=True, y_numeric=False)
    except ValueError as err:
        msg = str(err)
        if "NaN" in msg or "inf" in msg:
            raise ProbeInputError(
                f"{msg} Activations and labels must be finite: recompute or repair the activation cache "
                "(fp16 overflow shows up as inf), or drop the affected examples before probing."
            ) from err
        if "inconsistent numbers of samples" in msg:
            raise ProbeInputError(f"{msg} Pass one label per activation row.") from err
        raise
    classes = np.unique(y_N)
    if classes.size != 2:
        raise ProbeInputError(
            f"A probe needs exactly 2 classes in y, got {classes.size} class(es) {classes[:5].tolist()}: "
            "use a one-vs-rest label (feature == value) and check that the training split contains positives "
            "and negatives."
        )
    return X_ND, (y_N == classes[1]).astype(np.int64), classes


def resolve_k(k: int, n_features: int) -> int:
    """Check ``k`` and clip it to the number of neurons with a :class:`KClippedWarning`."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ProbeInputError(f"k must be a positive integer (neurons to keep), got {k!r}.")
    if k > n_features:
        warnings.warn(
            f"k={k} exceeds the {n_features} available neurons; using k={n_features}.", KClippedWarning, stacklevel=3
        )
        return int(n_features)
    return int(k)


def resolve_ks(ks: Iterable[int], n_features: int) -> tuple[int, ...]:
    """Sorted unique sparsity levels, each clipped to ``n_features`` (one warning for all clipped values)."""
    ks = tuple(ks)
    if not ks:
        raise ProbeInputError("ks is empty: pass at least one sparsity level, e.g. sparse_probing.probes.K_GRID.")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ProbeInputError(f"every k must be a positive integer, got {k!r} in {ks}.")
    clipped = sorted({int(k) for k in ks if k > n_features})
    if clipped:
        warnings.warn(
            f"k values {clipped} exceed the {n_features} available neurons; they are replaced by k={n_features}.",
            KClippedWarning,
            stacklevel=3,
        )
    return tuple(sorted({min(int(k), n_features) for k in ks}))


def path_ks(ks: Iterable[int] | None, grid: tuple[int, ...], n_features: int) -> tuple[int, ...]:
    """The sparsity levels of a path fit: ``grid`` limited to ``n_features`` when ``ks`` is None (``(n_features,)``
    if no grid value fits), else :func:`resolve_ks` (clipping with a warning)."""
    if ks is None:
        return tuple(k for k in grid if k <= n_features) or (int(n_features),)
    return resolve_ks(ks, n_features)


def standardize(X_NK: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardize columns: returns ``(Z_NK, mean_K, scale_K)``; constant columns get scale 1."""
    X_NK = np.asarray(X_NK, dtype=np.float64)
    mean_K = X_NK.mean(axis=0)
    scale_K = X_NK.std(axis=0)
    scale_K[~(scale_K > 1e-12 * np.maximum(1.0, np.abs(mean_K)))] = 1.0
    return (X_NK - mean_K) / scale_K, mean_K, scale_K


def to_raw_scale(
    coef_K: np.ndarray, intercept: float, mean_K: np.ndarray, scale_K: np.ndarray
) -> tuple[np.ndarray, float]:
    """Map coefficients fitted on standardized columns back to raw activation units."""
    raw_K = coef_K / scale_K
    return raw_K, float(intercept - raw_K @ mean_K)


class LogisticFit(NamedTuple):
    """Result of :func:`fit_logistic`."""

    coef: np.ndarray
    intercept: float
    coef_std: np.ndarray
    n_iter: int


def fit_logistic(
    X_NK: np.ndarray,
    y_N: np.ndarray,
    *,
    C: float = 1.0,
    l1_ratio: float = 0.0,
    solver: str = "lbfgs",
    max_iter: int = 1000,
    tol: float = 1e-4,
    random_state: int | None = 0,
) -> LogisticFit:
    """Class-balanced logistic regression on standardized columns.

    Returns raw-unit coefficients and intercept, the coefficients on the standardized scale (the neurons'
    importances) and the solver's iteration count. ``l1_ratio=0`` is the L2 probe of the paper.
    """
    Z_NK, mean_K, scale_K = standardize(X_NK)
    clf = LogisticRegression(
        C=C,
        l1_ratio=l1_ratio,
        solver=solver,
        class_weight="balanced",
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Z_NK, y_N)
    coef_std_K = clf.coef_[0].copy()
    coef_K, intercept = to_raw_scale(coef_std_K, float(clf.intercept_[0]), mean_K, scale_K)
    return LogisticFit(coef_K, intercept, coef_std_K, int(np.max(clf.n_iter_)))


@dataclass(frozen=True, eq=False)
class SparseFit:
    """One fitted k-sparse linear probe: ``decision(X_ND) = X_ND[:, support] @ coef + intercept``."""

    k: int
    """Number of neurons allowed (``len(support)``)."""
    support: np.ndarray
    """Indices of the kept neurons (columns of the activation matrix), most important first."""
    coef: np.ndarray
    """Weights of the kept neurons in raw activation units, aligned with ``support``."""
    intercept: float
    """Bias of the decision function."""
    method: str
    """Name of the method that produced the probe (``"mean_diff"``, ``"telescopic"``, ``"optimal"``, ...)."""
    fit_time: float = 0.0
    """Seconds spent on this k (a path's shared work, e.g. the ranking, is counted in its first fitted k)."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """Method-specific details (e.g. the solver record of an optimal probe)."""

    def decision_function(self, X_ND: np.ndarray) -> np.ndarray:
        """Signed distance to the decision boundary (positive means the positive class)."""
        X_NK = np.asarray(X_ND[:, self.support], dtype=np.float64)
        return X_NK @ self.coef + self.intercept

    def predict(self, X_ND: np.ndarray) -> np.ndarray:
        """Predicted 0/1 labels."""
        return (self.decision_function(X_ND) > 0).astype(np.int64)

    def dense_coef(self, n_features: int) -> np.ndarray:
        """The weights as a dense ``(D,)`` vector with zeros outside the support."""
        coef_D = np.zeros(n_features)
        coef_D[self.support] = self.coef
        return coef_D


class Timer:
    """Wall-clock stopwatch: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def order_by_importance(support_K: np.ndarray, importance_K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort a support by decreasing importance (stable, so ties keep their previous order); returns the permutation
    and the sorted support."""
    perm_K = np.argsort(-np.abs(importance_K), kind="stable")
    return perm_K, support_K[perm_K]


# --------------------------------------------------------------------------------------------------------------------
# scikit-learn estimator plumbing
# --------------------------------------------------------------------------------------------------------------------

_FINITE_ADVICE = (
    " Activations must be finite: recompute or repair the activation cache (fp16 overflow shows up as inf), "
    "or drop the affected examples before probing."
)


def validate_fit_data(
    estimator: Any, X: Any, y: Any, *, multiclass: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``validate_data`` for a probe's ``fit``; returns ``(X_ND, y_N, classes)``.

    ``y_N`` holds class indices into ``classes`` (0/1 for the binary probes; with ``multiclass=True`` any number of
    classes >= 2 is accepted).
    """
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import validate_data

    try:
        X_ND, y_N = validate_data(estimator, X, y, dtype=[np.float64, np.float32], ensure_all_finite=True)
    except ValueError as err:
        if str(err).startswith("Input y contains"):  # the labels, not the activations
            raise ProbeInputError(f"{err}. Labels must be known for every example: drop unlabelled rows.") from err
        if "NaN" in str(err) or "inf" in str(err):
            raise ProbeInputError(str(err) + _FINITE_ADVICE) from err
        if "inconsistent numbers of samples" in str(err):
            raise ProbeInputError(
                f"{err} X and y must have one row per example, in the same order (check the split indices)."
            ) from err
        raise
    check_classification_targets(y_N)
    classes, index_N = np.unique(y_N, return_inverse=True)
    if multiclass and classes.size >= 2:
        return X_ND, index_N.astype(np.int64), classes
    if classes.size != 2:
        raise ProbeInputError(
            f"Only binary classification is supported: {type(estimator).__name__} needs exactly 2 classes in y, "
            f"got {classes.size} class(es) {classes[:5].tolist()}: use a one-vs-rest label (feature == value) and "
            "check that the training split contains both positives and negatives."
        )
    return X_ND, index_N.astype(np.int64), classes


def validate_predict_data(estimator: Any, X: Any) -> np.ndarray:
    """``validate_data`` for ``predict``/``transform`` (feature count and names must match ``fit``)."""
    from sklearn.utils.validation import check_is_fitted, validate_data

    check_is_fitted(estimator)
    try:
        return validate_data(estimator, X, reset=False, dtype=[np.float64, np.float32], ensure_all_finite=True)
    except ValueError as err:
        if "NaN" in str(err) or "inf" in str(err):
            raise ProbeInputError(str(err) + _FINITE_ADVICE) from err
        raise


class SparseLinearClassifierMixin:
    """``decision_function``/``predict``/``predict_proba`` for a fitted binary sparse probe.

    Subclasses set ``classes_``, ``support_`` (kept neuron indices, most important first), ``coef_`` of shape
    ``(1, D)`` (zeros outside the support), ``intercept_`` of shape ``(1,)``, and ``k_`` in ``fit``.
    """

    def _store_fit(self, fit: SparseFit, n_features: int, classes: np.ndarray) -> None:
        self.classes_ = classes
        self.k_ = int(fit.k)
        self.support_ = np.asarray(fit.support, dtype=np.int64)
        self.coef_ = fit.dense_coef(n_features)[None, :]
        self.intercept_ = np.array([fit.intercept])
        self.fit_ = fit
        if "n_iter" in fit.info:
            self.n_iter_ = int(fit.info["n_iter"])

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed score; positive means ``classes_[1]``."""
        X_ND = validate_predict_data(self, X)
        X_NK = np.asarray(X_ND[:, self.support_], dtype=np.float64)
        return X_NK @ self.coef_[0, self.support_] + self.intercept_[0]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels."""
        positive_N = self.decision_function(X) > 0
        return self.classes_[positive_N.astype(np.int64)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities through the logistic link (calibrated for the logistic-regression probes)."""
        from scipy.special import expit

        p_N = expit(self.decision_function(X))
        return np.column_stack([1.0 - p_N, p_N])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        return tags
