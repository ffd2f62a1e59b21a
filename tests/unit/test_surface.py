"""Surface baselines on a token-identity task reach F1 1.0; the vocabulary comes from training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparse_probing.analysis.surface import (
    TokenWindows,
    best_surface,
    fit_surface_baseline,
    surface_features,
    surface_margin,
)


def windows(seed: int = 0, n: int = 600) -> tuple[TokenWindows, np.ndarray]:
    rng = np.random.default_rng(seed)
    current = rng.integers(0, 50, n)
    previous = rng.integers(0, 50, n)
    wins = [
        np.concatenate([rng.integers(0, 50, rng.integers(0, 5)), [p, c]])
        for p, c in zip(previous, current, strict=True)
    ]
    return TokenWindows(current, previous, wins), rng.permutation(n)


def test_token_identity_label_is_found() -> None:
    tokens, perm = windows()
    y = np.isin(tokens.current, [3, 17]).astype(int)  # the label is the identity of the current token
    rows = {"train": np.sort(perm[:400]), "val": np.sort(perm[400:500]), "test": np.sort(perm[500:])}
    for kind in ("token", "bigram"):
        F = surface_features(tokens, kind, rows["train"])
        res = fit_surface_baseline(F, y, rows)
        assert res["f1_test"] == 1.0 and res["roc_auc_test"] == 1.0, kind
    # a bigram label needs the pair: the unigram baseline cannot reach it, the bigram one can
    y2 = ((tokens.previous % 2 == 0) & (tokens.current % 2 == 0)).astype(int)
    uni = fit_surface_baseline(surface_features(tokens, "token", rows["train"]), y2, rows)
    bi = fit_surface_baseline(surface_features(tokens, "bigram", rows["train"]), y2, rows)
    assert bi["roc_auc_test"] > uni["roc_auc_test"] + 0.1


def test_vocabulary_from_training_rows_only() -> None:
    tokens = TokenWindows(np.array([1, 2, 3, 4]), np.array([-1, 1, 2, 3]), [np.array([1]), np.array([2, 2])] * 2)
    F = surface_features(tokens, "token", np.array([0, 1]))
    assert F.shape == (4, 2) and F[2].nnz == 0 and F[3].nnz == 0
    bag = surface_features(tokens, "bag_of_tokens", np.array([0, 1]))
    assert bag[1].toarray().tolist() == [[0.0, 1.0]]  # normalized counts
    with pytest.raises(ValueError, match="unknown one-hot baseline"):
        surface_features(tokens, "trigram", np.array([0]))


def test_best_surface_and_margin() -> None:
    table = pd.DataFrame(
        {
            "feature": ["a", "a", "b", "b"],
            "baseline": ["token", "bigram", "token", "embedding"],
            "roc_auc_val": [0.8, 0.9, 0.7, 0.7],
            "f1_test": [0.6, 0.7, 0.5, 0.9],
            "roc_auc_test": [0.8, 0.9, 0.7, 0.8],
        }
    )
    best = best_surface(table)
    assert best.set_index("feature")["surface_baseline"].to_dict() == {"a": "bigram", "b": "token"}  # ties: simpler
    neurons = pd.DataFrame({"feature": ["a", "b"], "f1_test": [0.95, 0.4], "roc_auc_test": [0.99, 0.6]})
    out = surface_margin(neurons, table)
    np.testing.assert_allclose(out["margin_f1_test"], [0.25, -0.1])
