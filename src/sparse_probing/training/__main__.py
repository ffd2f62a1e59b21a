"""Command line of the mini family: ``python -m sparse_probing.training <command>``.

corpus     [--force]                     build data/corpus/ (skipped when up to date; checks it against the datasets)
tokenizer  [--force]                     train data/models/tokenizer/ on the corpus (skipped when up to date)
check                                    verify that no training document contains probing-dataset text
train      [--models ...] [--threads N] [--max-minutes M] [--force]
                                         train the models one after another; resumes; skips finished ones
report                                   write data/models/REPORT.md and training_report.png from the logs
bench      [--models ...] [--steps N] [--threads N] [--out FILE]
                                         measure training speed at the real sizes (nothing is saved but FILE)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .corpus import (
    CORPUS_FILE,
    MANIFEST_FILE,
    CorpusSpec,
    build_corpus,
    corpus_dir,
    file_sha256,
    leaked_documents,
    probing_documents,
    read_corpus,
)
from .family import MINI_FAMILY, TrainSpec, get_mini_spec
from .tokenizer import TokenizerSpec, tokenizer_dir, train_tokenizer


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _set_threads(n: int | None) -> int:
    import torch

    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def _cmd_corpus(args: argparse.Namespace) -> int:
    spec = CorpusSpec()
    out = corpus_dir()
    manifest_path = out / MANIFEST_FILE
    if (out / CORPUS_FILE).exists() and manifest_path.exists() and not args.force:
        manifest = json.loads(manifest_path.read_text())
        if manifest["spec_digest"] != spec.digest or manifest["file"]["sha256"] != file_sha256(out / CORPUS_FILE):
            _err(
                f"{out / CORPUS_FILE} does not match the current CorpusSpec or its manifest; rebuild it with "
                "`python -m sparse_probing.training corpus --force` (then retrain the tokenizer and the models)"
            )
            return 1
        _, digests = probing_documents()
        if digests == manifest["exclusion"]["dataset_files"]:
            _err(f"{out / CORPUS_FILE} is up to date")
            return 0
        _err("the probing datasets changed since the corpus was built; checking the corpus for their text ...")
        leaked = leaked_documents(out / CORPUS_FILE)
        if leaked:
            _err(
                f"{len(leaked)} training documents contain text of the current probing datasets (e.g. {leaked[:3]}). "
                "Rebuild with `python -m sparse_probing.training corpus --force`, then retrain the tokenizer and "
                "the models."
            )
            return 1
        _err(f"{out / CORPUS_FILE}: no probing text in the training split; kept")
        return 0
    build_corpus(spec, out)
    return 0


def _cmd_tokenizer(args: argparse.Namespace) -> int:
    spec = TokenizerSpec()
    out = tokenizer_dir()
    corpus = corpus_dir() / CORPUS_FILE
    meta_path = out / "training.json"
    if meta_path.exists() and not args.force:
        meta = json.loads(meta_path.read_text())
        if meta.get("corpus_sha256") == file_sha256(corpus) and meta.get("spec") == asdict(spec):
            _err(f"{out} is up to date")
            return 0
        _err(f"{out} was trained on another corpus or spec; retrain with `--force` (and then retrain the models)")
        return 1
    t0 = time.perf_counter()
    train_tokenizer(read_corpus(corpus), spec, out, corpus_sha256=file_sha256(corpus))
    _err(f"trained the tokenizer in {time.perf_counter() - t0:.0f} s: {out}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    leaked = leaked_documents(corpus_dir() / CORPUS_FILE)
    if leaked:
        _err(f"{len(leaked)} training documents contain probing text, e.g. {leaked[:5]}")
        return 1
    _err("no training document contains text of a built probing dataset")
    return 0


def _models(names: list[str] | None) -> list[Any]:
    return [get_mini_spec(n) for n in names] if names else list(MINI_FAMILY)


def _on_signal(signum: int, frame: Any) -> None:
    from .trainer import STOP

    _err(f"signal {signum}: checkpointing after the current step ...")
    STOP.set()


def _cmd_train(args: argparse.Namespace) -> int:
    from .report import make_report
    from .trainer import train_family

    threads = _set_threads(args.threads)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _err(f"training {', '.join(m.name for m in _models(args.models))} with {threads} torch threads")
    max_seconds = None if args.max_minutes is None else 60 * args.max_minutes
    results = train_family(_models(args.models), TrainSpec(), max_seconds=max_seconds, force=args.force)
    for r in results:
        _err(f"  {r.name}: {r.status} ({r.steps_done}/{r.n_steps} steps)")
    if any(r.status != "interrupted" for r in results):
        _err(f"report: {make_report()}")
    if any(r.status == "interrupted" for r in results):
        _err("not finished: run the same command again to resume")
        return 3
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import make_report

    _err(f"wrote {make_report()}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .trainer import TrainPaths, bench_model, prepare_data

    threads = _set_threads(args.threads)
    train = TrainSpec()
    data = prepare_data(TrainPaths(), train)
    rows = []
    for spec in _models(args.models):
        t0 = time.perf_counter()
        row = bench_model(spec, train, data, steps=args.steps)
        row["wall_seconds"] = round(time.perf_counter() - t0, 1)
        row["token_budget"] = train.token_budget
        row["projected_hours"] = round(train.token_budget / row["tokens_per_second"] / 3600, 3)
        rows.append(row)
        _err(json.dumps(row))
    if args.out:
        path = Path(args.out)
        old = json.loads(path.read_text()) if path.exists() else {}
        old.update({f"{r['name']}@{threads}threads": r for r in rows})
        path.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    _err(f"threads {threads}; total projected hours for these models: {sum(r['projected_hours'] for r in rows):.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_probing.training", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("corpus", help="build the training corpus")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.set_defaults(fn=_cmd_corpus)
    p = sub.add_parser("tokenizer", help="train the tokenizer")
    p.add_argument("--force", action="store_true")
    p.set_defaults(fn=_cmd_tokenizer)
    p = sub.add_parser("check", help="check the corpus for probing text")
    p.set_defaults(fn=_cmd_check)
    p = sub.add_parser("train", help="train the mini models (resumable)")
    p.add_argument("--models", nargs="+", choices=[m.name for m in MINI_FAMILY], help="default: all, smallest first")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--max-minutes", type=float, default=None, help="checkpoint and stop after this long")
    p.add_argument("--force", action="store_true", help="retrain finished models and ignore checkpoints")
    p.set_defaults(fn=_cmd_train)
    p = sub.add_parser("report", help="write the training report")
    p.set_defaults(fn=_cmd_report)
    p = sub.add_parser("bench", help="measure training speed")
    p.add_argument("--models", nargs="+", choices=[m.name for m in MINI_FAMILY])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="merge the results into this JSON file")
    p.set_defaults(fn=_cmd_bench)
    args = parser.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
