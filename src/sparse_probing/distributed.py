"""Scale-out on Dask: the same study on a local cluster or a cluster's workers, with the same code and cache.

Nothing here is needed on one machine: without a scheduler every function below runs in the calling process,
exactly as the rest of the package does. With one, three kinds of work go to Dask workers:

* probe sweeps: :func:`~sparse_probing.probes.run_sweep` dispatches its (feature, layer, method) tasks with joblib;
  inside :func:`scheduler` joblib's Dask backend sends them to the workers (results in the same order);
* task lists, e.g. a chapter's loop over models: :func:`map_tasks` (``fn(item)`` per item, results in item order);
* activation caching: :func:`cache_sharded` splits one cache entry's forward-pass batches into shards computed on
  different workers, writes each shard atomically into the shared cache directory, and assembles them into the
  same content-keyed entry :func:`~sparse_probing.activations.load_or_compute` writes (the same bytes: every batch
  holds the same documents as in the single-machine run, and the entry is completed by the single-machine code).

A scheduler is chosen by one plain value, as a chapter parameter or ``--scheduler`` flag would hold it:

========================  ===================================================================================
``None``                  ``$SPARSE_PROBING_SCHEDULER`` if set, else the single machine
``"none"``                the single machine (joblib processes, no Dask)
``"local"``/``"local:N"`` a ``LocalCluster`` of N single-threaded worker processes (N defaults to the cores)
``"tcp://host:8786"``     a running Dask scheduler (``dask scheduler``, or a dask-jobqueue cluster's address)
``"path/to/file.json"``   a scheduler file (``dask scheduler --scheduler-file``, e.g. on a shared filesystem)
========================  ===================================================================================

::

    from sparse_probing import distributed

    with distributed.scheduler("local:2"):
        acts = distributed.cache_sharded(spec)             # shards on the workers, one entry on disk
        df = run_sweep(acts_by_layer, labels, split, specs)  # joblib tasks on the workers
        rows = distributed.map_tasks(run_one_model, models)  # a task per model

Shards are written to ``<cache root>/<key>.shards/`` as ``shard-XXXXX.npz`` (written under a temporary name and
renamed, with a ``.json`` record of its sha256), so a worker killed mid-shard leaves nothing a retry can mistake
for a finished shard; Dask reschedules the killed worker's task. The entry itself is completed under the cache's
lock and renamed into place by the same code as a single-machine run, so concurrent runs on a shared filesystem
(``flock`` works on NFSv4 and Lustre) never see a half-written entry.

Run ``python -m sparse_probing.distributed cache --scheduler local:2 --model tiny-neox --dataset natural_language``
to cache one entry from the command line.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ._progress import tqdm
from .activations import (
    ActivationSpec,
    CachedActivations,
    EntryPlan,
    cache_root,
    compute_rows,
    entry_plan,
    load_or_compute,
    write_rows,
)
from .datasets.base import ProbingDataset
from .models import LoadedModel, ModelSpec, load_model
from .paths import file_sha256, inside, open_new

__all__ = [
    "SCHEDULER_ENV",
    "WORKER_THREADS_ENV",
    "ShardPlan",
    "ShardResult",
    "assemble_shards",
    "cache_sharded",
    "check_scheduler",
    "compute_shard",
    "current_client",
    "map_tasks",
    "plan_shards",
    "scheduler",
]

SCHEDULER_ENV = "SPARSE_PROBING_SCHEDULER"
"""Environment variable read by :func:`scheduler` when it is given ``None`` (so a CLI or batch script can select
the scheduler of chapters that pass their ``scheduler`` parameter through unchanged)."""

T = TypeVar("T")
R = TypeVar("R")

_CLIENT: contextvars.ContextVar[Any] = contextvars.ContextVar("sparse_probing_dask_client", default=None)
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$|^[A-Za-z0-9_.-]+:\d+$")


# ---------------------------------------------------------------------------------------------- scheduler
def _parse(value: Any) -> tuple[str, Any]:
    """(kind, argument) of a scheduler value; ValueError with what is accepted otherwise."""
    if value is None:
        value = os.environ.get(SCHEDULER_ENV) or "none"
    if hasattr(value, "submit") and hasattr(value, "scheduler_info"):  # a distributed.Client
        return "client", value
    if not isinstance(value, str):
        raise ValueError(
            f"scheduler must be None, 'none', 'local', 'local:N', a Dask address or a scheduler file, got {value!r}"
        )
    text = value.strip()
    if text.lower() in ("", "none", "serial"):
        return "none", None
    if text.lower() == "local":
        return "local", None
    m = re.fullmatch(r"local:(\d+)", text, flags=re.IGNORECASE)
    if m:
        if int(m.group(1)) < 1:
            raise ValueError(f"scheduler {value!r} asks for no workers: use 'local:N' with N >= 1")
        return "local", int(m.group(1))
    if text.endswith(".json"):
        if not Path(text).is_file():
            raise ValueError(f"scheduler file {text!r} does not exist: start the scheduler with --scheduler-file first")
        return "file", text
    if _ADDRESS.match(text):
        return "address", text
    raise ValueError(
        f"scheduler {value!r} is not understood: use None/'none' (one machine), 'local' or 'local:N' (a local "
        "cluster), a Dask address such as 'tcp://10.0.0.5:8786', or a scheduler file ending in .json"
    )


def check_scheduler(value: str) -> str:
    """``value`` if :func:`scheduler` accepts it as a scheduler name, else ValueError with what is accepted.

    Starts and connects to nothing: a CLI can refuse a bad ``--scheduler`` before any work begins.
    """
    if not isinstance(value, str):
        raise ValueError(f"a scheduler name is a string, got {value!r}")
    _parse(value)
    return value


def current_client() -> Any:
    """The Dask client selected by the innermost :func:`scheduler` block, or None (single machine)."""
    return _CLIENT.get()


@contextlib.contextmanager
def scheduler(value: Any = None, *, n_workers: int | None = None, progress: bool = True) -> Iterator[Any]:
    """Run the enclosed work on the scheduler that ``value`` names; yields the Dask client (None: single machine).

    ``value`` is one plain parameter (see the module docstring): ``None`` (``$SPARSE_PROBING_SCHEDULER`` or the
    single machine), ``"none"``, ``"local"``/``"local:N"``, a Dask address, a scheduler file, or an existing
    ``distributed.Client`` (left open on exit). Inside the block joblib's default backend is Dask, so
    :func:`~sparse_probing.probes.run_sweep` and anything else built on ``joblib.Parallel`` runs on the workers,
    and :func:`map_tasks` / :func:`cache_sharded` use the client. A local cluster and clients opened here are
    closed on exit. ``n_workers`` overrides N of ``"local"``.
    """
    import joblib

    kind, arg = _parse(value)
    if kind == "none":
        token = _CLIENT.set(None)
        try:
            with joblib.parallel_config(backend="loky"):  # joblib's own default, also inside an outer Dask block
                yield None
        finally:
            _CLIENT.reset(token)
        return

    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if kind == "client":
            client = arg
        elif kind == "local":
            workers = n_workers or arg or max(1, len(os.sched_getaffinity(0)))
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=40,
                )
            )  # fmt: skip
            client = stack.enter_context(Client(cluster))
        elif kind == "file":
            client = stack.enter_context(Client(scheduler_file=arg))
        else:
            client = stack.enter_context(Client(arg))
        if progress:
            info = client.scheduler_info(n_workers=-1)
            workers = info.get("workers", {})
            threads = sum(w.get("nthreads", 0) for w in workers.values())
            print(f"Dask scheduler {client.scheduler.address}: {len(workers)} workers, {threads} threads", flush=True)
        stack.enter_context(joblib.parallel_config(backend="dask"))
        token = _CLIENT.set(client)
        try:
            yield client
        finally:
            _CLIENT.reset(token)


def _client(client: Any) -> Any:
    return client if client is not None else current_client()


def _n_workers(client: Any) -> int:
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))


# ---------------------------------------------------------------------------------------------- task lists
def _gather_with_progress(client: Any, futures: list[Any], desc: str, progress: bool) -> list[Any]:
    """Results of ``futures`` in their order, with a done/total bar; the first failure cancels the rest."""
    from distributed import as_completed

    bar = tqdm(total=len(futures), desc=desc, unit="task", disable=not progress)
    try:
        for future in as_completed(futures):
            if future.status == "error":
                try:
                    future.result()  # raises the task's exception, with its traceback
                finally:
                    client.cancel([f for f in futures if f is not future])
            bar.update(1)
    finally:
        bar.close()
    return client.gather(futures)


def map_tasks(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    desc: str = "tasks",
    client: Any = None,
    progress: bool = True,
    retries: int = 0,
) -> list[R]:
    """``[fn(item) for item in items]``, as one Dask task per item when a scheduler is active.

    Without a client the items run here, in order, with a progress bar. With one (``client`` or the enclosing
    :func:`scheduler`), every item is a task (``retries`` extra attempts if it raises; a task on a worker that dies
    is rescheduled by Dask); the bar shows tasks done / total and results come back in item order. ``fn`` and the
    items must be picklable (a module-level function, plain data).
    """
    items = list(items)
    client = _client(client)
    if client is None:
        return [fn(item) for item in tqdm(items, desc=desc, unit="task", disable=not progress)]
    futures = client.map(fn, items, pure=False, retries=retries, key=[f"{desc}-{uuid.uuid4().hex}" for _ in items])
    return _gather_with_progress(client, futures, desc, progress)


# ---------------------------------------------------------------------------------------------- sharded cache
@dataclass(frozen=True)
class ShardPlan:
    """How one cache entry is split: the forward-pass batches of each shard, and where shards are written."""

    spec: ActivationSpec
    dataset: ProbingDataset | None
    """The dataset as :func:`~sparse_probing.activations.load_or_compute` receives it (before ``n_documents``);
    None: the registered dataset of the spec, which each worker loads from its data directory."""
    root: str
    """The cache root shared by the workers."""
    key: str
    """The entry's content key."""
    shards: tuple[tuple[tuple[int, ...], ...], ...]
    """Per shard, its batches (document indices), each batch exactly as the single-machine run forms it."""
    complete: bool = False
    """The entry already exists: nothing to compute."""

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def shard_dir(self) -> Path:
        return inside(self.root, f"{self.key}.shards")

    def shard_path(self, index: int) -> Path:
        return self.shard_dir / f"shard-{index:05d}.npz"


