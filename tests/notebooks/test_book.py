"""Every chapter's smoke variant runs under papermill, and the book builds from the results with -W."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sparse_probing.book import (
    CHAPTERS_DIR,
    PARAMS_DIR,
    ChapterError,
    build_site,
    chapter_names,
    compact_streams,
    load_params,
    notebook_parameters,
    run_chapter,
    source_digest,
    staged_book,
    stale_chapters,
    write_glance,
    write_provenance,
)
from sparse_probing.paths import REPO_ROOT


def test_source_notebooks_are_stripped_and_parameterized():
    for chapter in chapter_names():
        nb = json.loads((CHAPTERS_DIR / f"{chapter}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, f"{chapter}: outputs"
        params = notebook_parameters(chapter)
        assert params, f"{chapter} has no parameters cell"
        for variant in ("smoke", "default", "paper"):
            assert set(load_params(chapter, variant)) <= set(params), f"{chapter}/{variant}: unknown parameter"


def test_toc_lists_every_chapter():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = {c["file"] for c in toc["chapters"]}
    for chapter in chapter_names():
        assert f"book/executed/{chapter}" in files


def test_unknown_chapter_variant_or_parameter_is_refused(tmp_path):
    with pytest.raises(ChapterError, match="chapters:"):
        run_chapter("no_such_chapter", "smoke", output_dir=tmp_path)
    first = chapter_names()[0]
    with pytest.raises(ChapterError, match="variants"):
        load_params(first, "huge")
    with pytest.raises(ChapterError, match="no parameter"):
        run_chapter(first, "smoke", {"not_a_parameter": 1}, output_dir=tmp_path)


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory) -> Path:
    executed = tmp_path_factory.mktemp("executed")
    for chapter in chapter_names():
        run_chapter(chapter, "smoke", output_dir=executed)
    root = staged_book(tmp_path_factory.mktemp("book"), sorted(executed.glob("*.ipynb")))
    write_provenance(root / "book" / "executed", executed / "results", root / "book" / "provenance.md")
    write_glance(executed / "results", root / "book" / "glance.md")
    build_site(root)
    return root


def test_smoke_notebooks_have_no_errors_and_are_fresh(smoke_book):
    executed = smoke_book / "book" / "executed"
    assert stale_chapters(executed) == []
    for chapter in chapter_names():
        nb = json.loads((executed / f"{chapter}.ipynb").read_text())
        assert nb["metadata"]["sparse_probing"]["source_sha256"] == source_digest(chapter)
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                assert out["output_type"] != "error", f"{chapter}: {out.get('ename')}: {out.get('evalue')}"


def test_every_page_exists_and_figures_are_embedded(smoke_book):
    html = smoke_book / "_build" / "html"
    assert (html / "index.html").exists()
    toc = yaml.safe_load((smoke_book / "_toc.yml").read_text())
    for entry in toc["chapters"]:
        page = html / f"{entry['file']}.html"
        assert page.exists(), page
    for chapter in chapter_names():
        page = (html / "book" / "executed" / f"{chapter}.html").read_text()
        nb = json.loads((smoke_book / "book" / "executed" / f"{chapter}.ipynb").read_text())
        n_figures = sum("image/png" in out.get("data", {}) for cell in nb["cells"] for out in cell.get("outputs", []))
        images = re.findall(r'<img [^>]*src="([^"]+)"', page)
        assert len([s for s in images if s.endswith(".png")]) >= n_figures, chapter
        for src in images:
            assert not src.startswith("http"), f"{chapter}: external image {src}"
            assert (html / "book" / "executed" / src).resolve().exists(), src


_NO_BROWSER = "Chromium is not installed (Debian package 'chromium'): the browser checks of the built site are skipped"
PAGE_BUDGET_KB = 3000
"""Page weight budget (the page and every local file it loads): the published pages weigh 1.3-2.6 MB, the heaviest
the methods chapter with MathJax; the theme's icon script is trimmed to the icons used."""


