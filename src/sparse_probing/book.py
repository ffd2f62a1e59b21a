"""Run the chapter notebooks with papermill and render the Jupyter Book.

Papermill executes, the book renders (``execute_notebooks: 'off'``). Each chapter ``chapters/NN_slug.ipynb`` has
parameter variants ``chapters/params/NN_slug/<variant>.yaml``: ``smoke`` (tiny model, minutes, CI), ``default``
(offline real models: the published book) and ``paper`` (Pythia; needs a GPU and a network). An executed notebook
records the sha256 of its source notebook and its parameters in its metadata, so a stale copy is detected.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from sparse_probing._progress import INTERVAL, PROGRESS_ENV, format_seconds
from sparse_probing.paths import REPO_ROOT, RESULTS_ENV, check_name
from sparse_probing.results import RESULTS_DIR, git_commit, load_results

CHAPTERS_DIR = REPO_ROOT / "chapters"
PARAMS_DIR = CHAPTERS_DIR / "params"
BOOK_DIR = REPO_ROOT / "book"
EXECUTED_DIR = BOOK_DIR / "executed"
RUNS_DIR = REPO_ROOT / "data" / "results" / "runs"
"""Where ``sparse-probing chapter`` puts a run when no ``--output-dir`` is given (outside the published book)."""
VARIANTS = ("smoke", "default", "paper")


class ChapterError(ValueError):
    """A chapter, variant or parameter that does not exist."""


def chapter_names() -> list[str]:
    """Chapter notebook stems in reading order (``00_methods``, ``01_superposition``, ...)."""
    return sorted(p.stem for p in CHAPTERS_DIR.glob("[0-9][0-9]_*.ipynb"))


def _resolve_chapter(name: str) -> str:
    names = chapter_names()
    if name in names:
        return name
    matches = [n for n in names if n.split("_", 1)[1] == name or n.startswith(f"{name}_")]
    if len(matches) == 1:
        return matches[0]
    raise ChapterError(f"unknown chapter {name!r}; chapters: {', '.join(names)}")


def load_params(chapter: str, variant: str = "default") -> dict[str, Any]:
    """The parameters of one chapter variant (plain values only)."""
    chapter = _resolve_chapter(chapter)
    try:
        check_name(variant, "variant")
    except ValueError as err:
        raise ChapterError(str(err)) from None
    path = PARAMS_DIR / chapter / f"{variant}.yaml"
    if not path.exists():
        have = sorted(p.stem for p in (PARAMS_DIR / chapter).glob("*.yaml"))
        raise ChapterError(f"chapter {chapter} has no variant {variant!r} ({path}); variants: {', '.join(have)}")
    return yaml.safe_load(path.read_text()) or {}


def notebook_parameters(chapter: str) -> dict[str, Any]:
    """Names and default values of the ``parameters`` cell of a chapter, as papermill sees them."""
    import papermill as pm

    return {name: p["default"] for name, p in pm.inspect_notebook(str(CHAPTERS_DIR / f"{chapter}.ipynb")).items()}


def source_digest(chapter: str) -> str:
    """sha256 of a source notebook's cells (code and markdown), ignoring outputs and metadata."""
    nb = json.loads((CHAPTERS_DIR / f"{chapter}.ipynb").read_text())
    cells = [{"type": c["cell_type"], "source": "".join(c["source"])} for c in nb["cells"]]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


