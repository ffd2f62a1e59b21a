"""Benchmark the sparse probes: speed of the k sweep, optimal probing, and planted-neuron recovery.

Three measurements, on synthetic activations with planted neurons (n examples, d = 1536, like one MLP layer of
SmolLM2-135M) and, with ``--real``, on cached activations of the default model (one middle layer, one family):

1. Full k grid (1..8, 10, 12, 16, 32, 64, 128, 256): the telescopic sweep and top-k-by-mean-difference + L2
   logistic regression against a paper-style independent refit per k (neurons scaled by 10x their std as in the
   paper's code, a saga logistic regression from scratch at every k, max_iter=200). Wall time of the whole grid and
   test F1 at every k (goal: >= 5x faster at equal F1).
2. Optimal sparse probing, k = 1..8 over 50 candidates, with Gurobi and with HiGHS: seconds per (feature, layer)
   (median, max) and the fraction of solves proven optimal (goal: median <= 5 s, all proven).
3. Planted-neuron recovery (synthetic only): precision and recall of the support at k = number of planted neurons.

All fits run single-threaded (threadpoolctl) and one after another, so times compare like with like.

    .venv/bin/python benchmarks/bench_probes.py                 # synthetic part
    .venv/bin/python benchmarks/bench_probes.py --real          # adds SmolLM2 layer 15, natural_language
    .venv/bin/python benchmarks/bench_probes.py --write-results # also replaces "## Probes" in RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _results import run_header, write_section
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from sparse_probing.metrics import binary_metrics
from sparse_probing.probes import (
    K_GRID,
    RANKERS,
    OptimalSparseProbe,
    SparseProbe,
    TelescopicProbe,
    gurobi_available,
    mean_difference,
    rank_neurons,
)
from sparse_probing.probes.synthetic import make_planted, support_recovery
from sparse_probing.splits import grouped_split

SECTION = "## Probes"

PAPER_TOPK = "top-k mean diff + saga per k (paper-style)"
PAPER_TELESCOPIC = "telescopic, fresh saga per k (paper-style)"

SYNTHETIC_FEATURES: dict[str, tuple[float, ...]] = {
    "monosemantic (1 neuron, 4.0)": (4.0,),
    "few (3 neurons, 2.5/1.5/1.0)": (2.5, 1.5, 1.0),
    "spread (8 neurons, 1.0)": (1.0,) * 8,
    "weak (5 neurons, 0.75)": (0.75,) * 5,
}


@dataclass
class Problem:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    planted: np.ndarray | None = None


def split_problem(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, planted=None) -> Problem:
    s = grouped_split(groups, y, val_size=0.15, test_size=0.15, random_state=42)
    X = np.asarray(X, dtype=np.float32)
    return Problem(name, X[s.train], y[s.train], X[s.val], y[s.val], X[s.test], y[s.test], planted)


def synthetic_problems(n: int, d: int) -> list[Problem]:
    problems = []
    for i, (name, effects) in enumerate(SYNTHETIC_FEATURES.items()):
        data = make_planted(n=n, d=d, effects=effects, random_state=100 + i)
        problems.append(split_problem(name, data.X, data.y, data.groups, data.planted))
    return problems


def real_problems(variant: str, layer: int, max_features: int | None, n_documents: int | None) -> list[Problem]:
    from sparse_probing.study import cache_for

    # the chapters' cache entry (every layer, the first n_documents documents), so nothing is computed twice
    acts = cache_for("smollm2-135m", "natural_language", variant, n_documents=n_documents, max_length=128)
    X = np.asarray(acts.layer(layer), dtype=np.float32)
    ex = acts.examples
    groups = ex["group"].to_numpy() if "group" in ex.columns else ex["doc"].to_numpy()
    languages = sorted(ex["language"].dropna().unique())[:max_features]
    return [
        split_problem(f"language={lang} (L{layer})", X, (ex["language"] == lang).to_numpy().astype(int), groups)
        for lang in languages
    ]


def f1_of(fit: Any, X: np.ndarray, y: np.ndarray) -> float:
    score = fit.decision_function(X)
    return binary_metrics(y, (score > 0).astype(int))["f1"]


class _LinearFit:
    def __init__(self, support: np.ndarray, coef: np.ndarray, intercept: float, scale: np.ndarray):
        self.support, self.coef, self.intercept, self.scale = support, coef, intercept, scale

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return (X[:, self.support] / self.scale[self.support]) @ self.coef + self.intercept


def _paper_normalize(X: np.ndarray) -> np.ndarray:
    """The paper's activation normalization: divide every neuron by 10x its training std."""
    return np.maximum(X.std(axis=0), 1e-3) * 10


