"""Benchmark the optimal sparse probe: proofs, gaps, times and what the solver adds over its warm starts.

Problems, each split by document into train / validation / test (70/15/15):

* "superposition": :func:`~sparse_probing.probes.synthetic.make_joint_block`, a block of 4 neurons informative
  only jointly among 1536 (4,000 rows in 200 documents); the true k is 4;
* "mixed": the same block beside 8 neurons that are each better alone (the true k is still 4);
* real: two one-vs-rest tasks from the cached SmolLM2-135M activations of the methods chapter (natural_language
  and code_language, middle layer), when the cache entries exist (no model is run to make them).

For every problem and solver (Gurobi when licensed, HiGHS): ``OptimalSparseProbe`` with 200 candidates, gamma
validated on the validation rows, k = 1..8. Per k: proven or not, relative gap, solve time, the path's set-up time,
whether the returned support beats the best warm start, and whether the MIO (relaxation or master) found it. On
the real tasks the optimal probe is compared with the telescopic probe (test F1 at k = 1..4). Targets: every solve
at the true k proven; median per-k solve time <= 10 s with Gurobi and <= 30 s with HiGHS.

    .venv/bin/python benchmarks/bench_optimal.py --write-results

``--baseline-file`` runs another implementation of ``sparse_probing.probes.optimal`` (a file with the same API,
e.g. an earlier version) on the same problems, for a before / after comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _results import run_header, write_section
from threadpoolctl import threadpool_limits

from sparse_probing.metrics import binary_metrics
from sparse_probing.probes import OptimalSparseProbe, TelescopicProbe, gurobi_available
from sparse_probing.probes.synthetic import make_joint_block, support_recovery
from sparse_probing.splits import grouped_split

SECTION = "## Optimal sparse probing: proofs, gaps and times"
KS = tuple(range(1, 9))
TARGET_S = {"gurobi": 10.0, "highs": 30.0}
REAL_TASKS = (("natural_language", 540, "language=de"), ("code_language", 520, "code_language=c"))


def synthetic(regime: str, seed: int) -> dict[str, Any]:
    n_distractors = {"superposition": 0, "mixed": 8}[regime]
    data = make_joint_block(n=4000, d=1536, n_distractors=n_distractors, examples_per_doc=20, random_state=seed)
    return {
        "name": f"{regime} (seed {seed})",
        "regime": regime,
        "X": data.X,
        "y": data.y,
        "groups": data.groups,
        "planted": data.planted,
        "true_k": data.planted.size,
    }


def real(layer: int | None) -> list[dict[str, Any]]:
    """The methods chapter's cached SmolLM2 activations, if present (nothing is computed)."""
    from sparse_probing import study
    from sparse_probing.activations import cache_root

    def cached(family: str, n_docs: int) -> bool:
        for meta in cache_root().glob(f"smollm2-135m-{family}-default-*/meta.json"):
            spec = json.loads(meta.read_text()).get("spec", {})
            if spec.get("n_documents") == n_docs and spec.get("max_length") == 128 and spec.get("layers") is None:
                return True
        return False

    out = []
    for family, n_docs, task in REAL_TASKS:
        if not cached(family, n_docs):
            print(f"no cache entry for {family}: skipped", flush=True)
            continue
        acts = study.cache_for("smollm2-135m", family, "default", n_documents=n_docs, max_length=128)
        at = acts.layers[len(acts.layers) // 2] if layer is None else layer
        y = study.binary_tasks(acts.examples)[task]
        keep = np.isfinite(y)
        _, gid = np.unique(acts.examples["group"].to_numpy(), return_inverse=True)
        out.append(
            {
                "name": f"{task} (SmolLM2 L{at})",
                "regime": "real",
                "X": np.asarray(acts.layer(at), dtype=np.float32)[keep],
                "y": y[keep].astype(np.int64),
                "groups": gid[keep],
                "planted": None,
                "true_k": None,
            }
        )
    return out


def split(p: dict[str, Any]) -> dict[str, Any]:
    s = grouped_split(p["groups"], p["y"], random_state=0)
    for part in ("train", "val", "test"):
        idx = getattr(s, part)
        p[f"X_{part}"], p[f"y_{part}"] = p["X"][idx].astype(np.float64), p["y"][idx]
    return p


def f1_test(fit: Any, p: dict[str, Any]) -> float:
    score = fit.decision_function(p["X_test"])
    return float(binary_metrics(p["y_test"], (score > 0).astype(int), score)["f1"])


def load_probe_class(path: Path | None) -> type:
    if path is None:
        return OptimalSparseProbe
    spec = importlib.util.spec_from_file_location("sparse_probing.probes._bench_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.OptimalSparseProbe


def bench(p: dict[str, Any], solver: str, time_limit: float, n_candidates: int, probe_class: type) -> list[dict]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        probe = probe_class(n_candidates=n_candidates, solver=solver, time_limit=time_limit)
        fits = probe.fit_path(p["X_train"], p["y_train"], KS, validation=(p["X_val"], p["y_val"]))
    path_seconds = time.perf_counter() - t0
    rows = []
    for f in fits:
        info = f.info
        rows.append(
            {
                "problem": p["name"],
                "regime": p["regime"],
                "solver": solver,
                "k": f.k,
                "true_k": p["true_k"],
                "proven": bool(info["proven_optimal"]),
                "status": info["status"],
                "gap": float(info["mip_gap"]),
                "solve_s": float(info["wall_time"]),
                "setup_s": float(info.get("setup_time", np.nan)),
                "path_s": path_seconds,
                "objective": float(info["objective"]),
                "best_bound": float(info["best_bound"]),
                "root_bound": float(info.get("root_bound", np.nan)),
                "warm_objective": float(info["warm_start_objective"]),
                "improved_on_warm": bool(info["objective"] < info["warm_start_objective"] * (1 - 1e-9)),
                "improved_by_master": info.get("improved_by_master"),
                "n_master": int(info["n_master_solves"]),
                "gamma_multiple": float(info["gamma_multiple"]),
                "gamma_note": info.get("gamma_note", ""),
                "recall": support_recovery(f.support, p["planted"])[1] if p["planted"] is not None else np.nan,
                "f1_test": f1_test(f, p),
            }
        )
    print(
        f"{p['name']} {solver}: path {path_seconds:.1f} s, proven {sum(r['proven'] for r in rows)}/8, "
        f"gamma {rows[0]['gamma_multiple']:g}",
        flush=True,
    )
    return rows


def telescopic_rows(p: dict[str, Any]) -> list[dict]:
    fits = TelescopicProbe(refit=True).fit_path(p["X_train"], p["y_train"], KS)
    return [{"problem": p["name"], "k": f.k, "f1_test": f1_test(f, p)} for f in fits]


def fmt_s(x: float) -> str:
    return f"{x:.1f}" if np.isfinite(x) else "-"


def markdown(header: dict[str, str], solves: pd.DataFrame, tele: pd.DataFrame, time_limits: dict[str, float]) -> str:
    out = [SECTION, ""]
    out.append(f"Machine: {header['machine']}. Date: {header['date']}. Command: `{header['command']}`.")
    out.append(
        "Single-threaded fits, one after another, on a machine shared with other jobs (times are upper bounds). "
        f"Time limit per k: {', '.join(f'{s} {t:g} s' for s, t in time_limits.items())}. 200 candidates, gamma "
        "validated (widened beyond the grid's edge when chosen there), k = 1..8 solved in ascending order."
    )
    out.append("")
    out.append(
        "| problem | solver | gamma | proven (all k) | proven at true k | largest gap | median solve s | max solve s "
        "| set-up s | improved on warm start | by the MIO |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for (problem, solver), g in solves.groupby(["problem", "solver"], sort=False):
        at_true = g[g["k"] == g["true_k"]]
        true_cell = f"{int(at_true['proven'].sum())}/{len(at_true)}" if len(at_true) else "-"
        out.append(
            f"| {problem} | {solver} | {g['gamma_multiple'].iloc[0]:g} | {int(g['proven'].sum())}/{len(g)} | "
            f"{true_cell} | {g['gap'].max():.1e} | {fmt_s(g['solve_s'].median())} | {fmt_s(g['solve_s'].max())} | "
            f"{fmt_s(g['setup_s'].iloc[0])} | {int(g['improved_on_warm'].sum())}/{len(g)} | "
            f"{int(g['improved_by_master'].fillna(False).astype(bool).sum())}/{len(g)} |"
        )
    out.append("")
    out.append("Against the targets (per solver and regime):")
    out.append("")
    for (solver, regime), g in solves.groupby(["solver", "regime"], sort=False):
        at_true = g[g["k"] == g["true_k"]]
        med = g["solve_s"].median()
        target = TARGET_S.get(solver, np.nan)
        proof = (
            f"proven at the true k in {int(at_true['proven'].sum())}/{len(at_true)} paths"
            + (" (target: all, met)" if at_true["proven"].all() else " (target: all, MISSED)")
            if len(at_true)
            else f"proven in {int(g['proven'].sum())}/{len(g)} solves (no true k)"
        )
        time_verdict = "met" if med <= target else "MISSED"
        out.append(
            f"- {solver}, {regime}: {proof}; median per-k solve time {med:.1f} s (target <= {target:g} s: "
            f"{time_verdict}); set-up per path median {g.groupby('problem')['setup_s'].first().median():.1f} s; "
            f"gaps of unproven solves median {g.loc[~g['proven'], 'gap'].median():.2g}."
        )
    if len(tele):
        out.append("")
        out.append("Optimal against telescopic on the real tasks (test F1, k = 1..4; optimal - telescopic):")
        out.append("")
        real = solves[solves["regime"] == "real"]
        for (problem, solver), g in real.groupby(["problem", "solver"], sort=False):
            t = tele[tele["problem"] == problem].set_index("k")["f1_test"]
            cells, diffs = [], []
            for _, r in g[g["k"] <= 4].iterrows():
                d = r["f1_test"] - t.loc[r["k"]]
                diffs.append(d)
                cells.append(f"k={int(r['k'])}: {r['f1_test']:.3f} vs {t.loc[r['k']]:.3f} ({d:+.3f})")
            out.append(f"- {problem}, {solver}: {'; '.join(cells)}; mean {np.mean(diffs):+.3f}.")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regimes", default="superposition,mixed", help="synthetic regimes (comma-separated, or none)")
    ap.add_argument("--seeds", type=int, default=1, help="synthetic seeds per regime")
    ap.add_argument("--real", type=int, default=2, help="real tasks from cached activations (0..2)")
    ap.add_argument("--layer", type=int, default=None, help="layer of the real tasks (default: the middle one)")
    ap.add_argument("--solvers", default="gurobi,highs", help="solvers (gurobi is skipped without a licence)")
    ap.add_argument("--time-limit-gurobi", type=float, default=10.0, help="seconds per k")
    ap.add_argument("--time-limit-highs", type=float, default=30.0, help="seconds per k")
    ap.add_argument("--n-candidates", type=int, default=200)
    ap.add_argument("--baseline-file", type=Path, default=None, help="another optimal.py to run instead")
    ap.add_argument("--json", type=Path, default=None, help="also dump every row as JSON here")
    ap.add_argument("--write-results", action="store_true", help=f"replace the '{SECTION}' section of RESULTS.md")
    args = ap.parse_args(argv)
    header = run_header(__file__, argv)
    solvers = [s for s in args.solvers.split(",") if s and (s != "gurobi" or gurobi_available())]
    limits = {"gurobi": args.time_limit_gurobi, "highs": args.time_limit_highs}
    probe_class = load_probe_class(args.baseline_file)
    problems = [synthetic(r, seed) for r in args.regimes.split(",") if r and r != "none" for seed in range(args.seeds)]
    if args.real:
        problems += real(args.layer)[: args.real]
    rows, tele = [], []
    with threadpool_limits(1):
        for p in problems:
            split(p)
            for solver in solvers:
                rows += bench(p, solver, limits[solver], args.n_candidates, probe_class)
            if p["regime"] == "real":
                tele += telescopic_rows(p)
    solves, tele_df = pd.DataFrame(rows), pd.DataFrame(tele)
    text = markdown(header, solves, tele_df, {s: limits[s] for s in solvers})
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"solves": rows, "telescopic": tele, "header": header}, indent=1, default=str))
    if args.write_results:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
