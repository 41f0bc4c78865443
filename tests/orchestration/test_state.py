"""ProjectState: what the state of a root is, the restore-first rule, snapshots (real SQLite files)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

import mlrig.orchestration.state as state_module
from mlrig.orchestration import ProjectState, StateError, project_session, restore_sqlite
from mlrig.storage import DriveBackupStore, check_sqlite


def make_db(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS runs (n INTEGER)")
        conn.executemany("INSERT INTO runs VALUES (?)", [(i,) for i in range(rows)])
    conn.close()


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "vm" / "outputs").mkdir(parents=True)
    (tmp_path / "vm" / "backup").mkdir()
    return tmp_path / "vm"


def state_of(root: Path, uri: str | None = None) -> ProjectState:
    return ProjectState(root, root / "backup", uri or f"sqlite:///{root}/mlruns/mlflow.db")


@pytest.mark.parametrize(
    "uri",
    [
        "http://mlflow:5000",
        "https://x",
        "postgresql://u@h/db",
        "databricks",
        "azureml://ws",
        "sqlite:///:memory:",
    ],
)
def test_a_remote_store_is_never_part_of_the_state(root: Path, uri: str) -> None:
    state = state_of(root, uri)
    assert state.tracking_db is None and state.artifacts_dir is None
    assert [p.name for p in state.parts()] == ["outputs"]


def test_the_embedded_store_is_part_of_the_state(root: Path) -> None:
    state = state_of(root)  # sqlite:////abs/... : four slashes, one root
    assert state.tracking_db == root / "mlruns" / "mlflow.db"
    assert [p.name for p in state.parts()] == ["tracking store", "tracking artifacts", "outputs"]
    assert state.tracking_store is not None
    assert state.tracking_store.drive_path_for(state.tracking_db) == root / "backup" / "mlruns" / "mlflow.db"
    outside = state_of(root, f"sqlite:///{root.parent}/elsewhere/mlflow.db")
    assert outside.tracking_db is None  # not under the root: not this root's state


def test_restore_sqlite_missing_corrupt_older_and_no_backup(root: Path) -> None:
    store = DriveBackupStore(root, root / "backup")
    db = root / "outputs" / "hpo" / "study.db"
    make_db(db, 3)
    assert store.backup(db).ok
    assert restore_sqlite(store, db) is None  # sound and as new as its backup: left alone

    db.unlink()
    assert restore_sqlite(store, db) == "restored" and count(db) == 3

    db.write_bytes(b"not a database" * 200)
    assert "recovered" in (restore_sqlite(store, db) or "") and count(db) == 3
    assert list(db.parent.glob("study.db.corrupt-*"))

    # another VM ran on: its backup is newer than this local copy, which is set aside, never merged
    backup = store.drive_path_for(db)
    make_db(backup, 2)
    os.utime(backup, (db.stat().st_mtime + 60, db.stat().st_mtime + 60))
    assert "newer backup" in (restore_sqlite(store, db) or "")
    assert count(db) == 5 and count(next(db.parent.glob("study.db.older-*"))) == 3

    lonely = root / "outputs" / "other.db"
    lonely.write_bytes(b"garbage" * 100)
    with pytest.raises(StateError, match="no backup"):
        restore_sqlite(store, lonely)


def test_a_failed_restore_stops_instead_of_creating_an_empty_store(root: Path) -> None:
    state = state_of(root)
    (root / "backup" / "mlruns").mkdir()
    (root / "backup" / "mlruns" / "mlflow.db").write_bytes(b"garbage" * 200)  # cannot be restored
    with pytest.raises(StateError, match="is unsound"):
        state.restore_first()
    assert not (root / "mlruns" / "mlflow.db").exists()


def test_restore_first_then_snapshots(root: Path) -> None:
    state = state_of(root)
    assert state.restore_first() == []  # nothing backed up yet
    db = root / "mlruns" / "mlflow.db"
    make_db(db, 4)
    (root / "mlruns" / "artifacts" / "run").mkdir(parents=True)
    (root / "mlruns" / "artifacts" / "run" / "model.bin").write_bytes(b"x" * 100)
    (root / "outputs" / "cache").mkdir()
    (root / "outputs" / "cache" / "run_name_counter.json").write_text("{}")
    for _ in range(5):
        state.snapshot()
    state.flush()
    backup = root / "backup" / "mlruns" / "mlflow.db"
    assert check_sqlite(backup, read_only=True).ok and count(backup) == 4
    assert (root / "backup" / "mlruns" / "artifacts" / "run" / "model.bin").is_file()
    assert (root / "backup" / "outputs" / "cache" / "run_name_counter.json").is_file()
    assert all(r.ok for _, r in state.verify_all(checksum=True))
    state.close()

    for gone in ("mlruns", "outputs"):
        for path in sorted((root / gone).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    done = state_of(root).restore_first()
    assert len(done) == 3, done  # the store, its artifacts, the whole outputs folder
    assert count(db) == 4 and (root / "outputs" / "cache" / "run_name_counter.json").is_file()


def test_a_store_left_by_a_clean_session_is_not_checked_again_any_other_is(
    root: Path, _sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full check of a 10,000-run store reads every page (~0.5 s): skipped only for the store exactly as
    the last session that ended without an error left it; a write since, a failed session, a kill: checked."""
    db = root / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy2(_sqlite_template, db)
    checked: list[Path] = []
    real = state_module.recover_sqlite

    def spy(store: DriveBackupStore | None, path: Path) -> Path | None:
        checked.append(path)
        return real(store, path)

    monkeypatch.setattr(state_module, "recover_sqlite", spy)

    def session(fail: bool = False) -> None:
        with project_session(state_of(root)):
            if fail:
                raise RuntimeError("a failed run")

    session()  # no clean close recorded yet: checked
    assert checked == [db]
    session()  # as the clean session left it: not checked
    assert checked == [db]
    before = db.stat()
    with sqlite3.connect(db) as conn:  # any write since, even with the old mtime put back
        conn.execute("CREATE TABLE later (n INTEGER)")
    conn.close()
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))
    session()
    assert checked == [db, db]
    with pytest.raises(RuntimeError):
        session(fail=True)  # unchecked (clean before), but its end is not clean: the next one checks
    assert checked == [db, db]
    session()
    assert checked == [db, db, db]

    session()
    db.write_bytes(b"garbage after the clean close" * 400)
    session()  # a store changed since is checked: recovered from the backup the sessions made
    assert checked[-1] == db and len(checked) == 4
    assert check_sqlite(db).ok and list(db.parent.glob("mlflow.db.corrupt-*"))
