"""Optimal sparse probing: the MIO equals brute force, both solvers agree, limits never pass as optimal."""

from __future__ import annotations

import itertools
import math
import time
import warnings

import numpy as np
import pytest

from sparse_probing.probes import (
    CANDIDATE_RANKERS,
    GAMMA_GRID,
    OptimalSparseProbe,
    ProbeInputError,
    SolveInfo,
    SparseSVMObjective,
    brute_force_sparse_svm,
    gurobi_available,
    mean_difference,
    rank_for_candidates,
)
from sparse_probing.probes import optimal as osp
from sparse_probing.probes.synthetic import make_joint_block, support_recovery
from sparse_probing.splits import grouped_split

SOLVERS = ["highs", pytest.param("gurobi", marks=pytest.mark.skipif(not gurobi_available(), reason="no gurobipy"))]
GAP = 1e-6


def osp_path(X, y, ks=None, *, validation=None, groups=None, **params):
    """A k grid of optimal probes: ``OptimalSparseProbe(**params).fit_path``."""
    return OptimalSparseProbe(**params).fit_path(X, y, ks, validation=validation, groups=groups)


def instance(seed: int, n: int = 120, d: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    X = rng.standard_normal((n, d)) + np.outer(y, rng.normal(0.0, 0.6, d))
    X[:, 1] = X[:, 0] + 0.5 * rng.standard_normal(n)  # a correlated pair: greedy and optimal can disagree
    return X * np.exp(rng.normal(0, 1, d)), y


def assert_matches_brute_force(fit, ranked: list[tuple[float, tuple[int, ...]]]) -> None:
    best_obj, best_support = ranked[0]
    info = fit.info
    assert info["proven_optimal"] and info["status"] == "optimal"
    tol = GAP * abs(best_obj) * 1.01
    assert info["objective"] <= best_obj + tol  # never worse than enumeration
    assert info["objective"] >= best_obj - tol  # and enumeration is exhaustive
    assert info["best_bound"] <= best_obj + tol  # the bound is a valid lower bound
    runner_up = next(obj for obj, sup in ranked[1:] if sup != best_support)
    if runner_up - best_obj > 2 * tol:  # a unique optimum must be found exactly
        assert tuple(sorted(fit.support.tolist())) == best_support


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("feature_scale", "multiple"),
    [(0.1, 1.0), (1.0, 0.1), (1.0, 10.0)],
    ids=["paper", "strong-ridge", "weak-ridge"],
)
def test_mio_equals_brute_force(solver: str, feature_scale: float, multiple: float) -> None:
    differs_from_ranking = []
    for seed in range(3):
        X, y = instance(seed)
        gamma = multiple / math.sqrt(X.shape[0])
        ks = (1, 3) if seed == 0 else (1, 2, 3)  # (1, 3): the warm start from k=3 must drop two neurons
        fits = osp_path(
            X, y, ks, n_candidates=X.shape[1], solver=solver, feature_scale=feature_scale, gamma=gamma, mip_gap=GAP
        )
        assert [f.k for f in fits] == list(ks)
        md_order = np.argsort(-mean_difference(X, y), kind="stable")
        for fit in fits:
            assert fit.support.size == fit.k
            ranked = brute_force_sparse_svm(X, y, fit.k, feature_scale=feature_scale, gamma=gamma)
            assert len(ranked) == math.comb(X.shape[1], fit.k)
            assert_matches_brute_force(fit, ranked)
            assert fit.info["solver"] == solver and fit.info["gamma"] == pytest.approx(gamma)
            is_ranking = set(fit.support.tolist()) == set(md_order[: fit.k].tolist())
            assert fit.info["equals_mean_diff_topk"] == is_ranking
            differs_from_ranking.append(not is_ranking)
    if multiple == 10.0:  # with a weak ridge the optimum is not the mean-difference ranking
        assert any(differs_from_ranking)
    if feature_scale == 0.1:  # the paper's setting: separable, the optimum is the ranking
        assert not any(differs_from_ranking)


def check_solvers_agree(seeds: range, n: int, d: int, ks: tuple[int, ...]) -> None:
    for seed in seeds:
        X, y = instance(100 + seed, n=n, d=d)
        kw = dict(ks=ks, n_candidates=d, feature_scale=0.5, mip_gap=1e-5, time_limit=60)
        by_solver = {s: osp_path(X, y, solver=s, **kw) for s in ("gurobi", "highs")}
        for f_g, f_h in zip(by_solver["gurobi"], by_solver["highs"], strict=True):
            assert f_g.k == f_h.k and f_g.support.size == f_h.support.size == f_g.k
            assert f_g.info["proven_optimal"] and f_h.info["proven_optimal"]
            assert f_g.info["objective"] == pytest.approx(f_h.info["objective"], rel=2e-5)
            # each solver's objective respects the other's proven bound
            assert f_g.info["objective"] >= f_h.info["best_bound"] - 1e-9 * abs(f_g.info["objective"])
            assert f_h.info["objective"] >= f_g.info["best_bound"] - 1e-9 * abs(f_h.info["objective"])


