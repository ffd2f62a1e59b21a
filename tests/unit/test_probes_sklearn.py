"""scikit-learn's estimator checks on every probe, selector and transformer of the package."""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparse_probing.probes import (
    DenseProbe,
    NeuronRanker,
    OptimalSparseProbe,
    RandomRotation,
    ShuffledLabelProbe,
    SingleNeuronProbe,
    SparseProbe,
    TelescopicProbe,
)

ESTIMATORS = [
    NeuronRanker(method="mean_diff", k=1),
    SparseProbe(k=2),
    TelescopicProbe(k=2, n_start=8),
    OptimalSparseProbe(k=2, n_candidates=6, solver="highs", time_limit=10.0),
    DenseProbe(),
    SingleNeuronProbe(),
    RandomRotation(random_state=0),
    ShuffledLabelProbe(SparseProbe(k=1), random_state=0),
]


def _expected_failures(estimator: object) -> dict[str, str]:
    if isinstance(estimator, ShuffledLabelProbe):
        return {"check_classifiers_train": "a control probe learns shuffled labels on purpose, so it cannot fit y"}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator: object, check: object) -> None:
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_roundtrip(estimator: object) -> None:
    from sklearn.base import clone

    assert repr(clone(estimator)) == repr(estimator)
