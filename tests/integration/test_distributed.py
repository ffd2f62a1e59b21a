"""Dask scale-out on a 2-worker LocalCluster: sharded caching, sweeps and task lists equal their serial runs."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from conftest import make_toy_dataset
from distributed import get_task_stream
from joblib.parallel import get_active_backend

from sparse_probing import distributed
from sparse_probing.activations import ActivationSpec, load_or_compute
from sparse_probing.probes import ProbeSpec, run_sweep
from sparse_probing.probes.synthetic import make_planted
from sparse_probing.splits import grouped_split

SPEC = ActivationSpec(model="tiny-neox", dataset="toy", variant="smoke", layers=(0, 1), max_length=48, batch_size=4)

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def dataset():
    return make_toy_dataset(n_docs=24)


def _files(entry: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(entry.iterdir())}


@pytest.fixture(scope="module")
def serial_entry(tiny_model, dataset, tmp_path_factory):
    return load_or_compute(SPEC, model=tiny_model, dataset=dataset, root=tmp_path_factory.mktemp("serial")).path


def test_sharded_cache_equals_serial_bytes(client, dataset, serial_entry, tmp_path):
    with distributed.scheduler(client) as c:
        assert c is client and distributed.current_client() is client
        acts = distributed.cache_sharded(SPEC, dataset=dataset, root=tmp_path, n_shards=3, progress=False)
    assert distributed.current_client() is None
    assert acts.path.name == serial_entry.name  # the same content key
    assert _files(acts.path) == _files(serial_entry)  # arrays, examples.json, meta.json: byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == [serial_entry.name, f"{serial_entry.name}.lock"]
    # a second call finds the complete entry and computes nothing
    with distributed.scheduler(client):
        again = distributed.cache_sharded(SPEC, dataset=dataset, root=tmp_path, progress=False)
    assert again.path == acts.path and _files(again.path) == _files(serial_entry)


def _shard_killed_once(plan: distributed.ShardPlan, index: int, marker: str) -> distributed.ShardResult:
    """Shard 0's first attempt leaves a half-written temporary file and a truncated shard, then dies (SIGKILL)."""
    if index == 0 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        plan.shard_dir.mkdir(parents=True, exist_ok=True)
        (plan.shard_dir / f".{plan.shard_path(0).name}.dead.tmp").write_bytes(b"\x93NUMPY half")
        plan.shard_path(0).write_bytes(b"PK\x03\x04 truncated")
        os.kill(os.getpid(), signal.SIGKILL)
    return distributed.compute_shard(plan, index)


def test_killed_worker_is_retried_without_corrupting_the_entry(client, tiny_model, tmp_path):
    # a registered dataset: the workers load it themselves (the plan carries no documents)
    spec = ActivationSpec(model="tiny-neox", dataset="natural_language", variant="smoke", n_documents=16,
                          layers=(1,), max_length=48, batch_size=4)  # fmt: skip
    serial_entry = load_or_compute(spec, model=tiny_model, root=tmp_path / "serial").path
    marker = tmp_path / "killed"
    root = tmp_path / "cache"
    plan = client.submit(distributed.plan_shards, spec, 2, root=str(root), pure=False).result()
    assert plan.n_shards == 2 and not plan.complete and plan.dataset is None
    futures = [client.submit(_shard_killed_once, plan, i, str(marker), pure=False) for i in range(plan.n_shards)]
    results = client.gather(futures)
    assert marker.exists()  # the first attempt did die
    killed_pid = int(marker.read_text())
    assert killed_pid not in client.run(os.getpid).values()
    assert [r.index for r in results] == [0, 1] and all(r.seconds > 0 for r in results)
    acts = client.submit(distributed.assemble_shards, plan, results, pure=False).result()
    assert _files(acts.path) == _files(serial_entry)
    assert not plan.shard_dir.exists()


