"""The tokenizer-agnostic data model shared by every feature family.

A probing dataset is a list of documents (plain text plus a group id for leakage-free splits). Labels are
attached either to a whole document (``level="document"``) or to character spans inside it
(``level="span"``). Nothing here depends on a tokenizer: :func:`align` maps documents and spans onto the
tokens of any Hugging Face tokenizer, through its offset mapping, at activation-caching time.

On disk a dataset is one gzip-compressed JSON-lines file ``<name>-<variant>.jsonl.gz``: the first line is
the header (name, version, features, ...), every further line a document. Files are written
deterministically (sorted keys, gzip mtime 0), so the same content always has the same sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

Label = str | int | float
Level = Literal["document", "span", "token"]

FORMAT_VERSION = 1


DATA_DIR_ENV = "SPARSE_PROBING_DATA"
"""Environment variable that overrides the project's ``data/`` directory."""


class DatasetError(ValueError):
    """A dataset file or source is missing, malformed or inconsistent."""


def data_dir() -> Path:
    """The project's ``data/`` directory: ``$SPARSE_PROBING_DATA`` if set, else ``<repository>/data``."""
    from sparse_probing.paths import data_dir as _data_dir

    return _data_dir()


# ---------------------------------------------------------------------------------------------------- token rules
@dataclass(frozen=True)
class TokenRule:
    """A label computed from a token's surface text and its position in the tokenized document."""

    name: str
    fn: Callable[[str, int, int], Label]
    """``fn(surface, position, n_tokens)``: ``surface`` is the document text from the end of the previous token to
    the end of this one (so it includes the leading space whether or not the tokenizer's offsets do), ``position``
    the index in ``input_ids`` (special tokens included), ``n_tokens`` the length of ``input_ids``."""
    description: str
    task: Literal["classification", "regression"] = "classification"
    needs_text: bool = True
    """Surface rules are undefined (NaN) for a token with empty surface (e.g. the 2nd byte of a split character)."""


def _regex_rule(name: str, pattern: str, description: str, flags: int = 0) -> TokenRule:
    rx = re.compile(pattern, flags)
    return TokenRule(
        name, lambda surface, _pos, _n: int(rx.search(surface) is not None), f"{description} (/{pattern}/)"
    )


TOKEN_RULES: dict[str, TokenRule] = {
    r.name: r
    for r in [
        _regex_rule("contains_digit", r"\d", "contains a digit"),
        _regex_rule("all_digits", r"^\s*\d+$", "only digits (after an optional leading space)"),
        _regex_rule("contains_capital", r"[A-Z]", "contains an ASCII capital letter"),
        _regex_rule("leading_capital", r"^\s*[A-Z]", "first non-space character is a capital"),
        _regex_rule("all_capitals", r"^\s*[A-Z]{2,}$", "two or more capitals and nothing else"),
        _regex_rule("contains_whitespace", r"\s", "contains whitespace"),
        _regex_rule("has_leading_space", r"^ ", "starts with a space"),
        _regex_rule("no_leading_space_and_loweralpha", r"^[a-z]+$", "only lowercase letters, no leading space"),
        _regex_rule("all_whitespace", r"^\s+$", "only whitespace"),
        _regex_rule("is_not_alphanumeric", r"^[^A-Za-z0-9]+$", "no ASCII letter or digit"),
        _regex_rule("is_not_ascii", r"[^\x00-\x7f]", "contains a non-ASCII character"),
        TokenRule("position", lambda _s, pos, _n: pos, "index of the token in the sequence", "regression", False),
        TokenRule(
            "log_position", lambda _s, pos, _n: math.log1p(pos), "log(1 + index) of the token", "regression", False
        ),
        TokenRule(
            "relative_position",
            lambda _s, pos, n: pos / max(1, n - 1),
            "index / (sequence length - 1)",
            "regression",
            False,
        ),
    ]
}
"""Registered token rules; the first eleven are the paper's text features."""


@dataclass(frozen=True)
class Span:
    """A labelled character range ``text[start:end]`` of a document."""

    start: int
    """First character (inclusive)."""
    end: int
    """Last character (exclusive)."""
    value: Label
    """The label of this span for its feature (a class name, 0/1, or a number for regression)."""