@pytest.mark.parametrize("chapter", chapter_names())
def test_a_chapter_shows_its_answer_on_the_first_screen(smoke_book, chapter):
    from sparse_probing.sitecheck import chromium, measure_page

    if chromium() is None:
        pytest.skip(_NO_BROWSER)
    m = measure_page(smoke_book / "_build" / "html" / "book" / "executed" / f"{chapter}.html", width=1400)
    assert m["box"] is not None and m["box"] <= 1200, f"{chapter}: first verdict box at {m['box']} px"


def test_pages_fit_their_column_keep_figures_at_their_width_and_weigh_little(smoke_book):
    from sparse_probing.sitecheck import chromium, measure_page, page_weight

    if chromium() is None:
        pytest.skip(_NO_BROWSER)
    html = smoke_book / "_build" / "html" / "book"
    pages = [html / "intro.html", *(html / "executed" / f"{c}.html" for c in chapter_names())]
    for page in pages:
        wide = measure_page(page, width=1400)
        assert not wide["spill"], f"{page.name}: past the column's right edge at 1400 px: {wide['spill']}"
        shrunk = [(src, shown, natural) for src, shown, natural in wide["figures"] if shown < 0.9 * natural]
        assert not shrunk, f"{page.name}: figures shown below 90% of their width at 1400 px: {shrunk}"
        narrow = measure_page(page, width=390)
        assert not narrow["spill"], f"{page.name}: past the column's right edge at 390 px: {narrow['spill']}"
        weight = page_weight(page)
        assert weight["total"] <= PAGE_BUDGET_KB * 1024, f"{page.name}: {weight} bytes over the budget"


def test_committed_executed_notebooks_are_up_to_date():
    """The published book: every chapter's default run is committed and was made from the current source."""
    executed = REPO_ROOT / "book" / "executed"
    missing_or_stale = stale_chapters(executed)
    assert not missing_or_stale, (
        f"book/executed/ is out of date for {missing_or_stale}: re-run them "
        "(.venv/bin/sparse-probing chapter NAME) and commit the executed notebooks"
    )
    for path in executed.glob("*.ipynb"):
        assert json.loads(path.read_text())["metadata"]["sparse_probing"]["variant"] == "default", path
    assert PARAMS_DIR.exists()


def test_committed_results_record_their_dataset_versions():
    """Provenance needs, for every results file, the versioned key of each dataset it was computed on."""
    for path in sorted((REPO_ROOT / "book" / "results").glob("*.json")):
        datasets = json.loads(path.read_text())["spec"].get("datasets")
        assert isinstance(datasets, dict) and datasets, f"{path.name} records no dataset versions"
        for family, key in datasets.items():
            assert re.fullmatch(rf"{family}-default(\[:\d+\])?-v\d+-[0-9a-f]{{12}}", key), (path.name, key)


def test_provenance_commit_keeps_the_dirty_mark():
    from sparse_probing.book import _short_commit

    assert _short_commit("0123456789abcdef" * 2 + "-dirty") == "0123456789ab-dirty"
    assert _short_commit("0123456789abcdef" * 2) == "0123456789ab"


def test_compact_streams_keeps_what_a_terminal_shows():
    bar = [{"output_type": "stream", "name": "stderr", "text": f"\rcaching: {i}/3"} for i in range(4)]
    nb = {"cells": [
        {"cell_type": "markdown", "source": "text"},
        {"cell_type": "code", "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["a\n", "b\r\n"]},
            *bar,
            {"output_type": "stream", "name": "stderr", "text": "\n"},
            {"output_type": "display_data", "data": {"text/plain": "fig"}, "metadata": {}},
            {"output_type": "stream", "name": "stdout", "text": "c\n"},
        ]},
    ]}  # fmt: skip
    outputs = compact_streams(nb)["cells"][1]["outputs"]
    assert [o.get("name") for o in outputs] == ["stdout", "stderr", None, "stdout"]
    assert outputs[0]["text"] == ["a\n", "b\n"]
    assert outputs[1]["text"] == ["caching: 3/3\n"]
    assert outputs[3]["text"] == ["c\n"]
    assert "outputs" not in nb["cells"][0]