@dataclass(frozen=True)
class ShardResult:
    """A finished shard: its file, the sha256 of that file, and how many example rows it holds."""

    index: int
    path: str
    sha256: str
    n_rows: int
    seconds: float
    """Compute time of the shard (0 when an earlier run had already written it)."""


WORKER_THREADS_ENV = "SPARSE_PROBING_WORKER_THREADS"
"""Torch threads of a worker that computes activations (Dask's nanny sets ``OMP_NUM_THREADS=1`` in workers)."""


@functools.lru_cache(maxsize=1)
def _worker_model(spec: ModelSpec) -> LoadedModel:
    """The model of a spec, loaded once per worker process (one model at a time)."""
    threads = os.environ.get(WORKER_THREADS_ENV)
    if threads:
        import torch

        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"{WORKER_THREADS_ENV} must be a positive integer (torch threads), got {threads!r}")
        torch.set_num_threads(int(threads))
    return load_model(spec)


_ENTRY_PLANS: dict[tuple, EntryPlan] = {}


def _entry_plan(spec: ActivationSpec, dataset: ProbingDataset | None, model: LoadedModel, root: str) -> EntryPlan:
    """The entry plan (tokenized dataset and batches), memoized per process for the last (spec, dataset, root)."""
    memo = (spec, None if dataset is None else dataset.key, root, id(model))
    if memo not in _ENTRY_PLANS:
        _ENTRY_PLANS.clear()
        _ENTRY_PLANS[memo] = entry_plan(spec, model, dataset=dataset, root=root)
    return _ENTRY_PLANS[memo]


