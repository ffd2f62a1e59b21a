"""The site measurements on a hand-made page: what they report is what a browser lays out."""

import pytest

from sparse_probing.sitecheck import chromium, measure_page, page_weight

PAGE = """<html><head><link rel="stylesheet" href="style.css"><script src="app.js"></script></head><body>
<article class="bd-article" style="width: 600px">
<p style="height: 300px">text</p>
<div class="admonition">the answer</div>
<div style="overflow-x: auto"><table style="width: 900px"><tr><td>scrolls inside</td></tr></table></div>
<table id="spills" style="width: 800px"><tr><td>spills over</td></tr></table>
<img src="fig.png" style="width: 1200px; max-width: 100%">
</article></body></html>"""


def _site(tmp_path):
    (tmp_path / "style.css").write_text(
        "@font-face { src: url('font.woff2') format('woff2'), url(font.ttf) format('truetype'); } body { margin: 0 }"
    )
    (tmp_path / "font.woff2").write_bytes(b"0" * 1000)
    (tmp_path / "font.ttf").write_bytes(b"0" * 3000)  # never fetched: the browser takes the woff2
    (tmp_path / "app.js").write_text("var a = 1;")
    (tmp_path / "fig.png").write_bytes(b"1" * 500)
    page = tmp_path / "page.html"
    page.write_text(PAGE)
    return page


def test_page_weight_counts_the_page_and_what_it_loads(tmp_path):
    page = _site(tmp_path)
    weight = page_weight(page)
    assert weight["fonts"] == 1000 and weight["images"] == 500 and weight["js"] == 10
    assert weight["total"] == page.stat().st_size + 1000 + 500 + 10 + (tmp_path / "style.css").stat().st_size


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_measure_page_finds_the_box_the_spill_and_a_shrunk_figure(tmp_path):
    m = measure_page(_site(tmp_path), width=1000)
    assert m["column"] == 600 and 300 <= m["box"] <= 340
    assert [name for name, _ in m["wide"]] == ["table", "table#spills"]  # both wider than the column
    assert [name for name, _ in m["spill"]] == ["table#spills"]  # only one reaches past its edge
    ((src, shown, natural),) = m["figures"]
    assert (src, shown, natural) == ("fig.png", 600, 1200)
