"""Scale-out on Dask: the same study on a local cluster or a cluster's workers, with the same code and cache.

Nothing here is needed on one machine: without a scheduler every function below runs in the calling process,
exactly as the rest of the package does. With one, three kinds of work go to Dask workers:

* activation caching: :func:`~sparse_probing.study.cache_for` (every chapter's caching) calls
  :func:`cache_sharded`, which splits one cache entry's forward-pass batches into shards computed on different
  workers, writes each shard atomically into the shared cache directory, and assembles them into the same
  content-keyed entry :func:`~sparse_probing.activations.load_or_compute` writes (the same bytes: every batch holds
  the same documents as in the single-machine run, and the entry is completed by the single-machine code);
* probe sweeps: :func:`~sparse_probing.probes.run_sweep` sends its (feature, layer, method) tasks to the workers in
  batches (:func:`run_batches`; results in the serial order, so the table is the same). Inside a batch, joblib is
  sequential: a scikit-learn call that would parallelise itself (mutual information, k-NN) stays in the task;
* task lists, e.g. a loop over models: :func:`map_tasks` (``fn(item)`` per item, results in item order).

A scheduler is chosen by one plain value, as a chapter parameter or ``--scheduler`` flag would hold it:

========================  ===================================================================================
``None``                  ``$SPARSE_PROBING_SCHEDULER`` if set, else the single machine
``"none"``                the single machine (joblib processes, no Dask)
``"local"``/``"local:N"`` a ``LocalCluster`` of N single-threaded worker processes (N defaults to the cores)
``"tcp://host:8786"``     a running Dask scheduler (``dask scheduler``, or a dask-jobqueue cluster's address)
``"path/to/file.json"``   a scheduler file (``dask scheduler --scheduler-file``, e.g. on a shared filesystem)
========================  ===================================================================================

Two ways to make a scheduler active:

* a block, in a script or notebook::

      from sparse_probing import distributed

      with distributed.scheduler("local:2"):
          acts = study.cache_for("tiny-neox", "natural_language", "smoke")  # shards on the workers
          df = run_sweep(acts_by_layer, labels, split, specs)              # sweep batches on the workers
          rows = distributed.map_tasks(run_one_model, models)              # a task per model

* ``$SPARSE_PROBING_SCHEDULER``, read at the first use (:func:`active_client`): one client per process, opened
  once and reused by every later call until the process exits. ``sparse-probing chapter --scheduler`` and
  ``sparse-probing book --scheduler`` open the scheduler once in the command's own process (:func:`serve`: a
  ``local:N`` cluster is started there) and give its address to the chapter's kernel through this variable, so
  a chapter run (or a book run) uses one cluster for all its caching and sweeps.

Shards are written to ``<cache root>/<key>.shards/`` as ``shard-XXXXX.npz`` (written under a temporary name and
renamed, with a ``.json`` record of its sha256), so a worker killed mid-shard leaves nothing a retry can mistake
for a finished shard; Dask reschedules the killed worker's task. The entry itself is completed under the cache's
lock and renamed into place by the same code as a single-machine run, so concurrent runs on a shared filesystem
(``flock`` works on NFSv4 and Lustre) never see a half-written entry.

Dask task keys name their kind: ``cache-plan-``, ``cache-shard-``, ``cache-assemble-`` (caching), ``sweep-``
(probe sweep batches) and the ``desc`` of :func:`map_tasks`; a Dask dashboard or task stream shows where the work
went.

Run ``python -m sparse_probing.distributed cache --scheduler local:2 --model tiny-neox --dataset natural_language``
to cache one entry from the command line.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import json
import os
import re
import shutil
import sys
import threading
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
    "ArrayRef",
    "ShardPlan",
    "ShardResult",
    "active_client",
    "assemble_shards",
    "cache_sharded",
    "check_scheduler",
    "close_sessions",
    "compute_shard",
    "current_client",
    "map_tasks",
    "plan_shards",
    "run_batches",
    "scheduler",
    "serve",
]

SCHEDULER_ENV = "SPARSE_PROBING_SCHEDULER"
"""Environment variable read by :func:`scheduler` when it is given ``None`` (so a CLI or batch script can select
the scheduler of chapters that pass their ``scheduler`` parameter through unchanged)."""

T = TypeVar("T")
R = TypeVar("R")

_NO_BLOCK = object()
_CLIENT: contextvars.ContextVar[Any] = contextvars.ContextVar("sparse_probing_dask_client", default=_NO_BLOCK)
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
    """The Dask client selected by the innermost :func:`scheduler` block, or None (no block, or a ``"none"``
    block). :func:`active_client` also opens the scheduler that ``$SPARSE_PROBING_SCHEDULER`` names."""
    client = _CLIENT.get()
    return None if client is _NO_BLOCK else client


def _on_worker() -> bool:
    """Whether this code runs inside a Dask worker's task (where work must not be sent to a scheduler again)."""
    module = sys.modules.get("distributed")
    if module is None:
        return False
    try:
        module.get_worker()
    except ValueError:
        return False
    return True


