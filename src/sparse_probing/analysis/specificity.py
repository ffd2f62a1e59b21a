"""What else a unit fires on: probes trained on a balanced task, scored over every token position of held-out text.

A single neuron that separates a bigram's positives from its hard negatives can still fire on many unrelated
inputs; Gurnee et al. (2023) show an early Pythia-70M neuron that responds to dozens of n-grams and argue that a
sparse *combination* of such neurons is what is specific to a compound word. A balanced task cannot see this: its
negatives are chosen near the positives. Here every scorer is trained on the balanced task as usual and then read
on a *broad sample*: every token position of held-out documents (the compound-word contexts of the test split, where
every occurrence of a bigram is labelled, plus ordinary text), so the question "what else does it fire on" is
answered on the text distribution itself.

* :func:`build_broad_sample` tokenizes the texts once and labels every position where a bigram ends (tokenizer
  agnostic: the bigram is found in the characters, the label goes to the token that ends it).
* :func:`readout` runs the model once over the sample up to the last needed hook and keeps only ``acts @ W`` for a
  matrix ``W`` of probe directions (one column per probe), so scoring hundreds of probes on tens of thousands of
  positions costs one partial forward pass and a few megabytes, not an all-position cache.
* :func:`specificity` scores one scorer against one label over all positions: average precision, precision at the
  number of targets, and the share of non-target positions where the probe fires at its own threshold.
* :func:`token_matched_auc` asks whether a unit responds to a context rather than to tokens frequent in it: its
  activation on the *same token ids* inside the context against outside it.
* :func:`top_positions` lists a unit's most activating positions with the token marked, the way the field shows a
  polysemantic neuron.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score

__all__ = [
    "BroadSample",
    "bigram_words",
    "build_broad_sample",
    "neuron_directions",
    "readout",
    "specificity",
    "token_matched_auc",
    "top_positions",
]


def bigram_words(feature: str) -> tuple[str, ...]:
    """The words of a compound-word feature name: ``social_security`` -> ``("social", "security")``."""
    words = tuple(w for w in re.split(r"[_\s-]+", feature) if w)
    if len(words) < 2:
        raise ValueError(f"feature {feature!r} is not a compound word of two or more words separated by '_'")
    return words


def _pattern(feature: str) -> re.Pattern[str]:
    words = bigram_words(feature)
    return re.compile(r"(?<![\w])" + r"[\s\-]+".join(re.escape(w) for w in words) + r"(?![\w])", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class BroadSample:
    """Every real token position of some texts, with the positions where each bigram ends labelled."""

    texts: tuple[str, ...]
    ids: tuple[np.ndarray, ...]
    """Token ids per text (with the tokenizer's special tokens), truncated to the context length."""
    offsets: tuple[np.ndarray, ...]
    """Character offsets per token (special tokens (0, 0))."""
    positions: pd.DataFrame
    """One row per scored position: ``doc`` (text index), ``pos`` (token index), ``token``, ``previous`` (token id
    before it, -1 at the start), ``source`` (where the text comes from)."""
    labels: Mapping[str, np.ndarray]
    """Per bigram: a boolean per position, True where the bigram ends at that token."""

    @property
    def n_positions(self) -> int:
        return len(self.positions)

    def snippet(self, row: int, width: int = 60) -> str:
        """The text around position ``row`` with its token marked ``[[...]]`` (plain text, never markup)."""
        d, p = int(self.positions["doc"].iat[row]), int(self.positions["pos"].iat[row])
        text, (start, end) = self.texts[d], self.offsets[d][p]
        left = text[max(0, start - width) : start]
        right = text[end : end + width // 3]
        return " ".join(f"{left}[[{text[start:end]}]]{right}".split())


def build_broad_sample(
    tokenizer: Any, texts: Mapping[str, Sequence[str]], bigrams: Sequence[str], *, max_length: int = 128
) -> BroadSample:
    """Tokenize ``texts`` (per source name) and label every position where one of ``bigrams`` ends.

    A position is labelled for a bigram when the token that holds the last character of an occurrence of its words
    (case-insensitive, whole words, separated by spaces or hyphens) is that position. Special tokens are not scored.
    """
    from ..datasets.base import tokenize_documents

    all_texts: list[str] = []
    sources: list[str] = []
    for source, items in texts.items():
        all_texts.extend(items)
        sources.extend([source] * len(items))
    if not all_texts:
        raise ValueError("the broad sample has no text: pass at least one source with texts")
    ids, offsets = tokenize_documents(tokenizer, all_texts, max_length)
    patterns = {b: _pattern(b) for b in bigrams}
    rows_doc, rows_pos, rows_tok, rows_prev, rows_src = [], [], [], [], []
    hits: dict[str, list[tuple[int, int]]] = {b: [] for b in bigrams}
    for d, (text, ids_P, offs_P2) in enumerate(zip(all_texts, ids, offsets, strict=True)):
        real = np.flatnonzero(offs_P2[:, 1] > offs_P2[:, 0])
        rows_doc.append(np.full(real.size, d))
        rows_pos.append(real)
        rows_tok.append(ids_P[real])
        rows_prev.append(np.where(real > 0, ids_P[np.maximum(real - 1, 0)], -1))
        rows_src.append(np.full(real.size, sources[d], dtype=object))
        covered = offs_P2[:, 1].max(initial=0)
        for b, pattern in patterns.items():
            for m in pattern.finditer(text):
                last = m.end() - 1
                if last >= covered:
                    continue  # truncated away by the context length
                tok = np.flatnonzero((offs_P2[:, 0] <= last) & (offs_P2[:, 1] > last))
                if tok.size:
                    hits[b].append((d, int(tok[0])))
    positions = pd.DataFrame({
        "doc": np.concatenate(rows_doc), "pos": np.concatenate(rows_pos), "token": np.concatenate(rows_tok),
        "previous": np.concatenate(rows_prev), "source": np.concatenate(rows_src),
    })  # fmt: skip
    index = {(d, p): i for i, (d, p) in enumerate(zip(positions["doc"], positions["pos"], strict=True))}
    labels = {}
    for b in bigrams:
        y = np.zeros(len(positions), dtype=bool)
        for key in hits[b]:
            if key in index:
                y[index[key]] = True
        labels[b] = y
    return BroadSample(tuple(all_texts), tuple(ids), tuple(offsets), positions, labels)


def neuron_directions(d_mlp: int, neurons_by_layer: Mapping[int, Sequence[int]]) -> dict[str, np.ndarray]:
    """:func:`readout` directions that read single MLP neurons: per layer a (d_mlp, m) one-hot matrix at
    ``blocks.{layer}.mlp.hook_post``, column j reading the j-th listed neuron (a neuron may be listed twice)."""
    out = {}
    for layer, neurons in neurons_by_layer.items():
        W = np.zeros((d_mlp, len(neurons)), dtype=np.float32)
        W[np.asarray(neurons, dtype=int), np.arange(len(neurons))] = 1.0
        out[f"blocks.{int(layer)}.mlp.hook_post"] = W
    return out


def readout(
    model: Any, sample: BroadSample, directions: Mapping[str, np.ndarray], *, batch_size: int = 16
) -> dict[str, np.ndarray]:
    """``acts @ W`` at every scored position of ``sample`` for each hook name and its direction matrix ``W`` (D, m).

    One forward pass per batch of texts, stopped after the last requested hook (nothing after it is computed).
    Returns float32 arrays (positions, m) aligned with ``sample.positions``.
    """
    from ..activations import _Done, _pad

    if not directions:
        raise ValueError("directions is empty: name at least one hook and its (D, m) matrix")
    weights = {h: torch.as_tensor(np.asarray(W, dtype=np.float32)) for h, W in directions.items()}
    for hook, W in weights.items():
        if W.ndim != 2:
            raise ValueError(f"the directions of {hook!r} must be a (D, m) matrix, got shape {tuple(W.shape)}")
    pos = sample.positions
    rows_of = pos.groupby("doc").indices
    positions_N = pos["pos"].to_numpy()
    out = {h: np.zeros((len(pos), W.shape[1]), dtype=np.float32) for h, W in weights.items()}
    pad_id = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else 0
    docs = sorted(rows_of, key=lambda d: len(sample.ids[d]))  # length-bucketed batches
    from .._progress import tqdm

    for start in tqdm(range(0, len(docs), batch_size), desc="reading the broad sample", unit="batch", leave=False):
        batch = docs[start : start + batch_size]
        tokens_BP, mask_BP = _pad([sample.ids[d] for d in batch], pad_id)
        seen: set[str] = set()

        def hook_for(name: str, batch: list[int] = batch, seen: set[str] = seen) -> Any:
            def fn(acts_BPD: torch.Tensor, hook: Any) -> None:
                proj_BPM = acts_BPD.float() @ weights[name]
                for j, d in enumerate(batch):
                    rows = rows_of[d]
                    out[name][rows] = proj_BPM[j, positions_N[rows]].numpy()
                seen.add(name)
                if len(seen) == len(weights):
                    raise _Done

            return fn

        with torch.inference_mode():
            try:
                model.bridge.run_with_hooks(
                    tokens_BP, fwd_hooks=[(h, hook_for(h)) for h in weights], return_type=None, attention_mask=mask_BP
                )
            except _Done:
                pass
        missing = set(weights) - seen
        if missing:
            raise RuntimeError(f"hooks {sorted(missing)} never fired: are they hooks of this model?")
    return out


def specificity(score: np.ndarray, target: np.ndarray, *, threshold: float = 0.0) -> dict[str, float]:
    """How specific a scorer is to a label over all positions of a broad sample.

    ``ap``: average precision of the score for the targets; ``precision_at_n``: share of targets among the n highest
    scores, n the number of targets; ``fire_rate``: share of non-target positions whose score exceeds ``threshold``
    (the probe's own decision boundary); ``recall``: share of targets above it; ``n_targets``, ``n_positions``.
    """
    s_N, y_N = np.asarray(score, dtype=np.float64), np.asarray(target, dtype=bool)
    n_pos = int(y_N.sum())
    if s_N.shape != y_N.shape or s_N.ndim != 1:
        raise ValueError(f"score and target must be 1-d of one length, got {s_N.shape} and {y_N.shape}")
    if n_pos == 0 or n_pos == y_N.size:
        nan = float("nan")
        return {"ap": nan, "precision_at_n": nan, "fire_rate": nan, "recall": nan, "n_targets": n_pos,
                "n_positions": int(y_N.size)}  # fmt: skip
    top = np.argsort(-s_N, kind="stable")[:n_pos]
    fires = s_N > threshold
    return {
        "ap": float(average_precision_score(y_N, s_N)),
        "precision_at_n": float(y_N[top].mean()),
        "fire_rate": float(fires[~y_N].mean()),
        "recall": float(fires[y_N].mean()),
        "n_targets": n_pos,
        "n_positions": int(y_N.size),
    }


def top_positions(sample: BroadSample, score: np.ndarray, target: np.ndarray, *, n: int = 20) -> pd.DataFrame:
    """The ``n`` positions with the highest ``score``: ``rank, score, target, token_text, snippet`` (the token is
    marked ``[[...]]`` in the snippet; all plain text)."""
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")[:n]
    rows = []
    for rank, r in enumerate(order, start=1):
        d, p = int(sample.positions["doc"].iat[r]), int(sample.positions["pos"].iat[r])
        start, end = sample.offsets[d][p]
        rows.append({"rank": rank, "score": float(score[r]), "target": bool(target[r]),
                     "token_text": sample.texts[d][start:end], "snippet": sample.snippet(int(r))})  # fmt: skip
    return pd.DataFrame(rows, columns=["rank", "score", "target", "token_text", "snippet"])


def token_matched_auc(score: Any, inside: Any, token: Any) -> dict[str, float]:
    """ROC-AUC of ``score`` for ``inside`` (a position lies in the context) computed only between positions holding
    the same token id: the share of (inside, outside) pairs with equal tokens where the inside position scores
    higher (ties count a half). 0.5 when the unit only tracks which tokens occur; near 1 when it fires on any token
    of the context more than on the same token elsewhere (a context neuron, not a token detector).

    Returns ``auc``, ``pairs`` (matched pairs) and ``tokens`` (token ids seen on both sides); ``auc`` is NaN when no
    token id occurs on both sides."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(inside, dtype=bool)
    t = np.asarray(token)
    if not s.shape == y.shape == t.shape or s.ndim != 1:
        raise ValueError(
            f"score, inside and token need one value per position, got shapes {s.shape}, {y.shape}, {t.shape}"
        )
    df = pd.DataFrame({"s": s, "y": y, "t": t})
    g = df.groupby("t", sort=False)
    df["r"] = g["s"].rank(method="average")
    per = (
        df.assign(ry=df["r"] * df["y"]).groupby("t", sort=False).agg(n=("y", "size"), n1=("y", "sum"), r1=("ry", "sum"))
    )
    per = per[(per["n1"] > 0) & (per["n1"] < per["n"])]
    pairs = (per["n1"] * (per["n"] - per["n1"])).to_numpy(dtype=np.float64)
    if pairs.sum() == 0:
        return {"auc": float("nan"), "pairs": 0.0, "tokens": 0.0}
    u = (per["r1"] - per["n1"] * (per["n1"] + 1) / 2).to_numpy(dtype=np.float64)
    return {"auc": float(u.sum() / pairs.sum()), "pairs": float(pairs.sum()), "tokens": float(len(per))}
