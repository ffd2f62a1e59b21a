"""Surface baselines: the best probe that never looks inside the model, for every task.

"A neuron detects social security" means little if the identity of the current token does as well. For each
binary task of a cache entry, four classifiers that see only the input (or the model's input embedding) are fitted
on the training rows, tuned on validation and scored on test:

``token``
    one-hot of the current token (the last token of the example's window);
``bigram``
    one-hot of the previous token, the current token and the (previous, current) pair;
``bag_of_tokens``
    normalized token counts over the example's window (the natural baseline of document-level tasks);
``embedding``
    a k-sparse probe (top-k by mean difference + L2 logistic regression, k chosen on validation) on the residual
    stream entering layer 0 (``blocks.0.hook_resid_pre``: the token embeddings, pooled like the neurons).

The one-hot baselines are class-balanced logistic regressions (``C`` chosen on validation ROC-AUC from
:data:`C_GRID`; vocabulary from the training rows only). :func:`surface_baselines` runs them on a cache entry,
:func:`best_surface` keeps the best per task (chosen on validation) and :func:`surface_margin` reports a neuron
result as its margin over that baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from ..metrics import binary_metrics

__all__ = [
    "BASELINES",
    "C_GRID",
    "EMBEDDING_KS",
    "TokenWindows",
    "best_surface",
    "embedding_cache",
    "fit_surface_baseline",
    "surface_baselines",
    "surface_features",
    "surface_margin",
    "token_windows",
]

BASELINES: tuple[str, ...] = ("token", "bigram", "bag_of_tokens", "embedding")
"""Names of the surface baselines."""

C_GRID: tuple[float, ...] = (0.1, 1.0, 10.0)
"""Inverse L2 strengths tried for the one-hot baselines (chosen on validation ROC-AUC)."""

EMBEDDING_KS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
"""Sparsity levels tried for the embedding baseline (chosen on validation ROC-AUC)."""

_NONE = -1  # "no previous token" (the window starts the document)


@dataclass(frozen=True, eq=False)
class TokenWindows:
    """The input tokens of every example of a cache entry."""

    current: np.ndarray
    """Token id at the last position of each example's window, (N,)."""
    previous: np.ndarray
    """Token id just before it (-1 at the start of a document), (N,)."""
    windows: list[np.ndarray]
    """All token ids of each example's window (``tok_start:tok_end``)."""


def token_windows(acts: Any, tokenizer: Any, *, dataset: Any | None = None) -> TokenWindows:
    """Re-tokenize the documents of a cache entry and read each example's tokens at its cached positions."""
    from ..datasets.base import tokenize_documents
    from ..study import dataset_of

    ds = dataset_of(acts) if dataset is None else dataset
    ex = acts.examples
    max_length = int(acts.meta["spec"]["max_length"])
    docs = sorted(set(ex["doc"].tolist()))
    ids, _ = tokenize_documents(tokenizer, [ds.documents[d].text for d in docs], max_length)
    ids_of = dict(zip(docs, ids, strict=True))
    current, previous, windows = [], [], []
    for doc, start, end in zip(ex["doc"], ex["tok_start"], ex["tok_end"], strict=True):
        doc_ids = ids_of[doc]
        if not 0 <= int(start) < int(end) <= doc_ids.size:
            raise ValueError(
                f"example window [{start}, {end}) of document {doc} lies outside its {doc_ids.size} tokens: pass "
                "the tokenizer of the model that built this cache entry."
            )
        current.append(int(doc_ids[end - 1]))
        previous.append(int(doc_ids[end - 2]) if end >= 2 else _NONE)
        windows.append(doc_ids[start:end])
    return TokenWindows(np.asarray(current), np.asarray(previous), windows)


