"""SQLite-safe copies: the online backup API, WAL contents, sidecars never copied raw, a live Optuna study."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from mlrig.storage import BackupAction, snapshot_sqlite


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def wal_db(project):
    """A WAL-mode DB whose recent commits live only in the -wal file (an open writer, no checkpoint)."""
    db = project.outputs / "hpo" / "study-1" / "study.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    conn.commit()
    yield db, conn
    conn.close()


def test_backup_includes_wal_content_and_needs_no_sidecar(project, wal_db, rows):
    db, _conn = wal_db
    assert Path(f"{db}-wal").stat().st_size > 0
    res = project.store().backup(db, expect="file")
    assert res.action is BackupAction.COPIED, res
    copy = project.mirror(db)
    assert sorted(p.name for p in copy.parent.iterdir()) == ["study.db"]
    assert rows(copy) == 500
    assert _integrity(copy) == "ok"
    mode = sqlite3.connect(copy).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete"


def test_wal_only_change_is_not_skipped(project, wal_db, rows):
    db, conn = wal_db
    store = project.store()
    store.backup(db)
    main_stat = db.stat()
    conn.execute("INSERT INTO t VALUES (-1)")
    conn.commit()
    assert db.stat().st_mtime_ns == main_stat.st_mtime_ns  # only the WAL moved
    assert store.backup(db).action is BackupAction.COPIED
    assert rows(project.mirror(db)) == 501


def test_directory_backup_snapshots_db_and_drops_sidecars(project, wal_db, writer, snapshot_tree, rows):
    db, conn = wal_db
    writer(db.parent / "fold_splits.json", "[]")
    writer(db.parent / "old.db-journal", "stale journal")  # sidecar of a non-existent db
    store = project.store()
    assert store.backup(db.parent).ok
    names = sorted(p.name for p in project.mirror(db.parent).iterdir() if not p.name.startswith("."))
    assert names == ["fold_splits.json", "study.db"]
    assert rows(project.mirror(db)) == 500
    conn.execute("INSERT INTO t VALUES (-2)")
    conn.commit()
    res = store.backup(db.parent)
    assert res.stats.copied == ("study.db",)
    assert rows(project.mirror(db)) == 501
    assert store.verify(db.parent).ok


def test_raw_sidecar_in_backup_is_removed(project, wal_db, writer):
    db, _ = wal_db
    store = project.store()
    store.backup(db.parent)
    stray = writer(project.mirror(db).with_name("study.db-journal"), "hot journal from a raw copy")
    store.backup(db.parent)
    assert not stray.exists()


def test_restore_of_db(project, wal_db, rows):
    db, conn = wal_db
    store = project.store()
    store.backup(db)
    conn.close()
    for p in db.parent.iterdir():
        p.unlink()
    assert store.restore(db, expect="file").ok
    assert rows(db) == 500 and _integrity(db) == "ok"


def test_db_suffix_without_sqlite_header_is_copied_bytewise(project, writer):
    f = writer(project.outputs / "notes.db", "not a database")
    assert project.store().backup(f).ok
    assert project.mirror(f).read_text() == "not a database"


def test_backup_keeps_this_process_s_locks_on_the_live_database(project):
    """A backup must not open() the live file itself: closing that descriptor would drop every POSIX lock the
    process holds on it, so another process could write beside a transaction still in progress here."""
    db = project.outputs / "hpo" / "study-1" / "study.db"
    db.parent.mkdir(parents=True)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # a RESERVED lock: readers may go on, no other process may write
    holder.execute("INSERT INTO t VALUES (1)")
    try:
        assert project.store().backup(db).ok
        other_writer = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; sqlite3.connect(sys.argv[1], timeout=0).execute('BEGIN IMMEDIATE')",
                str(db),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert other_writer.returncode != 0 and "database is locked" in other_writer.stderr


def test_snapshot_sqlite_function(tmp_path, wal_db, rows):
    db, _ = wal_db
    out = tmp_path / "snap.db"
    snapshot_sqlite(db, out)
    assert rows(out) == 500


def test_backups_keep_their_snapshot_locally_and_overwrite_it_next_time(project, wal_db, rows):
    db, conn = wal_db
    store = project.store()
    assert store.backup(db, expect="file").stats.copied
    (staging,) = [p for p in project.scratch.rglob("study.db") if p.is_file()]
    assert rows(staging) == 500 and staging.parent.name == "study-1"  # the backup's layout, in scratch_dir
    inode = staging.stat().st_ino
    conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.commit()
    assert store.backup(db, expect="file").stats.copied
    assert staging.stat().st_ino == inode and rows(staging) == 600  # overwritten in place, not made anew
    assert rows(project.mirror(db)) == 600 and _integrity(project.mirror(db)) == "ok"
    staging.write_bytes(b"torn by a killed snapshot" * 100)
    conn.execute("INSERT INTO t VALUES (-1)")
    conn.commit()
    assert store.backup(db, expect="file").stats.copied
    assert rows(project.mirror(db)) == 601 and _integrity(project.mirror(db)) == "ok"
    assert project.store().restore(db, expect="file").ok
    assert [p for p in project.scratch.rglob("*.db")] == [staging]  # a restore keeps no snapshot


def test_corrupt_backup_fails_verify(project, wal_db):
    db, _ = wal_db
    store = project.store()
    store.backup(db)
    data = bytearray(project.mirror(db).read_bytes())
    data[100:4000] = b"\xff" * 3900
    project.mirror(db).write_bytes(bytes(data))
    assert not store.verify(db).ok


def _finished_trials(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _rdb(db: Path) -> Any:
    import optuna

    return optuna.storages.RDBStorage(
        f"sqlite:///{db}", skip_compatibility_check=True, skip_table_creation=True
    )


_OPTUNA_WRITER = textwrap.dedent(
    """
    import sys, time, pathlib, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    study = optuna.create_study(study_name="live", storage=f"sqlite:///{db}", load_if_exists=True)

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        for step in range(3):
            trial.report(x * step, step)
        trial.set_user_attr("payload", "y" * 200)
        return x * x

    while not stop.exists():
        study.optimize(objective, n_trials=5)
    """
)


@pytest.mark.slow
def test_live_optuna_study_snapshots(project, tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = project.outputs / "hpo" / "local" / "m" / "study-live" / "study.db"
    db.parent.mkdir(parents=True)
    stop = tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", _OPTUNA_WRITER, str(db), str(stop)])
    try:
        # warm up SQLAlchemy/Optuna's RDB import path while the writer process starts
        optuna.create_study(storage=f"sqlite:///{tmp_path / 'warm.db'}")
        deadline = time.monotonic() + 90
        while _finished_trials(db) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "optuna writer did not start"
            time.sleep(0.1)
        store = project.store()
        counts: list[int] = []
        for _ in range(20):
            res = store.backup(db, expect="file")
            assert res.ok, res
            copy = project.mirror(db)
            assert _integrity(copy) == "ok"
            study = optuna.load_study(study_name="live", storage=_rdb(copy))
            counts.append(len(study.get_trials(deepcopy=False)))
            time.sleep(0.05)
        assert proc.poll() is None, "the writer must still be running while snapshots are taken"
    finally:
        stop.touch()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0


def test_verify_notices_a_newer_database(project, rows):
    db = project.outputs / "study.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    store = project.store()
    store.backup(db)
    assert store.verify(db).ok
    time.sleep(0.01)
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    rep = store.verify(db)
    assert not rep.ok and rep.differing == ("study.db",)
    assert store.backup(db).action is BackupAction.COPIED
    assert store.verify(db).ok and rows(project.mirror(db)) == 1
