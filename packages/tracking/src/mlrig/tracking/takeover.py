"""Taking over the reference layout's MLflow store: a ``mlflow.db`` kept directly on the Drive mount.

The reference project tracked into ``{drive.mount_point}/MyDrive/<project>-mlflow/mlflow.db`` on Colab (with
Drive mounted) and ``/kaggle/working/mlflow.db`` on Kaggle, where ``<project>`` is ``naming.project_name`` of
``mlflow.yaml``. SQLite on a FUSE mount is prone to locking errors and a half-written file, so mlrig never
writes there: when such a store exists and the project has no local store (and no backup of one, which
restore-first brings back instead), the reference file is read once through SQLite's online backup API into
``<root>/mlruns/mlflow.db``, and that local copy is the store from then on, backed up like the embedded one.
The Drive file is left exactly as it was (bytes and mtime).

On the local copy only: an older schema is migrated to the installed MLflow's, and experiments whose artifact
location is a local path (the Drive folder, or ``/content/mlruns`` that a VM reset wipes) get the embedded
``<root>/mlruns/artifacts``, so new runs store their artifacts where the backup picks them up. Runs keep
their own artifact URI: artifacts the reference logged on the Drive stay there and remain readable.
A record of the takeover is written beside the store (``mlflow.db.takeover.json``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from mlrig.naming import get_mlflow_settings
from mlrig.paths import (
    PathScopeError,
    atomic_write_json,
    detect_platform,
    load_paths_config,
    normalize_storage_env,
)
from mlrig.storage import DriveBackupStore, check_sqlite, snapshot_sqlite
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.setup import (
    _SQLITE_PREFIX,
    _fsync,
    _has_store,
    _prepare_sqlite,
    _sqlite_path,
    default_artifact_location,
    embedded_tracking_uri,
)

logger = logging.getLogger(__name__)

KAGGLE_WORKING = Path("/kaggle/working")
TAKEOVER_RECORD_SUFFIX = ".takeover.json"

Action = Literal["taken-over", "local", "backup", "none", "remote"]


@dataclass(frozen=True)
class StoreTakeover:
    """Which store a project uses and why.

    ``action``: ``taken-over`` (the reference store was copied now), ``local`` (a local store exists;
    ``source`` names the reference store it was taken over from, if it was), ``backup`` (no local store,
    but mlrig's own backup of it exists: restore-first brings that back), ``none`` (neither: a new embedded
    store will be created), ``remote`` (the tracking URI is not the embedded store: nothing to take over).
    """

    action: Action
    store: Path | None
    source: Path | None = None
    taken_at: str | None = None
    backup: Path | None = None


def reference_store_candidates(
    config_dir: Path | str | None = None,
    *,
    platform: str | None = None,
    drive_root: Path | str | None = None,
    kaggle_working: Path | str | None = None,
) -> list[Path]:
    """Where the reference layout kept ``mlflow.db`` on this platform (nothing is checked on disk).

    Colab: ``<drive_root>/<naming.project_name>-mlflow/mlflow.db``, ``drive_root`` defaulting to
    ``{drive.mount_point}/MyDrive`` of paths.yaml; Kaggle: ``<kaggle_working>/mlflow.db`` (default
    ``/kaggle/working``). Other platforms had the store under the project (``./mlruns/mlflow.db``): none.
    """
    env = normalize_storage_env(platform) if platform is not None else detect_platform()
    if env == "kaggle":
        return [Path(kaggle_working or KAGGLE_WORKING) / "mlflow.db"]
    if env != "colab":
        return []
    if drive_root is None:
        drive = load_paths_config(config_dir).drive
        if drive is None:
            return []
        drive_root = Path(drive.mount_point) / "MyDrive"
    project = get_mlflow_settings(config_dir).project_name
    return [Path(drive_root) / f"{project}-mlflow" / "mlflow.db"]


def _local_file(uri: str) -> Path | None:
    path = _sqlite_path(uri)
    # sqlite:////abs parses to //abs, which POSIX paths keep as a distinct root: compare as /abs
    return None if path is None else Path("/" + str(path).lstrip("/")) if path.is_absolute() else path


def _record_path(db: Path) -> Path:
    return db.with_name(db.name + TAKEOVER_RECORD_SUFFIX)


def _read_record(db: Path) -> tuple[Path | None, str | None]:
    try:
        record = json.loads(_record_path(db).read_text(encoding="utf-8"))
        return Path(record["source"]), str(record["taken_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def _schema_is_current(db: Path) -> bool:
    from mlflow.store.db.utils import _get_latest_schema_revision  # deferred: imports alembic

    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        conn.close()
    return row is not None and row[0] == _get_latest_schema_revision()  # type: ignore[no-untyped-call]


def _upgrade_schema(db: Path) -> None:
    # what `mlflow db upgrade` does; only ever run on the local temp copy
    import sqlalchemy
    from mlflow.store.db.utils import _upgrade_db

    engine = sqlalchemy.create_engine(f"{_SQLITE_PREFIX}{db}")
    try:
        _upgrade_db(engine)  # type: ignore[no-untyped-call]
    finally:
        engine.dispose()


def _is_local_location(location: str | None) -> bool:
    if not location:
        return True
    scheme = urlsplit(location).scheme
    return scheme in ("", "file")


def _relocate_artifacts(db: Path, location: str) -> dict[str, str]:
    """Point experiments with a local artifact location at ``location``; return ``{id: old location}``."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT experiment_id, artifact_location FROM experiments").fetchall()
        moved = {str(i): str(loc) for i, loc in rows if _is_local_location(loc) and loc != location}
        with conn:
            conn.executemany(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                [(location, int(i)) for i in moved],
            )
    finally:
        conn.close()
    return moved


