"""Probing datasets: a registry of feature families, loaders and summaries.

Each family module builds a tokenizer-agnostic :class:`~sparse_probing.datasets.base.ProbingDataset` from offline
text sources (:mod:`sparse_probing.datasets.sources`) or from the paper's own datasets as released with the wheel
``sae-probes`` (:mod:`sparse_probing.datasets.paper`: ``paper_compound_words``, ``paper_factual``, ``paper_code``);
``make data`` (``python -m sparse_probing.datasets.build``) writes them to ``data/datasets/<name>-<variant>.jsonl.gz``,
and :func:`load_dataset` reads them back. :func:`load_dataset` also accepts the path of a user's CSV, TSV or JSONL
file (:mod:`sparse_probing.datasets.user`) or of a ``.jsonl.gz`` dataset file, wherever a dataset name is accepted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from . import (  # noqa: F401 (importing them registers their text sources)
    code_language,
    code_sources,
    compound_words,
    data_source,
    factual,
    natural_language,
    paper,
    position,
    prose_sources,
    syntax,
    text_features,
)
from .base import (
    Alignment,
    DatasetError,
    Document,
    Feature,
    ProbingDataset,
    Span,
    align,
    data_dir,
)
from .family import VARIANTS, Family
from .sizing import strata, task_sizes
from .user import is_user_file, load_user_dataset

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        natural_language.FAMILY,
        code_language.FAMILY,
        data_source.FAMILY,
        text_features.FAMILY,
        syntax.FAMILY,
        compound_words.FAMILY,
        factual.FAMILY,
        position.FAMILY,
        *paper.FAMILIES,
    ]
}
"""All feature families by name: the self-built ones in the order of the paper's families, then the paper's own."""

__all__ = [
    "FAMILIES",
    "VARIANTS",
    "Alignment",
    "DatasetError",
    "Document",
    "Feature",
    "ProbingDataset",
    "Span",
    "align",
    "dataset_path",
    "documents_frame",
    "example_documents",
    "is_dataset_file",
    "is_user_file",
    "list_datasets",
    "load_dataset",
    "load_user_dataset",
    "strata",
    "summary_table",
    "task_sizes",
]


def datasets_dir(root: str | Path | None = None) -> Path:
    """Directory of the built dataset files (``data/datasets`` unless ``root`` is given)."""
    return Path(root) if root is not None else data_dir() / "datasets"


def dataset_path(name: str, variant: str = "default", root: str | Path | None = None) -> Path:
    return datasets_dir(root) / f"{name}-{variant}.jsonl.gz"


def list_datasets(root: str | Path | None = None) -> pd.DataFrame:
    """Every family x variant, with whether its file is built: columns ``name, variant, version, built, path``."""
    rows = []
    for name, fam in FAMILIES.items():
        for variant in VARIANTS:
            path = dataset_path(name, variant, root)
            rows.append(
                {"name": name, "variant": variant, "version": fam.version, "built": path.exists(), "path": str(path)}
            )
    return pd.DataFrame(rows)


def is_dataset_file(name: str) -> bool:
    """Whether ``name`` is the path of a dataset file (a user's CSV/TSV/JSONL or a ``.jsonl.gz``), not a family."""
    return isinstance(name, str) and (is_user_file(name) or name.endswith(".jsonl.gz"))


def load_dataset(name: str, variant: str = "default", root: str | Path | None = None) -> ProbingDataset:
    """Load a built dataset by family name and size variant (``smoke`` or ``default``), or a dataset file by path.

    ``name`` may also be the path of a user's ``.csv``/``.tsv``/``.jsonl`` file (read by
    :func:`~sparse_probing.datasets.user.load_user_dataset`; ``variant`` is then only recorded) or of a ``.jsonl.gz``
    file written by :meth:`ProbingDataset.save`; the dataset is then named by the path as given.

    Raises :class:`DatasetError` with the list of available datasets when the name or variant is unknown or the
    file has not been built (run ``make data``), when the file is damaged, and when the file's version differs from
    the builder's.
    """
    if is_user_file(name):
        return load_user_dataset(name, variant)
    if is_dataset_file(name):
        from .user import resolve

        ds = ProbingDataset.load(resolve(name))
        return dataclasses.replace(ds, name=name)
    available = ", ".join(f"{n}-{v}" for n in FAMILIES for v in VARIANTS)
    if name not in FAMILIES or variant not in VARIANTS:
        raise DatasetError(
            f"unknown dataset {name!r} (variant {variant!r}); available: {available}, or the path of a "
            ".csv/.tsv/.jsonl file. Build them with `make data` (python -m sparse_probing.datasets.build)."
        )
    path = dataset_path(name, variant, root)
    if not path.exists():
        built = [p.name.removesuffix(".jsonl.gz") for p in sorted(datasets_dir(root).glob("*.jsonl.gz"))]
        raise DatasetError(
            f"dataset {name}-{variant} is not built: {path} does not exist. Built: {', '.join(built) or 'none'}; "
            f"available: {available}. Build it with `make data` "
            f"(python -m sparse_probing.datasets.build --family {name} --variant {variant})."
        )
    ds = ProbingDataset.load(path)
    if ds.name != name or ds.variant != variant:
        raise DatasetError(
            f"{path} holds dataset {ds.name}-{ds.variant}, not {name}-{variant}: the file was replaced by another "
            "family's; rebuild it with `make data`"
        )
    if ds.version != FAMILIES[name].version:
        raise DatasetError(
            f"{path} has version {ds.version} but the builder is at version {FAMILIES[name].version}; "
            "rebuild it with `make data`"
        )
    return ds


def _balance(values: pd.Series) -> str:
    counts = values.value_counts()
    if counts.empty:
        return ""
    return f"{counts.min() / counts.max():.2f} ({counts.idxmin()}: {counts.min()} / {counts.idxmax()}: {counts.max()})"


def dataset_summary(ds: ProbingDataset) -> dict[str, object]:
    """One summary row: sources, documents, groups, whitespace words, examples, features, classes, balance.

    ``words`` counts whitespace-separated words (tokenizer-agnostic); ``classes`` is the number of distinct labels
    over all classification features (a binary token rule counts 2, regression features 0); ``balance`` is min/max
    class count of the first feature, over its labelled examples (empty for token-level families, whose labels
    exist only after tokenization).
    """
    table = ds.label_table()
    sources = sorted({str(d.meta.get("source", "")) for d in ds.documents} - {""})
    classes = 0
    for f in ds.features:
        if f.task == "classification" and f.rule:
            classes += 2  # a binary token rule
        elif f.task == "classification" and f.name in table:
            classes += table[f.name].dropna().nunique()
    first = ds.features[0].name if ds.features else None
    return {
        "family": ds.name,
        "variant": ds.variant,
        "status": "ok",
        "version": ds.version,
        "level": ds.level,
        "sources": ", ".join(sources),
        "n_sources": len(sources),
        "documents": len(ds.documents),
        "groups": len({d.group for d in ds.documents}),
        "words": sum(len(d.text.split()) for d in ds.documents),
        "examples": len(table) if ds.level != "token" else "every token",
        "features": len(ds.features),
        "classes": classes,
        "balance": _balance(table[first].dropna()) if first and ds.features[0].task == "classification" else "",
    }


def summary_table(variant: str = "default", root: str | Path | None = None) -> pd.DataFrame:
    """One row per built family of ``variant`` (see :func:`dataset_summary`); families not built are skipped.

    A damaged or outdated file does not stop the listing: its row says ``status`` ``damaged: <reason>``.
    """
    rows: list[dict[str, object]] = []
    for name in FAMILIES:
        if dataset_path(name, variant, root).exists():
            try:
                rows.append(dataset_summary(load_dataset(name, variant, root)))
            except DatasetError as err:
                rows.append({"family": name, "variant": variant, "status": f"damaged: {err}", "sources": ""})
    return pd.DataFrame(rows)


def documents_frame(dataset: ProbingDataset) -> pd.DataFrame:
    """One row per document: index, ``doc_id``, ``group``, source, whitespace words and document-level labels.

    Doc ids and groups are stable across rebuilds from the same package versions, so the documents of a split (e.g.
    the test split of a grouped split on ``group``) can be listed and, for instance, kept out of a training corpus.
    """
    rows = []
    for i, d in enumerate(dataset.documents):
        row = {
            "doc": i,
            "doc_id": d.doc_id,
            "group": d.group,
            "source": d.meta.get("source"),
            "words": len(d.text.split()),
        }
        row.update(d.labels)
        rows.append(row)
    return pd.DataFrame(rows)


def example_documents(
    dataset: ProbingDataset, n_per_class: int = 1, feature: str | None = None, max_chars: int = 300
) -> pd.DataFrame:
    """A few documents per class of ``feature`` (default: the first), text shortened, labelled spans marked ⟦…⟧.

    Token-level datasets (labels computed after tokenization) show their first ``n_per_class`` documents.
    """
    fname = feature or dataset.features[0].name
    rows, seen = [], {}
    if dataset.level == "token":  # labels exist only after tokenization: show the first documents
        for doc in dataset.documents[:n_per_class]:
            short = doc.text if len(doc.text) <= max_chars else doc.text[: max_chars - 1] + "…"
            rows.append({"doc_id": doc.doc_id, "group": doc.group, "text": short})
        return pd.DataFrame(rows)
    for doc in dataset.documents:
        if dataset.level == "document":
            value = doc.labels.get(fname)
            text = doc.text
        else:
            spans = doc.spans.get(fname, ())
            if not spans:
                continue
            s = spans[0]
            value = s.value
            text = doc.text[: s.start] + "⟦" + doc.text[s.start : s.end] + "⟧" + doc.text[s.end :]
        if value is None or seen.get(value, 0) >= n_per_class:
            continue
        seen[value] = seen.get(value, 0) + 1
        short = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
        rows.append({fname: value, "doc_id": doc.doc_id, "group": doc.group, "text": short})
    return pd.DataFrame(rows)
