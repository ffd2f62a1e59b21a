"""The activation cache on the tiny model: keys, round trip, pooling, crash safety, corruption."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_toy_dataset

from sparse_probing.activations import ActivationSpec, CacheRepairWarning, cache_key, load_or_compute, pool
from sparse_probing.datasets.base import align

SPEC = ActivationSpec(model="tiny-neox", dataset="toy", variant="smoke", layers=(0, 1), max_length=48, batch_size=4)


def test_key_changes_with_every_content_field(toy_dataset):
    base = cache_key(SPEC, toy_dataset, "digest")
    changes = {
        "model": "other",
        "dataset": "other",
        "variant": "default",
        "layers": (1,),
        "site": "mlp.hook_pre",
        "reduce": "max",
        "max_length": 64,
        "n_documents": 5,
        "dtype": "float16",
        "revision": "step1000",
    }
    assert set(changes) | {"batch_size"} == {f.name for f in dataclasses.fields(ActivationSpec)}
    for name, value in changes.items():
        assert cache_key(dataclasses.replace(SPEC, **{name: value}), toy_dataset, "digest") != base, name
    assert cache_key(SPEC, toy_dataset, "other-digest") != base
    assert cache_key(SPEC, make_toy_dataset(n_docs=23), "digest") != base
    assert cache_key(dataclasses.replace(SPEC, batch_size=2), toy_dataset, "digest") == base


def test_round_trip_and_masked_mean(tiny_model, toy_dataset, tmp_path):
    acts = load_or_compute(SPEC, model=tiny_model, dataset=toy_dataset, root=tmp_path)
    n = len(toy_dataset.documents)
    assert acts.layer(1).shape == (n, tiny_model.d_mlp) and acts.layer(1).dtype == np.float16
    assert list(acts.examples["parity"][:2]) == ["even", "odd"]
    assert acts.dataset_key == toy_dataset.key and acts.dataset_key in repr(acts)
    again = load_or_compute(SPEC, dataset=toy_dataset, root=tmp_path)  # no model needed: read from disk
    np.testing.assert_array_equal(np.asarray(again.layer(0)), np.asarray(acts.layer(0)))

    # Hand computation for the shortest document, which sits in a padded batch: mean over its real tokens,
    # BOS excluded, padding never seen.
    lengths = [len(tiny_model.tokenizer(d.text)["input_ids"]) for d in toy_dataset.documents]
    doc = int(np.argmin(lengths))
    ids = tiny_model.tokenizer(toy_dataset.documents[doc].text)["input_ids"][: SPEC.max_length]
    assert ids[0] == tiny_model.tokenizer.bos_token_id
    with torch.inference_mode():
        _, cache = tiny_model.bridge.run_with_cache(torch.tensor([ids]), names_filter=["blocks.1.mlp.hook_post"])
    expected = cache["blocks.1.mlp.hook_post"][0, 1:].mean(0).numpy()
    row = int(np.flatnonzero(acts.examples["doc"].to_numpy() == doc)[0])
    np.testing.assert_allclose(acts.layer(1)[row].astype(np.float32), expected, atol=2e-4, rtol=2e-3)


def test_pool_reductions():
    acts_BPD = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    b, s, e = np.array([0, 1]), np.array([1, 0]), np.array([4, 2])
    np.testing.assert_allclose(pool(acts_BPD, b, s, e, "mean"), [acts_BPD[0, 1:4].mean(0), acts_BPD[1, 0:2].mean(0)])
    np.testing.assert_allclose(pool(acts_BPD, b, s, e, "max"), [acts_BPD[0, 3], acts_BPD[1, 1]])
    np.testing.assert_allclose(pool(acts_BPD, b, s, e, "last"), [acts_BPD[0, 3], acts_BPD[1, 1]])
    # several windows of one document, in any order
    b, s, e = np.array([1, 0, 1, 1]), np.array([2, 0, 0, 4]), np.array([5, 1, 3, 5])
    expected = [acts_BPD[bi, si:ei].mean(0).numpy() for bi, si, ei in zip(b, s, e, strict=True)]
    np.testing.assert_allclose(pool(acts_BPD, b, s, e, "mean"), expected, rtol=1e-6)


def test_span_level_examples(tiny_model, tmp_path):
    ds = make_toy_dataset(level="span")
    spec = dataclasses.replace(SPEC, reduce="last")
    acts = load_or_compute(spec, model=tiny_model, dataset=ds, root=tmp_path)
    alignment = align(ds, tiny_model.tokenizer, spec.max_length)
    assert len(acts.examples) == len(alignment.examples) > len(ds.documents)
    assert set(acts.examples["is_cafe"]) == {0, 1}
    # the last token of "café" is the second byte of "é" in the byte-level tokenizer
    ex = acts.examples[acts.examples["is_cafe"] == 1].iloc[0]
    ids = alignment.input_ids[int(ex["doc"])]
    assert tiny_model.tokenizer.decode(ids[ex["tok_start"] : ex["tok_end"]]).strip() == "café"


def test_corrupt_entry_is_detected_and_recomputed(tiny_model, toy_dataset, tmp_path):
    acts = load_or_compute(SPEC, model=tiny_model, dataset=toy_dataset, root=tmp_path)
    reference = np.array(acts.layer(1))
    f = acts.path / "blocks.1.mlp.hook_post.npy"
    del acts
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size - 100)
    with pytest.warns(UserWarning, match="truncated"):
        fixed = load_or_compute(SPEC, model=tiny_model, dataset=toy_dataset, root=tmp_path)
    np.testing.assert_array_equal(np.asarray(fixed.layer(1)), reference)


def test_checksum_verified_on_every_load(tiny_model, toy_dataset, tmp_path):
    acts = load_or_compute(SPEC, model=tiny_model, dataset=toy_dataset, root=tmp_path)
    reference = np.array(acts.layer(0))
    f = acts.path / "blocks.0.mlp.hook_post.npy"
    del acts
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # same size, different content: only the sha256 catches it
    f.write_bytes(bytes(data))
    with pytest.warns(CacheRepairWarning, match=r"tiny-neox-toy-smoke-.*sha256"):
        fixed = load_or_compute(SPEC, model=tiny_model, dataset=toy_dataset, root=tmp_path)
    np.testing.assert_array_equal(np.asarray(fixed.layer(0)), reference)


def test_bad_inputs(tiny_model, toy_dataset, tmp_path):
    with pytest.raises(ValueError, match=r"layers 0\.\.1"):
        load_or_compute(dataclasses.replace(SPEC, layers=(5,)), model=tiny_model, dataset=toy_dataset, root=tmp_path)
    with pytest.raises(ValueError, match="reduce"):
        ActivationSpec(model="tiny-neox", dataset="toy", reduce="median")
    with pytest.raises(ValueError, match="layers"):
        ActivationSpec(model="tiny-neox", dataset="toy", layers=())
    with pytest.raises(ValueError, match="dataset"):
        load_or_compute(dataclasses.replace(SPEC, dataset="other"), dataset=toy_dataset, root=tmp_path)
    assert not list(tmp_path.glob("*.partial"))  # nothing half-written left behind by a refused spec


_CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ["HF_HUB_OFFLINE"] = "1"
    sys.path.insert(0, {tests!r})
    from conftest import make_toy_dataset
    from sparse_probing import activations
    from sparse_probing.activations import ActivationSpec, load_or_compute
    activations.CHECKPOINT_SECONDS = 0.0  # record every batch, so the kill lands between checkpoints
    spec = ActivationSpec(model="tiny-neox", dataset="big", variant="smoke", layers=(0, 1), max_length=48,
                          batch_size=1)
    load_or_compute(spec, dataset=make_toy_dataset(n_docs=160, name="big"), root={root!r})
    """
)


