"""What a neuron responds to: the examples that activate it most, with the label-carrying text in context."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..activations import CachedActivations
from ..datasets import ProbingDataset
from ..datasets.base import tokenize_documents
from ..study import dataset_of

__all__ = ["top_examples"]


def _snippet(text: str, start: int, end: int, width: int) -> str:
    left = text[max(0, start - width) : start]
    right = text[end : end + width]
    inner = text[start:end]
    return " ".join(
        f"{'…' if start > width else ''}{left}⟦{inner}⟧{right}{'…' if end + width < len(text) else ''}".split()
    )


def top_examples(
    acts: CachedActivations,
    layer: int,
    neuron: int,
    tokenizer: Any,
    *,
    n: int = 5,
    width: int = 40,
    lowest: bool = False,
    dataset: ProbingDataset | None = None,
) -> pd.DataFrame:
    """The examples on which one neuron's (pooled) activation is highest, as text with the example marked ⟦so⟧.

    For document-level data the mark covers the pooled window (shown truncated to ``width`` characters on each
    side of its start); for spans and tokens it covers the span or token with ``width`` characters of context.
    ``dataset`` is the cached dataset when it is not a shipped family (default: loaded from the cache's spec).
    """
    x = np.asarray(acts.layer(layer)[:, neuron], dtype=np.float32)
    order = np.argsort(x if lowest else -x, kind="stable")[:n]
    ds = dataset_of(acts) if dataset is None else dataset
    ex = acts.examples.iloc[order]
    max_length = int(acts.meta["spec"]["max_length"])
    docs = sorted(set(ex["doc"].tolist()))
    _, offsets = tokenize_documents(tokenizer, [ds.documents[d].text for d in docs], max_length)
    offsets_of = dict(zip(docs, offsets, strict=True))
    rows = []
    for i, (_, r) in zip(order, ex.iterrows(), strict=True):
        text, offs = ds.documents[r["doc"]].text, offsets_of[r["doc"]]
        start, end = int(offs[r["tok_start"], 0]), int(offs[r["tok_end"] - 1, 1])
        if ds.level == "document":
            end = min(end, start + width)
        labels = ", ".join(
            f if v in (1, True) else f"{f}={v}" for f in acts.features if pd.notna(v := r[f]) and v not in (0, False)
        )
        rows.append({"activation": float(x[i]), "text": _snippet(text, start, end, width), "labels": labels})
    return pd.DataFrame(rows)
