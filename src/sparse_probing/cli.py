"""Command-line entry point: ``sparse-probing <command>`` (installed with the package).

sparse-probing models                       list the models that load offline
sparse-probing datasets [--variant V]       list the probing datasets and their sizes
sparse-probing cache --model M --dataset D  compute (or load) an activation cache entry
sparse-probing pipeline [--variant smoke]   cache activations of a model on every built dataset
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None or text == "all":
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes comma-separated integers or 'all', got {text!r}") from None


def _cmd_models(args: argparse.Namespace) -> int:
    from sparse_probing.models import list_models

    print("Models that load offline:\n" + list_models())
    print("Also: any local directory with a Hugging Face model + tokenizer, and hub names (with a network).")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from sparse_probing.datasets import list_datasets, summary_table

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(list_datasets()[["name", "variant", "version", "built"]].to_string(index=False))
        table = summary_table(args.variant)
        if len(table):
            print(f"\nBuilt {args.variant} datasets:")
            print(table.drop(columns=["sources"]).to_string(index=False))
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from sparse_probing.activations import ActivationSpec, load_or_compute

    spec = ActivationSpec(
        model=args.model,
        dataset=args.dataset,
        variant=args.variant,
        layers=args.layers,
        reduce=args.reduce,
        max_length=args.max_length,
        n_documents=args.n_documents,
        batch_size=args.batch_size,
    )
    start = time.perf_counter()
    acts = load_or_compute(spec)
    print(f"{acts}\n  at {acts.path}\n  ({time.perf_counter() - start:.1f} s)")
    return 0


def _cmd_pipeline(args: argparse.Namespace) -> int:
    """Cache activations of one model on every built dataset of a variant, sharing one loaded model."""
    from sparse_probing.activations import ActivationSpec, load_or_compute
    from sparse_probing.datasets import list_datasets, load_dataset
    from sparse_probing.models import load_model

    built = list_datasets().query("variant == @args.variant and built")
    if built.empty:
        print(f"no {args.variant} dataset is built; run `make data` first", file=sys.stderr)
        return 1
    model = load_model(args.model)
    layers = args.layers or (model.n_layers // 2,)
    rows = []
    for name in built["name"]:
        start = time.perf_counter()
        ds = load_dataset(name, args.variant)
        spec = ActivationSpec(
            model=args.model, dataset=name, variant=args.variant, layers=layers, max_length=args.max_length
        )
        acts = load_or_compute(spec, model=model, dataset=ds)
        x = acts.layer(layers[0])
        rows.append(
            {
                "dataset": name,
                "examples": x.shape[0],
                "neurons": x.shape[1],
                "tokens": acts.meta["n_tokens"],
                "dropped": acts.meta["n_dropped"],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _parse_override(text: str) -> tuple[str, object]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"-p takes name=value, got {text!r}")
    return name, yaml.safe_load(value)  # numbers, lists ([3, 15]) and strings as YAML reads them


def _cmd_chapter(args: argparse.Namespace) -> int:
    from sparse_probing.book import run_chapter

    out = run_chapter(args.name, args.variant, dict(args.param), output_dir=args.output_dir)
    print(f"executed {out}")
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from sparse_probing.book import build_site, chapter_names, run_chapter, stale_chapters, write_provenance

    if not args.skip_run:
        chapters = chapter_names()
        for i, chapter in enumerate(chapters, 1):
            start = time.perf_counter()
            print(f"[{i}/{len(chapters)}] {chapter} ({args.variant}) ...", flush=True)
            run_chapter(chapter, args.variant)
            print(f"[{i}/{len(chapters)}] {chapter} done in {time.perf_counter() - start:.0f} s", flush=True)
    stale = stale_chapters()
    if stale:
        print(f"executed notebooks out of date with their sources: {', '.join(stale)}", file=sys.stderr)
        return 1
    write_provenance()
    print(f"built {build_site() / 'index.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparse-probing", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the models that load offline").set_defaults(func=_cmd_models)
    p = sub.add_parser("datasets", help="list the probing datasets")
    p.add_argument("--variant", default="default", choices=["smoke", "default"])
    p.set_defaults(func=_cmd_datasets)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--variant", default="smoke", help="dataset size variant: smoke or default")
        p.add_argument("--layers", type=_parse_layers, default=None, help="e.g. 3,15 or all")
        p.add_argument("--max-length", type=int, default=128, help="context length in tokens")

    p = sub.add_parser("cache", help="compute or load one activation cache entry")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    common(p)
    p.add_argument("--reduce", choices=["mean", "max", "last"], default=None)
    p.add_argument("--n-documents", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=_cmd_cache)
    p = sub.add_parser("pipeline", help="cache a model's activations on every built dataset")
    p.add_argument("--model", default="smollm2-135m")
    common(p)
    p.set_defaults(func=_cmd_pipeline)

    p = sub.add_parser("chapter", help="run one chapter notebook with papermill into book/executed/")
    p.add_argument("name", help="chapter notebook stem or slug, e.g. 03_monosemantic or monosemantic")
    p.add_argument("--variant", default="default", help="smoke, default or paper")
    p.add_argument("-p", "--param", action="append", type=_parse_override, default=[], metavar="NAME=VALUE",
                   help="override one parameter, e.g. -p model=gemma-3-270m (repeatable)")  # fmt: skip
    p.add_argument("--output-dir", default=None, help="where the executed notebook goes (default book/executed)")
    p.set_defaults(func=_cmd_chapter)
    p = sub.add_parser("book", help="run every chapter, then build the site into _build/html")
    p.add_argument("--variant", default="default")
    p.add_argument("--skip-run", action="store_true", help="only build the site from book/executed/")
    p.set_defaults(func=_cmd_book)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
