"""Checking a SQLite file (header, opens, ``PRAGMA integrity_check``) and recovering a corrupt local one.

A local ``study.db`` or ``mlruns/mlflow.db`` that is garbage, truncated or has a bad header would otherwise
surface as a SQLAlchemy traceback deep inside Optuna or MLflow. :func:`recover_sqlite` sets such a file aside
(``<name>.corrupt-<UTC time>``, never deleted) and restores it from the backup, or raises a
:class:`BackupError` naming the file when there is nothing to restore from.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.storage.errors import BackupError
from mlrig.storage.fileops import SQLITE_MAGIC, SQLITE_SIDECARS

if TYPE_CHECKING:
    from mlrig.storage.store import DriveBackupStore

logger = logging.getLogger(__name__)

_HEADER_BYTES = 100


@dataclass(frozen=True)
class SqliteCheck:
    """Outcome of :func:`check_sqlite`: truthy when ``ok``; ``reason`` says what is wrong otherwise."""

    path: Path
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _header_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size == 0:
        return "empty file (no database in it)"
    with open(path, "rb") as fh:
        header = fh.read(_HEADER_BYTES)
    if not header.startswith(SQLITE_MAGIC):
        return "bad header (not a SQLite database)"
    if len(header) < _HEADER_BYTES:
        return f"truncated header ({len(header)} of {_HEADER_BYTES} bytes)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"bad header (page size {page_size})"
    if size % page_size:
        return f"truncated ({size} bytes is not a whole number of {page_size}-byte pages)"
    return None


def check_sqlite(path: Path | str, *, read_only: bool = False) -> SqliteCheck:
    """Whether ``path`` is a sound SQLite database: header, opens, and ``PRAGMA integrity_check`` says ok.

    Opened read-write by default, so the hot journal of a process killed mid-transaction is rolled back as
    SQLite intends instead of counting as corruption; ``read_only=True`` for copies that must not change (a
    backup). A missing file raises ``FileNotFoundError``.
    """
    db = Path(path)
    try:
        problem = _header_problem(db)
    except FileNotFoundError:
        raise
    except OSError as exc:
        return SqliteCheck(db, False, f"unreadable ({exc})")
    if problem:
        return SqliteCheck(db, False, problem)
    import sqlite3  # a check needs it; `import mlrig.storage` does not

    mode = "ro" if read_only else "rw"
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode={mode}", uri=True, timeout=30.0)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return SqliteCheck(db, False, f"cannot be read ({exc})")
    if rows != [("ok",)]:
        detail = "; ".join(str(row[0]) for row in rows[:3])
        return SqliteCheck(db, False, f"integrity_check failed ({detail})")
    return SqliteCheck(db, True)


def _set_aside(db: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = db.with_name(f"{db.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = db.with_name(f"{db.name}.corrupt-{stamp}-{n}")
    db.replace(aside)
    # the sidecars belong to the corrupt file: left beside the restored one they would be replayed into it
    for side in SQLITE_SIDECARS:
        sidecar = db.with_name(db.name + side)
        if sidecar.exists():
            sidecar.replace(aside.with_name(aside.name + side))
    return aside


def recover_sqlite(store: DriveBackupStore | None, local_path: Path | str) -> Path | None:
    """Check the local SQLite file ``local_path``; when it is corrupt, set it aside and restore the backup.

    Returns ``None`` when the file is sound (or missing: restoring a missing file is ``ensure_local``'s job),
    else the path it was set aside to (``<name>.corrupt-<UTC time>``). Raises :class:`BackupError` naming the
    file and the problem when there is no backup (``store`` is None or holds none; the file is then left in
    place), or when the restore fails or restores a copy that is itself unsound.
    """
    db = Path(local_path)
    if store is not None and not db.is_absolute():
        db = store.root_dir / db
    try:
        health = check_sqlite(db)
    except FileNotFoundError:
        return None
    if health.ok:
        return None
    if store is None or not store.backup_exists(db, expect="file"):
        raise BackupError(
            f"SQLite file is corrupt ({health.reason}) and has no backup to restore from", path=db
        )
    aside = _set_aside(db)
    logger.warning("%s is corrupt (%s); set aside as %s, restoring from the backup", db, health.reason, aside)
    result = store.restore(db, expect="file")
    if not result.ok:
        raise BackupError(
            f"SQLite file is corrupt ({health.reason}), set aside as {aside.name}, and its restore failed "
            f"({result.reason})",
            path=db,
        )
    restored = check_sqlite(db)
    if not restored.ok:
        raise BackupError(
            f"SQLite file was corrupt ({health.reason}); its backup {result.src} is unsound too "
            f"({restored.reason}); the corrupt file was set aside as {aside.name}",
            path=db,
        )
    logger.info("restored %s from %s", db, result.src)
    return aside
