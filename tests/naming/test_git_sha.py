"""exec_fp's git SHA: read from a real checkout, a worktree, packed refs; None (logged) outside a checkout."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from mlrig.naming import detect_git_sha

SHA = "89abcdef0123456789abcdef0123456789abcdef"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_a_real_checkout_and_its_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("x")
    _git(repo, "add", "f")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "m")
    assert detect_git_sha(repo) == _git(repo, "rev-parse", "HEAD")
    _git(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert detect_git_sha(repo) == _git(repo, "rev-parse", "HEAD")
    _git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "other")
    assert detect_git_sha(tmp_path / "wt") == _git(repo, "rev-parse", "HEAD")


def test_detached_head_and_not_a_checkout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a" / ".git").mkdir(parents=True)
    (tmp_path / "a" / ".git" / "HEAD").write_text(SHA + "\n")
    assert detect_git_sha(tmp_path / "a") == SHA
    with caplog.at_level(logging.INFO, logger="mlrig.naming.fingerprints"):
        assert detect_git_sha(tmp_path / "b") is None
    assert "is not a git checkout" in caplog.text and "'unknown'" in caplog.text
