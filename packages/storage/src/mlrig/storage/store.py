"""``DriveBackupStore``: backup, restore, ensure_local, verify of output paths onto a mounted folder."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.paths import PathScopeError, get_outputs_dir, is_drive_path, map_to_backup
from mlrig.storage.errors import BackupConfigError, BackupError
from mlrig.storage.fileops import copy_file_stat, is_temp_name, is_transient_name, signature
from mlrig.storage.results import (
    BackupAction,
    BackupResult,
    EnsureLocalOptions,
    Expect,
    PathCallback,
    Progress,
    ProgressCallback,
    SyncStats,
    VerifyReport,
)
from mlrig.storage.scan import inside_any, scan_tree
from mlrig.storage.sync import plan_sync, sync_tree
from mlrig.storage.verify import files_match, verify_paths

if TYPE_CHECKING:
    from filelock import FileLock

logger = logging.getLogger(__name__)

_DRIVE_REASON = "Cannot backup path already in Drive. Drive paths cannot be backed up to Drive."


def _type_error(path: Path, expect: Expect, side: str) -> str | None:
    if expect == "file" and path.is_dir():
        return (
            f"Expected file but {side} is directory" if side != "got" else "Expected file but got directory"
        )
    if expect == "dir" and not path.is_dir():
        return (
            f"Expected directory but {side} is file" if side != "got" else "Expected directory but got file"
        )
    return None


def _expected(exc: Exception) -> bool:
    return isinstance(exc, OSError | ValueError)


def _newest_mtime(path: Path) -> int:
    if path.is_file():
        return path.stat().st_mtime_ns
    tree = scan_tree(path, [path])
    return max((sig[1] for _, sig in tree.files.values()), default=0)


@dataclass
class DriveBackupStore:
    """Mirror of ``<root>/outputs/**`` under ``backup_root`` (Google Drive on Colab, or any mounted folder).

    Every operation returns a result object instead of raising for missing, mistyped or out-of-scope paths;
    only ``drive_path_for`` raises (``PathScopeError``, a ``ValueError``). See the package README for the
    atomicity, incremental and SQLite guarantees.
    """

    root_dir: Path
    backup_root: Path
    only_outputs: bool = True
    dry_run: bool = False
    _: KW_ONLY
    outputs_dir: Path | None = None
    config_dir: Path | None = None
    mount_point: Path | None = None
    checksum: bool = False
    fsync: bool = True
    progress: ProgressCallback | None = None
    scratch_dir: Path | None = None
    lock_timeout: float = 600.0
    _lock_file: Path = field(init=False, repr=False, compare=False)
    _staging: Path = field(init=False, repr=False, compare=False)
    _lock: FileLock | None = field(init=False, repr=False, compare=False, default=None)
    _outputs: Path = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root_dir = Path(self.root_dir)
        self.backup_root = Path(self.backup_root)
        if not self.root_dir.is_dir():
            raise BackupConfigError("root_dir does not exist", path=self.root_dir)
        if self.outputs_dir is None:
            self.outputs_dir = (
                get_outputs_dir(self.root_dir, self.config_dir, "local")
                if self.only_outputs
                else self.root_dir
            )
        self.outputs_dir = self._outputs = Path(self.outputs_dir)
        if inside_any(os.path.realpath(self.backup_root), [os.path.realpath(self._outputs)]):
            # a backup inside the tree it mirrors would copy itself on every run
            raise BackupConfigError(
                f"backup_root must not lie inside the outputs dir {self.outputs_dir}", path=self.backup_root
            )
        if self.scratch_dir is not None:
            lock_dir = Path(self.scratch_dir)
        else:
            import tempfile  # with shutil and random behind it: a store needs it, `import mlrig.storage` not

            lock_dir = Path(tempfile.gettempdir())
        import hashlib  # deferred like tempfile: it loads OpenSSL

        key = hashlib.sha256(os.path.realpath(self.backup_root).encode()).hexdigest()[:16]
        # lock file kept on local disk: advisory locks on network mounts are unreliable
        self._lock_file = lock_dir / f"mlrig-storage-{key}.lock"
        # the last SQLite snapshot of each backed-up file, overwritten by the next one (under the lock)
        self._staging = lock_dir / f"mlrig-storage-{key}.staging"

    # -- mapping -----------------------------------------------------------------------------------------
    def drive_path_for(self, local_path: Path | str) -> Path:
        """Backup location of ``local_path`` (delegates to ``mlrig.paths.map_to_backup``).

        Raises ``PathScopeError`` for a path on the Drive mount, outside the outputs dir or under the backup
        root.
        """
        if self._on_drive(local_path):
            raise PathScopeError(
                f"Cannot compute Drive path for path already in Drive: {local_path}. "
                "Drive paths cannot be backed up to Drive."
            )
        return map_to_backup(local_path, self.root_dir, self.backup_root, self._outputs)

    def _on_drive(self, path: Path | str) -> bool:
        if self.mount_point is None:
            return is_drive_path(path)
        return is_drive_path(path, mount_point=self.mount_point)

    def _local(self, local_path: Path | str) -> Path:
        local = Path(local_path)
        return Path(os.path.realpath(local if local.is_absolute() else self.root_dir / local))

    def _local_scope(self) -> list[Path]:
        return [self.root_dir, self._outputs]

    def _check_target(self, target: Path, roots: list[Path]) -> None:
        real = os.path.realpath(target)
        if not inside_any(real, [os.path.realpath(root) for root in roots]):
            raise BackupError(f"refusing to write outside {roots[0]} (resolved {real})", path=target)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # filelock takes ~50 ms to import (a third of `import mlrig.storage`) and only a backup or restore
        # that actually runs needs it: imported here, the lock made once per store (it is reentrant).
        from filelock import FileLock, Timeout

        if self._lock is None:
            self._lock = FileLock(self._lock_file, timeout=self.lock_timeout)
        try:
            with self._lock:
                yield
        except Timeout as exc:
            raise BackupError(f"timed out after {self.lock_timeout}s waiting for {exc.lock_file}") from exc

    # -- core copy ---------------------------------------------------------------------------------------
    def _transfer(
        self, src: Path, dst: Path, scope: list[Path], *, dry_run: bool, delete: bool, to_backup: bool = False
    ) -> SyncStats:
        if src.is_dir():
            if dst.exists() and not dst.is_dir():
                raise BackupError("destination exists and is a file, not a directory", path=dst)
            return sync_tree(
                src,
                dst,
                scope,
                dry_run=dry_run,
                checksum=self.checksum,
                fsync=self.fsync,
                scratch_dir=self.scratch_dir,
                progress=self.progress,
                delete=delete,
            )
        if dst.is_dir() and not dst.is_symlink():
            raise BackupError("destination is a directory, not replacing it with a file", path=dst)
        if self._file_unchanged(src, dst):
            return SyncStats(unchanged=1)
        size = src.stat().st_size
        if dry_run:
            return SyncStats(copied=(src.name,), bytes_copied=size)
        dst.parent.mkdir(parents=True, exist_ok=True)
        import glob  # deferred: only a file copy needs it

        for leftover in dst.parent.glob(f".{glob.escape(dst.name)}.mlrig-*.tmp*"):
            if is_temp_name(leftover.name):  # from a copy that was killed midway
                logger.info("removing leftover temp file %s", leftover)
                leftover.unlink(missing_ok=True)
        if self.progress is not None:
            self.progress(Progress(0, 1, 0, size, src.name))
        # a backup keeps its SQLite snapshot for the next one (one after every trial); a restore does not
        staging = self._staging / dst.relative_to(self.backup_root) if to_backup else None
        copied = copy_file_stat(src, dst, fsync=self.fsync, scratch_dir=self.scratch_dir, staging=staging)
        written = copied.st_size
        if self.progress is not None:
            self.progress(Progress(1, 1, written, size, src.name))
        return SyncStats(copied=(src.name,), bytes_copied=written)

    def _file_unchanged(self, src: Path, dst: Path) -> bool:
        try:
            sig = signature(src)
            dst_st = dst.stat()
        except OSError:
            return False
        # a SQLite copy keeps the source mtime; with a WAL sidecar the main file's stat says nothing
        if len(sig) != 2 or (dst_st.st_size, dst_st.st_mtime_ns) != sig:
            return False
        return not self.checksum or files_match(src, dst, checksum=True)

    def _up_to_date(self, src: Path, dst: Path) -> bool:
        if src.is_dir() != dst.is_dir():
            return False
        if src.is_dir():
            return plan_sync(src, dst, [self.backup_root], checksum=self.checksum, delete=False).is_noop
        return self._file_unchanged(src, dst)

    def _run(
        self,
        verb: str,
        src: Path,
        dst: Path,
        scope: list[Path],
        write_root: list[Path],
        expect: Expect,
        *,
        delete: bool,
    ) -> BackupResult:
        mismatch = _type_error(src, expect, "got" if verb == "backup" else "backup")
        if mismatch:
            return BackupResult(False, BackupAction.ERROR, src, dst, mismatch)
        if not src.is_dir() and is_transient_name(src.name):
            return BackupResult(True, BackupAction.SKIPPED, src, dst, "Transient file (lock/journal/temp)")
        try:
            self._check_target(dst, write_root)
            if self.dry_run:
                stats = self._transfer(src, dst, scope, dry_run=True, delete=delete)
                return BackupResult(
                    True, BackupAction.SKIPPED, src, dst, f"Dry run - would {verb}", stats=stats
                )
            with self._locked():
                stats = self._transfer(
                    src, dst, scope, dry_run=False, delete=delete, to_backup=verb == "backup"
                )
        except Exception as exc:  # every outcome is a result; unexpected ones get a traceback in the log
            logger.warning("%s of %s -> %s failed: %s", verb, src, dst, exc, exc_info=not _expected(exc))
            return BackupResult(
                False, BackupAction.ERROR, src, dst, f"{verb.capitalize()} failed: {exc}", exc
            )
        if not stats.copied and not stats.deleted:
            return BackupResult(True, BackupAction.SKIPPED, src, dst, "Unchanged", stats=stats)
        done = "Backed up successfully" if verb == "backup" else "Restored successfully"
        logger.info(
            "%s %s -> %s: %d copied, %d deleted, %d unchanged, %d kept",
            verb,
            src,
            dst,
            len(stats.copied),
            len(stats.deleted),
            stats.unchanged,
            len(stats.kept),
        )
        return BackupResult(True, BackupAction.COPIED, src, dst, done, stats=stats)

    # -- public operations -------------------------------------------------------------------------------
    def _mapped(self, local_path: Path | str, *, to_backup: bool) -> tuple[Path, Path] | BackupResult:
        """``(local, backup)`` for ``local_path``, or the ERROR result for a Drive or out-of-scope path.

        The one home of the scope check of every public operation; the result's ``src``/``dst`` follow the
        direction (``to_backup``: local → backup).
        """
        local = Path(local_path)
        if to_backup and self._on_drive(local):
            return BackupResult(False, BackupAction.ERROR, local, local, _DRIVE_REASON)
        try:
            backup = self.drive_path_for(local)
        except PathScopeError as exc:
            src, dst = (local, self.backup_root) if to_backup else (self.backup_root, local)
            return BackupResult(False, BackupAction.ERROR, src, dst, f"Out of scope: {exc}", exc)
        return self._local(local), backup

    def backup(self, local_path: Path | str, expect: Expect = "any") -> BackupResult:
        """Copy ``local_path`` (file or directory) to its backup location, incrementally and atomically.

        The backup mirrors the source: entries no longer present locally are deleted from the backup. The
        backup root must exist: it is never created here, so a dropped mount cannot silently turn into a
        folder on local disk. Transient files (``*.lock``, ``*-journal``, ``*-wal``, ``*-shm``, ``*.tmp``)
        are never copied.
        """
        mapped = self._mapped(local_path, to_backup=True)
        if isinstance(mapped, BackupResult):
            return mapped
        src, dst = mapped
        if not src.exists():
            return BackupResult(False, BackupAction.MISSING, src, dst, "Local path does not exist")
        if not self.backup_root.is_dir():
            reason = f"Backup root {self.backup_root} does not exist (is the drive mounted?)"
            return BackupResult(False, BackupAction.ERROR, src, dst, reason)
        return self._run("backup", src, dst, self._local_scope(), [self.backup_root], expect, delete=True)

    def restore(
        self, local_path: Path | str, expect: Expect = "any", *, delete: bool = False
    ) -> BackupResult:
        """Copy the backup of ``local_path`` back (``src`` is the backup, ``dst`` local, in every result).

        Local files that differ from the backup are overwritten. Local entries the backup does not have are
        kept and listed in ``stats.kept`` unless ``delete=True``.
        """
        mapped = self._mapped(local_path, to_backup=False)
        if isinstance(mapped, BackupResult):
            return mapped
        dst, src = mapped
        if not src.exists():
            return BackupResult(False, BackupAction.MISSING, src, dst, "Drive backup does not exist")
        return self._run("restore", src, dst, [self.backup_root], self._local_scope(), expect, delete=delete)

    def backup_exists(self, local_path: Path | str, expect: Expect = "any") -> bool:
        """Whether a backup of ``local_path`` exists (of the expected type); False when out of scope."""
        mapped = self._mapped(local_path, to_backup=False)
        if isinstance(mapped, BackupResult):
            logger.debug("backup_exists: %s", mapped.reason)
            return False
        dst = mapped[1]
        if expect == "file":
            return dst.is_file()
        return dst.is_dir() if expect == "dir" else dst.exists()

    def ensure_local(self, local_path: Path | str, options: EnsureLocalOptions | None = None) -> BackupResult:
        """Make sure ``local_path`` exists locally, restoring from the backup as ``options`` say.

        Both missing: MISSING. Local only: SKIPPED. Backup only: restored when ``if_missing``. Both present:
        with the defaults SKIPPED; otherwise compared (size/mtime, or hash with ``checksum``), restored when
        ``prefer="drive"`` and they differ, or when the backup is newer and ``prefer="newer"`` or
        ``if_stale``. A restore here never deletes local-only entries.
        """
        opts = options or EnsureLocalOptions()
        mapped = self._mapped(local_path, to_backup=False)
        if isinstance(mapped, BackupResult):
            return mapped
        dst, src = mapped
        local = Path(local_path)
        if not dst.exists():
            if not src.exists():
                return BackupResult(False, BackupAction.MISSING, src, dst, "Neither local nor backup exists")
            if not opts.if_missing:
                return BackupResult(True, BackupAction.SKIPPED, src, dst, "Local missing; if_missing=False")
            return self.restore(local)
        if not src.exists():
            return BackupResult(True, BackupAction.SKIPPED, src, dst, "Local exists; no backup")
        if not opts.if_stale and opts.prefer == "local":
            return BackupResult(True, BackupAction.SKIPPED, src, dst, "Local file exists")
        if self._up_to_date(src, dst):
            return BackupResult(True, BackupAction.SKIPPED, src, dst, "Local is up to date")
        if opts.prefer == "drive":
            return self.restore(local)
        if _newest_mtime(src) > _newest_mtime(dst):
            return self.restore(local)
        return BackupResult(True, BackupAction.SKIPPED, src, dst, "Local differs but is not older; kept")

    def verify(self, local_path: Path | str, *, checksum: bool | None = None) -> VerifyReport:
        """Compare ``local_path`` with its backup (sizes; SHA-256 with ``checksum``; SQLite integrity)."""
        mapped = self._mapped(local_path, to_backup=False)
        if isinstance(mapped, BackupResult):
            return VerifyReport(False, mapped.dst, mapped.src, reason=mapped.reason)
        src, dst = mapped
        if not src.exists():
            return VerifyReport(False, src, dst, reason="Local path does not exist")
        use_hash = self.checksum if checksum is None else checksum
        return verify_paths(src, dst, self._local_scope(), checksum=use_hash)

    def as_backup_callback(self) -> PathCallback:
        """``callback(path, is_directory=False) -> bool`` running ``backup`` (never raises)."""

        def backup_to_drive(path: Path | str, is_directory: bool = False) -> bool:
            return self.backup(path, expect="dir" if is_directory else "file").ok

        return backup_to_drive

    def as_restore_callback(self) -> PathCallback:
        """``callback(path, is_directory=False) -> bool`` running ``restore`` (never raises)."""

        def restore_from_drive(path: Path | str, is_directory: bool = False) -> bool:
            return self.restore(path, expect="dir" if is_directory else "file").ok

        return restore_from_drive