@dataclass(frozen=True)
class Document:
    """One text with its labels."""

    doc_id: str
    """Unique id within the dataset."""
    group: str
    """Split group: documents that share a group (e.g. translations of one chapter) never straddle splits."""
    text: str
    """The raw text."""
    labels: Mapping[str, Label] = field(default_factory=dict)
    """Document-level labels, by feature name."""
    spans: Mapping[str, tuple[Span, ...]] = field(default_factory=dict)
    """Span-level labels, by feature name."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Provenance (source package, file, language, ...); never used as a label."""

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "group": self.group,
            "text": self.text,
            "labels": dict(self.labels),
            "spans": {k: [[s.start, s.end, s.value] for s in v] for k, v in self.spans.items()},
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Document:
        return cls(
            doc_id=str(obj["doc_id"]),
            group=str(obj["group"]),
            text=obj["text"],
            labels=dict(obj.get("labels", {})),
            spans={k: tuple(Span(int(s), int(e), v) for s, e, v in spans) for k, spans in obj.get("spans", {}).items()},
            meta=dict(obj.get("meta", {})),
        )


@dataclass(frozen=True)
class Feature:
    """One probed property: a column of labels."""

    name: str
    """Feature name, unique in the dataset (e.g. ``language``, ``social_security``)."""
    task: Literal["classification", "regression"] = "classification"
    """Classification features are probed one-vs-rest per class; regression features with a linear model."""
    description: str = ""
    rule: str | None = None
    """Token-level datasets only: name of the :data:`TOKEN_RULES` entry that computes the label of each token from
    its surface text and position (the label exists only after tokenization, so it is computed in :func:`align`)."""

    def __post_init__(self) -> None:
        if self.rule is not None and self.rule not in TOKEN_RULES:
            raise DatasetError(f"feature {self.name!r}: unknown token rule {self.rule!r}; known: {sorted(TOKEN_RULES)}")


