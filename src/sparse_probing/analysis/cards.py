"""Neuron cards: a neuron's top-activating contexts, every token shaded by the neuron's activation on it.

The field's usual view of a text neuron (as in CircuitsVis's text-neuron view): the texts on which a neuron is most
active, each token's background as strong as the neuron's activation there. Here it is plain HTML that renders
offline. :func:`neuron_contexts` reads the activations (one forward pass per batch of texts, stopped after the last
layer it needs); :func:`card_html` draws one card; :func:`neuron_link` is the link a table puts on a neuron's name.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Context", "card_html", "neuron_anchor", "neuron_contexts", "neuron_link"]

RAISE_RGB = (230, 85, 13)
"""Background of a token where the neuron moves in its own direction (orange), alpha = activation / card maximum."""
AGAINST_RGB = (49, 130, 189)
"""Background where it moves the other way (blue)."""


@dataclass(frozen=True)
class Context:
    """A window of one text around the neuron's peak: the text's pieces (one per token, with the whitespace before
    the next token) and the neuron's activation on each, signed so that its own direction is positive."""

    pieces: tuple[str, ...]
    values: np.ndarray
    peak: int
    """Index of the peak piece within the window."""
    label: str = ""


def neuron_anchor(layer: int, neuron: int) -> str:
    """The HTML id of a neuron's card (``neuron-l{layer}-n{neuron}``)."""
    return f"neuron-l{int(layer)}-n{int(neuron)}"


def neuron_link(layer: int, neuron: int) -> str:
    """A table cell naming the neuron as ``L{layer} N{neuron}``, linked to its card on the same page."""
    return f'<a href="#{neuron_anchor(layer, neuron)}">L{int(layer)} N{int(neuron)}</a>'


def neuron_contexts(
    model: Any,
    units: Mapping[tuple[int, int], Sequence[tuple[str, str]]],
    *,
    signs: Mapping[tuple[int, int], float] | None = None,
    max_length: int = 128,
    window: int = 12,
    batch_size: int = 16,
) -> dict[tuple[int, int], list[Context]]:
    """The window of ``window`` tokens either side of each text's peak, per (layer, neuron) of ``units``.

    ``units`` maps ``(layer, neuron)`` (an MLP neuron, ``blocks.{layer}.mlp.hook_post``) to its texts as
    ``(label, text)`` pairs; ``signs`` gives -1 for a neuron read in its negative direction (default +1). Texts are
    truncated to ``max_length`` tokens.
    """
    from .specificity import build_broad_sample, neuron_directions, readout

    if not units:
        return {}
    texts = list(dict.fromkeys(t for items in units.values() for _, t in items))
    index = {t: i for i, t in enumerate(texts)}
    sample = build_broad_sample(model.tokenizer, {"cards": texts}, (), max_length=max_length)
    by_layer: dict[int, list[int]] = {}
    for layer, neuron in sorted({(int(a), int(b)) for a, b in units}):
        by_layer.setdefault(layer, []).append(neuron)
    column = {(layer, n): j for layer, neurons in by_layer.items() for j, n in enumerate(neurons)}
    out = readout(model, sample, neuron_directions(model.d_mlp, by_layer), batch_size=batch_size)
    rows_of = sample.positions.groupby("doc").indices
    pos_N = sample.positions["pos"].to_numpy()
    result: dict[tuple[int, int], list[Context]] = {}
    for (layer, neuron), items in units.items():
        sign = float((signs or {}).get((layer, neuron), 1.0))
        acts_P = out[f"blocks.{int(layer)}.mlp.hook_post"][:, column[(int(layer), int(neuron))]]
        contexts = []
        for label, text in items:
            d = index[text]
            rows = rows_of.get(d)
            if rows is None or not len(rows):
                continue
            offs = sample.offsets[d]
            starts = [int(offs[p, 0]) for p in pos_N[rows]]
            ends = [*starts[1:], int(offs[pos_N[rows][-1], 1])]
            values = sign * acts_P[rows].astype(np.float64)
            peak = int(np.argmax(values))
            lo, hi = max(0, peak - window), min(len(rows), peak + window + 1)
            pieces = tuple(text[a:b] for a, b in zip(starts[lo:hi], ends[lo:hi], strict=True))
            contexts.append(Context(pieces=pieces, values=values[lo:hi], peak=peak - lo, label=label))
        result[(int(layer), int(neuron))] = contexts
    return result


def _shade(value: float, top: float) -> str:
    rgb = RAISE_RGB if value >= 0 else AGAINST_RGB
    alpha = min(abs(value) / top, 1.0) if top > 0 else 0.0
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f})"


def _piece(text: str) -> str:
    return html.escape(text.replace("\r", "").replace("\n", "⏎ ").replace("\t", " "))


def card_html(layer: int, neuron: int, title: str, contexts: Sequence[Context]) -> str:
    """One card: its title, then each context on one line, every token shaded by the neuron's activation (orange in
    the neuron's direction, blue against it, full colour at the card's largest value; the value shows on hover) and
    the peak token underlined."""
    top = max((float(np.max(c.values)) for c in contexts if len(c.values)), default=0.0)
    lines = []
    for c in contexts:
        spans = "".join(
            f'<span style="background:{_shade(float(v), top)}" title="{float(v):.3f}"'
            + (' class="nc-peak"' if i == c.peak else "")
            + f">{_piece(p)}</span>"
            for i, (p, v) in enumerate(zip(c.pieces, c.values, strict=True))
        )
        label = f'<span class="nc-label">{html.escape(c.label)}</span> ' if c.label else ""
        lines.append(f'<div class="nc-context">{label}{spans}</div>')
    body = "".join(lines) or '<div class="nc-context">no text</div>'
    return (
        f'<div class="neuron-card" id="{neuron_anchor(layer, neuron)}"><div class="nc-title">'
        f"<b>L{int(layer)} N{int(neuron)}</b> {html.escape(title)} (peak {top:.3f})</div>{body}</div>"
    )