class _ProgressWatcher:
    """Prints what a chapter's kernel reports (``$SPARSE_PROBING_PROGRESS`` lines: caching documents done / total,
    probing tasks done / total, with the time left) as ``[chapter] ...`` lines, and a heartbeat with the elapsed time
    when the kernel has said nothing for :data:`~sparse_probing._progress.INTERVAL` seconds: a plain log shows a line
    at least every 30 seconds."""

    def __init__(self, chapter: str, *, interval: float = INTERVAL, stream: Any = None) -> None:
        import tempfile
        import threading

        self.chapter, self.interval, self.stream = chapter, interval, stream
        self._dir = tempfile.mkdtemp(prefix="sparse-probing-progress-")
        self.path = Path(self._dir) / "progress.log"
        self.path.touch()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = self._quiet_since = time.monotonic()
        self._offset = 0

    def start(self) -> None:
        self._start = time.monotonic()
        self._thread.start()

    def _say(self, text: str) -> None:
        print(f"  [{self.chapter}] {text}", file=self.stream or sys.stdout, flush=True)

    def _drain(self) -> None:
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self._offset)
            new = fh.read()
            self._offset = fh.tell()
        for line in new.splitlines():
            self._say(line)
            self._quiet_since = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(min(5.0, self.interval)):
            self._drain()
            if time.monotonic() - self._quiet_since >= self.interval:
                self._say(f"running, {format_seconds(time.monotonic() - self._start)} elapsed")
                self._quiet_since = time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._drain()
        shutil.rmtree(self._dir, ignore_errors=True)


def _files_from_here(value: Any) -> Any:
    """A parameter value with every relative dataset file that exists in the working directory made absolute: the
    chapter's kernel runs in the repository, but ``-p families=mine.csv`` means the caller's ``mine.csv``."""
    from .datasets import is_dataset_file

    if isinstance(value, str) and is_dataset_file(value) and not Path(value).expanduser().is_absolute():
        here = Path.cwd() / value
        return str(here.resolve()) if here.exists() else value
    if isinstance(value, list):
        return [_files_from_here(v) for v in value]
    if isinstance(value, dict):
        return {_files_from_here(k): v for k, v in value.items()}
    return value


def run_chapter(
    chapter: str,
    variant: str = "default",
    overrides: Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    *,
    publish: bool = False,
    scheduler: str | None = None,
) -> Path:
    """Execute one chapter with papermill; returns the executed notebook's path.

    ``overrides`` replace single parameters of the variant (e.g. ``{"model": "gemma-3-270m"}``); unknown names
    are refused, since papermill would silently inject them.

    Where things go: ``publish=True`` (the book build only) writes ``book/executed/<chapter>.ipynb`` and the
    published ``book/results/``. Any other run writes ``<output_dir>/<chapter>.ipynb`` and its results to
    ``<output_dir>/results/`` (``output_dir`` defaults to ``data/results/runs``); such a run may not write inside
    ``book/``.

    ``scheduler`` (e.g. ``"local:4"`` or ``"tcp://host:8786"``, see :mod:`sparse_probing.distributed`; None: the
    value of ``$SPARSE_PROBING_SCHEDULER``, if any) is opened once for this run: a ``local:N`` cluster is started in
    this process (:func:`sparse_probing.distributed.serve`) and closed when the run ends, an address is passed on.
    The kernel receives its address in ``$SPARSE_PROBING_SCHEDULER`` and connects once, at its first use: the
    chapter's caching (:func:`sparse_probing.study.cache_for`, in shards) and its probe sweeps
    (:func:`sparse_probing.probes.run_sweep`, in batches) run on the workers; the results are the same. A bad value
    is refused before anything runs.
    """
    chapter = _resolve_chapter(chapter)
    value = scheduler if scheduler is not None else os.environ.get("SPARSE_PROBING_SCHEDULER") or None
    if value is None:
        return _run_chapter(chapter, variant, overrides, output_dir, publish=publish, address=None)
    from .distributed import check_scheduler, serve

    try:
        check_scheduler(value)
    except ValueError as err:
        raise ChapterError(str(err)) from None
    with serve(value) as address:
        return _run_chapter(chapter, variant, overrides, output_dir, publish=publish, address=address)