@dataclass(frozen=True)
class ProbingDataset:
    """A named, versioned collection of labelled documents."""

    name: str
    """Family name, e.g. ``natural_language``."""
    version: str
    """Content version; bump it when the builder changes what it writes. Enters the activation cache key."""
    variant: str
    """Size variant: ``smoke`` (tests, CI) or ``default`` (the book)."""
    level: Level
    """``document``: one example per document; ``span``: one example per distinct labelled span; ``token``: one
    example per token (computed in :func:`align`; labels from :attr:`Feature.rule` or from the span covering the
    token)."""
    features: tuple[Feature, ...]
    documents: tuple[Document, ...]
    description: str = ""
    default_reduce: Literal["mean", "max", "last"] = "mean"
    """How activations of the tokens of one example are pooled unless the caller says otherwise."""
    skip_first: int = 0
    """Document level: leading tokens left out of the pooled window (the paper skips 25-100 for long contexts).
    Token level: leading tokens of each document that are not examples."""

    def __post_init__(self) -> None:
        if self.level != "token" and any(f.rule for f in self.features):
            raise DatasetError(f"dataset {self.name!r}: token rules need level='token', not {self.level!r}")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise DatasetError(f"dataset {self.name!r}: duplicate feature names {names}")
        ids = [d.doc_id for d in self.documents]
        if len(set(ids)) != len(ids):
            raise DatasetError(f"dataset {self.name!r}: duplicate doc_id values")

    # ------------------------------------------------------------------ derived
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "variant": self.variant,
            "level": self.level,
            "features": [asdict(f) for f in self.features],
            "description": self.description,
            "default_reduce": self.default_reduce,
            "skip_first": self.skip_first,
            "n_documents": len(self.documents),
        }

    def to_bytes(self) -> bytes:
        """The canonical uncompressed serialization (its sha256 is :attr:`sha256`)."""
        lines = [json.dumps(self.header(), sort_keys=True, ensure_ascii=False)]
        lines += [json.dumps(d.to_json(), sort_keys=True, ensure_ascii=False) for d in self.documents]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def key(self) -> str:
        """Identity used in cache keys and results: name, variant, version and content digest."""
        return f"{self.name}-{self.variant}-v{self.version}-{self.sha256[:12]}"

    def label_table(self) -> pd.DataFrame:
        """Examples as rows: doc index, character window, group and one column per feature (NaN = unlabelled).

        Token-level datasets have no examples before tokenization: their table has one row per document (the
        document's labels, NaN for rule features); :func:`align` expands it into one row per token.
        """
        rows: list[dict[str, Any]] = []
        if self.level in ("document", "token"):
            for i, doc in enumerate(self.documents):
                row = {"doc": i, "char_start": 0, "char_end": len(doc.text), "group": doc.group}
                row.update({f: doc.labels.get(f, np.nan) for f in self.feature_names})
                rows.append(row)
        else:
            for i, doc in enumerate(self.documents):
                by_span: dict[tuple[int, int], dict[str, Label]] = {}
                for fname in self.feature_names:
                    for s in doc.spans.get(fname, ()):
                        by_span.setdefault((s.start, s.end), {})[fname] = s.value
                for (start, end), vals in sorted(by_span.items()):
                    row = {"doc": i, "char_start": start, "char_end": end, "group": doc.group}
                    row.update({f: vals.get(f, np.nan) for f in self.feature_names})
                    rows.append(row)
        cols = ["doc", "char_start", "char_end", "group", *self.feature_names]
        return pd.DataFrame(rows, columns=cols)

    def subset(self, n_documents: int, *, variant: str | None = None) -> ProbingDataset:
        """The first ``n_documents`` documents (builders order documents so that a prefix is balanced)."""
        return ProbingDataset(
            name=self.name,
            version=self.version,
            variant=variant or f"{self.variant}[:{n_documents}]",
            level=self.level,
            features=self.features,
            documents=self.documents[:n_documents],
            description=self.description,
            default_reduce=self.default_reduce,
            skip_first=self.skip_first,
        )

    # ------------------------------------------------------------------ I/O
    def save(self, directory: str | Path) -> Path:
        """Write ``<directory>/<name>-<variant>.jsonl.gz`` deterministically; returns the path."""
        path = Path(directory) / f"{self.name}-{self.variant}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(self.to_bytes())
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ProbingDataset:
        """Read a file written by :meth:`save`; any damage raises one :class:`DatasetError` naming the file."""
        path = Path(path)
        if not path.exists():
            raise DatasetError(f"dataset file {path} does not exist; build it with `make data`")
        rebuild = "rebuild it with `make data` (or restore it with `git checkout -- <file>`)"
        try:
            raw = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetError(f"dataset file {path} is corrupt (not a readable gzip file: {err}); {rebuild}") from err
        lines = raw.split(b"\n")
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            raise DatasetError(f"dataset file {path} is empty; {rebuild}")
        objs = []
        for i, line in enumerate(lines, start=1):
            try:
                objs.append(json.loads(line.decode("utf-8")))
            except UnicodeDecodeError as err:
                raise DatasetError(f"{path}, line {i}: bytes that are not UTF-8 ({err.reason}); {rebuild}") from err
            except json.JSONDecodeError as err:
                raise DatasetError(f"dataset file {path} is corrupt (line {i}: {err.msg}); {rebuild}") from err
        header = _check_header(objs[0], path, rebuild)
        features = header["features"]
        known = {f.name for f in features}
        docs = tuple(_parse_document(obj, path, i, known, rebuild) for i, obj in enumerate(objs[1:], start=2))
        if header.get("n_documents") != len(docs):
            raise DatasetError(f"{path}: header says {header.get('n_documents')} documents, file has {len(docs)}")
        return cls(
            name=header["name"],
            version=header["version"],
            variant=header["variant"],
            level=header["level"],
            features=features,
            documents=docs,
            description=header.get("description", ""),
            default_reduce=header.get("default_reduce", "mean"),
            skip_first=header.get("skip_first", 0),
        )


LEVELS = ("document", "span", "token")
REDUCES = ("mean", "max", "last")
_FEATURE_KEYS = {"name", "task", "description", "rule"}