def surface_features(tokens: TokenWindows, kind: str, train_rows: np.ndarray) -> sp.csr_matrix:
    """Sparse design matrix of a one-hot baseline (``token``, ``bigram`` or ``bag_of_tokens``) for every example.

    Columns are the token ids (and pairs) seen in ``train_rows``; others get no column.
    """
    N = tokens.current.size
    if kind == "token":
        keys = [[("t", int(t))] for t in tokens.current]
    elif kind == "bigram":
        keys = [
            [("t", int(t)), ("p", int(p)), ("b", int(p), int(t))]
            for t, p in zip(tokens.current, tokens.previous, strict=True)
        ]
    elif kind == "bag_of_tokens":
        keys = [[("t", int(t)) for t in w] for w in tokens.windows]
    else:
        raise ValueError(f"unknown one-hot baseline {kind!r}; choose 'token', 'bigram' or 'bag_of_tokens'.")
    vocab: dict[tuple, int] = {}
    for i in np.asarray(train_rows):
        for key in keys[i]:
            vocab.setdefault(key, len(vocab))
    rows, cols, vals = [], [], []
    for i, row_keys in enumerate(keys):
        known = [vocab[k] for k in row_keys if k in vocab]
        if not known:
            continue
        uniq, counts = np.unique(known, return_counts=True)
        weight = counts / len(row_keys) if kind == "bag_of_tokens" else np.ones(uniq.size)
        rows.extend([i] * uniq.size)
        cols.extend(uniq.tolist())
        vals.extend(weight.tolist())
    return sp.csr_matrix((vals, (rows, cols)), shape=(N, max(len(vocab), 1)))


def _scores(y: np.ndarray, score: np.ndarray, suffix: str) -> dict[str, float]:
    if y.size == 0:
        return {}
    return {f"{m}_{suffix}": v for m, v in binary_metrics(y, (score > 0).astype(int), score).items()}


def fit_surface_baseline(
    F: Any, y: np.ndarray, rows: Mapping[str, np.ndarray], *, C_grid: Sequence[float] = C_GRID
) -> dict[str, Any]:
    """Class-balanced logistic regression on the design matrix ``F`` (rows of train/val/test), ``C`` chosen on
    validation ROC-AUC (ties: the smaller C); returns ``C`` and the ``{metric}_{val,test}`` scores."""
    y_N = np.asarray(y).astype(np.int64)
    tr, va, te = rows["train"], rows["val"], rows["test"]
    best: tuple[float, float, Any] | None = None
    for C in sorted(C_grid):
        model = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=1000)
        model.fit(F[tr], y_N[tr])
        auc = binary_metrics(y_N[va], model.predict(F[va]), model.decision_function(F[va]))["roc_auc"]
        auc = -np.inf if not np.isfinite(auc) else auc
        if best is None or auc > best[0]:
            best = (auc, C, model)
    assert best is not None
    _, C, model = best
    out: dict[str, Any] = {"param": f"C={C:g}"}
    for name, idx in (("val", va), ("test", te)):
        out.update(_scores(y_N[idx], model.decision_function(F[idx]), name))
    return out


def _embedding_baseline(X_ND: Any, y: np.ndarray, rows: Mapping[str, np.ndarray], ks: Sequence[int]) -> dict[str, Any]:
    from ..probes import SparseProbe

    y_N = np.asarray(y).astype(np.int64)
    parts = {name: np.asarray(X_ND[idx], dtype=np.float32) for name, idx in rows.items()}
    D = parts["train"].shape[1]
    probe = SparseProbe(ranker="mean_diff", random_state=0)
    fits = probe.fit_path(parts["train"], y_N[rows["train"]], [k for k in ks if k <= D] or [D])
    scored = []
    for fit in fits:
        res: dict[str, Any] = {"param": f"k={fit.k}"}
        for name in ("val", "test"):
            res.update(_scores(y_N[rows[name]], fit.decision_function(parts[name]), name))
        scored.append(res)
    return max(scored, key=lambda r: np.nan_to_num(r.get("roc_auc_val", np.nan), nan=-np.inf))


def embedding_cache(acts: Any, *, model: Any | None = None, dataset: Any | None = None) -> Any:
    """The cache entry of the embedding baseline: the same model, dataset and pooling as ``acts``, read at
    ``blocks.0.hook_resid_pre`` (computed once, then reused). ``model`` and ``dataset`` are passed on to
    :func:`~sparse_probing.activations.load_or_compute` (needed for a dataset that is not a shipped family)."""
    from ..activations import ActivationSpec, load_or_compute

    spec = dict(acts.meta["spec"])
    spec.update(site="hook_resid_pre", layers=(0,))
    fields = set(ActivationSpec.__dataclass_fields__)
    return load_or_compute(
        ActivationSpec(**{k: v for k, v in spec.items() if k in fields}), model=model, dataset=dataset
    )


