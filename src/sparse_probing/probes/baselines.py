"""Baselines that every sparse-probing result is read against.

* :class:`DenseProbe`: an L2 logistic regression on all neurons (the ceiling a sparse probe approaches as k grows).
* :class:`RandomRotation`: the same sparse pipeline in a random basis. Gurnee et al. (2023) compare neurons with
  the directions of a random Gaussian matrix; here the basis is a Haar-random orthogonal matrix, so distances and
  the dense probe are unchanged and only the privileged axes are lost. If neurons were not special, sparse probes
  would do as well in the rotated basis. Use it in front of a probe: ``make_pipeline(RandomRotation(), SparseProbe(k=4))``.
* :class:`ShuffledLabelProbe` and :func:`control_selectivity`: a control task in the spirit of Hewitt & Liang
  (2019): the same probe trained on permuted training labels. Selectivity = F1 of the real probe minus F1 of the
  control probe on the same test data; a probe that only memorizes has selectivity near zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.stats import ortho_group
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..metrics import binary_metrics
from ._base import (
    SparseFit,
    SparseLinearClassifierMixin,
    Timer,
    check_binary_problem,
    fit_logistic,
    validate_fit_data,
    validate_predict_data,
)


def random_orthogonal(n: int, random_state: Any = None) -> np.ndarray:
    """A Haar-distributed random orthogonal ``(n, n)`` matrix (``scipy.stats.ortho_group``)."""
    if n == 1:
        return np.ones((1, 1)) * (1.0 if check_random_state(random_state).rand() < 0.5 else -1.0)
    return ortho_group.rvs(n, random_state=check_random_state(random_state))


def _fit_dense(X_ND: np.ndarray, y_N: np.ndarray, *, C: float, max_iter: int) -> SparseFit:
    """The dense L2 probe as a :class:`SparseFit` with ``k = D`` (support ordered by standardized |coef|)."""
    with Timer() as timer:
        coef_D, intercept, coef_std_D, n_iter = fit_logistic(X_ND, y_N, C=C, max_iter=max_iter)
        order_D = np.argsort(-np.abs(coef_std_D), kind="stable")
    return SparseFit(
        k=X_ND.shape[1],
        support=order_D,
        coef=coef_D[order_D],
        intercept=intercept,
        method="dense",
        fit_time=timer.seconds,
        info={"n_iter": n_iter},
    )


class DenseProbe(SparseLinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Class-balanced L2 logistic regression on all neurons (standardized internally; weights in raw units).

    Parameters
    ----------
    C : float
        Inverse L2 regularization on standardized neurons.
    max_iter : int
        Iteration cap of lbfgs.

    Attributes
    ----------
    coef_ : ndarray (1, D), intercept_ : ndarray (1,), classes_ : ndarray (2,)
    support_ : ndarray (D,)
        All neurons, by decreasing standardized |coef|.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> DenseProbe:
        X_ND, y_N, classes = validate_fit_data(self, X, y)
        self._store_fit(_fit_dense(X_ND, y_N, C=self.C, max_iter=self.max_iter), X_ND.shape[1], classes)
        return self

    def fit_path(self, X: Any, y: Any, ks: Iterable[int] | None = None) -> list[SparseFit]:
        """The dense probe as a one-element path: ``[SparseFit]`` with ``k = D``, support ordered by standardized
        |coef|.

        ``ks`` is accepted for the interface shared with the sparse probes and not used (the dense probe keeps every
        neuron); the estimator itself is left as it was.
        """
        X_ND, y_N, _ = check_binary_problem(X, y)
        return [_fit_dense(X_ND, y_N, C=self.C, max_iter=self.max_iter)]


class RandomRotation(TransformerMixin, BaseEstimator):
    """Rotate activations into a Haar-random orthonormal basis: ``X @ rotation_``.

    The rotation depends only on ``random_state`` and the number of neurons (not on the data), so train and test
    data are rotated identically and results are reproducible.

    Attributes
    ----------
    rotation_ : ndarray (D, D)
        The orthogonal matrix; column j is the j-th random direction.
    """

    def __init__(self, random_state: Any = 0):
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> RandomRotation:
        from sklearn.utils.validation import validate_data

        X_ND = validate_data(self, X, dtype=[np.float64, np.float32])
        self.rotation_ = random_orthogonal(X_ND.shape[1], self.random_state)
        return self

    def transform(self, X: Any) -> np.ndarray:
        X_ND = validate_predict_data(self, X)
        return X_ND @ self.rotation_.astype(X_ND.dtype, copy=False)


def shuffled_labels(y: Any, random_state: Any = None, groups: Any | None = None) -> np.ndarray:
    """A random permutation of the labels ``y`` (per example, or per group with ``groups``).

    Without groups every label is permuted independently. With groups (documents carrying one label, as for
    context features), labels are permuted between groups so a document keeps a single label.
    """
    y_N = np.asarray(y)
    rng = check_random_state(random_state)
    if groups is None:
        return y_N[rng.permutation(y_N.size)]
    groups_N = np.asarray(groups)
    uniq, first_G, gid_N = np.unique(groups_N, return_index=True, return_inverse=True)
    label_G = y_N[first_G]
    if not all(np.all(y_N[gid_N == g] == label_G[g]) for g in range(uniq.size)):
        raise ValueError("groups given but labels vary within a group: shuffle without groups instead.")
    return label_G[rng.permutation(uniq.size)][gid_N]


class ShuffledLabelProbe(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A control probe: ``estimator`` fitted on a random permutation of the training labels.

    Parameters
    ----------
    estimator : a probe (default ``SparseProbe(k=1)``)
    random_state : seed of the permutation

    Attributes
    ----------
    estimator_ : the fitted clone; ``classes_``, ``support_``, ``coef_`` and ``intercept_`` are forwarded from it.
    """

    def __init__(self, estimator: Any = None, random_state: Any = 0):
        self.estimator = estimator
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> ShuffledLabelProbe:
        from .sparse import SparseProbe

        X_ND, _, classes = validate_fit_data(self, X, y)
        y_N = np.asarray(y)
        base = SparseProbe() if self.estimator is None else self.estimator
        self.estimator_ = clone(base).fit(X_ND, shuffled_labels(y_N, self.random_state))
        self.classes_ = classes
        for name in ("support_", "coef_", "intercept_", "k_"):
            if hasattr(self.estimator_, name):
                setattr(self, name, getattr(self.estimator_, name))
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.decision_function(validate_predict_data(self, X))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict(validate_predict_data(self, X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_class = False
        return tags


def control_selectivity(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    n_repeats: int = 1,
    random_state: Any = 0,
) -> dict[str, float]:
    """Real-vs-control F1 of ``estimator`` on held-out data.

    Fits ``estimator`` on the real training labels and ``n_repeats`` controls on permuted labels; returns
    ``{"f1": ..., "control_f1": mean control F1, "selectivity": f1 - control_f1}``. Labels must be 0/1 or bool.
    """
    rng = check_random_state(random_state)
    real = clone(estimator).fit(X_train, y_train)
    f1 = binary_metrics(np.asarray(y_test).astype(int), np.asarray(real.predict(X_test)).astype(int))["f1"]
    controls = []
    for _ in range(n_repeats):
        control = ShuffledLabelProbe(estimator, random_state=rng.randint(2**31 - 1)).fit(X_train, y_train)
        pred = np.asarray(control.predict(X_test)).astype(int)
        controls.append(binary_metrics(np.asarray(y_test).astype(int), pred)["f1"])
    control_f1 = float(np.mean(controls))
    return {"f1": f1, "control_f1": control_f1, "selectivity": f1 - control_f1}
