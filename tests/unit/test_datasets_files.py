"""Damaged dataset files: one clear DatasetError naming the file, and a listing that carries on past them."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from sparse_probing.datasets import DatasetError, Document, Feature, ProbingDataset, Span, summary_table
from sparse_probing.datasets.base import data_dir


def small() -> ProbingDataset:
    docs = (
        Document("d0", "g0", "Hello world", spans={"w": (Span(0, 5, 1),)}),
        Document("d1", "g1", "Ünïcödé text", spans={"w": (Span(0, 7, 0),)}),
    )
    return ProbingDataset("small", "1", "smoke", "span", (Feature("w"),), docs)


def lines_of(ds: ProbingDataset) -> list[dict]:
    return [json.loads(line) for line in ds.to_bytes().decode().splitlines()]


def write_lines(path: Path, objs: list) -> Path:
    path.write_bytes(gzip.compress(("\n".join(json.dumps(o) for o in objs) + "\n").encode(), mtime=0))
    return path


def _header(**changes):
    objs = lines_of(small())
    objs[0].update(changes)
    return objs


def _doc(**changes):
    objs = lines_of(small())
    objs[1].update(changes)
    return objs


CASES = {
    "header_list": ([["not", "a", "header"], *lines_of(small())[1:]], r"line 1 \(header\) is a list"),
    "unknown_level": (_header(level="sentence"), r"unknown level 'sentence'"),
    "features_not_list": (_header(features="w"), r"'features' must be a list"),
    "feature_bad_key": (_header(features=[{"name": "w", "colour": "red"}]), r"malformed feature"),
    "labels_string": (_doc(labels="animal"), r"line 2: 'labels' must map feature names"),
    "unknown_feature": (_doc(spans={"nope": [[0, 5, 1]]}), r"line 2: unknown feature\(s\) \['nope'\]"),
    "numeric_text": (_doc(text=12345), r"line 2: 'text' must be a string"),
    "span_outside": (_doc(spans={"w": [[0, 99, 1]]}), r"line 2: span \[0, 99, 1\] of feature 'w'"),
    "document_list": ([lines_of(small())[0], [1, 2, 3], lines_of(small())[2]], r"line 2: a document must be"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_content(tmp_path, case):
    objs, message = CASES[case]
    path = write_lines(tmp_path / f"{case}.jsonl.gz", objs)
    with pytest.raises(DatasetError, match=message) as info:
        ProbingDataset.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_zeroed_bytes_mid_stream(tmp_path):
    path = small().save(tmp_path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(16)
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="corrupt") as info:
        ProbingDataset.load(path)
    assert str(path) in str(info.value)


def test_non_utf8_text(tmp_path):
    raw = small().to_bytes().replace("Ünïcödé".encode(), "Ünïcödé".encode("latin-1"))
    path = tmp_path / "latin1.jsonl.gz"
    path.write_bytes(gzip.compress(raw, mtime=0))
    with pytest.raises(DatasetError, match=r"line 3: bytes that are not UTF-8") as info:
        ProbingDataset.load(path)
    assert str(path) in str(info.value)


def test_listing_marks_a_damaged_file_and_goes_on(tmp_path, monkeypatch, capsys):
    from sparse_probing.cli import main

    out = tmp_path / "data" / "datasets"
    out.mkdir(parents=True)
    for name in ("natural_language", "paper_compound_words", "position"):
        shutil.copy(data_dir() / "datasets" / f"{name}-smoke.jsonl.gz", out)
    damaged = out / "position-smoke.jsonl.gz"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    damaged.write_bytes(bytes(data))
    table = summary_table("smoke", out)
    status = dict(zip(table["family"], table["status"], strict=True))
    assert status["natural_language"] == "ok" and status["paper_compound_words"] == "ok"
    assert status["position"].startswith("damaged: ") and str(damaged) in status["position"]
    monkeypatch.setenv("SPARSE_PROBING_DATA", str(tmp_path / "data"))
    assert main(["datasets", "--variant", "smoke"]) == 0
    printed = capsys.readouterr().out
    assert "paper_compound_words" in printed and "damaged" in printed


def test_another_familys_file_under_a_familys_name_is_refused(tmp_path):
    from sparse_probing.datasets import dataset_path, load_dataset

    shutil.copy(dataset_path("position", "smoke"), dataset_path("syntax", "smoke", tmp_path))
    with pytest.raises(DatasetError, match=r"holds dataset position-smoke, not syntax-smoke"):
        load_dataset("syntax", "smoke", root=tmp_path)