def active_client() -> Any:
    """The Dask client that caching and sweeps use now, or None (the single machine).

    The innermost :func:`scheduler` block decides when one is open (a ``"none"`` block means the single machine).
    Otherwise ``$SPARSE_PROBING_SCHEDULER`` does: the scheduler it names is opened at the first call and the same
    client is returned by every later call in this process (a ``local:N`` cluster is started once, not per call);
    it is closed when the process exits. Inside a worker's task the answer is always None: work that runs on a
    worker stays there.
    """
    client = _CLIENT.get()
    if client is not _NO_BLOCK:
        return client
    value = os.environ.get(SCHEDULER_ENV)
    if not value or _on_worker():
        return None
    kind, _ = _parse(value)
    if kind == "none":
        return None
    return _session(value)


_SESSIONS: dict[str, tuple[Any, contextlib.ExitStack]] = {}
_SESSIONS_LOCK = threading.Lock()


def _open(kind: str, arg: Any, n_workers: int | None, stack: contextlib.ExitStack) -> Any:
    """A client for a parsed scheduler value, with what it started entered into ``stack`` (closed with it)."""
    from distributed import Client, LocalCluster

    if kind == "client":
        return arg
    if kind == "local":
        workers = n_workers or arg or max(1, len(os.sched_getaffinity(0)))
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            )
        )
        return stack.enter_context(Client(cluster, set_as_default=False))
    if kind == "file":
        return stack.enter_context(Client(scheduler_file=arg, set_as_default=False))
    return stack.enter_context(Client(arg, set_as_default=False))


def _announce(client: Any) -> None:
    info = client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    print(f"Dask scheduler {client.scheduler.address}: {len(workers)} workers, {threads} threads", flush=True)


def _session(value: str) -> Any:
    """The process's client for the scheduler ``value`` names, opened once (closed at exit)."""
    with _SESSIONS_LOCK:
        if value not in _SESSIONS:
            kind, arg = _parse(value)
            stack = contextlib.ExitStack()
            try:
                client = _open(kind, arg, None, stack)
            except BaseException:
                stack.close()
                raise
            _SESSIONS[value] = (client, stack)
            if len(_SESSIONS) == 1:
                atexit.register(close_sessions)
            _announce(client)
        return _SESSIONS[value][0]


def close_sessions() -> None:
    """Close the clients (and local clusters) that :func:`active_client` opened from ``$SPARSE_PROBING_SCHEDULER``
    (done at exit; a later call opens a new one)."""
    with _SESSIONS_LOCK:
        sessions = list(_SESSIONS.values())
        _SESSIONS.clear()
    for _, stack in reversed(sessions):
        with contextlib.suppress(Exception):
            stack.close()


@contextlib.contextmanager
def scheduler(value: Any = None, *, n_workers: int | None = None, progress: bool = True) -> Iterator[Any]:
    """Run the enclosed work on the scheduler that ``value`` names; yields the Dask client (None: single machine).

    ``value`` is one plain parameter (see the module docstring): ``None`` (the scheduler
    ``$SPARSE_PROBING_SCHEDULER`` names, the process's shared client of :func:`active_client`, left open on exit;
    the single machine when it is unset), ``"none"``, ``"local"``/``"local:N"``, a Dask address, a scheduler file,
    or an existing ``distributed.Client`` (left open on exit). Inside the block
    :func:`~sparse_probing.study.cache_for`, :func:`~sparse_probing.probes.run_sweep`, :func:`map_tasks` and
    :func:`cache_sharded` use the client, and joblib's default backend is Dask (other code built on
    ``joblib.Parallel`` runs on the workers too). A local cluster and clients opened here are closed on exit.
    ``n_workers`` overrides N of ``"local"``.
    """
    import joblib

    env = os.environ.get(SCHEDULER_ENV)
    if value is None and env and n_workers is None:
        # the process's shared client (opened once, left open); work already on a worker stays there
        value = "none" if _on_worker() or _parse(env)[0] == "none" else _session(env)
    kind, arg = _parse(value)
    if kind == "none":
        token = _CLIENT.set(None)
        try:
            with joblib.parallel_config(backend="loky"):  # joblib's own default, also inside an outer Dask block
                yield None
        finally:
            _CLIENT.reset(token)
        return

    with contextlib.ExitStack() as stack:
        client = _open(kind, arg, n_workers, stack)
        if progress and kind != "client":
            _announce(client)
        stack.enter_context(joblib.parallel_config(backend="dask", client=client))
        token = _CLIENT.set(client)
        try:
            yield client
        finally:
            _CLIENT.reset(token)


