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