def _run_chapter(
    chapter: str,
    variant: str,
    overrides: Mapping[str, Any] | None,
    output_dir: str | Path | None,
    *,
    publish: bool,
    address: str | None,
) -> Path:
    """:func:`run_chapter` once its scheduler is open: ``address`` (or None) goes into the kernel's
    ``$SPARSE_PROBING_SCHEDULER``."""
    import papermill as pm

    environment = {} if address is None else {"SPARSE_PROBING_SCHEDULER": address}
    if publish:
        if output_dir is not None:
            raise ChapterError("a published run writes to book/executed; do not pass an output directory with it")
        out_dir, results = EXECUTED_DIR, RESULTS_DIR
    else:
        out_dir = Path(output_dir).expanduser() if output_dir is not None else RUNS_DIR
        book = BOOK_DIR.resolve()
        if out_dir.resolve() == book or book in out_dir.resolve().parents:
            raise ChapterError(
                f"output directory {out_dir} is inside book/, which only the book build writes: pick another "
                "directory, or run `sparse-probing book` to publish"
            )
        results = out_dir / "results"
    params = load_params(chapter, variant)
    known = notebook_parameters(chapter)
    for name in list(params) + list(overrides or {}):
        if name not in known:
            raise ChapterError(f"{chapter} has no parameter {name!r}; its parameters: {', '.join(known)}")
    params.update({name: _files_from_here(value) for name, value in (overrides or {}).items()})
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{chapter}.ipynb"
    tmp = out_dir / f".{chapter}.running.ipynb"
    start = time.perf_counter()
    # the chapter's results files: book/results for the book build, else next to the executed notebook
    environment[RESULTS_ENV] = str(results.resolve())
    watcher = _ProgressWatcher(chapter)
    environment[PROGRESS_ENV] = str(watcher.path)
    previous = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    watcher.start()
    try:
        pm.execute_notebook(
            str(CHAPTERS_DIR / f"{chapter}.ipynb"),
            str(tmp),
            parameters=params,
            kernel_name="python3",
            cwd=str(REPO_ROOT),
            progress_bar=publish or sys.stderr.isatty(),  # the book build always shows which cell it is in
            shutdown_kernel="immediate",
        )
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed run leaves nothing behind; the published notebook is untouched
        raise
    finally:
        watcher.stop()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - start
    nb = for_reading(compact_streams(json.loads(tmp.read_text())))
    nb["metadata"]["sparse_probing"] = {
        "chapter": chapter,
        "variant": variant,
        "parameters": params,
        "source_sha256": source_digest(chapter),
        "commit": git_commit(),
        "seconds": round(seconds, 1),
        "executed": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out)  # a failed run never replaces a good executed copy
    return out


