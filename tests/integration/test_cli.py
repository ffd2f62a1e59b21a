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
