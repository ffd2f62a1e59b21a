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

    def execute_with_workers(source, output, **kwargs):  # the kernel connects to the run's one cluster
        from distributed import Client

        execute(source, output)
        with Client(seen["scheduler"]) as client:
            seen["workers"] = len(client.scheduler_info(n_workers=-1)["workers"])

    monkeypatch.setattr(papermill, "execute_notebook", execute_with_workers)
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    out = run_chapter("01_methods", "smoke", output_dir=tmp_path, scheduler="local:2")
    # local:2 was started once, in this process, and the kernel got its address
    assert seen["scheduler"].startswith("tcp://") and seen["workers"] == 2 and out.exists()
    assert SCHEDULER_ENV not in os.environ  # restored after the run
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    run_chapter("01_methods", "smoke", output_dir=tmp_path, scheduler="tcp://10.0.0.5:8786")
    assert seen["scheduler"] == "tcp://10.0.0.5:8786"  # an address is passed on as it is
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


def test_plan_prints_the_entries_of_a_paper_chapter_without_loading_a_model(capsys, monkeypatch):
    import sparse_probing.models

    def refuse(*args, **kwargs):
        raise AssertionError("plan loaded a model")

    monkeypatch.setattr(sparse_probing.models, "load_model", refuse)
    assert main(["plan", "04_monosemantic", "--variant", "paper"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("04_monosemantic (paper): 6 activation cache entries")
    for family in ("paper_code", "paper_factual", "natural_language", "code_language", "data_source", "factual"):
        assert f"pythia-70m x {family}" in out and f"--dataset {family} --variant default --layers all" in out
    assert out.count("context     256 tokens") == 6 and "--max-length 256" in out
    assert "dataset     paper_code-default-v1-" in out and "entry       pythia-70m-paper_code-default-" in out
    assert main(["plan", "monosemantic", "--variant", "default"]) == 0
    out = capsys.readouterr().out
    assert "natural_language-default[:540]-v1-" in out and "--n-documents 540" in out
    assert main(["plan", "scaling", "--variant", "smoke"]) == 0
    assert capsys.readouterr().out.startswith("05_scaling (smoke): 6 activation cache entries")
    assert main(["plan", "00_data"]) == 0 and "caches no activations" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "nosuch"], "unknown chapter 'nosuch'"),
        (["plan", "04_monosemantic", "--variant", "huge"], "unknown variant 'huge'"),
        (["plan", "04_monosemantic", "-p", "nosuch=1"], "has no parameter 'nosuch'"),
        (["plan", "04_monosemantic", "-p", "max_length=long"], "max_length"),
    ],
)
def test_plan_errors_are_one_line(capsys, argv, expected):
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def test_plan_names_the_entries_a_chapter_run_caches(tiny_model, tmp_path, monkeypatch):
    """The survey chapter (small, on the tiny model) caches exactly the entries its plan lists, the embedding
    baseline's entry included."""
    from sparse_probing.activations import cache_root
    from sparse_probing.chapters import survey
    from sparse_probing.cli import _chapter_config, _describe_entry, chapter_plan

    monkeypatch.setenv("SPARSE_PROBING_CACHE", str(tmp_path / "cache"))
    overrides = {
        "families": ["text_features", "position"], "layers": [0, 1], "ks": [1, 2], "max_lengths": {},
        "n_documents": {"text_features": 16}, "max_tasks": 2, "max_examples": 400,
        "features": {"text_features": ["has_leading_space", "contains_capital"], "position": ["position"]},
        "alphas": [0.1], "surface_baselines": ["token", "embedding"], "single_neuron": False, "n_boot": 10,
    }  # fmt: skip
    plan = chapter_plan("06_survey", "smoke", overrides)
    sites = [spec.site for spec, _ in plan["entries"]]
    assert sites == ["mlp.hook_post", "hook_resid_pre", "mlp.hook_post"]  # no embedding entry for a regression
    survey.run(_chapter_config("06_survey", "smoke", overrides), model=tiny_model)
    cached = sorted(p.name for p in cache_root().iterdir() if p.is_dir())
    assert cached == sorted(_describe_entry(spec)["entry_key"] for spec, _ in plan["entries"])


def test_jobs_go_to_the_kernels_and_a_bad_value_exits_2(capsys, monkeypatch):
    import os

    from sparse_probing.probes.sweep import JOBS_ENV, default_jobs

    monkeypatch.delenv(JOBS_ENV, raising=False)
    assert main(["book", "--skip-run", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err
    from sparse_probing.cli import _set_jobs

    assert _set_jobs(3) == 3 and os.environ[JOBS_ENV] == "3" and default_jobs() == 3
    assert _set_jobs(None) == len(os.sched_getaffinity(0))  # every core this process may use
    monkeypatch.setenv(JOBS_ENV, "two")
    with pytest.raises(ValueError, match="SPARSE_PROBING_JOBS must be a whole number"):
        default_jobs()
