"""Benchmark the probing methods that tell the hypotheses apart, and compare with TransformerLens' sparse probe.

On three kinds of data, each split by document into train / validation / test:

* synthetic "joint block": 4 neurons informative only jointly (shared noise cancels in their signed sum);
* synthetic "joint block + distractors": the same beside 8 neurons that are each better alone (a mean-difference
  ranking picks them) but worse together;
* real: SmolLM2-135M MLP activations (one layer) on the code_language smoke set, one-vs-rest tasks.

Measured:

1. Optimal sparse probing at the validated gamma, k = 1..8 over 200 candidates (union of mean difference, L1 path
   and telescopic rankings), with Gurobi and with HiGHS: seconds per (feature, layer), status / gap / time of every
   solve, the gamma chosen, how often the support equals the mean-difference top-k, and (synthetic) the block.
2. Planted-block recovery at k = 4 for every method (rankers, telescopic, OSP paper setting, OSP validated, the
   TransformerLens probe).
3. The exhaustive single-neuron search: seconds, and test F1 / ROC-AUC against the top-1 by mean difference.
4. TransformerLens 4.3 ``sweep_sparse_probe`` against our top-k and telescopic probes on its own split (its train
   rows for fitting, its test rows for scoring), the whole k grid: wall time, test F1 and ROC-AUC at every k.

    .venv/bin/python benchmarks/bench_probe_methods.py --write-results
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _results import run_header, write_section
from threadpoolctl import threadpool_limits

from sparse_probing.metrics import binary_metrics
from sparse_probing.probes import (
    K_GRID,
    OptimalSparseProbe,
    SparseProbe,
    TelescopicProbe,
    best_single_neuron,
    gurobi_available,
    rank_neurons,
)
from sparse_probing.probes.synthetic import make_joint_block, support_recovery
from sparse_probing.splits import grouped_split

SECTION = "## Probe methods that tell the hypotheses apart"


def problems(n: int, d: int, real_tasks: int, layer: int) -> list[dict[str, Any]]:
    out = []
    for name, nd in (("joint block", 0), ("joint block + 8 distractors", 8)):
        data = make_joint_block(n=n, d=d, n_distractors=nd, random_state=1)
        out.append({"name": name, "X": data.X, "y": data.y, "groups": data.groups, "planted": data.planted})
    if real_tasks:
        from sparse_probing import study
        from sparse_probing.activations import ActivationSpec, load_or_compute

        acts = load_or_compute(
            ActivationSpec(model="smollm2-135m", dataset="code_language", variant="smoke", layers=(layer,))
        )
        X = np.asarray(acts.layer(layer), dtype=np.float32)
        groups = acts.examples["group"].to_numpy()
        _, gid = np.unique(groups, return_inverse=True)
        for feature, y in list(study.binary_tasks(acts.examples).items())[:real_tasks]:
            keep = ~np.isnan(y)
            out.append(
                {
                    "name": f"{feature} (SmolLM2 L{layer})",
                    "X": X[keep],
                    "y": y[keep].astype(np.int64),
                    "groups": gid[keep],
                    "planted": None,
                }
            )
    for p in out:
        split = grouped_split(p["groups"], p["y"], random_state=0)
        p["split"] = split
        for part in ("train", "val", "test"):
            idx = getattr(split, part)
            p[f"X_{part}"], p[f"y_{part}"] = p["X"][idx].astype(np.float64), p["y"][idx]
    return out


def scores(fit: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    s = fit.decision_function(X)
    m = binary_metrics(y, (s > 0).astype(int), s)
    return {"f1_test": m["f1"], "roc_auc_test": m["roc_auc"]}


def bench_osp(probs: list[dict[str, Any]], time_limit: float, n_candidates: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    solvers = ["gurobi", "highs"] if gurobi_available() else ["highs"]
    paths, solves = [], []
    for p in probs:
        for solver in solvers:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                probe = OptimalSparseProbe(n_candidates=n_candidates, solver=solver, time_limit=time_limit)
                fits = probe.fit_path(p["X_train"], p["y_train"], range(1, 9), validation=(p["X_val"], p["y_val"]))
            seconds = time.perf_counter() - t0
            for f in fits:
                solves.append(
                    {
                        "problem": p["name"],
                        "solver": solver,
                        "k": f.k,
                        "status": f.info["status"],
                        "gap": f.info["mip_gap"],
                        "seconds": f.info["wall_time"],
                        "equals_md": f.info["equals_mean_diff_topk"],
                        **scores(f, p["X_test"], p["y_test"]),
                    }
                )
            f4 = fits[3]
            paths.append(
                {
                    "problem": p["name"],
                    "solver": solver,
                    "seconds": seconds,
                    "gamma_multiple": f4.info["gamma_multiple"],
                    "gamma_scores": f4.info["gamma_scores"],
                    "n_candidates": f4.info["n_candidates"],
                    "proven": sum(bool(f.info["proven_optimal"]) for f in fits),
                    "max_gap": max(f.info["mip_gap"] for f in fits),
                    "equals_md": sum(bool(f.info["equals_mean_diff_topk"]) for f in fits),
                    "block_recall_k4": support_recovery(f4.support, p["planted"])[1]
                    if p["planted"] is not None
                    else None,
                    "f1_test_k4": scores(f4, p["X_test"], p["y_test"])["f1_test"],
                }
            )
            print(paths[-1], flush=True)
    return pd.DataFrame(paths), pd.DataFrame(solves)


def bench_recovery(probs: list[dict[str, Any]], osp_paths: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for p in probs:
        if p["planted"] is None:
            continue
        X, y = p["X_train"], p["y_train"]
        rec = {}
        for ranker in ("mean_diff", "f_stat", "l1", "l1_path", "svm"):
            rec[f"top-k {ranker}"] = rank_neurons(X, y, ranker)[:4]
        rec["telescopic"] = TelescopicProbe().fit_path(X, y, (4,))[0].support
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            paper = OptimalSparseProbe(gamma=None, feature_scale=0.1, candidates=rank_neurons(X, y)[:50], time_limit=60)
            rec["OSP, paper setting (scale 0.1, gamma 1/sqrt(n), 50 mean-diff candidates)"] = paper.fit_path(
                X, y, (4,)
            )[0].support
        from transformer_lens.tools.analysis.sparse_probing import fit_sparse_probe

        tl = fit_sparse_probe(
            torch.from_numpy(p["X"]), torch.from_numpy(p["y"]), k=4, groups=torch.from_numpy(p["groups"]),
            preprocess="standardize",
        )  # fmt: skip
        rec["TransformerLens fit_sparse_probe"] = tl.selected_features.numpy()
        for method, support in rec.items():
            rows.append({"problem": p["name"], "method": method, "recall": support_recovery(support, p["planted"])[1]})
        for _, r in osp_paths[osp_paths["problem"] == p["name"]].iterrows():
            rows.append(
                {"problem": p["name"], "method": f"OSP validated ({r['solver']})", "recall": r["block_recall_k4"]}
            )
    return pd.DataFrame(rows)


def bench_single(probs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for p in probs:
        t0 = time.perf_counter()
        fit = best_single_neuron(p["X_train"], p["y_train"], p["X_val"], p["y_val"])
        seconds = time.perf_counter() - t0
        (top1,) = SparseProbe(random_state=0).fit_path(p["X_train"], p["y_train"], (1,))
        rows.append(
            {
                "problem": p["name"],
                "n_train": p["y_train"].size,
                "d": p["X_train"].shape[1],
                "seconds": seconds,
                **{f"search_{k}": v for k, v in scores(fit, p["X_test"], p["y_test"]).items()},
                **{f"md_top1_{k}": v for k, v in scores(top1, p["X_test"], p["y_test"]).items()},
            }
        )
    return pd.DataFrame(rows)


def bench_peer(probs: list[dict[str, Any]]) -> pd.DataFrame:
    from transformer_lens.tools.analysis.sparse_probing import sweep_sparse_probe

    rows = []
    for p in probs:
        D = p["X"].shape[1]
        ks = [k for k in K_GRID if k <= D]
        t0 = time.perf_counter()
        sweep = sweep_sparse_probe(
            torch.from_numpy(p["X"]), torch.from_numpy(p["y"]), ks=ks, groups=torch.from_numpy(p["groups"]),
            preprocess="standardize",
        )  # fmt: skip
        tl_seconds = time.perf_counter() - t0
        train = sweep.results[0].train_indices.numpy()
        test = sweep.results[0].test_indices.numpy()
        Xtr, ytr, Xte, yte = p["X"][train].astype(np.float64), p["y"][train], p["X"][test], p["y"][test]
        t0 = time.perf_counter()
        topk = SparseProbe(random_state=0).fit_path(Xtr, ytr, ks)
        topk_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        tele = TelescopicProbe(refit=True).fit_path(Xtr, ytr, ks)
        tele_seconds = time.perf_counter() - t0
        for i, k in enumerate(ks):
            res = sweep.results[i]
            rows.append(
                {
                    "problem": p["name"],
                    "k": k,
                    "tl_f1": res.metrics.f1,
                    "tl_auc": res.metrics.roc_auc,
                    **{f"topk_{m}": v for m, v in scores(topk[i], Xte, yte).items()},
                    **{f"tele_{m}": v for m, v in scores(tele[i], Xte, yte).items()},
                    "tl_seconds": tl_seconds,
                    "topk_seconds": topk_seconds,
                    "tele_seconds": tele_seconds,
                }
            )
        print(p["name"], "peer", tl_seconds, topk_seconds, tele_seconds, flush=True)
    return pd.DataFrame(rows)


def markdown(header: dict[str, str], paths, solves, recovery, single, peer, time_limit: float) -> str:
    out = [SECTION, ""]
    out.append(f"Machine: {header['machine']}. Date: {header['date']}. Command: `{header['command']}`.")
    out.append(
        "All fits single-threaded, one after another, on a machine shared with other jobs (wall times are upper "
        "bounds). Splits: grouped by document, 70/15/15."
    )
    out.append("")
    out.append(
        f"### Optimal sparse probing at the validated gamma, k = 1..8, {paths['n_candidates'].iloc[0]} candidates, "
        f"time limit {time_limit:g} s per k"
    )
    out.append("")
    out.append(
        "Goal: proven optimal, median <= 10 s per (feature, layer) with Gurobi and <= 30 s with HiGHS, planted block "
        "recovered. `gamma` is the chosen multiple of 1/sqrt(n) (grid 0.01, 0.1, 1, 10; 0.01 equals the paper's "
        "ridge); `= mean-diff top-k` counts the k whose optimal support is the mean-difference ranking."
    )
    out.append("")
    out.append(
        "| problem | solver | seconds | gamma | proven | largest gap | = mean-diff top-k | block recall k=4 | test F1 k=4 |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for _, r in paths.iterrows():
        rec = "" if r["block_recall_k4"] is None or pd.isna(r["block_recall_k4"]) else f"{r['block_recall_k4']:.2f}"
        out.append(
            f"| {r['problem']} | {r['solver']} | {r['seconds']:.1f} | {r['gamma_multiple']:g} | {r['proven']}/8 | "
            f"{r['max_gap']:.1e} | {r['equals_md']}/8 | {rec} | {r['f1_test_k4']:.3f} |"
        )
    out.append("")
    summary = paths.groupby("solver").agg(
        median_s=("seconds", "median"), max_s=("seconds", "max"), proven=("proven", "sum"), n=("proven", "size")
    )
    for solver, r in summary.iterrows():
        out.append(
            f"- {solver}: median {r['median_s']:.1f} s, max {r['max_s']:.1f} s per (feature, layer); "
            f"{int(r['proven'])}/{8 * int(r['n'])} solves proven optimal."
        )
    st = solves.groupby(["solver", "status"]).agg(
        n=("k", "size"), median_s=("seconds", "median"), max_gap=("gap", "max")
    )
    out.append("")
    out.append("Every solve, by status: " + "; ".join(
        f"{s} {status}: {int(r['n'])} (median {r['median_s']:.1f} s, largest gap {r['max_gap']:.1e})"
        for (s, status), r in st.iterrows()
    ) + ".")  # fmt: skip
    out.append("")
    out.append("### Planted-block recovery (recall of the 4-neuron block at k = 4, training split)")
    out.append("")
    pivot = recovery.pivot_table(index="method", columns="problem", values="recall", aggfunc="first")
    out.append("| method | " + " | ".join(pivot.columns) + " |")
    out.append("|---|" + "---|" * len(pivot.columns))
    for method, r in pivot.iterrows():
        out.append(f"| {method} | " + " | ".join(f"{v:.2f}" for v in r.to_numpy()) + " |")
    out.append("")
    out.append("### Exhaustive single-neuron search")
    out.append("")
    out.append(
        "Every neuron's sign and threshold fitted on train (best F1), the neuron chosen on validation ROC-AUC; "
        "against the top-1 neuron by mean difference (+ logistic regression)."
    )
    out.append("")
    out.append("| problem | n train x d | seconds | search test F1 / AUC | mean-diff top-1 test F1 / AUC |")
    out.append("|---|---|---|---|---|")
    for _, r in single.iterrows():
        out.append(
            f"| {r['problem']} | {r['n_train']} x {r['d']} | {r['seconds']:.2f} | "
            f"{r['search_f1_test']:.3f} / {r['search_roc_auc_test']:.3f} | "
            f"{r['md_top1_f1_test']:.3f} / {r['md_top1_roc_auc_test']:.3f} |"
        )
    out.append("")
    out.append("### TransformerLens 4.3 `sweep_sparse_probe` side by side")
    out.append("")
    out.append(
        "Its own grouped split (70/30), standardized inputs, the full k grid; our probes fitted on its training rows "
        "and scored on its test rows. Goal: ours at least as accurate at every k and faster on the full grid."
    )
    out.append("")
    out.append(
        "| problem | TL s | ours top-k s | ours telescopic s | k where top-k F1 >= TL F1 | k where telescopic F1 >= TL F1 | mean test AUC TL / top-k / telescopic |"
    )
    out.append("|---|---|---|---|---|---|---|")
    for name, g in peer.groupby("problem", sort=False):
        n = len(g)
        out.append(
            f"| {name} | {g['tl_seconds'].iloc[0]:.2f} | {g['topk_seconds'].iloc[0]:.2f} | "
            f"{g['tele_seconds'].iloc[0]:.2f} | {(g['topk_f1_test'] >= g['tl_f1'] - 1e-9).sum()}/{n} | "
            f"{(g['tele_f1_test'] >= g['tl_f1'] - 1e-9).sum()}/{n} | "
            f"{g['tl_auc'].mean():.3f} / {g['topk_roc_auc_test'].mean():.3f} / {g['tele_roc_auc_test'].mean():.3f} |"
        )
    out.append("")
    out.append("Test F1 at every k (TL / top-k / telescopic):")
    out.append("")
    for name, g in peer.groupby("problem", sort=False):
        cells = ", ".join(
            f"k={int(r['k'])}: {r['tl_f1']:.2f}/{r['topk_f1_test']:.2f}/{r['tele_f1_test']:.2f}"
            for _, r in g.iterrows()
        )
        out.append(f"- {name}: {cells}")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="synthetic examples")
    ap.add_argument("--d", type=int, default=1536, help="synthetic neurons")
    ap.add_argument("--real-tasks", type=int, default=2, help="SmolLM2 code_language tasks (0: none)")
    ap.add_argument("--layer", type=int, default=10, help="SmolLM2 layer")
    ap.add_argument("--n-candidates", type=int, default=200)
    ap.add_argument("--time-limit", type=float, default=10.0, help="OSP time limit per k (seconds)")
    ap.add_argument("--json", type=Path, default=None, help="also dump all rows as JSON here")
    ap.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section of RESULTS.md")
    args = ap.parse_args(argv)
    header = run_header(__file__, argv)
    with threadpool_limits(1):
        torch.set_num_threads(1)
        probs = problems(args.n, args.d, args.real_tasks, args.layer)
        single = bench_single(probs)
        print(single, flush=True)
        peer = bench_peer(probs)
        paths, solves = bench_osp(probs, args.time_limit, args.n_candidates)
        recovery = bench_recovery(probs, paths)
    text = markdown(header, paths, solves, recovery, single, peer, args.time_limit)
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    k: v.to_dict("records")
                    for k, v in dict(paths=paths, solves=solves, recovery=recovery, single=single, peer=peer).items()
                }
                | {"header": header},
                indent=1,
                default=str,
            )
        )
    if args.write_results:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