@contextlib.contextmanager
def serve(value: str | None) -> Iterator[str | None]:
    """The scheduler of one run of chapters, as an address their kernels can reach; yields that address.

    ``"local"``/``"local:N"`` starts a ``LocalCluster`` of worker processes in this process for the duration of
    the block and yields its ``tcp://`` address (so every chapter of a ``book`` run shares one cluster, and the
    cluster closes when the run ends). A Dask address is yielded as it is, a scheduler file as an absolute path,
    ``"none"`` as ``"none"`` and ``None`` as None (nothing chosen). Nothing else connects here.
    """
    if value is None:
        yield None
        return
    kind, arg = _parse(value)
    if kind == "none":
        yield "none"
    elif kind == "file":
        yield str(Path(arg).resolve())
    elif kind == "address":
        yield arg
    elif kind == "client":
        yield arg.scheduler.address
    else:
        from distributed import LocalCluster

        workers = arg or max(1, len(os.sched_getaffinity(0)))
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster:
            print(f"Dask scheduler {cluster.scheduler_address}: {workers} local workers", flush=True)
            yield cluster.scheduler_address


def _client(client: Any) -> Any:
    return client if client is not None else active_client()


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


@dataclass(frozen=True)
class ArrayRef:
    """A read-only array stored in a file of the shared activation cache, sent to workers by name: each worker
    maps the file itself (and reads only the rows a task uses) instead of receiving the array's bytes."""

    path: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    order: str

    def open(self) -> np.ndarray:
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape, offset=self.offset, order=self.order)


SHARE_BYTES = 1 << 18
"""Array arguments of :func:`run_batches` from this size on are sent once (by file name or scattered), not with
every batch."""


def _by_reference(x: np.ndarray) -> ArrayRef | None:
    """An :class:`ArrayRef` for a whole memory-mapped file inside the cache root (which the workers share), else
    None."""
    import mmap

    if not isinstance(x, np.memmap) or not isinstance(getattr(x, "base", None), mmap.mmap) or not x.filename:
        return None  # a slice or a copy of a mapping has no file of its own
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        return None
    path = os.path.realpath(x.filename)
    if not path.startswith(os.path.realpath(cache_root()) + os.sep):
        return None
    order = "C" if x.flags.c_contiguous else "F"
    return ArrayRef(path, x.dtype.str, tuple(int(n) for n in x.shape), int(x.offset), order)


def _call_batch(fn: Callable[..., R], calls: list[tuple]) -> list[R]:
    """``[fn(*args) for args in calls]`` on a worker, with array references opened and joblib sequential (a
    scikit-learn call that would start its own parallel jobs stays inside this task)."""
    import joblib

    opened: dict[ArrayRef, np.ndarray] = {}

    def arg(a: Any) -> Any:
        if isinstance(a, ArrayRef):
            if a not in opened:
                opened[a] = a.open()
            return opened[a]
        return a

    with joblib.parallel_config(backend="sequential"):
        return [fn(*(arg(a) for a in args)) for args in calls]


