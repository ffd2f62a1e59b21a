"""Probe sweeps on one process against several: the context-neuron chapter's cross-validated single-neuron search
of one family (its default parameters; the time excludes caching), run once per worker count in a fresh process
(``$SPARSE_PROBING_JOBS``, which ``sparse-probing book`` and ``chapter`` set from ``--jobs``). Checks that the
per-class table is the same whatever the worker count and writes the "Sweep workers" section of RESULTS.md.

    .venv/bin/python benchmarks/bench_jobs.py [--family natural_language] [--jobs 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _results import run_header, write_section

CHILD = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import yaml
from sparse_probing.chapters import monosemantic as mono
from sparse_probing.models import load_model
params = yaml.safe_load(open("chapters/params/04_monosemantic/default.yaml"))
config = mono.MonosemanticConfig.from_params(**params)
lm = load_model(config.model)
layers = mono.searched_layers(lm.n_layers, config.layers_per_third)
fam = mono._probe_family(config, lm, sys.argv[1], layers)  # its probe_s excludes caching
fam.summary.to_pickle(sys.argv[2])
print(json.dumps({"seconds": fam.timing["probe_s"], "tasks": len(fam.summary), "examples": int(fam.timing["examples"])}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="natural_language")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in args.jobs:
            out = Path(tmp) / f"summary_{jobs}.pkl"
            env = {**os.environ, "SPARSE_PROBING_JOBS": str(jobs), "TQDM_DISABLE": "1"}
            done = subprocess.run([sys.executable, "-c", CHILD, args.family, str(out)], cwd=root, env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
            runs[jobs] = {**json.loads(done.stdout.strip().splitlines()[-1]), "summary": pd.read_pickle(out)}
            print(f"jobs {jobs}: {runs[jobs]['seconds']:.1f} s", flush=True)
    first = runs[args.jobs[0]]
    same = all(r["summary"].equals(first["summary"]) for r in runs.values())
    header = run_header(__file__, argv)
    lines = [
        "## Sweep workers",
        "",
        f"Machine: {header['machine']}. Date: {header['date']}. Command: `{header['command']}`.",
        "",
        f"The context-neuron chapter's cross-validated single-neuron search with its baselines on `{args.family}` "
        f"({first['tasks']} classes, {first['examples']} documents, 5 folds, 12 layers), probing time without caching, "
        "in a fresh process per worker count. Per-class table identical across worker counts: "
        f"**{'yes' if same else 'NO'}**.",
        "",
        "| workers | seconds | speed-up |",
        "|---|---|---|",
        *(f"| {j} | {r['seconds']:.1f} | {first['seconds'] / r['seconds']:.2f}x |" for j, r in runs.items()),
    ]
    write_section("## Sweep workers", "\n".join(lines))
    if not same:
        raise SystemExit("the per-class table depends on the worker count")


if __name__ == "__main__":
    main()