def test_intro_opens_with_the_generated_verdict_table(smoke_book):
    html = (smoke_book / "_build" / "html" / "book" / "intro.html").read_text()
    assert "Results at a glance" in html
    glance = (smoke_book / "book" / "glance.md").read_text()
    if "no verdict" in glance:
        assert "no verdict" in html
    else:
        section = html.split('<section id="results-at-a-glance">', 1)[1].split(
            '<section id="what-sparse-probing-asks">'
        )[0]
        assert "<table" in section
        n_rows = len([line for line in glance.splitlines() if line.startswith("| ")]) - 1  # less the header
        assert section.count("<strong>") >= n_rows  # every claim's verdict, in bold
        assert "Bottom line." in section and "Each claim." in section
        assert ("glance.png" in section) == (smoke_book / "book" / "glance.png").exists()


def test_a_users_csv_runs_through_a_chapter_by_parameter(tmp_path):
    """Bring-your-own data: a CSV named in a chapter's families parameter is cached, probed and recorded."""
    import csv

    from sparse_probing.datasets import load_dataset

    source = load_dataset("natural_language", "smoke")
    table = source.label_table()
    keep = table[table["language"].isin(["en", "de", "fr"])].head(90)
    path = tmp_path / "languages.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "group"])
        for doc, label, group in zip(keep["doc"], keep["language"], keep["group"], strict=True):
            writer.writerow([source.documents[doc].text, label, group])
    out = run_chapter("01_methods", "smoke", {"families": [str(path)]}, output_dir=tmp_path / "run")
    assert out == tmp_path / "run" / "01_methods.ipynb"
    record = json.loads((tmp_path / "run" / "results" / "01_methods.json").read_text())
    assert list(record["spec"]["datasets"]) == [str(path)]
    assert record["spec"]["datasets"][str(path)].startswith(f"{path.name}-file-v1-")  # named by the file, not its path


def chapter_page_problems(page_html: str) -> list[str]:
    """What a reader would trip over on a built chapter page: a figure without a numbered caption in its cell, an
    image shown twice, raw LaTeX (``$W_{in}$``) printed by code instead of rendered."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page_html, "html.parser")
    problems, seen = [], set()
    for cell in soup.select("div.cell"):
        images = [img.get("src", "") for img in cell.select("div.cell_output img")]
        captions = re.findall(r"Figure \d+\.", cell.get_text())
        if len(captions) < len(images):
            problems.append(f"{len(images)} figure(s) but {len(captions)} caption(s) in a cell: {images}")
        for src in images:
            if src in seen:
                problems.append(f"image shown twice: {src}")
            seen.add(src)
        for output in cell.select("div.cell_output"):
            for math in output.select(".math, script, style, mjx-container"):
                math.decompose()
            raw = re.findall(r"\$[^$\n]*[\\_^{}][^$\n]*\$", output.get_text())
            if raw:
                problems.append(f"raw LaTeX in output text: {raw[:3]}")
    return problems


def test_page_checker_finds_what_it_looks_for():
    page = (
        '<div class="cell"><div class="cell_output"><img src="a.png"/><p>Figure 1. Takeaway.</p></div></div>'
        '<div class="cell"><div class="cell_output"><img src="a.png"/><img src="b.png"/><p>Figure 2. x</p>'
        "<pre>norm of $W_{in}$</pre></div></div>"
    )
    problems = chapter_page_problems(page)
    assert any("2 figure(s) but 1 caption(s)" in p for p in problems)
    assert any("image shown twice: a.png" in p for p in problems)
    assert any("raw LaTeX" in p for p in problems)
    assert (
        chapter_page_problems(page.split('<div class="cell"><div class="cell_output"><img src="a.png"/><img')[0]) == []
    )


def test_chapter_pages_caption_every_figure_once_and_render_their_math(smoke_book):
    for chapter in chapter_names():
        page = (smoke_book / "_build" / "html" / "book" / "executed" / f"{chapter}.html").read_text()
        assert chapter_page_problems(page) == [], chapter
