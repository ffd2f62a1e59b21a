"""Dataset text is shown as text on every page: tables escape their cells."""

import pandas as pd

import sparse_probing  # noqa: F401  (sets the escaping)


def test_tables_escape_script_and_links():
    text = '<script>alert("x")</script> see <a href="https://example.invalid">here</a>'
    html = pd.DataFrame({"text": [text]}).style.hide(axis="index").to_html()
    assert "<script>" not in html and "<a href" not in html
    assert "&lt;script&gt;" in html and "&lt;a href=" in html


def test_numbers_show_three_decimals_unless_formatted():
    html = pd.DataFrame({"x": [0.129]}).style.to_html()
    assert "0.129" in html and "0.129000" not in html