def surface_baselines(
    acts: Any,
    tasks: Mapping[str, np.ndarray],
    split: Any,
    tokenizer: Any,
    *,
    embeddings: Any | None = None,
    baselines: Sequence[str] = BASELINES,
    dataset: Any | None = None,
    C_grid: Sequence[float] = C_GRID,
    embedding_ks: Sequence[int] = EMBEDDING_KS,
) -> pd.DataFrame:
    """Every surface baseline on every task of a cache entry: one row per (feature, baseline).

    Parameters
    ----------
    acts : the cache entry whose examples (documents and token windows) define the tasks.
    tasks : feature -> labels (0/1, NaN where a row takes no part), e.g. :func:`sparse_probing.study.binary_tasks`.
    split : the same :class:`~sparse_probing.splits.Split` as the neuron probes.
    tokenizer : the model's tokenizer (``LoadedModel.tokenizer``).
    embeddings : the embedding cache entry (:func:`embedding_cache`) or an ``(N, d_model)`` array; without it the
        ``embedding`` baseline is skipped.
    baselines : which of :data:`BASELINES` to run.

    Returns columns ``feature, baseline, param`` (the chosen C or k) and ``{f1,mcc,precision,recall,pr_auc,
    roc_auc}_{val,test}``.
    """
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINES}.")
    tokens = token_windows(acts, tokenizer, dataset=dataset) if set(baselines) - {"embedding"} else None
    X_emb = None
    if "embedding" in baselines and embeddings is not None:
        X_emb = embeddings.layer(0) if hasattr(embeddings, "layer") else np.asarray(embeddings)
        if X_emb.shape[0] != len(acts.examples):
            raise ValueError(
                f"embeddings have {X_emb.shape[0]} rows but the cache entry has {len(acts.examples)} examples: "
                "build them with embedding_cache(acts)."
            )
    records = []
    design: dict[str, sp.csr_matrix] = {}
    for feature, y in tasks.items():
        y_N = np.asarray(y, dtype=np.float64)
        usable = ~np.isnan(y_N)
        rows = {
            name: idx[usable[idx]] for name, idx in (("train", split.train), ("val", split.val), ("test", split.test))
        }
        y01 = np.where(usable, y_N, 0).astype(np.int64)
        if np.unique(y01[rows["train"]]).size < 2:
            continue
        for name in baselines:
            if name == "embedding":
                if X_emb is None:
                    continue
                res = _embedding_baseline(X_emb, y01, rows, embedding_ks)
            else:
                if name not in design:
                    assert tokens is not None
                    design[name] = surface_features(tokens, name, split.train)
                res = fit_surface_baseline(design[name], y01, rows, C_grid=C_grid)
            records.append({"feature": feature, "baseline": name, **res})
    return pd.DataFrame.from_records(records)


def best_surface(table: pd.DataFrame, *, metric: str = "roc_auc_val") -> pd.DataFrame:
    """Per feature, the surface baseline with the best validation ``metric`` (ties: the order of
    :data:`BASELINES`, simplest first); columns are prefixed ``surface_`` except ``feature``."""
    order = {name: i for i, name in enumerate(BASELINES)}
    ranked = table.assign(_order=table["baseline"].map(order)).sort_values(
        ["feature", metric, "_order"], ascending=[True, False, True], kind="stable"
    )
    best = ranked.groupby("feature", sort=True).head(1).drop(columns="_order")
    return best.rename(columns={c: f"surface_{c}" for c in best.columns if c != "feature"}).reset_index(drop=True)


def surface_margin(
    results: pd.DataFrame, surface: pd.DataFrame, *, metrics: Sequence[str] = ("f1_test", "roc_auc_test")
) -> pd.DataFrame:
    """Join neuron results (one row per feature, or per feature and layer) with the best surface baseline of each
    feature and add ``margin_<metric> = metric - surface_<metric>``: what a neuron result must beat."""
    best = best_surface(surface) if "baseline" in surface.columns else surface
    out = results.merge(best, on="feature", how="left")
    for m in metrics:
        out[f"margin_{m}"] = out[m] - out[f"surface_{m}"]
    return out
