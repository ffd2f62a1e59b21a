"""Bring your own dataset: a CSV, TSV or JSON-lines file becomes a probing dataset by naming it.

Columns (CSV/TSV header, or JSON keys on every line):

``text`` (required)
    The document. Non-empty; any length (a CSV field may be longer than Python's default 128 KiB).
``label`` (required)
    The property to probe: class names (any strings), integers (e.g. 0/1, also written 0.0/1.0) or numbers with a
    fractional part (probed by regression). At most :data:`MAX_CLASSES` classes and at least two.
``start``, ``end`` (optional, together)
    A character range ``text[start:end]`` that carries the label (a word, a name); without them the label belongs to
    the whole document. Several rows with the same text and different spans become one document with several spans.
``group`` (optional)
    Rows with the same group never straddle train and test (e.g. the source document). Default: the text itself,
    so repeated texts stay together.

Other columns are ignored. Rows that repeat a (text, span, label) are kept once; a repeated (text, span) with another
label is an error. The dataset is named by its file name; its content digest (which covers the file's sha256) enters
every activation cache key, so an edited file is never read from a stale cache, and the same file reached by two
paths shares one cache entry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import DatasetError, Document, Feature, ProbingDataset, Span, data_dir

SUFFIXES = (".csv", ".tsv", ".jsonl")
"""File name endings read as user datasets (case-insensitive)."""
MAX_CLASSES = 100
"""A label column with more distinct values than this is refused (it is an id or free text, not a class)."""
VERSION = "1"
HELP = (
    "a dataset file needs the columns text and label, optionally start and end (a character span of text that "
    "carries the label) and group"
)


def is_user_file(name: str) -> bool:
    """Whether a dataset name denotes a user file (by its ending) rather than a built family."""
    return isinstance(name, str) and name.lower().endswith(SUFFIXES)


def resolve(name: str | Path) -> Path:
    """The file a name refers to: as given (relative to the working directory), else relative to the repository."""
    path = Path(name).expanduser()
    if path.exists() or path.is_symlink() or path.is_absolute():
        return path
    repo = data_dir().parent / path
    return repo if repo.exists() else path


def _rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a CSV, TSV or JSONL file."""
    if path.name.lower().endswith(".jsonl"):
        for i, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(
                    f"{path}, line {i}: not valid JSON ({err.msg}); write one JSON object per line"
                ) from err
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}, line {i}: a {type(obj).__name__}, not a JSON object; {HELP}")
            yield i, obj
        return
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # a long document is one field, not an error
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise DatasetError(f"{path}, line 1: unreadable header ({err}); {HELP}") from err
    header = [h.strip() for h in header]
    for col in ("text", "label"):
        if col not in header:
            kind = "tab" if delimiter == "\t" else "comma"
            raise DatasetError(
                f"{path}, line 1: missing column {col!r} in the header {header} ({kind}-separated); {HELP}"
            )
    start_line = reader.line_num + 1
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                start_line = reader.line_num + 1
                continue
            if len(values) != len(header):
                raise DatasetError(
                    f"{path}, line {start_line}: {len(values)} fields but the header has {len(header)}; "
                    "quote fields that contain the separator or line breaks"
                )
            yield start_line, dict(zip(header, values, strict=True))
            start_line = reader.line_num + 1
    except csv.Error as err:
        raise DatasetError(f"{path}, line {reader.line_num}: malformed CSV ({err}); check the quoting") from err


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def load_user_dataset(name: str | Path, variant: str = "default") -> ProbingDataset:
    """Read a user's CSV/TSV/JSONL file (see the module docstring) into a :class:`ProbingDataset`.

    The dataset is named by the file's name (its content digest is part of its key), has one feature ``label`` and
    level ``span`` when the file has ``start``/``end`` columns, else ``document``. Every problem raises one
    :class:`DatasetError` naming the file, the line and what to do. ``variant`` does not change the content: the
    dataset's variant is ``file`` whatever is asked.
    """
    path = resolve(name)
    if path.is_dir():
        raise DatasetError(f"dataset file {path} is a directory; give the path of a {'/'.join(SUFFIXES)} file in it")
    if path.is_symlink() and not path.exists():
        raise DatasetError(
            f"dataset file {path} is a link that leads nowhere (broken, or a loop of links); fix the link"
        )
    if not path.is_file():
        raise DatasetError(
            f"dataset file {path} does not exist (looked relative to the working directory and the repository); "
            f"give the path of a {'/'.join(SUFFIXES)} file"
        )
    raw = path.read_bytes()
    file_sha = hashlib.sha256(raw).hexdigest()
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw[:nul].count(b"\n") + 1
        raise DatasetError(f"{path}, line {line}: NUL bytes (a damaged or binary file); save it as UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}, line {line}: bytes that are not UTF-8 ({err.reason} at byte {err.start}); save the file as UTF-8"
        ) from err

    records: list[tuple[int, str, str, tuple[int, int] | None, Any]] = []  # line, text, group, span, label
    has_span: bool | None = None
    for line, row in _rows(path, text):
        where = f"{path}, line {line}"
        for col in ("text", "label"):
            if col not in row:
                raise DatasetError(f"{where}: missing column {col!r}; {HELP}")
        doc_text = row["text"]
        if not isinstance(doc_text, str):
            raise DatasetError(f"{where}: text must be a string, got {doc_text!r}; quote it in JSON")
        if not doc_text.strip():
            raise DatasetError(f"{where}: empty text; remove the row or fill in its text")
        label = row["label"]
        if label is None or (isinstance(label, str) and not label.strip()) or not isinstance(label, str | int | float):
            raise DatasetError(f"{where}: label must be a non-empty string or a number, got {label!r}")
        if isinstance(label, bool):
            label = int(label)
        row_has_span = row.get("start") not in (None, "") or row.get("end") not in (None, "")
        if has_span is None:
            has_span = row_has_span
        elif has_span != row_has_span:
            raise DatasetError(f"{where}: {'no' if has_span else 'a'} span here but the first row differs; give "
                               "start and end on every row or on none")  # fmt: skip
        span = None
        if row_has_span:
            start, end = _int(row.get("start")), _int(row.get("end"))
            if start is None or end is None:
                raise DatasetError(f"{where}: start and end must both be integers, got {row.get('start')!r}, "
                                   f"{row.get('end')!r}")  # fmt: skip
            if not 0 <= start < end <= len(doc_text):
                raise DatasetError(
                    f"{where}: span [{start}, {end}) is outside the text (length {len(doc_text)}); start and end are "
                    "character offsets into text with 0 <= start < end <= len(text)"
                )
            span = (start, end)
        group = row.get("group")
        if group in (None, ""):
            group = "text/" + hashlib.sha256(doc_text.encode("utf-8")).hexdigest()[:16]
        elif not isinstance(group, str | int):
            raise DatasetError(f"{where}: group must be a string or an integer, got {group!r}")
        records.append((line, doc_text, str(group), span, label))
    if not records:
        raise DatasetError(f"{path} has no data rows; {HELP}")

    labels, task = _convert_labels(path, records)
    docs: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, tuple[int, int] | None], tuple[int, Any]] = {}
    for (line, doc_text, group, span, _), value in zip(records, labels, strict=True):
        where = f"{path}, line {line}"
        prev = seen.get((doc_text, span))
        if prev is not None:
            if prev[1] != value:
                raise DatasetError(f"{where} repeats the text (and span) of line {prev[0]} with another label "
                                   f"({value!r} vs {prev[1]!r}); keep one of them")  # fmt: skip
            continue
        seen[(doc_text, span)] = (line, value)
        doc = docs.get(doc_text)
        if doc is None:
            doc = docs[doc_text] = {"line": line, "group": group, "spans": [], "label": value}
        elif doc["group"] != group:
            raise DatasetError(f"{where} repeats the text of line {doc['line']} with another group ({group!r} vs "
                               f"{doc['group']!r}); one text belongs to one group")  # fmt: skip
        if span is not None:
            doc["spans"].append(Span(span[0], span[1], value))
    documents = []
    for doc_text, d in docs.items():
        meta = {"source": path.name, "line": d["line"]}
        if has_span:
            spans = {"label": tuple(sorted(d["spans"], key=lambda s: (s.start, s.end)))}
            documents.append(Document(f"line{d['line']}", d["group"], doc_text, spans=spans, meta=meta))
        else:
            documents.append(
                Document(f"line{d['line']}", d["group"], doc_text, labels={"label": d["label"]}, meta=meta)
            )
    return ProbingDataset(
        name=path.name,
        version=VERSION,
        variant="file",
        level="span" if has_span else "document",
        features=(Feature("label", task, f"the label column of {path.name}"),),
        documents=tuple(documents),
        description=f"user file {path.name} (sha256 {file_sha})",
        default_reduce="last" if has_span else "mean",
    )