@pytest.mark.skipif(not gurobi_available(), reason="no gurobipy")
def test_solvers_agree_on_random_instances() -> None:
    check_solvers_agree(range(3), n=200, d=20, ks=(2, 4))


@pytest.mark.slow
@pytest.mark.skipif(not gurobi_available(), reason="no gurobipy")
def test_solvers_agree_on_larger_instances() -> None:
    check_solvers_agree(range(3), n=300, d=30, ks=(2, 4, 5))


def test_objective_bounds_and_cuts_are_valid() -> None:
    X, y = instance(7, d=10)
    obj = SparseSVMObjective(X, y, feature_scale=1.0)
    supports = [np.array(s) for s in itertools.combinations(range(10), 3)][::7]
    sols = [obj.evaluate(s) for s in supports]
    for sol in sols:
        assert sol.lower <= sol.upper <= sol.lower + 1e-6 * abs(sol.upper)
        s_D = np.zeros(10)
        s_D[sol.support] = 1
        assert sol.cut_constant - sol.cut_coef @ s_D == pytest.approx(sol.lower, rel=1e-9)
    # every cut is a lower bound on c at every other support
    for a in sols:
        for b in sols:
            s_D = np.zeros(10)
            s_D[b.support] = 1
            assert a.cut_constant - a.cut_coef @ s_D <= b.upper + 1e-9 * abs(b.upper)


@pytest.mark.parametrize("solver", SOLVERS)
def test_time_limit_is_never_reported_as_optimal(solver: str) -> None:
    X, y = instance(11, n=400, d=40)
    with pytest.warns(RuntimeWarning, match="optimality not proven"):
        fits = osp_path(X, y, (6,), n_candidates=40, solver=solver, gamma=10 / math.sqrt(400), time_limit=0.05)
    (fit,) = fits
    info = SolveInfo(**fit.info)
    assert not info.proven_optimal
    assert info.status != "optimal"
    assert info.mip_gap > 0 and info.best_bound < info.objective
    assert fit.support.size == 6  # the best support found (at worst the warm start) is still returned
    assert np.isfinite(fit.decision_function(X)).all()


def test_auto_solver_choice_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = instance(5)
    (fit,) = osp_path(X, y, (2,), n_candidates=12, solver="auto")
    assert fit.info["solver"] == ("gurobi" if gurobi_available() else "highs")
    assert fit.info["solver_requested"] == "auto"
    monkeypatch.setattr(osp, "GUROBI_SIZE_LIMIT", 5)  # a model that would not fit the licence
    (fit,) = osp_path(X, y, (2,), n_candidates=12, solver="auto")
    assert fit.info["solver"] == "highs"
    assert fit.info["proven_optimal"]
    assert "licence" in fit.info["note"] or "not available" in fit.info["note"]


def test_missing_gurobi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(osp, "gurobi_available", lambda: False)
    X, y = instance(5)
    with pytest.raises(ProbeInputError, match="gurobipy is not installed"):
        osp_path(X, y, (2,), solver="gurobi")
    (fit,) = osp_path(X, y, (2,), solver="auto")
    assert fit.info["solver"] == "highs" and "not available" in fit.info["note"]


@pytest.mark.skipif(not gurobi_available(), reason="no gurobipy")
def test_licence_refusal_falls_back_to_highs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise osp._GurobiLicenceError("Model too large for size-limited license")

    monkeypatch.setattr(osp, "_solve_gurobi", refuse)
    X, y = instance(6)
    (fit,) = osp_path(X, y, (3,), solver="gurobi", gamma=None, mip_gap=GAP)
    assert fit.info["solver"] == "highs" and "fell back to HiGHS" in fit.info["note"]
    assert_matches_brute_force(fit, brute_force_sparse_svm(X, y, 3))


def test_candidate_union_and_ascending_path() -> None:
    X, y = instance(9, n=300, d=80)
    fits = osp_path(X, y, n_candidates=20, solver="highs", gamma=None, feature_scale=0.1)
    assert [f.k for f in fits] == list(range(1, 9))
    candidates = set(fits[0].info["candidates"])
    assert len(candidates) == 20 and fits[0].info["candidate_rankers"] == CANDIDATE_RANKERS
    heuristics = rank_for_candidates(X, y, range(1, 9))
    for fit in fits:
        assert set(fit.support.tolist()) <= candidates
        assert fit.info["n_candidates"] == 20
        assert fit.info["proven_optimal"]
        for support in heuristics.supports(fit.k).values():  # every ranker's top k is a candidate (and a warm start)
            assert set(support.tolist()) <= candidates
        assert fit.info["objective"] <= fit.info["warm_start_objective"] + 1e-9
    objectives = [f.info["objective"] for f in fits]
    assert all(a >= b - 1e-9 * abs(a) for a, b in itertools.pairwise(objectives))  # more neurons never hurt