def _check_header(header: Any, path: Path, rebuild: str) -> dict[str, Any]:
    """The validated header line, with ``features`` as :class:`Feature` objects."""
    where = f"{path}, line 1 (header)"
    if not isinstance(header, dict):
        raise DatasetError(f"{where} is a {type(header).__name__}, not a JSON object; {rebuild}")
    if header.get("format") != FORMAT_VERSION:
        raise DatasetError(f"{path}: format {header.get('format')} is not {FORMAT_VERSION}; {rebuild}")
    for key in ("name", "version", "variant", "level"):
        if not isinstance(header.get(key), str):
            raise DatasetError(f"{where}: {key!r} must be a string, got {header.get(key)!r}; {rebuild}")
    if header["level"] not in LEVELS:
        raise DatasetError(f"{where}: unknown level {header['level']!r} (expected one of {LEVELS}); {rebuild}")
    if header.get("default_reduce", "mean") not in REDUCES:
        raise DatasetError(f"{where}: unknown default_reduce {header.get('default_reduce')!r}; {rebuild}")
    skip = header.get("skip_first", 0)
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise DatasetError(f"{where}: skip_first must be a non-negative integer, got {skip!r}; {rebuild}")
    feats = header.get("features")
    if not isinstance(feats, list):
        raise DatasetError(f"{where}: 'features' must be a list, got {type(feats).__name__}; {rebuild}")
    features = []
    for f in feats:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or set(f) - _FEATURE_KEYS:
            raise DatasetError(f"{where}: malformed feature {f!r} (keys {sorted(_FEATURE_KEYS)}); {rebuild}")
        if f.get("task", "classification") not in ("classification", "regression"):
            raise DatasetError(f"{where}: feature {f['name']!r} has unknown task {f.get('task')!r}; {rebuild}")
        features.append(Feature(**f))
    return {**header, "features": tuple(features)}


def _is_label(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _parse_document(obj: Any, path: Path, line: int, features: set[str], rebuild: str) -> Document:
    """One validated document line."""
    where = f"{path}, line {line}"
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: a document must be a JSON object, got {type(obj).__name__}; {rebuild}")
    for key in ("doc_id", "group", "text"):
        if not isinstance(obj.get(key), str):
            raise DatasetError(f"{where}: {key!r} must be a string, got {obj.get(key)!r}; {rebuild}")
    text = obj["text"]
    labels, spans = obj.get("labels", {}), obj.get("spans", {})
    if not isinstance(labels, dict) or not all(_is_label(v) for v in labels.values()):
        raise DatasetError(f"{where}: 'labels' must map feature names to strings or numbers; {rebuild}")
    if not isinstance(spans, dict):
        raise DatasetError(f"{where}: 'spans' must map feature names to lists of [start, end, value]; {rebuild}")
    unknown = sorted((set(labels) | set(spans)) - features)
    if unknown:
        raise DatasetError(f"{where}: unknown feature(s) {unknown}; the header declares {sorted(features)}; {rebuild}")
    parsed: dict[str, tuple[Span, ...]] = {}
    for fname, items in spans.items():
        out = []
        for item in items if isinstance(items, list) else [None]:
            ok = isinstance(item, list) and len(item) == 3 and _is_label(item[2])
            ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in item[:2])
            if not ok or not 0 <= item[0] < item[1] <= len(text):
                raise DatasetError(
                    f"{where}: span {item!r} of feature {fname!r} is not [start, end, value] inside the text "
                    f"(length {len(text)}); {rebuild}"
                )
            out.append(Span(item[0], item[1], item[2]))
        parsed[fname] = tuple(out)
    meta = obj.get("meta", {})
    return Document(obj["doc_id"], obj["group"], text, dict(labels), parsed, meta if isinstance(meta, dict) else {})


# ---------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class Alignment:
    """A dataset tokenized by one tokenizer: token ids per document and a token window per example."""

    input_ids: tuple[np.ndarray, ...]
    """Token ids of each document (special tokens included, truncated to the context length)."""
    examples: pd.DataFrame
    """One row per example that survived truncation: ``doc``, ``tok_start``, ``tok_end`` (exclusive),
    ``group`` and one column per feature."""
    n_dropped: int
    """Examples lost because their span lies beyond the context length or covers no token."""


def token_window(offsets_P2: np.ndarray, char_start: int, char_end: int) -> tuple[int, int] | None:
    """Token range ``[first, last + 1)`` of the tokens overlapping ``[char_start, char_end)``.

    Special tokens (empty offsets) never overlap. Returns None when no token overlaps.
    """
    starts, ends = offsets_P2[:, 0], offsets_P2[:, 1]
    hit = (starts < char_end) & (ends > char_start) & (ends > starts)
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return None
    return int(idx[0]), int(idx[-1]) + 1