def _copy_in(source: Path, db: Path) -> None:
    """Snapshot ``source`` to a temp file beside ``db``, adapt it, and move it into place (lock held)."""
    tmp = db.with_name(f"{db.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        snapshot_sqlite(source, tmp)  # the one read of the Drive file (read-only connection)
        check = check_sqlite(tmp)
        if not check.ok:
            raise TrackingError(f"the reference store {source} is not a sound SQLite file: {check.reason}")
        if not _schema_is_current(tmp):
            logger.info("migrating the copy of %s to the installed MLflow schema", source)
            _upgrade_schema(tmp)
        location = default_artifact_location(f"{_SQLITE_PREFIX}{db}")
        moved = _relocate_artifacts(tmp, location) if location else {}
        _fsync(tmp)
        tmp.replace(db)
        _fsync(db.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    taken_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    atomic_write_json(
        _record_path(db),
        {"source": str(source), "taken_at": taken_at, "artifact_locations_before": moved},
    )
    logger.warning(
        "took over the reference MLflow store %s: copied to %s (the Drive file is left unchanged; %d "
        "experiment(s) now keep new artifacts in %s)",
        source,
        db,
        len(moved),
        location,
    )


def take_over_reference_store(
    root_dir: Path | str,
    config_dir: Path | str | None = None,
    *,
    tracking_uri: str | None = None,
    backup: DriveBackupStore | None = None,
    platform: str | None = None,
    drive_root: Path | str | None = None,
    kaggle_working: Path | str | None = None,
) -> StoreTakeover:
    """Copy the reference layout's store (:func:`reference_store_candidates`) to ``<root>/mlruns/mlflow.db``
    when the project has no store yet; say which store is in use.

    Does nothing when ``tracking_uri`` is not the embedded store of ``root_dir``, when a local store exists,
    or when ``backup`` (the store backing up ``mlruns/``) holds a backup of it: restore-first brings that
    back, and it is newer than anything the reference layout wrote. Runs under the store-creation lock, so a
    concurrent :func:`~mlrig.tracking.setup.ensure_tracking_store` waits for the copy. Raises
    :class:`TrackingError` when the reference file is not a sound SQLite store.
    """
    root = Path(root_dir).resolve()
    embedded = embedded_tracking_uri(root)
    uri = tracking_uri or embedded
    db = _local_file(uri)
    if db is None or db.resolve() != _local_file(embedded):
        return StoreTakeover("remote", db)
    backup_path = _backup_path(backup, db)
    if _has_store(db):
        source, taken_at = _read_record(db)
        return StoreTakeover("local", db, source, taken_at, backup_path)
    if backup is not None and backup.backup_exists(db, expect="file"):
        return StoreTakeover("backup", db, backup=backup_path)
    candidates = reference_store_candidates(
        config_dir, platform=platform, drive_root=drive_root, kaggle_working=kaggle_working
    )
    source = next((c for c in candidates if c.is_file() and c.stat().st_size > 0), None)
    if source is None:
        return StoreTakeover("none", db, backup=backup_path)
    lock = _prepare_sqlite(uri)
    assert lock is not None  # a sqlite:/// URI
    with lock:
        if _has_store(db):  # another process took it over (or created a store) first
            found, taken_at = _read_record(db)
            return StoreTakeover("local", db, found, taken_at, backup_path)
        _copy_in(source, db)
    _, taken_at = _read_record(db)
    return StoreTakeover("taken-over", db, source, taken_at, backup_path)


def _backup_path(backup: DriveBackupStore | None, db: Path) -> Path | None:
    if backup is None:
        return None
    try:
        return backup.drive_path_for(db)
    except PathScopeError as exc:  # the store does not cover mlruns/
        logger.debug("no backup path for %s: %s", db, exc)
        return None
