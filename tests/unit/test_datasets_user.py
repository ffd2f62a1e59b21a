"""Bring your own dataset: CSV/TSV/JSONL files by path, their errors, and the path through the activation cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sparse_probing.datasets import DatasetError, is_dataset_file, load_dataset, load_user_dataset
from sparse_probing.datasets.user import MAX_CLASSES


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


SENTENCES = [
    ("The cat sat on the mat.", "animal"),
    ("A dog barked at the postman.", "animal"),
    ("Stocks fell sharply on Monday.", "finance"),
    ("The bank raised its interest rate.", "finance"),
]


def test_csv_document_level(tmp_path):
    rows = "text,label\n" + "".join(f'"{t}",{label}\n' for t, label in SENTENCES)
    rows += f'"{SENTENCES[0][0]}",animal\n'  # an exact repeat is kept once
    path = write(tmp_path / "topics.csv", rows)
    ds = load_dataset(str(path))
    assert ds.name == path.name and ds.level == "document" and ds.feature_names == ["label"]
    assert [d.labels["label"] for d in ds.documents] == ["animal", "animal", "finance", "finance"]
    assert ds.default_reduce == "mean" and ds.features[0].task == "classification"
    assert len({d.group for d in ds.documents}) == 4  # default group: the text
    assert is_dataset_file(str(path)) and not is_dataset_file("natural_language")


def test_tsv_spans_groups_and_int_labels(tmp_path):
    text = "Paris is in France and Berlin is in Germany."
    lines = ["text\tlabel\tstart\tend\tgroup"]
    for word, label in (("Paris", 1), ("France", 0), ("Berlin", 1), ("Germany", 0)):
        s = text.index(word)
        lines.append(f"{text}\t{label}\t{s}\t{s + len(word)}\tatlas")
    lines.append("Rome is old.\t1\t0\t4\tbook")
    path = write(tmp_path / "cities.tsv", "\n".join(lines) + "\n")
    ds = load_user_dataset(path)
    assert ds.level == "span" and ds.default_reduce == "last"
    assert len(ds.documents) == 2 and [d.group for d in ds.documents] == ["atlas", "book"]
    spans = ds.documents[0].spans["label"]
    assert [(text[s.start : s.end], s.value) for s in spans] == [
        ("Paris", 1),
        ("France", 0),
        ("Berlin", 1),
        ("Germany", 0),
    ]
    assert ds.label_table()["label"].tolist() == [1, 0, 1, 0, 1]


def test_jsonl_regression_and_utf8(tmp_path):
    rows = [{"text": f"Ünïcode zahl {i} 東京", "label": i * 0.5, "extra": "ignored"} for i in range(5)]
    path = write(tmp_path / "numbers.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    ds = load_dataset(str(path), "smoke")
    assert ds.features[0].task == "regression" and ds.variant == "file"  # the variant changes nothing in a file
    assert [d.labels["label"] for d in ds.documents] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_digest_follows_the_content(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\na,x\nb,y\n")
    key1 = load_dataset(str(path)).key
    write(path, "text,label\na,x\nb,x\nc,y\n")
    key2 = load_dataset(str(path)).key
    assert key1 != key2 and key1.startswith(path.name)


ERRORS = [
    ("missing.csv", "text,klass\nhello,a\n", r"line 1: missing column 'label'"),
    ("empty.csv", 'text,label\nhello,a\n"  ",b\n', r"line 3: empty text"),
    ("span.csv", "text,label,start,end\nhello,a,0,5\nhi,b,1,9\n", r"line 3: span \[1, 9\) is outside the text"),
    ("one.csv", "text,label\nhello,a\nworld,a\n", r"only one value \('a'\)"),
    ("bytes.csv", b"text,label\nhello,a\nw\xe9rld,b\n", r"line 3: bytes that are not UTF-8"),
    ("nul.csv", b"text,label\nhello,a\n" + b"\x00" * 16 + b",b\n", r"line 3: NUL bytes"),
    (
        "many.csv",
        "text,label\n" + "".join(f"text {i},class{i}\n" for i in range(10_000)),
        rf"10000 distinct values, more than {MAX_CLASSES} classes",
    ),
    ("numeric.jsonl", '{"text": "a", "label": 1}\n{"text": 5, "label": 0}\n', r"line 2: text must be a string"),
    ("conflict.csv", "text,label\nhello,a\nworld,b\nhello,b\n", r"line 4 repeats the text \(and span\) of line 2"),
    ("mixed.csv", "text,label,start,end\nhello,a,0,2\nworld,b,,\n", r"line 3: no span here"),
    ("nojson.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n', r"line 2: a list, not a JSON object"),
    ("fields.csv", "text,label\nhello,a,extra\n", r"line 2: 3 fields but the header has 2"),
    ("rows.csv", "text,label\n", r"has no data rows"),
]


@pytest.mark.parametrize(("name", "content", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_files_give_one_clear_error(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(DatasetError) as info:
        load_dataset(str(path))
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    assert re.search(message, text), text


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.csv"))


def test_user_file_through_the_cache_and_the_study_helpers(tmp_path, tiny_model, monkeypatch):
    from sparse_probing import study
    from sparse_probing.activations import ActivationSpec, load_or_compute

    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    rows = ["text,label,group"]
    for i in range(40):
        label = "greek" if i % 2 else "latin"
        body = " ".join(words[(i + j) % len(words)] for j in range(3 + i % 5))
        rows.append(f'"{label} text {i}: {body}",{label},doc{i // 2}')
    sub = tmp_path / "sub"
    sub.mkdir()
    path = write(sub / "mine.csv", "\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    spec = ActivationSpec(model="tiny-neox", dataset="sub/mine.csv", variant="smoke", max_length=32)
    acts = load_or_compute(spec, model=tiny_model)
    assert acts.dataset_key.startswith("mine.csv-file-v1-")
    assert len(acts.examples) == 40
    again = study.cache_for(tiny_model, "sub/mine.csv", "smoke", max_length=32)
    assert again.path == acts.path  # the same file gives the same entry
    absolute = study.cache_for(tiny_model, str(path.resolve()), "default", max_length=32)
    assert absolute.path == acts.path  # ... whatever path reaches it and whatever variant is asked
    assert len(study.dataset_of(acts).documents) == 40
    tasks = study.binary_tasks(acts.examples)
    assert set(tasks) == {"label=greek", "label=latin"} and np.nansum(tasks["label=greek"]) == 20
    write(path, "\n".join(rows[:-1]) + "\n")  # edit the file: a new cache entry
    changed = load_or_compute(spec, model=tiny_model)
    assert changed.path != acts.path and len(changed.examples) == 39


def test_what_users_expect_of_their_own_file(tmp_path):
    """Before: a 200 KiB text in a CSV was refused as malformed, 0.0/1.0 labels became a regression target, and a
    directory or a link loop was reported as missing."""
    long_text = "word " * 50_000
    path = write(tmp_path / "long.csv", f'text,label\n"{long_text}",1.0\n"short text",0.0\n')
    ds = load_user_dataset(path)
    assert ds.features[0].task == "classification" and len(ds.documents[0].text) > 200_000
    assert sorted(d.labels["label"] for d in ds.documents) == [0, 1]
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DatasetError, match="is a directory"):
        load_user_dataset(tmp_path / "folder.csv")
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with pytest.raises(DatasetError, match="leads nowhere"):
        load_user_dataset(loop)