_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<value>.*?)(?P<comment>\s+#.*)?$")


def for_reading(nb: dict[str, Any]) -> dict[str, Any]:
    """Prepare an executed notebook for the book; returns it, changed in place.

    The parameters are shown once: the values papermill injected replace the defaults in the notebook's own
    ``parameters`` cell (keeping each line's comment) and the injected cell is dropped. Every code cell is tagged
    ``hide-input``, so a page reads as narrative, results and the parameters that produced them; the parameters
    cell moves below the chapter's verdict box (the first cell that calls ``verdict_box``, or ``findings_box``), so
    that a page opens with its answer and the run's parameters sit one click away under it; the box's own cell
    shows no code toggle. Applying it again to a prepared notebook changes nothing.
    """
    cells = nb.get("cells", [])
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    params = next((i for i, t in enumerate(tags) if "parameters" in t), None)
    injected = next((i for i, t in enumerate(tags) if "injected-parameters" in t), None)
    if params is not None and injected is not None:
        values: dict[str, str] = {}
        for line in "".join(cells[injected]["source"]).splitlines():
            m = _ASSIGNMENT.match(line)
            if m:
                values[m["name"]] = m["value"]
        lines = []
        for line in "".join(cells[params]["source"]).splitlines():
            m = _ASSIGNMENT.match(line)
            if m and m["name"] in values:
                line = f"{m['name']} = {values.pop(m['name'])}{m['comment'] or ''}"
            lines.append(line)
        lines += [f"{name} = {value}" for name, value in values.items()]
        cells[params]["source"] = "\n".join(lines)
        del cells[injected]
    box = next(
        (i for i, c in enumerate(cells) if c.get("cell_type") == "code" and _BOX.search("".join(c.get("source", "")))),
        None,
    )
    if params is not None and box is not None and box > params:
        cells.insert(box, cells.pop(params))
        box -= 1
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        cell_tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if i == box:  # a one-line display call: the box shows without a toggle above it
            cell_tags[:] = [t for t in cell_tags if t != "hide-input"] + ["remove-input"] * (
                "remove-input" not in cell_tags
            )
        elif not {"hide-input", "remove-input", "remove-cell"} & set(cell_tags):
            cell_tags.append("hide-input")
    return nb


_BOX = re.compile(r"\b(verdict_box|findings_box)\(")


def compact_streams(nb: dict[str, Any]) -> dict[str, Any]:
    """Store a notebook's printed output the way a terminal shows it; returns the notebook, changed in place.

    Consecutive ``stdout``/``stderr`` outputs of a cell are merged, and of every line only the text after its
    last carriage return is kept: a progress bar's hundreds of updates become its final state.
    """
    for cell in nb.get("cells", []):
        merged: list[dict[str, Any]] = []
        for out in cell.get("outputs", []):
            if out.get("output_type") != "stream":
                merged.append(out)
                continue
            text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
            last = merged[-1] if merged else None
            if last is not None and last.get("output_type") == "stream" and last["name"] == out["name"]:
                last["text"] += text
            else:
                merged.append({**out, "text": text})
        for out in merged:
            if out.get("output_type") == "stream":
                lines = (line.rstrip("\r").rsplit("\r", 1)[-1] for line in out["text"].split("\n"))
                out["text"] = "\n".join(lines).splitlines(keepends=True)
        if "outputs" in cell:
            cell["outputs"] = merged
    return nb


def stale_chapters(executed_dir: str | Path | None = None) -> list[str]:
    """Chapters whose executed copy is missing or was made from a different version of the source notebook."""
    executed_dir = Path(executed_dir) if executed_dir is not None else EXECUTED_DIR
    stale = []
    for chapter in chapter_names():
        path = executed_dir / f"{chapter}.ipynb"
        if not path.exists():
            stale.append(chapter)
            continue
        meta = json.loads(path.read_text())["metadata"].get("sparse_probing", {})
        if meta.get("source_sha256") != source_digest(chapter):
            stale.append(chapter)
    return stale


def build_site(source_root: str | Path | None = None, warnings_as_errors: bool = True) -> Path:
    """``jupyter-book build`` of a book root (the repository by default); returns ``_build/html``."""
    root = Path(source_root) if source_root is not None else REPO_ROOT
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--keep-going"]
    if warnings_as_errors:
        cmd.append("-W")
    subprocess.run(cmd, check=True)
    return root / "_build" / "html"


def staged_book(target: str | Path, executed: Iterable[Path]) -> Path:
    """A copy of the book sources in ``target`` with the given executed notebooks (for smoke builds in tests)."""
    target = Path(target)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, target / name)
    shutil.copytree(BOOK_DIR, target / "book", ignore=shutil.ignore_patterns("executed"), dirs_exist_ok=True)
    (target / "book" / "executed").mkdir(parents=True, exist_ok=True)
    for nb in executed:
        shutil.copy(nb, target / "book" / "executed" / Path(nb).name)
    return target


def _short_commit(commit: str | None) -> str:
    """The first 12 hex digits of a commit, keeping the ``-dirty`` mark of a run from an uncommitted work tree."""
    commit = str(commit)
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


_LABEL = re.compile(r":name: (claim-[\w-]+)")


