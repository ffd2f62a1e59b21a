"""Iterative pruning separates redundant neurons from a single dedicated one."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_probing.probes import ProbeInputError, iterative_pruning
from sparse_probing.probes.synthetic import make_planted
from sparse_probing.splits import grouped_split


def split_data(effects: tuple[float, ...], seed: int):
    d = make_planted(n=1200, d=80, effects=effects, doc_effect=0.0, random_state=seed)
    s = grouped_split(d.groups, d.y, val_size=0.0, test_size=0.3, random_state=0)
    return d, d.X[s.train], d.y[s.train], d.X[s.test], d.y[s.test]


@pytest.mark.parametrize("method", ["mean_diff", "optimal"])
def test_redundant_neurons_survive_pruning(method: str) -> None:
    # eight neurons carry the feature equally: removing the best ones barely hurts a 2-sparse probe
    d, Xtr, ytr, Xev, yev = split_data((2.5,) * 8, seed=1)
    df = iterative_pruning(
        Xtr, ytr, Xev, yev, k=2, n_steps=4, method=method, **({"solver": "highs"} if method == "optimal" else {})
    )
    assert list(df["step"]) == [0, 1, 2, 3]
    removed = df["removed"].tolist()
    assert len(set(removed)) == 4 and set(removed) <= set(d.planted.tolist())
    for support, gone in zip(df["support"][1:], removed, strict=False):
        assert gone not in support
    assert df["f1"].iloc[-1] > df["f1"].iloc[0] - 0.1
    if method == "optimal":
        assert df["proven_optimal"].all()


def test_single_dedicated_neuron_collapses() -> None:
    d, Xtr, ytr, Xev, yev = split_data((3.0,), seed=2)
    df = iterative_pruning(Xtr, ytr, Xev, yev, k=1, n_steps=2, method="mean_diff")
    assert df["removed"].iloc[0] == d.planted[0]
    assert df["f1"].iloc[0] > 0.8 and df["f1"].iloc[1] < df["f1"].iloc[0] - 0.3


def test_bad_arguments() -> None:
    _d, Xtr, ytr, Xev, yev = split_data((2.0,), seed=3)
    with pytest.raises(ProbeInputError, match="must match"):
        iterative_pruning(Xtr, ytr, Xev[:, :5], yev, method="mean_diff")
    with pytest.raises(ProbeInputError, match="needs at least"):
        iterative_pruning(Xtr[:, :4], ytr, Xev[:, :4], yev, k=3, n_steps=5, method="mean_diff")
    X_nan = Xev.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ProbeInputError, match="NaN"):
        iterative_pruning(Xtr, ytr, X_nan, yev, method="mean_diff")
