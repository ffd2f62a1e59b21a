"""Results files: every run writes its spec, metrics, library versions and git commit as JSON.

Where they go: ``$SPARSE_PROBING_RESULTS`` when set (the chapter runner sets it: ``book/results`` for the book build,
``<output dir>/results`` for any other run); otherwise ``data/results/scratch``. Only the book build
(``sparse-probing book`` / ``make book``) writes the published ``book/results``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparse_probing.paths import (
    REPO_ROOT,
    RESULTS_ENV,
    check_name,
    inside,
    published_results_dir,
    scratch_results_dir,
    write_file,
)

RESULTS_DIR = published_results_dir()
"""The published results of the book (``book/results``), written only by the book build."""


def results_dir() -> Path:
    """Where results files go: ``$SPARSE_PROBING_RESULTS`` if set, else ``data/results/scratch``."""
    env = os.environ.get(RESULTS_ENV)
    return Path(env).expanduser() if env else scratch_results_dir()


TRACKED_PACKAGES = ("sparse_probing", "torch", "transformers", "transformer-lens", "scikit-learn", "numpy", "scipy",
                    "highspy", "gurobipy", "pandas")  # fmt: skip


# What chapter runs write into the work tree; changes there do not make the code that produced a result dirty.
RUN_OUTPUTS = ("book/executed", "book/results", "book/provenance.md")


def git_commit() -> str | None:
    """The repository's HEAD commit, with ``-dirty`` when tracked files other than :data:`RUN_OUTPUTS` have
    uncommitted changes."""
    excludes = [f":(exclude){path}" for path in RUN_OUTPUTS]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes],
                               cwd=REPO_ROOT, capture_output=True, text=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment() -> dict[str, Any]:
    """Library versions, Python and machine facts for a results file."""
    versions = {}
    for pkg in TRACKED_PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "versions": versions,
        "commit": git_commit(),
    }


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, pd.DataFrame):
        return _jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def save_results(
    name: str,
    *,
    spec: Any,
    metrics: Any,
    runtime_s: float | None = None,
    directory: str | Path | None = None,
) -> Path:
    """Write ``<directory>/<name>.json`` with the spec, metrics, environment and time; returns its path.

    ``directory`` defaults to :func:`results_dir`. ``name`` must be a plain file name (no path separators).
    """
    check_name(name, "results name")
    directory = Path(directory) if directory is not None else results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "spec": _jsonable(spec),
        "metrics": _jsonable(metrics),
        "runtime_s": _jsonable(runtime_s),
        "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **environment(),
    }
    path = inside(directory, f"{name}.json")
    write_file(path, json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return path


def load_results(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """Every results file in ``directory``, sorted by name."""
    directory = Path(directory) if directory is not None else results_dir()
    records = []
    for p in sorted(directory.glob("*.json")):
        try:
            record = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"results file {p} is not valid JSON ({err}); delete it or re-run its chapter") from None
        if not isinstance(record, dict) or not isinstance(record.get("name"), str):
            raise ValueError(f"results file {p} is not a results record (no 'name'); delete it or re-run its chapter")
        records.append(record)
    return records