def write_glance(results_dir: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Write ``book/glance.md``, the intro's "results at a glance" section, and its headline figure
    ``glance.png`` beside it, from the chapters' results files. A claim links to its box in the executed chapter
    (``executed/`` beside ``out``) when the box carries its label, to the chapter's page otherwise."""
    from sparse_probing.analysis.verdicts import ClaimEvidence, verdict_markdown, verdict_table
    from sparse_probing.plots import claims_figure, png_for_column

    out = Path(out) if out is not None else BOOK_DIR / "glance.md"
    records = load_results(results_dir if results_dir is not None else RESULTS_DIR)
    table = verdict_table(records)  # raises on a malformed claim, naming its chapter
    claims = [ClaimEvidence.from_dict(c) for r in records for c in (r.get("metrics") or {}).get("claims", [])]
    labels = {m for nb in (out.parent / "executed").glob("*.ipynb") for m in _LABEL.findall(nb.read_text())}
    figure = out.with_suffix(".png")
    fig = claims_figure(claims)
    width = None
    if fig is not None:
        data, width = png_for_column(fig)
        figure.write_bytes(data)
    elif figure.exists():
        figure.unlink()  # a figure of claims no longer recorded would contradict the table
    out.write_text(verdict_markdown(table, labels=labels, figure=figure.name if fig is not None else None, width=width))
    return out


def write_provenance(
    executed_dir: str | Path | None = None, results_dir: str | Path | None = None, out: str | Path | None = None
) -> Path:
    """Write the provenance page: one row per executed chapter and one per results file."""
    executed_dir = Path(executed_dir) if executed_dir is not None else EXECUTED_DIR
    out = Path(out) if out is not None else BOOK_DIR / "provenance.md"
    lines = [
        "# Provenance",
        "",
        "Every page of this book was produced by a papermill run of a chapter notebook. This page is generated by",
        "`sparse-probing book` from the metadata of the executed notebooks and from the results files that the",
        "chapters write (`book/results/*.json`: the spec, the metrics, the library versions and the git commit).",
        "",
        "## Executed chapters",
        "",
        "| chapter | variant | commit | run time (s) | executed (UTC) | source up to date |",
        "|---|---|---|---|---|---|",
    ]
    parameters = []
    for path in sorted(executed_dir.glob("[0-9][0-9]_*.ipynb")):
        meta = json.loads(path.read_text())["metadata"].get("sparse_probing", {})
        fresh = (CHAPTERS_DIR / path.name).exists() and meta.get("source_sha256") == source_digest(path.stem)
        executed = str(meta.get("executed", "?")).replace("T", " ").removesuffix("+00:00")
        lines.append(
            f"| {{doc}}`{path.stem} <executed/{path.stem}>` | {meta.get('variant', '?')} "
            f"| `{_short_commit(meta.get('commit'))}` | {meta.get('seconds', '?')} | {executed} "
            f"| {'yes' if fresh else '**no**'} |"
        )
        values = "\n".join(f"{k} = {v!r}" for k, v in meta.get("parameters", {}).items())
        parameters += [f"````{{dropdown}} {path.stem}: parameters of this run", "```python", values, "```", "````", ""]
    lines += ["", "The parameters of each run (the values papermill injected):", "", *parameters]
    lines += [
        "## Results files",
        "",
        "| results | model | dataset versions | torch | transformer-lens | scikit-learn | commit | run time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rec in load_results(results_dir if results_dir is not None else RESULTS_DIR):
        spec, versions = rec.get("spec") or {}, rec.get("versions") or {}
        datasets = spec.get("datasets") or {}
        datasets = "<br>".join(f"`{key}`" for key in datasets.values()) if datasets else "not recorded"
        models = spec.get("model") or ", ".join(spec.get("models") or [])
        runtime = rec.get("runtime_s")
        lines.append(
            f"| {rec['name']} | {models} | {datasets} | {versions.get('torch')} "
            f"| {versions.get('transformer-lens')} | {versions.get('scikit-learn')} | `{_short_commit(rec.get('commit'))}` "
            f"| {'' if runtime is None else f'{runtime:.0f}'} |"
        )
    out.write_text("\n".join(lines) + "\n")
    return out