def paper_style_topk(X: np.ndarray, y: np.ndarray, ks: tuple[int, ...]) -> list[_LinearFit]:
    """The paper's heuristic sweep: rank once by mean difference, a fresh L2 saga fit (max_iter=200) per k."""
    scale = _paper_normalize(X)
    Xn = X / scale
    ranking = np.argsort(-mean_difference(Xn, y, standardize=False), kind="stable")
    fits = []
    for k in ks:
        support = ranking[:k]
        lr = LogisticRegression(solver="saga", class_weight="balanced", max_iter=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr.fit(Xn[:, support], y)
        fits.append(_LinearFit(support, lr.coef_[0], float(lr.intercept_[0]), scale))
    return fits


def paper_style_telescopic(X: np.ndarray, y: np.ndarray, ks: tuple[int, ...], n_start: int = 256) -> list[_LinearFit]:
    """The paper's telescopic sweep: descending k, a fresh elastic-net saga fit per k (C = k/20,
    l1_ratio = clip(exp(-k/20), 0.1, 0.9), max_iter=1000), re-ranking by |coef|; started here from the top 256 by
    mean difference like ours."""
    scale = _paper_normalize(X)
    Xn = X / scale
    ranking = np.argsort(-mean_difference(Xn, y, standardize=False), kind="stable")[: max(n_start, max(ks))]
    fits = []
    for k in sorted(ks, reverse=True):
        support = ranking[:k]
        lr = LogisticRegression(
            solver="saga",
            class_weight="balanced",
            C=k / 20,
            l1_ratio=float(np.clip(np.exp(-k / 20), 0.1, 0.9)),
            max_iter=1000,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr.fit(Xn[:, support], y)
        fits.append(_LinearFit(support, lr.coef_[0], float(lr.intercept_[0]), scale))
        ranking = support[np.argsort(-np.abs(lr.coef_[0]), kind="stable")]
    return fits[::-1]


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_k_grid(problems: list[Problem]) -> pd.DataFrame:
    rows = []
    for p in problems:
        ks = tuple(k for k in K_GRID if k <= p.X_train.shape[1])
        runs = {
            PAPER_TOPK: lambda p=p, ks=ks: paper_style_topk(p.X_train, p.y_train, ks),
            "top-k mean diff + LR (ours)": lambda p=p, ks=ks: SparseProbe(random_state=0).fit_path(
                p.X_train, p.y_train, ks
            ),
            PAPER_TELESCOPIC: lambda p=p, ks=ks: paper_style_telescopic(p.X_train, p.y_train, ks),
            "telescopic, warm-started (ours)": lambda p=p, ks=ks: TelescopicProbe().fit_path(p.X_train, p.y_train, ks),
        }
        for method, fn in runs.items():
            fits, seconds = timed(fn)
            f1_val = [f1_of(f, p.X_val, p.y_val) for f in fits]
            f1_test = [f1_of(f, p.X_test, p.y_test) for f in fits]
            best = int(np.argmax(f1_val))
            rows.append(
                {
                    "feature": p.name,
                    "method": method,
                    "baseline": PAPER_TOPK if "top-k" in method else PAPER_TELESCOPIC,
                    "seconds": seconds,
                    "mean_f1_test": float(np.mean(f1_test)),
                    "selected_k": ks[best],
                    "f1_test_at_selected_k": f1_test[best],
                    **{f"f1@{k}": v for k, v in zip(ks, f1_test, strict=True)},
                }
            )
            print(f"  k-grid {p.name:38s} {method:24s} {seconds:7.2f}s  mean F1 {np.mean(f1_test):.3f}", flush=True)
    return pd.DataFrame(rows)


def bench_osp(problems: list[Problem], time_limit: float, feature_scale: float) -> pd.DataFrame:
    solvers = ["gurobi", "highs"] if gurobi_available() else ["highs"]
    rows = []
    for p in problems:
        for solver in solvers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                probe = OptimalSparseProbe(solver=solver, time_limit=time_limit, feature_scale=feature_scale)
                fits, seconds = timed(probe.fit_path, p.X_train, p.y_train)
            proven = [bool(f.info["proven_optimal"]) for f in fits]
            rows.append(
                {
                    "feature": p.name,
                    "solver": solver,
                    "seconds": seconds,
                    "n_proven": sum(proven),
                    "n_solves": len(proven),
                    "max_gap": max(f.info["mip_gap"] for f in fits),
                    "f1_test_k": {f.k: round(f1_of(f, p.X_test, p.y_test), 3) for f in fits},
                    "supports": {f.k: sorted(int(j) for j in f.support) for f in fits},
                }
            )
            print(
                f"  OSP {p.name:38s} {solver:7s} fs={feature_scale:g} {seconds:7.2f}s proven {sum(proven)}/{len(proven)}",
                flush=True,
            )
    return pd.DataFrame(rows)


def bench_recovery(problems: list[Problem], osp_time_limit: float) -> pd.DataFrame:
    rows = []
    for p in problems:
        if p.planted is None:
            continue
        k = len(p.planted)
        supports: dict[str, np.ndarray] = {}
        for ranker in RANKERS:
            supports[f"top-k {ranker}"] = rank_neurons(p.X_train, p.y_train, ranker, random_state=0)[:k]
        raw = mean_difference(p.X_train, p.y_train, standardize=False)
        supports["top-k mean_diff on raw activations"] = np.argsort(-raw, kind="stable")[:k]
        supports["telescopic"] = TelescopicProbe().fit_path(p.X_train, p.y_train, (k,))[0].support
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            osp = OptimalSparseProbe(time_limit=osp_time_limit)
            supports["optimal (OSP)"] = osp.fit_path(p.X_train, p.y_train, (k,))[0].support
        for method, support in supports.items():
            precision, recall = support_recovery(support, p.planted)
            rows.append({"feature": p.name, "k": k, "method": method, "precision": precision, "recall": recall})
    return pd.DataFrame(rows)


def machine() -> str:
    import os

    cores = os.cpu_count()
    return f"{cores} CPU cores ({platform.machine()}), no GPU, Python {platform.python_version()}, single-threaded BLAS"


def summary(kgrid: pd.DataFrame, osp: pd.DataFrame) -> list[str]:
    """One line per goal, computed from the rows (so a re-run keeps the verdicts honest)."""
    lines = ["Summary against the goals:", ""]
    for source, kg in kgrid.groupby("source", sort=False):
        totals = kg.groupby("method", sort=False).agg(
            seconds=("seconds", "sum"), baseline=("baseline", "first"), f1=("mean_f1_test", "mean")
        )
        for method, r in totals.iterrows():
            if method == r.baseline:
                continue
            base = totals.loc[r.baseline]
            speed = base.seconds / r.seconds
            verdict = "met" if speed >= 5 and r.f1 >= base.f1 - 0.01 else "missed"
            lines.append(
                f"- {source}, {method}: {speed:.1f}x faster than the paper-style refit, mean test F1 {r.f1:.3f} vs "
                f"{base.f1:.3f} (goal >= 5x at equal F1: {verdict})."
            )
    for (source, fs), og in osp.groupby(["source", "feature_scale"], sort=False):
        for solver, g in og.groupby("solver", sort=False):
            median, proven, total = g["seconds"].median(), int(g["n_proven"].sum()), int(g["n_solves"].sum())
            verdict = "met" if median <= 5 and proven == total else "missed"
            if fs != 0.1:
                verdict = f"stress test outside the default setting, {verdict}"
            lines.append(
                f"- {source}, OSP feature_scale={fs:g}, {solver}: median {median:.2f} s, max {g['seconds'].max():.2f} s "
                f"per (feature, layer), {proven}/{total} proven optimal (goal median <= 5 s, all proven: {verdict})."
            )
    lines.append("")
    return lines


def markdown(kgrid: pd.DataFrame, osp: pd.DataFrame, recovery: pd.DataFrame, header: dict[str, str]) -> str:
    lines = [
        "## Probes",
        "",
        f"Machine: {header['machine']}. Date: {header['date']}.",
        f"Command: `{header['command']}`",
        "",
        "Setup: grouped split by document, 70/15/15 train/validation/test; every fit on train, k chosen on "
        "validation, F1 reported on test. All fits single-threaded and sequential. Synthetic features: "
        "`make_planted` (GELU activations, log-normal neuron scales, shared latent directions, per-document "
        "offsets) with the planted effects named in the feature column. OSP: 50 candidates by mean difference, "
        "gamma = 1/sqrt(n), mip_gap 1e-4, time limit per k as in the command (default 60 s, the paper's).",
        "",
        *summary(kgrid, osp),
    ]
    for source, kg in kgrid.groupby("source", sort=False):
        lines += [
            f"### Full k grid ({source})",
            "",
            "Wall time for all 15 values of k (ranking included) and test F1. `speed-up` is relative to the "
            "paper-style version of the same method (independent saga refits per k on activations scaled by "
            "10x std, as in the paper's code); goal: >= 5x at equal F1. Selected k: chosen on validation F1.",
            "",
            "| feature | method | seconds | speed-up | mean test F1 over k | selected k | test F1 at selected k |",
            "|---|---|---|---|---|---|---|",
        ]
        for feature, g in kg.groupby("feature", sort=False):
            base = g.set_index("method")["seconds"]
            for _, r in g.iterrows():
                lines.append(
                    f"| {feature} | {r['method']} | {r['seconds']:.2f} | {base[r['baseline']] / r['seconds']:.1f}x | "
                    f"{r['mean_f1_test']:.3f} | {r['selected_k']} | {r['f1_test_at_selected_k']:.3f} |"
                )
        totals = kg.groupby("method", sort=False).agg(
            seconds=("seconds", "sum"), baseline=("baseline", "first"), f1=("mean_f1_test", "mean")
        )
        lines += [
            "",
            "Totals over features: "
            + "; ".join(
                f"{m}: {r.seconds:.2f} s, {totals.loc[r.baseline, 'seconds'] / r.seconds:.1f}x, mean F1 {r.f1:.3f}"
                for m, r in totals.iterrows()
            ),
            "",
        ]
    for (source, fs), og in osp.groupby(["source", "feature_scale"], sort=False):
        lines += [
            f"### Optimal sparse probing, k = 1..8, 50 candidates ({source}, feature_scale={fs:g})",
            "",
            "Seconds per (feature, layer) for the whole k = 1..8 path (goal: median <= 5 s, all proven optimal). "
            + (
                "feature_scale=0.1 is the paper's normalization (the default)."
                if fs == 0.1
                else f"feature_scale={fs:g}: a 100x weaker ridge, a much harder problem; time limit "
                f"{og['time_limit'].iloc[0]:g} s per k."
            ),
            "",
            "| solver | features | median s | max s | proven optimal | largest gap |",
            "|---|---|---|---|---|---|",
        ]
        for solver, g in og.groupby("solver", sort=False):
            lines.append(
                f"| {solver} | {len(g)} | {g['seconds'].median():.2f} | {g['seconds'].max():.2f} | "
                f"{int(g['n_proven'].sum())}/{int(g['n_solves'].sum())} | {g['max_gap'].max():.1e} |"
            )
        lines.append("")
        lines += ["| feature | solver | seconds | proven |", "|---|---|---|---|"]
        for _, r in og.iterrows():
            lines.append(f"| {r['feature']} | {r['solver']} | {r['seconds']:.2f} | {r['n_proven']}/{r['n_solves']} |")
        lines.append("")
    if len(recovery):
        lines += [
            "### Planted-neuron recovery (synthetic)",
            "",
            "Precision / recall of the support at k = number of planted neurons (training split only).",
            "",
        ]
        wide = recovery.assign(
            pr=lambda d: d["precision"].map("{:.2f}".format) + " / " + d["recall"].map("{:.2f}".format)
        )
        table = wide.pivot(index="method", columns="feature", values="pr")
        table = table.reindex(
            index=list(dict.fromkeys(recovery["method"])), columns=list(dict.fromkeys(recovery["feature"]))
        )
        lines.append("| method | " + " | ".join(table.columns) + " |")
        lines.append("|---|" + "---|" * len(table.columns))
        for method, r in table.iterrows():
            lines.append(f"| {method} | " + " | ".join(r.tolist()) + " |")
        lines.append("")
    return "\n".join(lines)


def render(dumps: list[dict[str, Any]]) -> str:
    """Markdown for one or more JSON dumps (e.g. a synthetic run and a later ``--real --no-synthetic`` run)."""
    header = {
        "machine": dumps[0]["header"]["machine"],
        "date": ", ".join(dict.fromkeys(d["header"]["date"] for d in dumps)),
        "command": "`; `".join(d["header"]["command"] for d in dumps),
    }
    frames = {key: pd.DataFrame([r for d in dumps for r in d[key]]) for key in ("k_grid", "osp", "recovery")}
    return markdown(frames["k_grid"], frames["osp"], frames["recovery"], header)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="synthetic examples per feature")
    ap.add_argument("--d", type=int, default=1536, help="synthetic neurons")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the synthetic part")
    ap.add_argument("--real", action="store_true", help="add SmolLM2 activations (natural_language, one layer)")
    ap.add_argument("--variant", default="default", help="dataset variant for --real (smoke or default)")
    ap.add_argument("--layer", type=int, default=15, help="layer for --real")
    ap.add_argument("--n-documents", type=int, default=540, help="first documents for --real (as the chapters)")
    ap.add_argument("--max-features", type=int, default=None, help="use only the first languages for --real")
    ap.add_argument("--time-limit", type=float, default=60.0, help="OSP time limit per k (seconds)")
    ap.add_argument("--hard", action="store_true", help="also run OSP with feature_scale=1 (a much harder regime)")
    ap.add_argument("--hard-time-limit", type=float, default=10.0, help="OSP time limit per k for --hard")
    ap.add_argument("--json", type=Path, default=None, help="also dump all rows as JSON here")
    ap.add_argument("--write-results", action="store_true", help="replace the '## Probes' section of RESULTS.md")
    ap.add_argument(
        "--render", type=Path, nargs="+", default=None, help="only render these JSON dumps (no benchmark run)"
    )
    args = ap.parse_args(argv)

    if args.render:
        text = render([json.loads(p.read_text()) for p in args.render])
        print(text)
        if args.write_results:
            write_section(SECTION, text)
        return

    sources: list[tuple[str, list[Problem]]] = []
    if not args.no_synthetic:
        sources.append((f"synthetic, n={args.n}, d={args.d}", synthetic_problems(args.n, args.d)))
    if args.real:
        sources.append(
            (
                f"SmolLM2-135M layer {args.layer}, natural_language {args.variant}[:{args.n_documents}]",
                real_problems(args.variant, args.layer, args.max_features, args.n_documents),
            )
        )
    if not sources:
        sys.exit("nothing to run: drop --no-synthetic or add --real")

    kgrid, osp, recovery = [], [], []
    with threadpool_limits(1):
        for source, problems in sources:
            print(
                f"== {source}: {len(problems)} features, {problems[0].X_train.shape[0]} training examples", flush=True
            )
            kgrid.append(bench_k_grid(problems).assign(source=source))
            osp.append(bench_osp(problems, args.time_limit, 0.1).assign(source=source, feature_scale=0.1))
            if args.hard:
                hard = bench_osp(problems, args.hard_time_limit, 1.0)
                osp.append(hard.assign(source=source, feature_scale=1.0, time_limit=args.hard_time_limit))
            recovery.append(bench_recovery(problems, args.time_limit).assign(source=source))
    kgrid_df, osp_df, rec_df = pd.concat(kgrid), pd.concat(osp), pd.concat(recovery)
    header = run_header(__file__, argv, machine())
    text = markdown(kgrid_df, osp_df, rec_df, header)
    print()
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "header": header,
                    "k_grid": kgrid_df.to_dict("records"),
                    "osp": osp_df.to_dict("records"),
                    "recovery": rec_df.to_dict("records"),
                },
                indent=1,
                default=str,
            )
        )
    if args.write_results:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
