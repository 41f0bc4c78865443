"""check_sqlite / recover_sqlite: garbage, truncated and bad-header files are set aside and restored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlrig.storage import BackupError
from mlrig.storage.sqlite_check import check_sqlite, recover_sqlite


def _study(path: Path, rows: int = 2000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE trials (n INTEGER PRIMARY KEY, value REAL, pad TEXT)")
    conn.executemany("INSERT INTO trials VALUES (?, ?, ?)", [(i, i / 3, "p" * 100) for i in range(rows)])
    conn.execute("CREATE INDEX ix ON trials (value)")
    conn.commit()
    conn.close()
    return path


def _garbage(db: Path) -> None:
    db.write_bytes(b"\x13\x37 this is not a database " * 500)


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2 + 123])


def _truncated_at_page(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: (len(data) // 4096 // 2) * 4096])


def _bad_header(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:16] = b"SQLite format 2\x00"
    db.write_bytes(bytes(data))


def _short(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:60])


def _empty(db: Path) -> None:
    db.write_bytes(b"")


def _bad_page(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[4096 * 3 : 4096 * 3 + 512] = b"\xa5" * 512  # a b-tree page in the middle
    db.write_bytes(bytes(data))


DAMAGE = [_garbage, _truncated, _truncated_at_page, _bad_header, _short, _empty, _bad_page]


def test_sound_database_passes(tmp_path):
    db = _study(tmp_path / "study.db")
    assert check_sqlite(db) and check_sqlite(db, read_only=True).reason == ""
    with pytest.raises(FileNotFoundError):
        check_sqlite(tmp_path / "none.db")


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_database_fails_with_a_reason(tmp_path, damage):
    db = _study(tmp_path / "study.db")
    damage(db)
    check = check_sqlite(db)
    assert not check and check.reason and check.path == db


def test_hot_journal_of_a_killed_writer_is_rolled_back_not_reported(tmp_path):
    import os
    import subprocess
    import sys

    db = _study(tmp_path / "study.db", rows=10)
    code = (
        "import sqlite3, os, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN'); c.execute(\"UPDATE trials SET pad = hex(randomblob(600))\")\n"
        "c.execute('PRAGMA cache_size=1'); c.execute(\"INSERT INTO trials (pad) SELECT pad FROM trials\")\n"
        "os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=False)
    if not Path(str(db) + "-journal").exists():
        pytest.skip("the writer left no hot journal on this filesystem")
    assert check_sqlite(db).ok
    assert not os.path.exists(str(db) + "-journal") or os.path.getsize(str(db) + "-journal") == 0


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_corrupt_local_file_is_set_aside_and_restored(project, damage):
    db = _study(project.outputs / "hpo" / "study-1" / "study.db")
    store = project.store()
    assert store.backup(db, expect="file").ok
    damage(db)
    Path(str(db) + "-journal").write_bytes(b"stale journal of the corrupt file")
    aside = recover_sqlite(store, db)
    assert aside is not None and aside.name.startswith("study.db.corrupt-") and aside.exists()
    # the stale journal went with the corrupt file (or SQLite itself discarded it as invalid while checking)
    assert not Path(str(db) + "-journal").exists()
    assert check_sqlite(db).ok
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 2000
    conn.close()
    assert recover_sqlite(store, db) is None  # sound now: nothing to do


def test_sound_or_missing_file_is_left_alone(project):
    db = _study(project.outputs / "study.db")
    before = db.stat()
    assert recover_sqlite(project.store(), db) is None
    assert db.stat().st_ino == before.st_ino
    assert recover_sqlite(project.store(), project.outputs / "none.db") is None


def test_corrupt_without_backup_raises_naming_the_file(project):
    db = _study(project.outputs / "hpo" / "study.db")
    _garbage(db)
    with pytest.raises(BackupError, match=r"corrupt \(bad header.*no backup.*study\.db") as err:
        recover_sqlite(project.store(), db)
    assert err.value.path == db and db.exists()  # left in place for inspection
    with pytest.raises(BackupError, match="no backup"):
        recover_sqlite(None, db)


def test_unsound_backup_is_reported(project):
    db = _study(project.outputs / "study.db")
    store = project.store()
    store.backup(db, expect="file")
    _garbage(project.mirror(db))
    _bad_header(db)
    with pytest.raises(BackupError, match=r"study\.db"):
        recover_sqlite(store, db)
    assert list(db.parent.glob("study.db.corrupt-*"))
