"""The project state of a root, in one place: what it is made of, restoring it first, backing it up.

The state of a root is ``outputs/`` (studies, trial folders, stage outputs, and ``outputs/cache/`` with the
run index and the version counter) plus, when the tracking URI is a local SQLite store inside the root (the
embedded default ``<root>/mlruns/mlflow.db``), that store and its ``artifacts/`` folder beside it. A remote
store (``http(s)://``, ``postgresql://``, ``databricks``, ``azureml://``) is never copied: the server owns its
durability.

**Restore first.** :meth:`ProjectState.restore_first` runs before anything opens or creates the store, a
study or the cache files. For every SQLite file (the store, each ``study.db``) one rule decides
(:func:`restore_sqlite`): missing locally → restored from the backup; corrupt locally → set aside and
restored (``recover_sqlite``); both present and the backup's last write is newer than the local one's (another
VM ran on after this one stopped) → the local copy is set aside as ``<name>.older-<UTC time>`` and the backup
is restored. The last write time is the file's mtime, which every snapshot copies with the file. Two SQLite
files are never merged. A restore that fails raises :class:`StateError` instead of letting an empty store be
created that a later backup would write over the good one.

**Snapshots.** :meth:`ProjectState.snapshot` asks a :class:`~mlrig.storage.CoalescingSnapshotter` for the
store (SQLite online backup), the artifacts folder (incremental) and any extra paths (a ``study.db``): at most
one snapshot runs at a time and repeated requests merge, so the backup lags the live state by at most the
snapshot in flight plus the one queued after it. :meth:`ProjectState.flush` waits for them (end of a sweep,
after each stage).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlrig.orchestration.errors import OrchestrationError
from mlrig.paths import (
    acquire_root,
    closed_clean,
    is_within,
    read_owner,
    record_clean_close,
    resolve_output_path,
)
from mlrig.storage import (
    BackupError,
    BackupResult,
    CoalescingSnapshotter,
    DriveBackupStore,
    ProgressCallback,
    VerifyReport,
    check_sqlite,
    recover_sqlite,
)
from mlrig.tracking import (
    ensure_tracking_store,
    resolve_tracking_uri,
    take_over_reference_store,
    tracking_store_path,
)

logger = logging.getLogger(__name__)

# how long a second process waits for the owner of a root before it stops, by default
ROOT_WAIT_S = 5.0
# mtimes within this many seconds count as the same write (filesystems round mtimes differently)
_MTIME_SLACK_S = 2.0


class StateError(OrchestrationError):
    """The project state could not be restored (the message names the file and why)."""


@dataclass(frozen=True)
class StatePart:
    """One piece of the project state: a local path, whether it is a file or a folder, and its store."""

    name: str
    path: Path
    kind: Literal["file", "dir"]
    store: DriveBackupStore = field(repr=False)


def _set_aside_older(db: Path) -> Path:
    aside = db.with_name(f"{db.name}.older-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    db.replace(aside)
    for side in ("-journal", "-wal", "-shm"):  # they belong to the file set aside
        sidecar = db.with_name(db.name + side)
        if sidecar.exists():
            sidecar.replace(aside.with_name(aside.name + side))
    return aside


def restore_sqlite(store: DriveBackupStore | None, db: Path) -> str | None:
    """Apply the restore-first rule (module docstring) to the SQLite file ``db``; say what it did, if any.

    Raises :class:`StateError` when a restore is needed and fails, or when a corrupt file has no backup.
    """
    if store is None or not store.backup_root.is_dir():
        return None
    if not db.exists():
        if not store.backup_exists(db, expect="file"):
            return None
        result = store.restore(db, expect="file")
        if not result.ok:
            raise StateError(
                f"{db} is missing locally and its backup {result.src} could not be restored: {result.reason}"
            )
        health = check_sqlite(db)
        if not health.ok:
            db.unlink()  # a copy of an unsound backup: nothing is lost, and no empty store is built on it
            raise StateError(
                f"{db} is missing locally and its backup {result.src} is unsound: {health.reason}"
            )
        logger.info("restored %s from the backup %s", db, result.src)
        return "restored"
    try:
        # a store exactly as the last clean session left it passed the check that session began with, and
        # only SQLite's own transactions wrote to it since: checking it again would read every page (half a
        # second per 10,000 runs) to find the same
        aside = None if closed_clean(store.root_dir, db) else recover_sqlite(store, db)
    except BackupError as exc:
        raise StateError(str(exc)) from exc
    if aside is not None:
        return f"recovered (corrupt copy set aside as {aside.name})"
    backup = store.drive_path_for(db)
    try:
        newer = backup.stat().st_mtime > db.stat().st_mtime + _MTIME_SLACK_S
    except FileNotFoundError:
        return None
    if not newer:
        return None
    aside = _set_aside_older(db)
    result = store.restore(db, expect="file")
    if not result.ok:
        aside.replace(db)  # keep working on what we had rather than on nothing
        raise StateError(f"the backup of {db} is newer but could not be restored: {result.reason}")
    logger.warning(
        "the backup of %s is newer than the local copy (set aside as %s): using it", db, aside.name
    )
    return f"replaced by the newer backup (older copy set aside as {aside.name})"


class ProjectState:
    """The project state of ``root_dir`` and its backup under ``backup_root`` (see the module docstring)."""

    def __init__(
        self,
        root_dir: Path | str,
        backup_root: Path | str,
        tracking_uri: str,
        *,
        config_dir: Path | str | None = None,
        outputs_store: DriveBackupStore | None = None,
    ) -> None:
        self.root_dir = Path(os.path.abspath(root_dir))  # noqa: PTH100 - lexical, like the stores
        self.backup_root = Path(backup_root)
        self.tracking_uri = tracking_uri
        self.config_dir = Path(config_dir) if config_dir is not None else None
        self.outputs_store = outputs_store or DriveBackupStore(
            self.root_dir, self.backup_root, config_dir=self.config_dir
        )
        self.tracking_db = self._local_store_file(tracking_uri)
        # a second store scoped to the store's folder: the backup mirrors it as <backup>/<folder name>/...
        self.tracking_store = (
            DriveBackupStore(self.root_dir, self.backup_root, outputs_dir=self.tracking_db.parent)
            if self.tracking_db is not None
            else None
        )
        self._snapshotters: dict[int, CoalescingSnapshotter] = {}
        self.restored: list[Path] = []  # what restore_first brought back, for the summaries

    def _local_store_file(self, uri: str) -> Path | None:
        db = tracking_store_path(uri)
        if db is None:
            return None
        # sqlite:////abs/path parses to //abs/path, which POSIX keeps as a distinct root: one slash
        db = Path(os.path.abspath("/" + str(db).lstrip("/") if db.is_absolute() else db))  # noqa: PTH100
        if not is_within(str(db.parent), str(self.root_dir), strict=True):
            logger.info("tracking store %s is outside the project root: not part of its backup", db)
            return None
        return db

    # -- what the state is -------------------------------------------------------------------------------
    @property
    def outputs_dir(self) -> Path:
        """The local outputs folder (studies, trials, stages, caches)."""
        return Path(self.outputs_store.outputs_dir or self.root_dir / "outputs")

    @property
    def cache_dir(self) -> Path:
        """``outputs/cache``: the run index and the version counter."""
        return resolve_output_path(self.root_dir, self.config_dir, "cache", storage_env="local")

    @property
    def artifacts_dir(self) -> Path | None:
        """The artifacts folder beside the embedded store (None for a remote store)."""
        return None if self.tracking_db is None else self.tracking_db.with_name("artifacts")

    def parts(self) -> list[StatePart]:
        """Every piece of the state, in restore order: store, artifacts, outputs."""
        found: list[StatePart] = []
        if self.tracking_db is not None and self.tracking_store is not None:
            found.append(StatePart("tracking store", self.tracking_db, "file", self.tracking_store))
            artifacts = self.tracking_db.with_name("artifacts")
            found.append(StatePart("tracking artifacts", artifacts, "dir", self.tracking_store))
        found.append(StatePart("outputs", self.outputs_dir, "dir", self.outputs_store))
        return found

    # -- restore first -----------------------------------------------------------------------------------
    def restore_first(self) -> list[str]:
        """Bring back what is missing, corrupt or older locally, before the store, a study or a cache opens.

        The outputs folder is restored whole when it is missing or empty, else only its cache folder when
        that is missing (a study folder is restored by the sweep that opens it, by the same rule). Returns
        one line per action taken; raises :class:`StateError` when a needed restore fails.
        """
        done: list[str] = []
        if not self.backup_root.is_dir():
            logger.info("no backup folder %s yet: nothing to restore", self.backup_root)
            self._take_over_reference_store(done)
            return done
        if self.tracking_db is not None:
            action = restore_sqlite(self.tracking_store, self.tracking_db)
            if action:
                done.append(f"{self.tracking_db}: {action}")
                self.restored.append(self.tracking_db)
            self._take_over_reference_store(done)
            artifacts = self.tracking_db.with_name("artifacts")
            if self.tracking_store is not None and self.tracking_store.backup_exists(artifacts, expect="dir"):
                self._restore_dir(self.tracking_store, artifacts, done)
        outputs = self.outputs_dir
        empty = not outputs.is_dir() or not any(outputs.iterdir())
        target = outputs if empty else self.cache_dir
        if (empty or not target.exists()) and self.outputs_store.backup_exists(target, expect="dir"):
            self._restore_dir(self.outputs_store, target, done)
        return done

    def _take_over_reference_store(self, done: list[str]) -> None:
        # No local store and no backup of one: the reference layout's store on the Drive becomes ours.
        if self.tracking_db is None or self.tracking_db.exists():
            return
        takeover = take_over_reference_store(
            self.root_dir, self.config_dir, tracking_uri=self.tracking_uri, backup=self.tracking_store
        )
        if takeover.action == "taken-over":
            done.append(f"{self.tracking_db}: taken over from the reference store {takeover.source}")

    def _restore_dir(self, store: DriveBackupStore, path: Path, done: list[str]) -> None:
        result = store.restore(path, expect="dir")
        if not result.ok:
            raise StateError(f"{path} could not be restored from {result.src}: {result.reason}")
        if result.stats.copied:
            done.append(f"{path}: restored {len(result.stats.copied)} file(s)")
            self.restored.append(path)

    def was_restored(self, path: Path) -> bool:
        """Whether :meth:`restore_first` brought ``path`` (or a folder holding it) back from the backup."""
        return any(is_within(str(path), str(done)) for done in self.restored)

    # -- snapshots ---------------------------------------------------------------------------------------
    def _snapshotter(self, store: DriveBackupStore) -> CoalescingSnapshotter:
        snap = self._snapshotters.get(id(store))
        if snap is None:
            snap = self._snapshotters[id(store)] = CoalescingSnapshotter(store)
        return snap

    def snapshot(self, extra: Iterable[Path] = ()) -> None:
        """Ask for a coalesced snapshot of the store, its artifacts, the cache folder and ``extra`` (outputs
        paths); returns at once. Nothing happens while the backup folder is missing (a dropped mount)."""
        if not self.backup_root.is_dir():
            return
        if self.tracking_db is not None and self.tracking_store is not None and self.tracking_db.exists():
            snap = self._snapshotter(self.tracking_store)
            snap.request(self.tracking_db, "file")
            if self.tracking_db.with_name("artifacts").is_dir():
                snap.request(self.tracking_db.with_name("artifacts"), "dir")
        # the run index and the counter change with every run created: they travel with the store
        for path in (*extra, *([self.cache_dir] if self.cache_dir.is_dir() else [])):
            self._snapshotter(self.outputs_store).request(path)

    def flush(self) -> list[BackupResult]:
        """Wait for every requested snapshot; a failed one is logged (the run goes on), never raised."""
        results: list[BackupResult] = []
        for snap in self._snapshotters.values():
            try:
                results.extend(snap.flush())
            except BackupError as exc:
                logger.warning("%s", exc)
        return results

    def close(self) -> None:
        """Flush and stop the snapshot threads."""
        self.flush()
        for snap in self._snapshotters.values():
            snap.close()
        self._snapshotters.clear()

    # -- the whole state, for the CLI --------------------------------------------------------------------
    @contextmanager
    def _progress(self, progress: ProgressCallback | None) -> Iterator[None]:
        stores = [p.store for p in self.parts()]
        before = [store.progress for store in stores]
        for store in stores:
            store.progress = progress or store.progress
        try:
            yield
        finally:
            for store, old in zip(stores, before, strict=True):
                store.progress = old

    def backup_all(self, progress: ProgressCallback | None = None) -> list[tuple[StatePart, BackupResult]]:
        """Back up every part that exists locally (the store with the SQLite online backup)."""
        self.flush()
        with self._progress(progress):
            return [(p, p.store.backup(p.path, expect=p.kind)) for p in self.parts() if p.path.exists()]

    def restore_all(
        self, *, delete: bool = False, progress: ProgressCallback | None = None
    ) -> list[tuple[StatePart, BackupResult]]:
        """Restore every part the backup holds; local-only files are kept unless ``delete``."""
        with self._progress(progress):
            return [
                (p, p.store.restore(p.path, expect=p.kind, delete=delete))
                for p in self.parts()
                if p.store.backup_exists(p.path, expect=p.kind)
            ]

    def verify_all(self, *, checksum: bool = False) -> list[tuple[StatePart, VerifyReport]]:
        """Compare every local part with its backup."""
        return [(p, p.store.verify(p.path, checksum=checksum)) for p in self.parts() if p.path.exists()]


def _owned_here(root: Path) -> bool:
    record = read_owner(root)
    return record is not None and record.pid == os.getpid() and record.host == socket.gethostname()


@contextmanager
def project_session(state: ProjectState, *, wait: float | None = ROOT_WAIT_S) -> Iterator[ProjectState]:
    """Own ``state``'s root, restore first, create the store; on exit flush the snapshots and let go.

    Local mode only: a second process waits up to ``wait`` seconds, then gets a ``RootBusyError`` naming
    the holder. A session inside a session of the same process (a sweep run by the demo) reuses the outer
    one's ownership.
    """
    owner = None if _owned_here(state.root_dir) else acquire_root(state.root_dir, wait=wait)
    # the store whose clean close this session records (the outermost session of a root with a local store)
    recorded = state.tracking_db if owner is not None else None
    ended_clean = False
    try:
        for line in state.restore_first():
            logger.info("restore first: %s", line)
        if recorded is not None:
            record_clean_close(state.root_dir, [])  # trusted once: a session that fails or dies leaves none
        ensure_tracking_store(state.tracking_uri)
        yield state
        ended_clean = True
    finally:
        try:
            state.snapshot()  # the last state, even after a failure: what is done stays done
            state.close()
            # after an error (a disk error, a malformed page) or a kill the next session checks in full
            if ended_clean and recorded is not None:
                record_clean_close(state.root_dir, [recorded])
        finally:
            if owner is not None:
                owner.release()


@contextmanager
def session_for(
    state: ProjectState | None,
    store: DriveBackupStore | None,
    *,
    root_dir: Path,
    config_dir: Path,
    tracking_uri: str | None,
) -> Iterator[ProjectState | None]:
    """The session a sweep or a stage runs in: the caller's ``state`` as is, else one built on ``store``
    (owning the root for the call), else none (no backup configured)."""
    if state is not None:
        yield state
        return
    if store is None:
        yield None
        return
    uri = resolve_tracking_uri(tracking_uri, root_dir=root_dir, config_dir=config_dir)
    built = ProjectState(root_dir, store.backup_root, uri, config_dir=config_dir, outputs_store=store)
    with project_session(built) as session:
        yield session