def _model_for(spec: ActivationSpec, model: LoadedModel | None) -> LoadedModel:
    if model is not None:
        if model.spec.name != spec.model:
            raise ValueError(f"model {model.spec.name!r} passed for a spec of model {spec.model!r}")
        return model
    return _worker_model(spec.model_spec)


def plan_shards(
    spec: ActivationSpec,
    n_shards: int,
    *,
    dataset: ProbingDataset | None = None,
    root: str | Path | None = None,
    model: LoadedModel | None = None,
) -> ShardPlan:
    """Split the forward-pass batches of ``spec``'s entry into ``n_shards`` shards (round robin, so each shard gets
    long and short documents alike). Loads the model (once per process) for its tokenizer. ``dataset=None`` means
    the spec's registered dataset, loaded here and by each worker."""
    if not isinstance(n_shards, int) or n_shards < 1:
        raise ValueError(f"n_shards must be a positive integer, got {n_shards!r}")
    root = str(Path(root) if root is not None else cache_root())
    plan = _entry_plan(spec, dataset, _model_for(spec, model), root)
    if plan.complete:
        return ShardPlan(spec=spec, dataset=dataset, root=root, key=plan.key, shards=(), complete=True)
    batches = [tuple(int(x) for x in b) for b in plan.batches]
    n = min(n_shards, len(batches))
    shards = tuple(tuple(batches[i::n]) for i in range(n))
    return ShardPlan(spec=spec, dataset=dataset, root=root, key=plan.key, shards=shards)


