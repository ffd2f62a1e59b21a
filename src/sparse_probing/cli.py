"""Command-line entry point: ``sparse-probing <command>`` (installed with the package).

sparse-probing models                       list the models that load offline
sparse-probing datasets [--variant V]       list the probing datasets and their sizes
sparse-probing cache --model M --dataset D  compute (or load) an activation cache entry
sparse-probing pipeline [--variant smoke]   cache activations of a model on every built dataset
sparse-probing plan NAME [--variant paper]  the activation cache entries a chapter will request (loads no model)
sparse-probing chapter NAME [--output-dir D] run one chapter: D/NAME.ipynb and D/results/ (default data/results/runs)
sparse-probing book [--only NAME]           run the chapters into book/executed + book/results, build the site

``chapter`` and ``book`` take ``--scheduler VALUE`` (``local``, ``local:N``, a Dask address or scheduler file) to run
the chapters' activation caching and probe sweeps on Dask workers (one scheduler for the whole command).

Errors are reported in one line (exit code 2 for bad input, 1 for failures); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, NoReturn

import pandas as pd


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None or text == "all":
        return None
    try:
        layers = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes comma-separated integers or 'all', got {text!r}") from None
    if min(layers) < 0:
        raise argparse.ArgumentTypeError(f"--layers takes non-negative layer indices, got {text!r}")
    return layers


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (1 or more), got {value}")
    return value


class UsageError(ValueError):
    """Bad input on the command line (exit code 2)."""


SCHEDULER_HELP = (
    "run the chapters' activation caching and probe sweeps on Dask: local, local:N, a scheduler address "
    "(tcp://host:8786) or a scheduler file (.json); opened once for the command, its address is given to the "
    "chapter's kernel in SPARSE_PROBING_SCHEDULER"
)


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
    from sparse_probing.models import check_layers, load_model

    built = list_datasets().query("variant == @args.variant and built")
    if built.empty:
        raise UsageError(f"no {args.variant} dataset is built; run `make data` first")
    check_layers(args.model, args.layers)  # before the weights are loaded
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


def _check_scheduler(value: str | None) -> str | None:
    """``--scheduler`` checked before any work starts (UsageError, exit code 2, for a value Dask cannot use)."""
    if value is None:
        return None
    from sparse_probing.distributed import check_scheduler

    try:
        return check_scheduler(value)
    except ValueError as err:
        raise UsageError(f"--scheduler: {err}") from None


def _served(scheduler: str | None) -> Any:
    """:func:`sparse_probing.distributed.serve` of ``--scheduler`` (a no-op context when none is given)."""
    import contextlib

    if scheduler is None:
        return contextlib.nullcontext(None)
    from sparse_probing.distributed import serve

    return serve(scheduler)


JOBS_HELP = (
    "processes of the probe sweeps (default: every core this process may use; results agree with one process up to "
    "floating-point summation order)"
)


def _set_jobs(jobs: int | None) -> int:
    """Workers of the chapters' probe sweeps (``$SPARSE_PROBING_JOBS``, read by the chapter kernels): ``--jobs``, or
    every core this process may use."""
    from sparse_probing.probes.sweep import JOBS_ENV

    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    n = jobs if jobs is not None else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    os.environ[JOBS_ENV] = str(n)
    return n


def _cmd_chapter(args: argparse.Namespace) -> int:
    from sparse_probing.book import run_chapter

    _set_jobs(args.jobs)
    scheduler = _check_scheduler(args.scheduler)
    out = run_chapter(args.name, args.variant, dict(args.param), output_dir=args.output_dir, scheduler=scheduler)
    print(f"executed {out}\nresults in {out.parent / 'results'}")
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from sparse_probing.book import (
        _resolve_chapter,
        build_site,
        chapter_names,
        run_chapter,
        stale_chapters,
        write_glance,
        write_provenance,
    )

    _set_jobs(args.jobs)
    scheduler = _check_scheduler(args.scheduler)
    only = [_resolve_chapter(name) for name in args.only]  # checked even with --skip-run
    if args.skip_run and only:
        raise ValueError("--only re-runs chapters and --skip-run runs none: give one of them")
    if not args.skip_run:
        chapters = only or chapter_names()
        with _served(scheduler) as address:  # one scheduler (one local cluster) for every chapter of the run
            for i, chapter in enumerate(chapters, 1):
                start = time.perf_counter()
                print(f"[{i}/{len(chapters)}] {chapter} ({args.variant}) ...", flush=True)
                run_chapter(chapter, args.variant, publish=True, scheduler=address)
                print(f"[{i}/{len(chapters)}] {chapter} done in {time.perf_counter() - start:.0f} s", flush=True)
    stale = stale_chapters()
    if stale:
        print(f"executed notebooks out of date with their sources: {', '.join(stale)}", file=sys.stderr)
        return 1
    write_provenance()
    write_glance()
    print(f"built {build_site() / 'index.html'}")
    return 0


# ---------------------------------------------------------------------------------------------- plan
def _chapter_config(chapter: str, variant: str, overrides: dict[str, Any]) -> Any:
    """The chapter's config as its notebook builds it: the notebook's defaults, the variant's yaml, the overrides."""
    import dataclasses
    import importlib

    from sparse_probing.book import ChapterError, load_params, notebook_parameters

    params = {name: _literal(text) for name, text in notebook_parameters(chapter).items()}
    params.update(load_params(chapter, variant))
    for name in overrides:
        if name not in params:
            raise ChapterError(f"{chapter} has no parameter {name!r}; its parameters: {', '.join(params)}")
    params.update(overrides)
    module = importlib.import_module(f"sparse_probing.chapters.{_CHAPTER_MODULES[chapter.split('_', 1)[1]]}")
    cls = next(
        v for v in vars(module).values()
        if isinstance(v, type) and v.__module__ == module.__name__ and v.__name__.endswith("Config")
    )  # fmt: skip
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls.from_params({k: v for k, v in params.items() if k in fields})