def tokenize_documents(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Token ids and character offsets per text, with the tokenizer's own special tokens, truncated."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is a slow tokenizer; span alignment needs offset mappings, "
            "which only fast (Rust) tokenizers provide. Load the tokenizer with use_fast=True."
        )
    enc = tokenizer(
        list(texts),
        add_special_tokens=True,
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_attention_mask=False,
    )
    ids = [np.asarray(x, dtype=np.int64) for x in enc["input_ids"]]
    offsets = [np.asarray(x, dtype=np.int64).reshape(-1, 2) for x in enc["offset_mapping"]]
    # Special tokens report (0, 0); some tokenizers report the full text for them instead: zero those out.
    special = set(getattr(tokenizer, "all_special_ids", []))
    for i, off in zip(ids, offsets, strict=True):
        mask = np.isin(i, list(special))
        off[mask] = 0
    return ids, offsets


def align(dataset: ProbingDataset, tokenizer: Any, max_length: int) -> Alignment:
    """Tokenize every document and map each example's character window onto token positions.

    Document-level examples span all real tokens of the document (special tokens excluded), minus the first
    ``dataset.skip_first`` of them; span-level examples cover the tokens that overlap the span.
    """
    ids, offsets = tokenize_documents(tokenizer, [d.text for d in dataset.documents], max_length)
    if dataset.level == "token":
        return _align_tokens(dataset, ids, offsets)
    table = dataset.label_table()
    tok_start = np.full(len(table), -1, dtype=np.int64)
    tok_end = np.full(len(table), -1, dtype=np.int64)
    docs = table["doc"].to_numpy()
    cs, ce = table["char_start"].to_numpy(), table["char_end"].to_numpy()
    for r in range(len(table)):
        win = token_window(offsets[docs[r]], int(cs[r]), int(ce[r]))
        if win is None:
            continue
        start, end = win
        if dataset.level == "document":
            start = min(start + dataset.skip_first, end - 1)
        elif end > len(ids[docs[r]]) or ce[r] > offsets[docs[r]][:, 1].max(initial=0):
            continue  # span truncated by the context length: the tokens we have do not cover it
        tok_start[r], tok_end[r] = start, end
    keep = tok_start >= 0
    examples = table.loc[keep].drop(columns=["char_start", "char_end"]).copy()
    examples.insert(1, "tok_start", tok_start[keep])
    examples.insert(2, "tok_end", tok_end[keep])
    return Alignment(input_ids=tuple(ids), examples=examples.reset_index(drop=True), n_dropped=int((~keep).sum()))


def token_surfaces(text: str, offsets_P2: np.ndarray) -> list[str | None]:
    """Surface text of every token: ``text[end of previous real token : end of this token]``; None for specials.

    Taking the text since the previous token's end makes the surface independent of whether a tokenizer's offsets
    include the leading space (GPT-2 style with ``trim_offsets``) or not.
    """
    out: list[str | None] = []
    prev_end = 0
    for start, end in offsets_P2.tolist():
        if start == end == 0:
            out.append(None)  # special token
            continue
        out.append(text[prev_end:end] if end > prev_end else "")
        prev_end = max(prev_end, end)
    return out


def _align_tokens(dataset: ProbingDataset, ids: list[np.ndarray], offsets: list[np.ndarray]) -> Alignment:
    """One example per real token after the first ``skip_first``; labels from rules, spans or document labels."""
    rules = {f.name: TOKEN_RULES[f.rule] for f in dataset.features if f.rule}
    rows: list[dict[str, Any]] = []
    for d, doc in enumerate(dataset.documents):
        offs = offsets[d]
        n = len(ids[d])
        surfaces = token_surfaces(doc.text, offs)
        real = [t for t, srf in enumerate(surfaces) if srf is not None]
        for t in real[dataset.skip_first :]:
            surface = surfaces[t]
            row: dict[str, Any] = {"doc": d, "tok_start": t, "tok_end": t + 1, "group": doc.group}
            start, end = int(offs[t, 0]), int(offs[t, 1])
            for f in dataset.features:
                if f.name in rules:
                    rule = rules[f.name]
                    row[f.name] = np.nan if (rule.needs_text and not surface) else rule.fn(surface or "", t, n)
                elif f.name in doc.spans:
                    hit = [s.value for s in doc.spans[f.name] if s.start < end and s.end > start]
                    row[f.name] = hit[0] if hit else np.nan
                else:
                    row[f.name] = doc.labels.get(f.name, np.nan)
            rows.append(row)
    cols = ["doc", "tok_start", "tok_end", "group", *dataset.feature_names]
    return Alignment(input_ids=tuple(ids), examples=pd.DataFrame(rows, columns=cols), n_dropped=0)