def _record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _finished(plan: ShardPlan, index: int) -> ShardResult | None:
    """The shard's result if an earlier attempt finished it (file and record present, checksum matching)."""
    path, record_path = plan.shard_path(index), _record_path(plan.shard_path(index))
    try:
        record = json.loads(record_path.read_text())
        if record["batches"] == [list(b) for b in plan.shards[index]] and file_sha256(path) == record["sha256"]:
            return ShardResult(index, str(path), record["sha256"], int(record["n_rows"]), 0.0)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` through a uniquely named temporary sibling, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open_new(tmp) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def compute_shard(plan: ShardPlan, index: int, *, model: LoadedModel | None = None) -> ShardResult:
    """Compute shard ``index`` of ``plan`` and write it atomically; a shard finished earlier is not recomputed.

    The file holds ``rows`` (example indices) and one float16 array per hook (``h0``, ``h1``, ... in layer order),
    and a ``.json`` record (its sha256, batches, row count) is written after it; both are renamed into place, so a
    killed attempt leaves only a temporary file that the retry ignores.
    """
    if not 0 <= index < plan.n_shards:
        raise ValueError(f"shard {index} does not exist: the plan has shards 0..{plan.n_shards - 1}")
    done = _finished(plan, index)
    if done is not None:
        return done
    start = time.perf_counter()
    loaded = _model_for(plan.spec, model)
    entry = _entry_plan(plan.spec, plan.dataset, loaded, plan.root)
    if entry.key != plan.key:
        raise ValueError(f"shard {index} was planned for entry {plan.key} but this worker computes {entry.key}: "
                         "do the workers run the same package versions and model weights as the client?")  # fmt: skip
    rows, arrays = compute_rows(entry, [np.asarray(b, dtype=np.int64) for b in plan.shards[index]])
    path = plan.shard_path(index)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(
        path, lambda fh: np.savez(fh, rows=rows, **{f"h{j}": arrays[h] for j, h in enumerate(entry.hooks)})
    )
    digest = file_sha256(path)
    record = {"sha256": digest, "n_rows": len(rows), "batches": [list(b) for b in plan.shards[index]]}
    _write_atomically(_record_path(path), lambda fh: fh.write(json.dumps(record).encode()))
    return ShardResult(index, str(path), digest, len(rows), time.perf_counter() - start)


def assemble_shards(
    plan: ShardPlan, results: Sequence[ShardResult], *, model: LoadedModel | None = None, keep_shards: bool = False
) -> CachedActivations:
    """Write the complete entry from the shards (checked against their sha256) and return it.

    The rows go into the entry's ``.partial`` directory, which the single-machine code then completes (examples,
    ``meta.json``, checksums) and renames into place under the cache lock. The shard files are removed afterwards
    unless ``keep_shards``.
    """
    loaded = _model_for(plan.spec, model)
    entry = _entry_plan(plan.spec, plan.dataset, loaded, plan.root)
    if plan.complete or entry.complete:
        return load_or_compute(plan.spec, model=loaded, dataset=entry.source, root=plan.root)
    by_index = {r.index: r for r in results}
    missing = sorted(set(range(plan.n_shards)) - set(by_index))
    if missing:
        raise ValueError(f"shards {missing} of entry {plan.key} have no result: compute them before assembling")
    rows_parts, arrays_parts = [], {h: [] for h in entry.hooks}
    for i in range(plan.n_shards):
        path = Path(by_index[i].path)
        if not path.is_file() or file_sha256(path) != by_index[i].sha256:
            raise ValueError(f"shard file {path} is missing or does not match its sha256: compute shard {i} again")
        with np.load(path) as z:
            rows_parts.append(z["rows"])
            for j, h in enumerate(entry.hooks):
                arrays_parts[h].append(z[f"h{j}"])
    rows = np.concatenate(rows_parts)
    arrays = {h: np.concatenate(parts) for h, parts in arrays_parts.items()}
    acts = write_rows(entry, rows, arrays)
    if not keep_shards:
        shutil.rmtree(plan.shard_dir, ignore_errors=True)
    return acts


def cache_sharded(
    spec: ActivationSpec,
    *,
    n_shards: int | None = None,
    dataset: ProbingDataset | None = None,
    root: str | Path | None = None,
    client: Any = None,
    progress: bool = True,
    retries: int = 2,
) -> CachedActivations:
    """The cache entry of ``spec``, its batches computed as shards on the Dask workers.

    Without a client (none passed, no enclosing :func:`scheduler`) this is
    :func:`~sparse_probing.activations.load_or_compute`. With one: a worker plans the shards (``n_shards``, default
    4 per worker, never more than the number of batches), the shards run as tasks (``retries`` extra attempts on an
    error; a killed worker's task is rescheduled; a shard finished by an earlier, interrupted run is reused), then
    one worker assembles the entry. The result has the same key and the same bytes as the single-machine entry.
    The cache root must be a filesystem every worker sees at the same path.
    """
    if not isinstance(spec, ActivationSpec):
        raise TypeError(f"spec must be an ActivationSpec, got {type(spec).__name__}")
    client = _client(client)
    root = str(Path(root) if root is not None else cache_root())
    if client is None:
        return load_or_compute(spec, dataset=dataset, root=root)
    n = n_shards if n_shards is not None else 4 * _n_workers(client)
    # the plan is scattered once, so that a dataset passed in does not travel with every shard task (a registered
    # dataset does not travel at all: each worker loads it)
    plan = client.submit(plan_shards, spec, n, dataset=dataset, root=root, pure=False, retries=retries).result()
    plan_f = client.scatter(plan, hash=False)
    if not plan.complete:
        tag = uuid.uuid4().hex[:8]
        futures = [
            client.submit(compute_shard, plan_f, i, pure=False, retries=retries, key=f"shard-{plan.key}-{i}-{tag}")
            for i in range(plan.n_shards)
        ]
        results = _gather_with_progress(client, futures, f"caching {spec.model} x {spec.dataset}", progress)
    else:
        results = []
    acts = client.submit(assemble_shards, plan_f, results, pure=False, retries=retries).result()
    return replace(acts, _arrays={})


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m sparse_probing.distributed cache ...``: cache one entry on a scheduler. Errors are one line on
    stderr (exit 2: bad input, 1: failure), as for ``sparse-probing``; ``--debug`` shows the traceback."""
    from .cli import _one_line, _Parser, _usage_errors

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = _Parser(prog="python -m sparse_probing.distributed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cache", help="compute one activation cache entry as shards on a Dask scheduler")
    p.add_argument("--scheduler", default=None, help="none, local, local:N, a Dask address or a scheduler file")
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--variant", default="default")
    p.add_argument("--layers", default=None, help="comma-separated layer indices (default: all)")
    p.add_argument("--reduce", choices=["mean", "max", "last"], default=None)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--n-documents", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n-shards", type=int, default=None)
    args = parser.parse_args([a for a in argv if a != "--debug"])
    try:
        layers = None if args.layers in (None, "all") else tuple(int(x) for x in args.layers.split(","))
    except ValueError:
        parser.error(f"--layers must be comma-separated integers or 'all', got {args.layers!r}")
    start = time.perf_counter()
    try:
        spec = ActivationSpec(
            model=args.model, dataset=args.dataset, variant=args.variant, layers=layers, reduce=args.reduce,
            max_length=args.max_length, n_documents=args.n_documents, batch_size=args.batch_size,
        )  # fmt: skip
        with scheduler(args.scheduler):
            acts = cache_sharded(spec, n_shards=args.n_shards)
    except Exception as err:
        if debug:
            raise
        code = 2 if isinstance(err, _usage_errors()) else 1
        message = _one_line(err) if code == 2 else f"{type(err).__name__}: {_one_line(err)}"
        print(f"{parser.prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return code
    print(f"{acts}\n  at {acts.path}\n  ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
