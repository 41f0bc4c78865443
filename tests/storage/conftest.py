"""Shared fixtures for mlrig.storage tests: a project root with outputs/ and a local backup folder."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlrig.storage import DriveBackupStore


@dataclass
class Project:
    root: Path
    outputs: Path
    backup_root: Path
    scratch: Path

    def store(self, **kwargs: Any) -> DriveBackupStore:
        kwargs.setdefault("scratch_dir", self.scratch)
        kwargs.setdefault("mount_point", self.root.parent / "no-such-mount")
        return DriveBackupStore(self.root, self.backup_root, **kwargs)

    def mirror(self, local: Path) -> Path:
        return self.backup_root / local.relative_to(self.root)


def write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def tree(top: Path) -> dict[str, str]:
    """rel path -> text of every regular file under ``top`` (symlinks and hidden manifest excluded)."""
    out: dict[str, str] = {}
    for p in sorted(top.rglob("*")):
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".mlrig-manifest"):
            out[p.relative_to(top).as_posix()] = p.read_text()
    return out


def count_rows(db: Path, table: str = "t") -> int:
    """Rows of ``table`` in the SQLite file ``db``, opened read-only (a backup copy must not change)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def rows() -> Callable[..., int]:
    return count_rows


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    outputs = root / "outputs"
    outputs.mkdir(parents=True)
    backup_root = tmp_path / "mnt" / "MyDrive" / "proj"
    backup_root.mkdir(parents=True)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Project(root, outputs, backup_root, scratch)


@pytest.fixture
def writer() -> Callable[..., Path]:
    return write


@pytest.fixture
def snapshot_tree() -> Callable[[Path], dict[str, str]]:
    return tree