def _literal(text: Any) -> Any:
    """A value of a notebook's ``parameters`` cell (papermill reports the source text, e.g. ``"128"``)."""
    import ast

    try:
        return ast.literal_eval(text) if isinstance(text, str) else text
    except (ValueError, SyntaxError):
        return text


_CHAPTER_MODULES = {
    "methods": "methods",
    "ground_truth": "ground_truth",
    "superposition": "superposition",
    "monosemantic": "monosemantic",
    "scaling": "scaling",
    "survey": "survey",
    "sae": "sae",
}


def _entry(model: str, dataset: str, variant: str, **fields: Any) -> Any:
    from sparse_probing.activations import ActivationSpec

    return ActivationSpec(model=model, dataset=dataset, variant=variant, **fields)


def chapter_plan(chapter: str, variant: str = "default", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The activation cache entries a chapter run will request, computed from its parameters without loading a
    model: ``{"chapter", "variant", "entries": [(ActivationSpec, purpose), ...], "notes": [...]}``.

    Each spec is the one the chapter passes to :func:`sparse_probing.study.cache_for` (or to the embedding and
    residual caches beside it), so its key is the entry the run looks up. ``notes`` say what is decided only during
    the run (e.g. a layer chosen on validation data) and what the chapter computes without the cache.
    """
    from sparse_probing.book import ChapterError, _resolve_chapter

    chapter = _resolve_chapter(chapter)
    slug = chapter.split("_", 1)[1]
    entries: list[tuple[Any, str]] = []
    notes: list[str] = []
    if slug == "data":
        notes.append("this chapter reads the probing datasets only: it caches no activations")
        return {"chapter": chapter, "variant": variant, "entries": entries, "notes": notes}
    if slug not in _CHAPTER_MODULES:
        raise ChapterError(f"{chapter}: `plan` does not know this chapter's activation requests yet")
    cfg = _chapter_config(chapter, variant, dict(overrides or {}))
    if slug == "methods":
        layer = "the middle layer (n_layers // 2)" if cfg.layer is None else f"layer {cfg.layer}"
        for f in cfg.families:
            spec = _entry(cfg.model, f, cfg.variant, max_length=cfg.max_length, n_documents=cfg.n_documents.get(f))
            entries.append((spec, f"probed at {layer}"))
    elif slug == "ground_truth":
        notes.append(
            f"the gated-basis comparison runs its own forward passes ({cfg.basis_documents} documents of "
            f"{cfg.basis_dataset}, models {', '.join(cfg.basis_models) or 'none'}): nothing is cached"
        )
    elif slug == "superposition":
        from sparse_probing.chapters.superposition import CACHE_BATCH

        for f in cfg.families:
            spec = _entry(cfg.model, f, cfg.variant, layers=cfg.layers, max_length=cfg.max_length,
                          n_documents=cfg.n_documents.get(f), batch_size=CACHE_BATCH)  # fmt: skip
            entries.append((spec, "probes"))
            if "embedding" in cfg.surface_baselines:
                entries.append((_embedding(spec), "embedding baseline"))
        if cfg.broad:
            n_docs = cfg.n_documents.get(cfg.primary)
            for name in (cfg.model, *(m for m in cfg.broad_models if m != cfg.model)):
                early = cfg.early_layers if name == cfg.model else _first_third(name)
                if name != cfg.model:
                    layers = early if isinstance(early, tuple) else None
                    spec = _entry(name, cfg.primary, cfg.variant, layers=layers, max_length=cfg.max_length,
                                  n_documents=n_docs, batch_size=CACHE_BATCH)  # fmt: skip
                    entries.append((spec, "broad-sample test"))
                    if layers is None:
                        notes.append(f"{name}: the broad-sample test caches the first third of its layers; "
                                     f"{early}, so the layers above are not exact")  # fmt: skip
                if cfg.broad_residual:
                    notes.append(
                        f"{name}: the broad-sample test also caches the residual stream (site hook_resid_post) of "
                        f"one early layer of {early if isinstance(early, tuple) else 'the first third'}, chosen on "
                        f"validation during the run ({cfg.primary}, context {cfg.max_length}, batch {CACHE_BATCH})"
                    )
    elif slug == "monosemantic":
        for f in cfg.families:
            spec = _entry(cfg.model, f, cfg.variant, max_length=cfg.context_length(f),
                          n_documents=cfg.n_documents.get(f))  # fmt: skip
            entries.append((spec, "single-neuron search"))
        per = cfg.layers_per_third
        notes.append("the single-neuron search reads " + ("every cached layer" if per is None
                     else f"{per} layers per third of the model") + "; every layer is cached")  # fmt: skip
    elif slug == "scaling":
        for m in cfg.models:
            for f in cfg.families:
                spec = _entry(m, f, cfg.variant, max_length=cfg.max_length, n_documents=cfg.n_documents.get(f))
                entries.append((spec, f"probed at up to {cfg.max_layers} layers"))
    elif slug == "sae":
        for name in cfg.models:
            layers = tuple(cfg.cache_layers.get(name, (cfg.layers[name],)))
            spec = _entry(name, cfg.family, cfg.variant, layers=layers, max_length=cfg.max_length,
                          n_documents=cfg.n_documents, batch_size=32)  # fmt: skip
            entries.append((spec, f"probes and the sparse autoencoder at layer {cfg.layers[name]}"))
    elif slug == "survey":
        from sparse_probing.datasets import load_dataset

        for f in cfg.families:
            spec = _entry(cfg.model, f, cfg.variant, layers=cfg.layers, max_length=cfg.context_length(f),
                          n_documents=cfg.n_documents.get(f))  # fmt: skip
            entries.append((spec, "probes"))
            if "embedding" in cfg.surface_baselines:
                try:
                    kinds = {x.name: x.task for x in load_dataset(f, cfg.variant).features}
                except Exception:  # not built: the table says so
                    kinds = {}
                wanted = cfg.features.get(f, list(kinds))
                if any(kinds.get(x) == "classification" for x in wanted):
                    entries.append((_embedding(spec), "embedding baseline"))
    unique = list(dict.fromkeys(spec for spec, _ in entries))  # one entry per spec, in the order first requested
    purposes = {spec: purpose for spec, purpose in reversed(entries)}
    return {"chapter": chapter, "variant": variant, "entries": [(s, purposes[s]) for s in unique], "notes": notes}


def _embedding(spec: Any) -> Any:
    """The embedding baseline's entry beside ``spec`` (:func:`sparse_probing.analysis.surface.embedding_cache`)."""
    import dataclasses

    return dataclasses.replace(spec, site="hook_resid_pre", layers=(0,))


def _first_third(model: str) -> tuple[int, ...] | str:
    """The first third of a model's layers (as the broad-sample test takes them), or why it is not known."""
    import math

    from sparse_probing.models import layer_count

    n = layer_count(model)
    if n is None:
        return "its layer count is not known before it is downloaded"
    return tuple(range(max(1, math.ceil(n / 3))))


def _describe_entry(spec: Any) -> dict[str, str]:
    """Dataset key, layer count, entry key of a planned spec, each read without loading the model's weights."""
    from sparse_probing.activations import cache_key
    from sparse_probing.datasets import load_dataset
    from sparse_probing.models import ModelNotAvailableError, fingerprint, layer_count

    out = {"dataset_key": "", "entry_key": "", "n_layers": ""}
    unknown = "layer count not known here: the model's config.json is not on this machine yet"
    try:
        n = layer_count(spec.model_spec)
        out["n_layers"] = f"{n} layers" if n is not None else unknown
    except ModelNotAvailableError as err:
        out["n_layers"] = f"not available here: {_one_line(err)}"
    try:
        data = load_dataset(spec.dataset, spec.variant)
    except Exception as err:
        out["dataset_key"] = f"(not available: {_one_line(err)})"
        return out
    if spec.n_documents is not None:
        data = data.subset(spec.n_documents)
    out["dataset_key"] = data.key
    try:
        out["entry_key"] = cache_key(spec, data, fingerprint(spec.model_spec))
    except Exception as err:
        out["entry_key"] = f"(not known here: {_one_line(err)})"
    return out


def _cache_command(spec: Any) -> str:
    """The ``python -m sparse_probing.distributed cache`` line that computes exactly this entry."""
    layers = "all" if spec.layers is None else ",".join(map(str, spec.layers))
    parts = ["python -m sparse_probing.distributed cache --scheduler ADDRESS", f"--model {spec.model}",
             f"--dataset {spec.dataset}", f"--variant {spec.variant}", f"--layers {layers}",
             f"--max-length {spec.max_length}", f"--batch-size {spec.batch_size}"]  # fmt: skip
    if spec.n_documents is not None:
        parts.append(f"--n-documents {spec.n_documents}")
    if spec.site != "mlp.hook_post":
        parts.append(f"--site {spec.site}")
    if spec.reduce is not None:
        parts.append(f"--reduce {spec.reduce}")
    return " ".join(parts)


def _cmd_plan(args: argparse.Namespace) -> int:
    from sparse_probing.book import VARIANTS, ChapterError

    if args.variant not in VARIANTS:
        raise ChapterError(f"unknown variant {args.variant!r}; variants: {', '.join(VARIANTS)}")
    plan = chapter_plan(args.name, args.variant, dict(args.param))
    entries = plan["entries"]
    print(f"{plan['chapter']} ({plan['variant']}): {len(entries)} activation cache entries")
    for i, (spec, purpose) in enumerate(entries, 1):
        info = _describe_entry(spec)
        layers = "all" if spec.layers is None else ", ".join(map(str, spec.layers))
        print(f"\n[{i}] {spec.model} x {spec.dataset} ({purpose})")
        print(f"    model       {spec.model} ({info['n_layers']})")
        print(f"    dataset     {info['dataset_key']}")
        print(f"    layers      {layers}" + (" (the spec names no list: every layer)" if spec.layers is None else ""))
        print(f"    site        blocks.{{layer}}.{spec.site}")
        print(f"    context     {spec.max_length} tokens")
        print(f"    entry       {info['entry_key']}")
        print(f"    pre-cache   {_cache_command(spec)}")
    for note in plan["notes"]:
        print(f"\nnote: {note}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the package's one-line errors (exit code 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` shows the usage)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparse-probing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the models that load offline").set_defaults(func=_cmd_models)
    p = sub.add_parser("datasets", help="list the probing datasets")
    p.add_argument("--variant", default="default", choices=["smoke", "default"])
    p.set_defaults(func=_cmd_datasets)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--variant", default="default", help="dataset size variant: smoke or default (the default)")
        p.add_argument("--layers", type=_parse_layers, default=None, help="e.g. 3,15 or all")
        p.add_argument("--max-length", type=_positive_int, default=128, help="context length in tokens")

    p = sub.add_parser("cache", help="compute or load one activation cache entry")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    common(p)
    p.add_argument("--reduce", choices=["mean", "max", "last"], default=None)
    p.add_argument("--n-documents", type=_positive_int, default=None, help="use the first N documents")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.set_defaults(func=_cmd_cache)
    p = sub.add_parser("pipeline", help="cache a model's activations on every built dataset")
    p.add_argument("--model", default="smollm2-135m")
    common(p)
    p.set_defaults(func=_cmd_pipeline)

    p = sub.add_parser("plan", help="print the activation cache entries a chapter will request (loads no model)")
    p.add_argument("name", help="chapter notebook stem or slug, e.g. 04_monosemantic or monosemantic")
    p.add_argument("--variant", default="default", help="smoke, default or paper")
    p.add_argument("-p", "--param", action="append", type=_parse_override, default=[], metavar="NAME=VALUE",
                   help="override one parameter, as for `chapter`")  # fmt: skip
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("chapter", help="run one chapter notebook with papermill (not into the published book)")
    p.add_argument("name", help="chapter notebook stem or slug, e.g. 04_monosemantic or monosemantic")
    p.add_argument("--variant", default="default", help="smoke, default or paper")
    p.add_argument("-p", "--param", action="append", type=_parse_override, default=[], metavar="NAME=VALUE",
                   help="override one parameter, e.g. -p model=gemma-3-270m (repeatable)")  # fmt: skip
    p.add_argument("--output-dir", default=None,
                   help="where the executed notebook and its results/ go (default data/results/runs)")  # fmt: skip
    p.add_argument("--scheduler", default=None, metavar="VALUE", help=SCHEDULER_HELP)
    p.add_argument("--jobs", type=int, default=None, metavar="N", help=JOBS_HELP)
    p.set_defaults(func=_cmd_chapter)
    p = sub.add_parser("book", help="run every chapter, then build the site into _build/html")
    p.add_argument("--variant", default="default")
    p.add_argument("--skip-run", action="store_true", help="only build the site from book/executed/")
    p.add_argument("--only", action="append", default=[], metavar="CHAPTER",
                   help="re-run only this chapter before building (repeatable)")  # fmt: skip
    p.add_argument("--scheduler", default=None, metavar="VALUE", help=SCHEDULER_HELP)
    p.add_argument("--jobs", type=int, default=None, metavar="N", help=JOBS_HELP)
    p.set_defaults(func=_cmd_book)
    return parser


def _one_line(err: BaseException) -> str:
    """An exception's message on one line: its first line, with a pointer for messages that list alternatives."""
    from sparse_probing.models import ModelNotAvailableError

    text = str(err).strip() or type(err).__name__
    first = text.splitlines()[0].rstrip(":")
    if isinstance(err, ModelNotAvailableError) and "\n" in text:
        first += " (`sparse-probing models` lists the offline models)"
    return first


USAGE_ERROR_NAMES = frozenset({"ValueError", "KeyError", "FileNotFoundError", "ModelNotAvailableError", "ConfigError",
                               "DatasetError", "ChapterError", "SplitError", "ProbeInputError", "UnsafePathError"})  # fmt: skip
"""Exception names that mean a chapter's input was wrong (exit code 2) when raised inside its notebook."""


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input was wrong (exit code 2), as opposed to a failure while running (1)."""
    from sparse_probing.models import ModelNotAvailableError

    return (ValueError, KeyError, FileNotFoundError, ModelNotAvailableError)


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become one line on stderr (exit 2: bad input, 1: failure) unless ``--debug``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    args = build_parser().parse_args([a for a in argv if a != "--debug"])  # argparse: usage errors exit with 2
    args.debug = debug
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("sparse-probing: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        if type(err).__name__ == "PapermillExecutionError":  # a chapter failed inside its notebook
            message = f"the chapter failed in cell {err.exec_count}: {err.ename}: {_one_line(err.evalue)}"
            code = 2 if err.ename in USAGE_ERROR_NAMES else 1
        else:
            message, code = _one_line(err), 2 if isinstance(err, _usage_errors()) else 1
            if code == 1:
                message = f"{type(err).__name__}: {message}"
        print(f"sparse-probing: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
