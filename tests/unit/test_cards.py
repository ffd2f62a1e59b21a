"""Neuron cards: shading, escaping, anchors and links."""

from __future__ import annotations

import re

import numpy as np

from sparse_probing.analysis.cards import Context, card_html, neuron_anchor, neuron_link


def test_card_shades_each_token_by_its_value_and_escapes_text() -> None:
    ctx = Context(pieces=("<b>", " x\n", "y"), values=np.array([0.0, 2.0, -1.0]), peak=1, label="lang=fr")
    html = card_html(3, 17, "natural_language / fr", [ctx, Context(("z",), np.array([1.0]), 0)])
    assert f'id="{neuron_anchor(3, 17)}"' in html and "<b>L3 N17</b>" in html and "(peak 2.000)" in html
    assert "&lt;b&gt;" in html and "<b>" not in html.replace("<b>L3 N17</b>", "")  # text never becomes markup
    assert "x⏎ " in html  # newlines shown, one line per context
    alphas = [float(a) for a in re.findall(r"rgba\(\d+,\d+,\d+,([\d.]+)\)", html)]
    assert alphas == [0.0, 1.0, 0.5, 0.5]  # scaled by the card's peak, the negative one in the other colour
    assert html.count("rgba(49,130,189") == 1 and html.count('class="nc-peak"') == 2
    assert html.count('class="nc-context"') == 2 and "lang=fr" in html


def test_link_points_at_the_card() -> None:
    assert neuron_link(3, 17) == f'<a href="#{neuron_anchor(3, 17)}">L3 N17</a>'
    assert neuron_anchor(3, 17) == "neuron-l3-n17"