def test_finished_shards_are_reused_and_bad_shards_refused(client, dataset, tiny_model, tmp_path):
    plan = distributed.plan_shards(SPEC, 3, dataset=dataset, root=tmp_path, model=tiny_model)
    first = distributed.compute_shard(plan, 1, model=tiny_model)
    assert distributed.compute_shard(plan, 1, model=tiny_model).seconds == 0.0  # reused, not recomputed
    results = [distributed.compute_shard(plan, i, model=tiny_model) for i in (0, 2)] + [first]
    Path(first.path).write_bytes(Path(first.path).read_bytes()[:-8])
    with pytest.raises(ValueError, match="does not match its sha256"):
        distributed.assemble_shards(plan, results, model=tiny_model)
    with pytest.raises(ValueError, match=r"shards \[2\]"):
        distributed.assemble_shards(plan, [*results[:1], first], model=tiny_model)
    with pytest.raises(ValueError, match="does not exist"):
        distributed.compute_shard(plan, 3, model=tiny_model)


def test_sweep_on_dask_equals_serial(client):
    a = make_planted(n=300, d=24, effects=(3.0, 1.5), random_state=5)
    activations = {0: a.X, 1: np.ascontiguousarray(a.X[:, ::-1])}
    labels = {"feat": a.y}
    split = grouped_split(a.groups, a.y, random_state=0)
    specs = [ProbeSpec("mean_diff", ks=(1, 3)), ProbeSpec("telescopic", ks=(1, 3), params={"n_start": 8})]
    serial = run_sweep(activations, labels, split, specs, progress=False)
    # joblib sizes its Dask dispatch from the live workers' threads: wait until the worker that an earlier test
    # killed is back, or a lone one-thread worker makes joblib run the sweep in this process
    client.wait_for_workers(2, timeout=120)
    with distributed.scheduler(client), get_task_stream(client) as stream:
        on_dask = run_sweep(activations, labels, split, specs, progress=False)
        assert type(get_active_backend()[0]).__name__ == "DaskDistributedBackend"
        with distributed.scheduler("none"):  # back to one machine inside a Dask block
            assert distributed.current_client() is None
            assert type(get_active_backend()[0]).__name__ == "LokyBackend"
    timing = [c for c in serial.columns if c.endswith("_time") or c.startswith("osp_wall")]
    pd.testing.assert_frame_equal(serial.drop(columns=timing), on_dask.drop(columns=timing))
    assert len(stream.data) >= 1  # the tasks ran on the workers (joblib may batch several per Dask task)


def _square_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise RuntimeError("three is not allowed")
    return x


def test_map_tasks_serial_and_on_dask(client):
    serial = distributed.map_tasks(_square_pid, range(6), progress=False)
    assert [v for v, _ in serial] == [0, 1, 4, 9, 16, 25] and {p for _, p in serial} == {os.getpid()}
    with distributed.scheduler(client):
        on_dask = distributed.map_tasks(_square_pid, range(6), progress=False)
        with pytest.raises(RuntimeError, match="three is not allowed"):
            distributed.map_tasks(_fail_on_three, range(5), progress=False)
    assert [v for v, _ in on_dask] == [v for v, _ in serial] and os.getpid() not in {p for _, p in on_dask}


