"""Where results files go: only the book build writes the published book/results; names stay inside their folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparse_probing import book, results
from sparse_probing.paths import REPO_ROOT, RESULTS_ENV, UnsafePathError, inside


def test_default_results_dir_is_scratch_not_the_published_book(monkeypatch):
    """Before: a papermill run with no setting overwrote book/results (dense F1 0.952 replaced by 0.669)."""
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    where = results.results_dir().resolve()
    assert where != results.RESULTS_DIR.resolve()
    assert (REPO_ROOT / "data" / "results").resolve() in where.parents


def test_results_env_is_followed(monkeypatch, tmp_path):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "r"))
    path = results.save_results("ch", spec={"a": 1}, metrics={"f1": 0.5})
    assert path == tmp_path / "r" / "ch.json" and json.loads(path.read_text())["metrics"] == {"f1": 0.5}


@pytest.mark.parametrize("name", ["../ch", "a/b", "..", "", ".hidden"])
def test_results_names_cannot_leave_their_folder(tmp_path, name):
    with pytest.raises(UnsafePathError):
        results.save_results(name, spec={}, metrics={}, directory=tmp_path)
    assert not list(tmp_path.parent.glob("*.json"))


@pytest.mark.parametrize("content", ["", "null", "[1]", '{"no_name": 1}', '{"name": '])
def test_malformed_results_file_is_named(tmp_path, content):
    (tmp_path / "broken.json").write_text(content)
    with pytest.raises(ValueError, match=r"broken\.json"):
        results.load_results(tmp_path)


def test_inside_refuses_escapes(tmp_path):
    assert inside(tmp_path, "a", "b.json") == tmp_path / "a" / "b.json"
    for parts in (("..", "x"), ("a", "..", "..", "x"), ("/etc/passwd",)):
        with pytest.raises(UnsafePathError):
            inside(tmp_path, *parts)


class _FakePapermill:
    """Stands in for papermill.execute_notebook: writes the output notebook and records the results setting."""

    def __init__(self, monkeypatch):
        import papermill

        self.results_env: list[str | None] = []
        monkeypatch.setattr(papermill, "execute_notebook", self)

    def __call__(self, source, output, **kwargs):
        import os

        self.results_env.append(os.environ.get(RESULTS_ENV))
        Path(output).write_text(Path(source).read_text())


def test_chapter_run_writes_its_results_inside_its_output_dir(monkeypatch, tmp_path):
    """Before: --output-dir D wrote the results JSON to D/../results, outside D."""
    fake = _FakePapermill(monkeypatch)
    chapter = book.chapter_names()[0]
    out = book.run_chapter(chapter, "smoke", output_dir=tmp_path / "D")
    assert out == tmp_path / "D" / f"{chapter}.ipynb" and out.exists()
    assert Path(fake.results_env[0]) == (tmp_path / "D" / "results").resolve()


def test_only_the_book_build_publishes(monkeypatch, tmp_path):
    fake = _FakePapermill(monkeypatch)
    chapter = book.chapter_names()[0]
    monkeypatch.setattr(book, "EXECUTED_DIR", tmp_path / "executed")
    monkeypatch.setattr(book, "RESULTS_DIR", tmp_path / "published")
    monkeypatch.setattr(book, "RUNS_DIR", tmp_path / "runs")
    book.run_chapter(chapter, "smoke", publish=True)
    assert Path(fake.results_env[-1]) == (tmp_path / "published").resolve()
    out = book.run_chapter(chapter, "smoke")  # not published: under data/results/runs
    assert out.parent == tmp_path / "runs" and Path(fake.results_env[-1]) == (tmp_path / "runs" / "results").resolve()
    with pytest.raises(book.ChapterError, match="only the book build"):
        book.run_chapter(chapter, "smoke", output_dir=book.BOOK_DIR / "executed")
    with pytest.raises(book.ChapterError, match="output directory"):
        book.run_chapter(chapter, "smoke", output_dir=tmp_path, publish=True)


def test_numpy_nan_and_inf_are_stored_as_null(tmp_path):
    import json

    import numpy as np

    from sparse_probing.results import save_results

    metrics = {"scalar": np.float64("nan"), "inf": np.float32("inf"), "array": np.array([1.0, np.nan, -np.inf]),
               "table": __import__("pandas").DataFrame({"x": [np.nan, 2.0]})}  # fmt: skip
    path = save_results("nan", spec={}, metrics=metrics, runtime_s=np.float64("nan"), directory=tmp_path)
    record = json.loads(path.read_text())
    assert record["metrics"] == {"scalar": None, "inf": None, "array": [1.0, None, None],
                                 "table": [{"x": None}, {"x": 2.0}]}  # fmt: skip
    assert record["runtime_s"] is None


def test_chapter_parameters_name_files_from_the_callers_directory(tmp_path, monkeypatch):
    from sparse_probing.book import _files_from_here

    (tmp_path / "mine.csv").write_text("text,label\n")
    monkeypatch.chdir(tmp_path)
    mine = str((tmp_path / "mine.csv").resolve())
    assert _files_from_here("mine.csv") == mine
    assert _files_from_here(["mine.csv", "paper_code"]) == [mine, "paper_code"]
    assert _files_from_here({"mine.csv": 10}) == {mine: 10}
    assert _files_from_here("elsewhere.csv") == "elsewhere.csv"  # not here: resolved later (repository, then error)
