"""Grouped, stratified splits never put a document in two parts."""

from __future__ import annotations

import numpy as np
import pytest

from sparse_probing.splits import Split, SplitError, grouped_split


def documents(n_docs: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, n_docs)  # documents of very different lengths
    groups = np.repeat(np.arange(n_docs), sizes)
    labels = rng.choice(["en", "de", "fr", "es"], size=n_docs, p=[0.4, 0.3, 0.2, 0.1])[groups]
    return groups, labels


@pytest.mark.parametrize("seed", range(5))
def test_no_group_in_two_parts(seed: int) -> None:
    groups, labels = documents(seed=seed)
    split = grouped_split(groups, labels, random_state=seed)
    parts = [set(groups[split.train]), set(groups[split.val]), set(groups[split.test])]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert split.n == groups.size
    np.testing.assert_array_equal(np.sort(np.concatenate([split.train, split.val, split.test])), np.arange(groups.size))


def test_sizes_and_stratification() -> None:
    groups, labels = documents(n_docs=600, seed=1)
    split = grouped_split(groups, labels, val_size=0.15, test_size=0.15, random_state=0)
    fractions = {k: v / groups.size for k, v in split.sizes.items()}
    assert 0.6 < fractions["train"] < 0.8 and 0.08 < fractions["val"] < 0.22 and 0.08 < fractions["test"] < 0.22
    overall = np.mean(labels == "fr")
    for idx in (split.train, split.val, split.test):
        assert abs(np.mean(labels[idx] == "fr") - overall) < 0.06


def test_seeded_and_no_validation() -> None:
    groups, labels = documents(seed=2)
    a = grouped_split(groups, labels, random_state=3)
    b = grouped_split(groups, labels, random_state=3)
    np.testing.assert_array_equal(a.test, b.test)
    c = grouped_split(groups, None, val_size=0.0, test_size=0.3, random_state=3)
    assert c.val.size == 0 and c.train.size + c.test.size == groups.size
    masks = c.masks(groups.size)
    assert masks["train"].sum() == c.train.size and not (masks["train"] & masks["test"]).any()


def test_check_detects_leaks_and_bad_input() -> None:
    groups = np.array([0, 0, 1, 1, 2, 2])
    leaky = Split(train=np.array([0, 2]), val=np.array([], dtype=int), test=np.array([1, 3]))
    with pytest.raises(SplitError, match="both train and test"):
        leaky.check(groups)
    with pytest.raises(SplitError, match="more than one part"):
        Split(train=np.array([0, 1]), val=np.array([1]), test=np.array([2])).check(groups)
    with pytest.raises(SplitError, match=r"only 3 distinct groups|at least"):
        grouped_split(groups, test_size=0.15)
    with pytest.raises(SplitError, match="one per row"):
        grouped_split(np.arange(10), np.arange(9))
    with pytest.raises(SplitError, match="val_size"):
        grouped_split(np.arange(100), val_size=0.6, test_size=0.5)


@pytest.mark.parametrize("seed", [0, 3])
def test_grouped_cv_tests_every_row_once_and_never_splits_a_group(seed: int) -> None:
    from sparse_probing.splits import grouped_cv

    groups, y = documents(seed=seed)
    folds = grouped_cv(groups, y, random_state=seed)
    assert len(folds) == 5
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(groups.size))  # every row tested exactly once
    test_groups = [set(groups[f.test].tolist()) for f in folds]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not test_groups[i] & test_groups[j]  # no group in two test folds
    for f in folds:
        f.check(groups)  # train / val / test disjoint by group inside the fold
        assert f.val.size and f.train.size and (y[f.test] == "es").any()


def test_grouped_cv_reduces_k_for_small_families_and_refuses_impossible_ones() -> None:
    from sparse_probing.splits import grouped_cv

    groups = np.repeat(np.arange(12), 5)
    y = (np.repeat(np.arange(12), 5) < 3).astype(int)  # 3 positive documents
    with pytest.warns(UserWarning, match="3 folds instead of 5"):
        assert len(grouped_cv(groups, y)) == 3
    with pytest.raises(SplitError, match="at least 2 folds"):
        grouped_cv(groups, (np.repeat(np.arange(12), 5) < 1).astype(int))