def test_scheduler_values(monkeypatch, tmp_path):
    monkeypatch.delenv(distributed.SCHEDULER_ENV, raising=False)
    for value in (None, "none", "", "serial"):
        with distributed.scheduler(value) as c:
            assert c is None and distributed.current_client() is None
    assert distributed._parse("local") == ("local", None)
    assert distributed._parse("local:3") == ("local", 3)
    assert distributed._parse("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert distributed._parse("node12:8786") == ("address", "node12:8786")
    monkeypatch.setenv(distributed.SCHEDULER_ENV, "local:2")
    assert distributed._parse(None) == ("local", 2)
    for bad, message in (("local:0", "no workers"), ("gpu-please", "not understood"), (3, "must be None"),
                         (str(tmp_path / "missing.json"), "does not exist")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            distributed._parse(bad)


def test_cache_sharded_without_scheduler_is_load_or_compute(dataset, serial_entry, tmp_path, monkeypatch):
    monkeypatch.delenv(distributed.SCHEDULER_ENV, raising=False)
    spec = dataclasses.replace(SPEC, batch_size=8)  # not in the key: the same entry
    acts = distributed.cache_sharded(spec, dataset=dataset, root=tmp_path, progress=False)
    assert acts.path.name == serial_entry.name
    np.testing.assert_array_equal(np.asarray(acts.layer(1)), np.load(serial_entry / "blocks.1.mlp.hook_post.npy"))
    with pytest.raises(TypeError, match="ActivationSpec"):
        distributed.cache_sharded("tiny-neox")


def test_command_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSE_PROBING_CACHE", str(tmp_path))
    path = tmp_path / "mine.csv"  # a user's dataset file, named by its path
    path.write_text("text,label\n" + "".join(f"document number {i} of six,{'ab'[i % 2]}\n" for i in range(6)))
    args = ["cache", "--scheduler", "none", "--model", "tiny-neox", "--dataset", str(path)]
    assert distributed.main([*args, "--layers", "1", "--max-length", "32"]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    with pytest.raises(SystemExit):
        distributed.main([*args, "--layers", "one"])
    assert "--layers must be comma-separated integers" in capsys.readouterr().err


def test_study_helpers_use_the_active_scheduler(client, tiny_model, tmp_path, monkeypatch):
    """cache_for computes in shards on the workers and probe_cache sweeps there: the same entry, the same table."""
    from sparse_probing import study

    monkeypatch.delenv(distributed.SCHEDULER_ENV, raising=False)
    path = tmp_path / "mine.csv"  # named by an absolute path, so that every worker finds it
    path.write_text(
        "text,label,group\n" + "".join(f"words of document {i} here,{'ab'[i % 2]},d{i}\n" for i in range(24))
    )
    kw = dict(max_length=32, layers=(1,), batch_size=4)
    monkeypatch.setenv("SPARSE_PROBING_CACHE", str(tmp_path / "serial"))
    serial = study.cache_for(tiny_model, str(path), "smoke", **kw)
    monkeypatch.setenv("SPARSE_PROBING_CACHE", str(tmp_path / "on_dask"))
    with distributed.scheduler(client), get_task_stream(client) as stream:
        on_dask = study.cache_for(tiny_model, str(path), "smoke", **kw)
    assert any("shard-" in str(t.get("key")) for t in stream.data)  # the batches ran as shard tasks
    assert on_dask.path.parent == tmp_path / "on_dask"
    assert on_dask.path.name == serial.path.name and _files(on_dask.path) == _files(serial.path)

    specs = [ProbeSpec("mean_diff", ks=(1, 2))]
    table = study.probe_cache(serial, specs, n_boot=0)
    with distributed.scheduler(client), get_task_stream(client) as stream:
        table_dask = study.probe_cache(serial, specs, n_boot=0)
    assert len(stream.data) >= 1
    timing = [c for c in table.columns if c.endswith("_time")]
    pd.testing.assert_frame_equal(table.drop(columns=timing), table_dask.drop(columns=timing))


# ---------------------------------------------------------------------------------------------- chapters' work
TASK_KINDS = ("cache-plan", "cache-shard", "cache-assemble", "sweep")


def _kinds(stream: list[dict]) -> dict[str, int]:
    """Task counts by kind (the prefix of the task's key); a key of no known kind is counted under its own name."""
    counts: dict[str, int] = {}
    for task in stream:
        key = str(task.get("key"))
        kind = next((k for k in TASK_KINDS if key.startswith(f"{k}-")), key)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _chapter_01(acts_of):
    """01_methods: every layer cached, every class probed at one layer through probe_cache (mutual information
    among the rankers: scikit-learn's k-NN estimator, which would parallelise itself through joblib)."""
    from sparse_probing import study

    acts = acts_of("natural_language", n_documents=24)
    tasks = dict(list(study.binary_tasks(acts.examples, min_positives=3, min_negatives=3).items())[:2])
    specs = [ProbeSpec("mean_diff", ks=(1, 2)), ProbeSpec("mutual_info", ks=(1, 2)), ProbeSpec("dense")]
    split = study.split_examples(acts.examples)
    return study.probe_cache(acts, specs, tasks=tasks, layers=[1], split=split, n_boot=5)


def _chapter_03(acts_of):
    """03_superposition: the chapter's layers cached (batch 32), a sweep over them, controls on the early layers."""
    from sparse_probing import study

    acts = acts_of("paper_compound_words", n_documents=168, layers=(0, 1), batch_size=32, max_length=160)
    tasks = study.binary_tasks(acts.examples, acts.features, min_positives=3, min_negatives=3)
    tasks = dict(list(tasks.items())[:2])
    split = study.split_examples(acts.examples)
    docs = acts.examples["doc"].to_numpy()
    X = {layer: acts.layer(layer) for layer in (0, 1)}
    specs = [ProbeSpec("mean_diff", ks=(1, 2)), ProbeSpec("single_neuron")]
    frames = [run_sweep(X, tasks, split, specs, groups=docs, n_boot=5, progress=False)]
    controls = [ProbeSpec("control", ks=(1, 2)), ProbeSpec("dense")]
    frames.append(run_sweep({0: X[0]}, tasks, split, controls, groups=docs, progress=False))
    return pd.concat(frames)


def _chapter_04(acts_of):
    """04_monosemantic: every layer cached, the single-neuron search, then dense / random basis / control."""
    from sparse_probing import study

    acts = acts_of("code_language", n_documents=40)
    tasks = dict(list(study.binary_tasks(acts.examples, min_positives=3, min_negatives=3).items())[:2])
    split = study.split_examples(acts.examples)
    X = {layer: acts.layer(layer) for layer in acts.layers}
    search = run_sweep(X, tasks, split, [ProbeSpec("single_neuron")], groups=acts.examples["doc"].to_numpy(),
                       n_boot=5, progress=False)  # fmt: skip
    specs = [ProbeSpec("dense"), ProbeSpec("random_basis", params={"base": "single_neuron", "n_rotations": 1}),
             ProbeSpec("control", params={"base": "single_neuron"})]  # fmt: skip
    return pd.concat([search, run_sweep({1: X[1]}, tasks, split, specs, progress=False)])


def _chapter_05(acts_of):
    """05_scaling: every layer cached, the neuron search through probe_cache, the control on rotated neurons
    (arrays computed in the kernel, not memory-mapped from the cache)."""
    from sparse_probing import study
    from sparse_probing.probes import random_orthogonal

    acts = acts_of("data_source", n_documents=24)
    tasks = dict(list(study.binary_tasks(acts.examples, min_positives=3, min_negatives=3).items())[:2])
    split = study.split_examples(acts.examples)
    sweep = study.probe_cache(acts, [ProbeSpec("single_neuron", name="neuron")], tasks=tasks, split=split, n_boot=5)
    rotation = random_orthogonal(acts.layer(0).shape[1], 0).astype(np.float32)
    rotated = {layer: np.asarray(acts.layer(layer), dtype=np.float32) @ rotation for layer in acts.layers}
    control = run_sweep(rotated, tasks, split, [ProbeSpec("single_neuron", name="control")], progress=False)
    return pd.concat([sweep, control])


def _chapter_06(acts_of):
    """06_survey: the chapter's layers cached, a subsample of rows probed (float32 copies made in the kernel)."""
    from sparse_probing import study

    acts = acts_of("text_features", n_documents=16, layers=(0, 1))
    tasks = dict(list(study.binary_tasks(acts.examples, min_positives=3, min_negatives=3).items())[:2])
    rows = np.arange(len(acts.examples))
    split = study.split_examples(acts.examples)
    X = {layer: np.asarray(acts.layer(layer)[rows], dtype=np.float32) for layer in (0, 1)}
    specs = [ProbeSpec("mean_diff", ks=(1, 2)), ProbeSpec("dense"), ProbeSpec("control", ks=(1, 2))]
    return run_sweep(X, tasks, split, specs, groups=acts.examples["doc"].to_numpy(), n_boot=5, progress=False)


CHAPTER_WORK = {"01_methods": _chapter_01, "03_superposition": _chapter_03, "04_monosemantic": _chapter_04,
                "05_scaling": _chapter_05, "06_survey": _chapter_06}  # fmt: skip


def test_each_chapters_caching_and_sweeps_land_on_the_workers(client, tmp_path, monkeypatch, capsys):
    """A chapter's kernel gets the scheduler's address in $SPARSE_PROBING_SCHEDULER (as `chapter --scheduler`
    gives it): the first use connects once, and every chapter's caching (shards) and sweeps (batches) run on the
    workers, with no joblib task sent from inside a task."""
    from sparse_probing import study

    client.wait_for_workers(2, timeout=120)
    monkeypatch.setenv("SPARSE_PROBING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(distributed.SCHEDULER_ENV, client.scheduler.address)
    # every array argument travels once: memory-mapped cache files by name, arrays made in the kernel scattered
    monkeypatch.setattr(distributed, "SHARE_BYTES", 1)
    kw = dict(max_length=48, batch_size=4)

    def acts_of(family, **fields):
        return study.cache_for("tiny-neox", family, "smoke", **{**kw, **fields})

    counts, workers, tables = {}, set(), {}
    try:
        for chapter, work in CHAPTER_WORK.items():
            with get_task_stream(client) as stream:
                tables[chapter] = work(acts_of)
            assert len(tables[chapter]) and tables[chapter]["f1_test"].notna().any(), chapter
            counts[chapter] = _kinds(stream.data)
            workers |= {t.get("worker") for t in stream.data}
        session = distributed.active_client()
        assert session is distributed.active_client() and list(distributed._SESSIONS) == [client.scheduler.address]
    finally:
        distributed.close_sessions()
    with capsys.disabled():
        print(f"\ntasks by kind per chapter: {counts}")
    for chapter, kinds in counts.items():
        # one entry each: one plan, its shards (several: the batches are split over both workers), one assembly
        assert kinds.pop("cache-plan") == 1 and kinds.pop("cache-assemble") == 1, (chapter, kinds)
        assert kinds.pop("cache-shard") >= 2, (chapter, kinds)
        assert kinds.pop("sweep") >= 2, (chapter, kinds)
        assert kinds == {}, f"{chapter} sent tasks of other kinds (nested joblib?): {kinds}"
    assert len(workers) == 2
    monkeypatch.delenv(distributed.SCHEDULER_ENV)
    for chapter, work in CHAPTER_WORK.items():  # the same tables on one machine (the entries are cached now)
        serial = work(acts_of)
        timing = [c for c in serial.columns if c.endswith("_time")]
        pd.testing.assert_frame_equal(serial.drop(columns=timing), tables[chapter].drop(columns=timing))


def test_nested_joblib_stays_in_the_task_inside_a_dask_block(client):
    """Inside a scheduler block joblib's default backend is Dask; scikit-learn's own joblib calls in a sweep task
    (mutual information) still run inside the task, not as tasks of their own."""
    a = make_planted(n=240, d=16, effects=(3.0,), random_state=2)
    split = grouped_split(a.groups, a.y, random_state=0)
    specs = [ProbeSpec("mutual_info", ks=(1, 2)), ProbeSpec("mean_diff", ks=(1, 2))]
    serial = run_sweep({0: a.X, 1: a.X[:, ::-1].copy()}, {"f": a.y}, split, specs, progress=False)
    client.wait_for_workers(2, timeout=120)
    with distributed.scheduler(client), get_task_stream(client) as stream:
        on_dask = run_sweep({0: a.X, 1: a.X[:, ::-1].copy()}, {"f": a.y}, split, specs, progress=False)
    kinds = _kinds(stream.data)
    assert set(kinds) == {"sweep"} and kinds["sweep"] >= 2
    timing = [c for c in serial.columns if c.endswith("_time")]
    pd.testing.assert_frame_equal(serial.drop(columns=timing), on_dask.drop(columns=timing))


def test_one_local_cluster_per_process_from_the_environment(monkeypatch):
    """`local:N` in $SPARSE_PROBING_SCHEDULER starts one cluster at the first use; later calls reuse it."""
    monkeypatch.setenv(distributed.SCHEDULER_ENV, "local:1")
    try:
        first = distributed.active_client()
        assert first is not None and distributed.active_client() is first
        with distributed.scheduler() as c:  # a block without a value uses the same client and leaves it open
            assert c is first
        assert first.status == "running" and list(distributed._SESSIONS) == ["local:1"]
        with distributed.scheduler("none"):
            assert distributed.active_client() is None
    finally:
        distributed.close_sessions()
    assert first.status == "closed"


def test_serve_gives_the_kernel_an_address(tmp_path):
    with distributed.serve("local:1") as address:
        assert address.startswith("tcp://")
        from distributed import Client

        with Client(address) as c:
            assert len(c.scheduler_info(n_workers=-1)["workers"]) == 1
    with distributed.serve("tcp://10.0.0.5:8786") as address:
        assert address == "tcp://10.0.0.5:8786"
    with distributed.serve("none") as address, distributed.serve(None) as nothing:
        assert address == "none" and nothing is None
    (tmp_path / "sched.json").write_text("{}")
    with distributed.serve(str(tmp_path / "sched.json")) as address:
        assert address == str((tmp_path / "sched.json").resolve())
