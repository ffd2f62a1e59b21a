"""The command-line entry point on the tiny model and a real (smoke) dataset."""

from __future__ import annotations

import pytest

from sparse_probing.cli import main


def test_models_lists_offline_models(capsys):
    assert main(["models"]) == 0
    assert "smollm2-135m" in capsys.readouterr().out


def test_cache_command_on_real_dataset(capsys):
    args = ["cache", "--model", "tiny-neox", "--dataset", "natural_language", "--variant", "smoke"]
    assert main([*args, "--layers", "0,1", "--n-documents", "12", "--max-length", "64"]) == 0
    out = capsys.readouterr().out
    assert "12 examples" in out and "layers [0, 1]" in out


def test_bad_layers_argument():
    with pytest.raises(SystemExit):
        main(["cache", "--model", "tiny-neox", "--dataset", "natural_language", "--layers", "x"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n-documents", "-5"], "positive integer"),
        (["--n-documents", "0"], "positive integer"),
        (["--batch-size", "0"], "positive integer"),
        (["--layers", "-1"], "non-negative"),
    ],
)
def test_bad_sizes_exit_2_with_one_line(capsys, args, expected):
    """Before: --n-documents -5 cached 265 of 270 examples silently and 0 raised a bare IndexError."""
    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "--model", "tiny-neox", "--dataset", "natural_language", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["cache", "--model", "tiny-neox", "--dataset", "natural_language", "--layers", "7"], r"layers 0..1"),
        (["cache", "--model", "no-such-model", "--dataset", "natural_language"], "sparse-probing models"),
        (["cache", "--model", "tiny-neox", "--dataset", "../../etc"], "not a valid name"),
        (["chapter", "no_such_chapter"], "unknown chapter"),
        (["chapter", "01_methods", "--variant", "../../x"], "not a valid name"),
        (["chapter", "01_methods", "--output-dir", "book/elsewhere"], "only the book build writes"),
        (["chapter", "01_methods", "--scheduler", "bogus://x"], "--scheduler: scheduler 'bogus://x' is not understood"),
        (["book", "--scheduler", "local:0"], "asks for no workers"),  # refused before any chapter runs
    ],
)
def test_errors_are_one_line_with_exit_code_2(capsys, argv, expected):
    """Before: every CLI error printed a full traceback before its message."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparse-probing: error:") and expected in lines[0], err
    assert "Traceback" not in err


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="not a valid name"):
        main(["cache", "--model", "tiny-neox", "--dataset", "../../etc", "--debug"])


def test_run_chapter_puts_the_scheduler_in_the_kernel_environment(tmp_path, monkeypatch):
    import json
    import os

    import papermill

    from sparse_probing.book import ChapterError, run_chapter
    from sparse_probing.distributed import SCHEDULER_ENV

    seen = {}

    def execute(source, output, **kwargs):  # stands in for the kernel: records the environment it would inherit
        seen["scheduler"] = os.environ.get(SCHEDULER_ENV)
        with open(output, "w") as f:
            json.dump({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, f)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    out = run_chapter("01_methods", "smoke", output_dir=tmp_path, scheduler="local:2")
    assert seen["scheduler"] == "local:2" and out.exists()
    assert SCHEDULER_ENV not in os.environ  # restored after the run
    monkeypatch.setenv(SCHEDULER_ENV, "none")
    run_chapter("01_methods", "smoke", output_dir=tmp_path)
    assert seen["scheduler"] == "none" and os.environ[SCHEDULER_ENV] == "none"  # None leaves it as it is
    with pytest.raises(ChapterError, match="not understood"):
        run_chapter("01_methods", "smoke", output_dir=tmp_path, scheduler="bogus://x")


@pytest.mark.parametrize(
    "argv",
    [
        ["cache", "--model", "tiny-neox"],  # a required argument missing
        ["cache", "--model", "tiny-neox", "--dataset", "natural_language", "--reduce", "median"],  # a bad choice
        ["nosuch"],  # an unknown command
        ["chapter"],
        ["book", "--bogus"],
    ],
)
def test_argparse_errors_are_one_line(capsys, argv):
    """Before: argparse printed its usage block (2-7 lines) above the message."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "--help" in lines[0], lines


def test_book_only_names_an_existing_chapter(capsys):
    """Before: `book --skip-run --only nosuch` was ignored with exit 0."""
    assert main(["book", "--skip-run", "--only", "nosuch"]) == 2
    assert "unknown chapter 'nosuch'" in capsys.readouterr().err
    assert main(["book", "--skip-run", "--only", "01_methods"]) == 2
    assert "--skip-run runs none" in capsys.readouterr().err


def test_distributed_cache_errors_are_one_line(capsys):
    from sparse_probing.distributed import main as distributed_main

    assert distributed_main(["cache", "--model", "no-such-model", "--dataset", "natural_language"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "sparse-probing models" in err and "Traceback" not in err


def test_a_chapter_on_a_bad_user_dataset_exits_2_and_leaves_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nonly one row,1\n")
    out = tmp_path / "runs"
    code = main(["chapter", "01_methods", "--variant", "smoke", "-p", f"families={bad}", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "the chapter failed in cell" in err
    assert not list(out.glob(".*.running.ipynb"))
