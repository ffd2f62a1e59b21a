"""Figures are drawn for the book's column: never shrunk by the browser, sharp at 2x."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from sparse_probing import plots


@pytest.mark.parametrize(("size", "width"), [((13, 3.4), 100 * plots.COLUMN_INCHES), ((5, 3), 500)])
def test_a_figure_fits_the_column_at_its_natural_size(size, width):
    fig, ax = plt.subplots(1, 2, figsize=size)
    ax[0].plot([0, 1], [0, 1], label="a line")
    ax[0].legend()
    image = plots.for_column(fig)
    pixels = int.from_bytes(image.data[16:20], "big")
    assert image.width == round(pixels / plots.SCALE)  # shown at 1 CSS px per 2 image px
    assert 0.85 * width <= image.width <= 100 * plots.COLUMN_INCHES  # bbox "tight" trims a little
    assert fig.number not in plt.get_fignums()  # closed: shown once


def test_figures_need_a_caption_and_are_numbered(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    figures = plots.Figures()
    with pytest.raises(ValueError, match="needs a caption"):
        figures.show(plt.figure(), " ")
    figures.show(plt.figure(figsize=(4, 3)), "A caption.")
    assert figures.count == 1 and shown[-1].data == "**Figure 1.** A caption."
    plt.close("all")


def test_a_long_table_shows_its_top_rows_and_the_rest_in_a_dropdown():
    import pandas as pd

    frame = pd.DataFrame({"layer": range(30), "value": [x / 3 for x in range(30)]})
    html = plots.long_table(frame, rows=5, what="layers").data
    head, rest = html.split("<details>")
    assert head.count("<tr") == 1 + 5 and "All 30 layers" in rest and rest.count("<tr") == 1 + 30
    assert "<details>" not in plots.long_table(frame.head(7), rows=5).data  # two more rows do not need a dropdown


def test_a_legend_outside_the_axes_does_not_make_the_image_wider_than_the_column():
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot([0, 1], [0, 1], label="a rather long legend entry that sits outside the axes")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    data, width = plots.png_for_column(fig)
    assert int.from_bytes(data[16:20], "big") / plots.SCALE <= 100 * plots.COLUMN_INCHES + 1
    assert width <= 100 * plots.COLUMN_INCHES


def test_zoom_near_top_repeats_only_the_lines_near_one() -> None:
    import matplotlib.pyplot as plt

    from sparse_probing.plots import zoom_near_top

    _, ax = plt.subplots()
    ax.plot([1, 2, 4], [0.97, 0.98, 0.985], label="a")
    ax.plot([1, 2, 4], [0.975, 0.982, 0.99], label="b")
    ax.plot([1, 2, 4], [0.2, 0.3, 0.5], label="control")
    ax.axhline(0.96, color="C3")
    ax.set_ylim(0, 1.02)
    inset = zoom_near_top(ax)
    assert inset is not None and len(inset.get_lines()) == 3  # a, b and the reference line; not the control
    lo, hi = inset.get_ylim()
    assert 0.9 < lo < 0.96 and 0.99 < hi < 1.0
    _, ax2 = plt.subplots()
    ax2.plot([1, 2], [0.99, 0.995])
    ax2.plot([1, 2], [0.3, 0.4])
    assert zoom_near_top(ax2) is None  # one line near the top: nothing to separate
    plt.close("all")