def run_batches(
    fn: Callable[..., R],
    calls: Sequence[tuple],
    *,
    client: Any = None,
    kind: str = "batch",
    desc: str = "tasks",
    progress: bool = True,
    batches_per_thread: int = 4,
    retries: int = 2,
) -> list[R]:
    """``[fn(*args) for args in calls]`` as batches of Dask tasks on the workers; results in call order.

    ``fn`` must be importable by the workers (a module-level function). Array arguments of
    :data:`SHARE_BYTES` or more are sent once, not with every batch: a whole memory-mapped file of the shared cache
    by its name (:class:`ArrayRef`), any other array scattered to the workers. Calls whose largest such array is the
    same are batched together (a batch needs one of them, e.g. one layer's activations), about ``batches_per_thread``
    batches per worker thread in all; each batch is one task keyed ``<kind>-<tag>-<i>`` that runs its calls in
    order with joblib sequential. A batch that raises is retried ``retries`` times, then its error is raised
    here. Without a client (none passed, none active) the calls run here, in order.
    """
    calls = [tuple(c) for c in calls]
    client = _client(client)
    if client is None:
        return [fn(*args) for args in tqdm(calls, desc=desc, unit="task", disable=not progress)]
    if not calls:
        return []
    shared: dict[int, Any] = {}  # id of an array argument -> its reference or future

    def share(a: Any) -> Any:
        if not isinstance(a, np.ndarray) or a.nbytes < SHARE_BYTES:
            return a
        if id(a) not in shared:
            ref = _by_reference(a)
            shared[id(a)] = ref if ref is not None else client.scatter(np.asarray(a), hash=False, broadcast=False)
        return shared[id(a)]

    prepared = [tuple(share(a) for a in args) for args in calls]
    groups: dict[int | None, list[int]] = {}  # by the largest shared array of the call (e.g. one layer)
    for i, args in enumerate(calls):
        arrays = [a for a in args if isinstance(a, np.ndarray) and id(a) in shared]
        key = id(max(arrays, key=lambda a: a.nbytes)) if arrays else None
        groups.setdefault(key, []).append(i)
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info(n_workers=-1).get("workers", {}).values())
    size = max(1, -(-len(calls) // max(1, batches_per_thread * max(1, threads))))
    batches = [idx[j : j + size] for idx in groups.values() for j in range(0, len(idx), size)]
    tag = uuid.uuid4().hex[:8]
    futures = [
        client.submit(
            _call_batch, fn, [prepared[i] for i in batch], pure=False, retries=retries, key=f"{kind}-{tag}-{b}"
        )
        for b, batch in enumerate(batches)
    ]
    from distributed import as_completed

    size_of = {f.key: len(batch) for f, batch in zip(futures, batches, strict=True)}
    bar = tqdm(total=len(calls), desc=desc, unit="task", disable=not progress)
    try:
        for future in as_completed(futures):
            if future.status == "error":
                try:
                    future.result()
                finally:
                    client.cancel([f for f in futures if f is not future])
            bar.update(size_of[future.key])
    finally:
        bar.close()
    out: list[Any] = [None] * len(calls)
    for batch, results in zip(batches, client.gather(futures), strict=True):
        for i, r in zip(batch, results, strict=True):
            out[i] = r
    return out


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


def _entry_exists(spec: ActivationSpec, dataset: ProbingDataset | None, root: str) -> bool:
    """Whether the entry of ``spec`` is already in the cache, found by its key without loading the model."""
    from .activations import cache_key
    from .datasets import load_dataset
    from .models import fingerprint

    try:
        data = dataset if dataset is not None else load_dataset(spec.dataset, spec.variant)
        if spec.n_documents is not None:
            data = data.subset(spec.n_documents)
        return inside(root, cache_key(spec, data, fingerprint(spec.model_spec))).is_dir()
    except Exception:  # anything unusual is left to the workers, which report it
        return False


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
    if _entry_exists(spec, dataset, root):  # a finished entry is read here: no worker loads the model for it
        return load_or_compute(spec, dataset=dataset, root=root)
    n = n_shards if n_shards is not None else 4 * _n_workers(client)
    tag = uuid.uuid4().hex[:8]
    # the plan is scattered once, so that a dataset passed in does not travel with every shard task (a registered
    # dataset does not travel at all: each worker loads it)
    plan = client.submit(
        plan_shards, spec, n, dataset=dataset, root=root, pure=False, retries=retries, key=f"cache-plan-{tag}"
    ).result()
    plan_f = client.scatter(plan, hash=False)
    if not plan.complete:
        futures = [
            client.submit(
                compute_shard, plan_f, i, pure=False, retries=retries, key=f"cache-shard-{plan.key}-{i}-{tag}"
            )
            for i in range(plan.n_shards)
        ]
        results = _gather_with_progress(client, futures, f"caching {spec.model} x {spec.dataset}", progress)
    else:
        results = []
    acts = client.submit(
        assemble_shards, plan_f, results, pure=False, retries=retries, key=f"cache-assemble-{plan.key}-{tag}"
    ).result()
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
    p.add_argument("--site", default="mlp.hook_post", help="hook inside each block (default mlp.hook_post)")
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
            model=args.model, dataset=args.dataset, variant=args.variant, layers=layers, site=args.site,
            reduce=args.reduce, max_length=args.max_length, n_documents=args.n_documents, batch_size=args.batch_size,
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