@pytest.mark.parametrize("solver", SOLVERS)
def test_path_is_monotone_even_when_not_proven(solver: str) -> None:
    # a weak ridge and a short time limit: some k stop unproven, yet k never does worse than k - 1 plus a neuron
    X, y = instance(21, n=300, d=40)
    ks = (1, 2, 3, 4, 5, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fits = osp_path(X, y, ks, n_candidates=40, solver=solver, gamma=30 / math.sqrt(300), time_limit=0.3)
    objectives = [f.info["objective"] for f in fits]
    assert all(b <= a for a, b in itertools.pairwise(objectives))
    for previous, fit in itertools.pairwise(fits):
        grown = SparseSVMObjective(X[:, fit.info["candidates"]], y, fit.info["gamma"])
        position = {j: i for i, j in enumerate(fit.info["candidates"])}
        prev_support = [position[j] for j in previous.support.tolist()]
        best_addition = min(
            grown.evaluate([*prev_support, j]).upper for j in range(len(position)) if j not in prev_support
        )
        assert fit.info["objective"] <= best_addition * (1 + 1e-6)  # the k - 1 support plus its best neuron
    for fit in fits:
        info = fit.info
        assert info["improved_on_warm_start"] == (info["objective"] < info["warm_start_objective"] * (1 - 1e-9))
        assert info["setup_time"] == fits[0].info["setup_time"] > 0  # shared set-up, reported once per path
        assert info["ranking_time"] <= info["setup_time"]
        assert info["wall_time"] >= 0 and info["best_bound"] <= info["objective"] * (1 + 1e-9)


def test_highs_master_runs_and_bounds() -> None:
    X, y = instance(3, n=200, d=14)
    gamma = 10 / math.sqrt(200)
    for k in (2, 4):
        (fit,) = osp_path(X, y, (k,), n_candidates=14, solver="highs", gamma=gamma, mip_gap=GAP)
        assert fit.info["n_master_solves"] >= 1  # the MILP itself ran (the relaxation alone does not prove these)
        assert np.isfinite(fit.info["best_bound"]) and fit.info["best_bound"] > fit.info["root_bound"]
        assert_matches_brute_force(fit, brute_force_sparse_svm(X, y, k, gamma=gamma))
    # the MILP runs even when the local search keeps finding supports to cut
    obj = SparseSVMObjective(X, y, gamma)
    pool = osp._CutPool(X.shape[1])
    start = obj.evaluate(np.arange(4))
    pool.add(start)
    best, outcome = osp._solve_highs(obj, pool, 4, start, time.perf_counter() + 0.5, GAP, 0, milp_after=0.0)
    assert outcome.n_master >= 1 and np.isfinite(outcome.bound) and outcome.bound <= best.upper * (1 + 1e-9)


def test_boolean_relaxation_bound_is_valid_and_tight_with_a_strong_ridge() -> None:
    X, y = instance(4, n=200, d=12)
    for multiple, k in ((0.1, 2), (0.1, 3), (10.0, 3)):
        obj = SparseSVMObjective(X, y, multiple / math.sqrt(200))
        ranked = brute_force_sparse_svm(X, y, k, gamma=multiple / math.sqrt(200))
        incumbent = obj.evaluate(ranked[0][1])
        pool = osp._CutPool(X.shape[1])
        pool.add(incumbent)
        cutoff = incumbent.upper * (1 - 1e-6)
        bound, n_iter, _ = osp._boolean_relaxation(obj, pool, k, incumbent, time.perf_counter() + 5, cutoff)
        assert bound <= ranked[0][0] * (1 + 1e-9) and n_iter >= 1
        if multiple == 0.1:  # a strong ridge: the relaxation is (nearly) tight
            assert bound >= ranked[0][0] * (1 - 2e-2)
        upper, constant, coef = obj.evaluate_fractional(np.full(12, k / 12))
        assert constant - coef @ np.full(12, k / 12) <= upper * (1 + 1e-9)  # the cut is below c at its point
        for value, support in ranked[:: max(1, len(ranked) // 20)]:  # and below c at every support
            s_D = np.zeros(12)
            s_D[list(support)] = 1
            assert constant - coef @ s_D <= value * (1 + 1e-9)


def test_ranking_runs_once_per_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = osp.rank_for_candidates

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(osp, "rank_for_candidates", counting)
    data = make_joint_block(n=400, d=30, random_state=2)
    osp_path(data.X, data.y, (1, 2, 3), n_candidates=10, solver="highs", groups=data.groups)  # internal holdout
    assert len(calls) == 1 and calls[0][0] < data.X.shape[0]  # ranked on the rows that fit gamma only
    calls.clear()
    split = grouped_split(data.groups, data.y, random_state=0)
    validation = (data.X[split.val], data.y[split.val])
    osp_path(data.X[split.train], data.y[split.train], (1, 2), n_candidates=10, solver="highs", validation=validation)
    assert len(calls) == 1


def test_gamma_grid_widened_at_its_edge() -> None:
    data = make_joint_block(n=1000, d=40, n_distractors=2, random_state=0)
    split = grouped_split(data.groups, data.y, random_state=0)
    X, y = data.X[split.train], data.y[split.train]
    validation = (data.X[split.val], data.y[split.val])
    grid = (0.01, 0.1)  # too strong a ridge: the validation score rises towards the top edge
    with pytest.warns(RuntimeWarning, match="gamma validation"):
        (fit,) = osp_path(X, y, (4,), n_candidates=12, solver="highs", validation=validation, gamma_grid=grid)
    info = fit.info
    assert set(grid) < set(info["gamma_scores"])
    assert 1.0 <= max(info["gamma_scores"]) <= 0.1 * 10**osp.GAMMA_WIDEN * (1 + 1e-9)
    assert "widened" in info["gamma_note"] and info["gamma_note"] in info["note"]
    assert info["gamma_multiple"] > 0.1
    # a choice inside the grid is not an edge and leaves no note
    assert osp._gamma_edge({0.1: 0.8, 1.0: 0.9, 10.0: 0.85}, 1.0) == ""
    assert osp.gamma_edge_note((0.1, 1.0, 10.0), 1.0, {0.1: 0.8, 1.0: 0.9, 10.0: 0.85}) == ""
    assert osp._gamma_edge({0.1: 0.8, 1.0: 0.9}, 1.0) == "top"
    assert osp._gamma_edge({0.1: 0.9, 1.0: 0.899}, 0.1) == ""  # a tie at the strongest ridge is the rule's choice
    assert osp._gamma_edge({0.1: 0.95, 1.0: 0.9}, 0.1) == "bottom"


def test_planted_joint_block_recovered_at_validated_gamma() -> None:
    data = make_joint_block(n=1000, d=60, n_distractors=8, random_state=0)
    split = grouped_split(data.groups, data.y, random_state=0)
    X, y = data.X[split.train], data.y[split.train]
    validation = (data.X[split.val], data.y[split.val])
    (paper,) = osp_path(X, y, (4,), n_candidates=12, solver="highs", gamma=None, feature_scale=0.1)
    assert paper.info["equals_mean_diff_topk"]  # the paper's setting returns the ranking: the distractors
    assert support_recovery(paper.support, data.planted)[1] <= 0.25
    (fit,) = osp_path(X, y, (4,), n_candidates=12, solver="highs", validation=validation)
    assert fit.info["gamma_source"] == "validated" and fit.info["gamma_multiple"] > 0.01
    assert set(GAMMA_GRID) <= set(fit.info["gamma_scores"])
    assert fit.info["proven_optimal"] and not fit.info["equals_mean_diff_topk"]
    assert set(fit.support.tolist()) == set(data.planted.tolist())


def test_estimator_and_bad_input() -> None:
    X, y = instance(4)
    probe = OptimalSparseProbe(k=2, n_candidates=12, solver="highs").fit(X, np.where(y == 1, "pos", "neg"))
    assert isinstance(probe.solve_info_, SolveInfo) and probe.solve_info_.proven_optimal
    assert probe.support_.size == 2 and np.count_nonzero(probe.coef_) == 2
    assert probe.predict_proba(X).shape == (len(y), 2)
    svm = OptimalSparseProbe(k=2, n_candidates=12, solver="highs", refit=False).fit(X, y)
    assert not hasattr(svm, "predict_proba")
    np.testing.assert_array_equal(np.sort(svm.support_), np.sort(probe.support_))
    with pytest.raises(ProbeInputError, match="Unknown solver"):
        osp_path(X, y, (1,), solver="cplex")
    with pytest.raises(ProbeInputError, match="time_limit"):
        osp_path(X, y, (1,), time_limit=0)
    with pytest.raises(ProbeInputError, match="exactly 2 classes"):
        osp_path(X, np.ones_like(y), (1,))