def _run_and_kill(script: str, root: Path, after_docs: int) -> None:
    """Start the caching child and SIGKILL it once ``after_docs`` documents are recorded (plus a random delay)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)  # fmt: skip
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            found = list(root.glob("*.partial/progress.json"))
            if found:
                try:
                    progress = json.loads(found[0].read_text())
                except (json.JSONDecodeError, FileNotFoundError):
                    progress = None
                if progress and sum(len(c["docs"]) for c in progress["chunks"]) >= after_docs:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the caching subprocess finished before it could be killed"
        time.sleep(after_docs % 7 * 0.003)  # land anywhere in a batch: forward, row writes, fsync, progress write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill_at_random_points_then_rerun_matches_uninterrupted_run(tiny_model, tmp_path):
    ds = make_toy_dataset(n_docs=160, name="big")
    spec = ActivationSpec(model="tiny-neox", dataset="big", variant="smoke", layers=(0, 1), max_length=48, batch_size=1)
    killed_root = tmp_path / "killed"
    script = _CHILD.format(tests=str(Path(__file__).parents[1]), root=str(killed_root))
    rng = np.random.default_rng(int(time.time()))
    first = int(rng.integers(5, 50))
    second = first + int(rng.integers(5, 50))
    for after in (first, second):  # killed twice; the second run resumes the first
        _run_and_kill(script, killed_root, after)
        partial = list(killed_root.glob("*.partial"))
        assert partial and not [p for p in killed_root.iterdir() if p.is_dir() and not p.name.endswith(".partial")]
        assert not (partial[0] / "meta.json").exists()  # nothing that looks complete

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = load_or_compute(spec, model=tiny_model, dataset=ds, root=killed_root)
        clean = load_or_compute(spec, model=tiny_model, dataset=ds, root=tmp_path / "clean")
    finally:
        torch.set_num_threads(threads)
    for layer in (0, 1):
        np.testing.assert_array_equal(
            np.asarray(resumed.layer(layer)), np.asarray(clean.layer(layer)), err_msg=f"kills after {first}, {second}"
        )
    assert not list(killed_root.glob("*.partial"))