def _convert_labels(path: Path, records: list[tuple[int, str, str, Any, Any]]) -> tuple[list[Any], str]:
    """Labels as ints (all integral), floats (regression: some fractional) or strings; checks the class count."""
    values = [r[4] for r in records]
    ints = [_int(v) for v in values]
    if all(i is not None for i in ints):
        converted: list[Any] = ints
        task = "classification"
    else:
        numbers = [_number(v) for v in values]
        if all(x is not None and float(x).is_integer() for x in numbers):  # 0.0 / 1.0: classes written as floats
            converted, task = [int(x) for x in numbers], "classification"
        elif all(x is not None for x in numbers):
            converted, task = numbers, "regression"
        else:
            converted, task = [str(v).strip() for v in values], "classification"
    distinct = set(converted)
    if len(distinct) < 2:
        raise DatasetError(
            f"{path}: the label column has only one value ({next(iter(distinct))!r}); a probe needs at least two "
            "classes (add examples of another class)"
        )
    if task == "classification" and len(distinct) > MAX_CLASSES:
        raise DatasetError(
            f"{path}: the label column has {len(distinct)} distinct values, more than {MAX_CLASSES} classes (an id or "
            "free text?); group them into fewer classes, or write numbers with a decimal point (1.0) to probe a "
            "quantity by regression"
        )
    return converted, task
