"""The commit recorded with a result: marked dirty by changed code, not by the chapter runs' own outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sparse_probing import results


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    (tmp_path / "src.py").write_text("x = 1\n")
    (tmp_path / "book" / "results").mkdir(parents=True)
    (tmp_path / "book" / "results" / "ch.json").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    return tmp_path


def test_run_outputs_do_not_make_the_commit_dirty(repo):
    head = _git(repo, "rev-parse", "HEAD")
    assert results.git_commit() == head
    (repo / "book" / "results" / "ch.json").write_text('{"metrics": 1}\n')
    assert results.git_commit() == head


def test_changed_code_makes_the_commit_dirty(repo):
    (repo / "src.py").write_text("x = 2\n")
    assert results.git_commit() == _git(repo, "rev-parse", "HEAD") + "-dirty"


def test_no_repository_gives_none(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    assert results.git_commit() is None
