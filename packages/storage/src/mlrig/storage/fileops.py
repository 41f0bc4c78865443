"""Single-file operations: atomic streaming copy, SQLite-safe snapshot, signatures, temp-file hygiene.

Every destination file is written to a temp name in its own directory (``.<name>.mlrig-<hex>.tmp``),
fsynced and ``os.replace``d, so a reader or a crash sees the old or the new complete file, never a torn one.
The copy streams (``sendfile``), so memory does not grow with file size. ``mlrig.paths.atomic_write_*``
covers in-memory payloads; this module exists for streaming copies of arbitrarily large files.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
from pathlib import Path

from mlrig.storage.errors import BackupError

logger = logging.getLogger(__name__)

SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
SQLITE_SIDECARS = ("-wal", "-journal", "-shm")
# Never copied in either direction: lock files, SQLite sidecars (of any file) and temp files. They belong to a
# live process on one side; copied, a stale lock blocks and a stale journal/WAL corrupts the file beside it.
TRANSIENT_SUFFIXES = (".lock", *SQLITE_SIDECARS, ".tmp")
SQLITE_MAGIC = b"SQLite format 3\x00"
_TEMP_RE = re.compile(r"^\..+\.mlrig-[0-9a-f]{12}\.tmp(-wal|-journal|-shm)?$")
_CHUNK = 1 << 20
_NO_SENDFILE = frozenset(
    {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOTSOCK}
)

Signature = tuple[int, ...]


def temp_name_for(dst: Path) -> Path:
    """A fresh temp path beside ``dst`` that ``is_temp_name`` recognises."""
    # secrets, sqlite3, shutil and tempfile are imported where used: a copy needs them, `import mlrig.storage`
    # does not (together about a sixth of its import time, measured with filelock deferred too).
    import secrets

    return dst.with_name(f".{dst.name}.mlrig-{secrets.token_hex(6)}.tmp")


def is_temp_name(name: str) -> bool:
    """True for names of temp files this module creates (they are never copied and are cleaned up)."""
    return name.startswith(".") and _TEMP_RE.match(name) is not None


def has_sqlite_suffix(name: str) -> bool:
    """True for ``.db`` / ``.sqlite`` / ``.sqlite3`` names (string test: this runs once per scanned file)."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in SQLITE_SUFFIXES


def is_transient_name(name: str) -> bool:
    """True for files that are never copied: ``*.lock``, ``*-journal``, ``*-wal``, ``*-shm``, ``*.tmp``."""
    return name.endswith(TRANSIENT_SUFFIXES)


def is_sqlite_file(path: Path) -> bool:
    """True when ``path`` has a SQLite suffix and starts with the SQLite header."""
    if not has_sqlite_suffix(path.name):
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def signature(path: Path | str, st: os.stat_result | None = None) -> Signature:
    """Change signature ``(size, mtime_ns[, wal_size, wal_mtime_ns])`` of a file.

    For a SQLite file the ``-wal`` sidecar is included: in WAL mode commits touch only the sidecar.
    Takes strings: the no-change pass calls it per file, where ``Path`` objects cost more than the stat.
    """
    text = os.fspath(path)
    st = st if st is not None else os.stat(text)  # noqa: PTH116 - hot path, str in
    sig: Signature = (st.st_size, st.st_mtime_ns)
    if has_sqlite_suffix(text):
        with contextlib.suppress(FileNotFoundError):
            wal = os.stat(text + "-wal")  # noqa: PTH116 - hot path, str in
            sig += (wal.st_size, wal.st_mtime_ns)
    return sig


def file_digest(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    import hashlib  # deferred: it loads OpenSSL, and `import mlrig.storage` does not need it

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """fsync a directory so renames in it are durable; ignored where unsupported (FUSE, Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of directory %s not supported", path)
    finally:
        os.close(fd)


def _stream(src_fd: int, dst_fd: int, size: int) -> None:
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(dst_fd, src_fd, offset, min(size - offset, 1 << 30))
            if sent == 0:
                break
            offset += sent
    except OSError as exc:
        if offset or exc.errno not in _NO_SENDFILE:
            raise
        # sendfile unsupported between these filesystems: restart as a plain chunked copy
        os.ftruncate(dst_fd, 0)
        os.lseek(dst_fd, 0, os.SEEK_SET)
        os.lseek(src_fd, 0, os.SEEK_SET)
        while chunk := os.read(src_fd, _CHUNK):
            os.write(dst_fd, chunk)


def _write_temp_copy(src: Path, tmp: Path, *, fsync: bool) -> os.stat_result:
    src_fd = os.open(src, os.O_RDONLY)
    try:
        st = os.fstat(src_fd)
        dst_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _stream(src_fd, dst_fd, st.st_size)
            if fsync:
                os.fsync(dst_fd)
        finally:
            os.close(dst_fd)
        return st
    finally:
        os.close(src_fd)


def snapshot_sqlite(src: Path, out: Path) -> None:
    """Write a consistent single-file copy of the live SQLite database ``src`` to ``out``.

    Uses the online backup API (committed state including the WAL; concurrent writers keep working) and
    switches the copy to ``journal_mode=DELETE`` so it needs no sidecar files. An existing ``out`` (the
    previous snapshot of the same source) is overwritten in place, which is cheaper than a new file; one that
    is not a SQLite database (a snapshot killed midway) is replaced.
    """
    import sqlite3

    source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        # SQLITE_NOTADB here, before ``out`` is touched, for a file that is not a database
        source.execute("PRAGMA schema_version")
        target = sqlite3.connect(out)
        try:
            # the copy is a scratch file, durable only once copied on with fsync: no journal and no syncs
            # while the source's read lock is held (they were most of the snapshot's time)
            target.execute("PRAGMA journal_mode=OFF")
            target.execute("PRAGMA synchronous=OFF")
            # in one step: a step-wise backup restarts from the first page whenever another connection
            # commits between two steps, so under a sweep committing every few tens of ms it never finished
            # (a 45 MB MLflow store: > 10 min). One step holds the read lock for one in-memory-speed copy;
            # writers wait that long (their busy timeout) and the snapshot always completes.
            source.backup(target, pages=-1)
            target.execute("PRAGMA journal_mode=DELETE")
            target.commit()
        finally:
            target.close()
    finally:
        source.close()


def _snapshot_into(src: Path, staging: Path) -> None:
    """:func:`snapshot_sqlite` into ``staging``, kept for the next snapshot of ``src``."""
    import sqlite3

    existed = staging.exists()
    try:
        snapshot_sqlite(src, staging)
    except sqlite3.DatabaseError as exc:
        if not existed or isinstance(exc, sqlite3.OperationalError):
            raise
        # the kept snapshot is not a database (torn by a killed snapshot): start again from a new file
        staging.unlink()
        snapshot_sqlite(src, staging)


def copy_file_atomic(
    src: Path, dst: Path, *, fsync: bool = True, sqlite_safe: bool = True, scratch_dir: Path | None = None
) -> int:
    """Copy ``src`` to ``dst`` atomically (temp in dst's dir + fsync + ``os.replace``); returns bytes written.

    SQLite databases are snapshotted with the backup API into ``scratch_dir`` (local disk, never the backup
    mount) first, and the ``-wal``/``-journal``/``-shm`` sidecars of the file being replaced are removed
    before the new file takes its place. The source mtime is kept. ``dst`` being a directory is an error,
    never written into.
    """
    return copy_file_stat(src, dst, fsync=fsync, sqlite_safe=sqlite_safe, scratch_dir=scratch_dir).st_size


def _remove_sidecars(db: Path) -> None:
    # before the replace: a stale hot journal or WAL next to the new file would be replayed into it
    for side in SQLITE_SIDECARS:
        with contextlib.suppress(FileNotFoundError):
            db.with_name(db.name + side).unlink()


def copy_file_stat(
    src: Path,
    dst: Path,
    *,
    fsync: bool = True,
    sqlite_safe: bool = True,
    scratch_dir: Path | None = None,
    staging: Path | None = None,
) -> os.stat_result:
    """``copy_file_atomic``, returning the stat of ``dst`` as written (what a manifest records).

    With ``staging`` (a local path no other copy uses meanwhile) a SQLite snapshot goes there, not to a temp
    dir, and is kept, so the next snapshot of ``src`` overwrites it in place (cheaper than a new file).
    """
    if dst.is_dir() and not dst.is_symlink():
        raise BackupError("destination is a directory, not replacing it with a file", path=dst)
    tmp = temp_name_for(dst)
    try:
        # stat before the snapshot: a commit racing it leaves the copy older than this mtime, so the next
        # run sees a changed signature and copies again
        src_st = src.stat()
        # No header sniffing with open(): closing any descriptor of a file drops every POSIX lock this
        # process holds on it, those of MLflow's and Optuna's live connections included (SQLite's "how to
        # corrupt", 2.2). A SQLite name goes to SQLite, which answers NOTADB when it is no database.
        if (
            sqlite_safe
            and has_sqlite_suffix(src.name)
            and src_st.st_size > 0
            and _snapshot_to_temp(src, tmp, fsync=fsync, scratch_dir=scratch_dir, staging=staging)
        ):
            _remove_sidecars(dst)
        else:
            src_st = _write_temp_copy(src, tmp, fsync=fsync)
        os.utime(tmp, ns=(src_st.st_atime_ns, src_st.st_mtime_ns))
        with contextlib.suppress(OSError):
            tmp.chmod(stat.S_IMODE(src_st.st_mode))
        os.replace(tmp, dst)  # noqa: PTH105 - the atomic step; os.replace is what fault tests patch
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return dst.stat()


def _snapshot_to_temp(
    src: Path, tmp: Path, *, fsync: bool, scratch_dir: Path | None, staging: Path | None
) -> bool:
    """Snapshot the live database ``src`` and copy the snapshot to ``tmp``; False, writing nothing, when
    ``src`` is no SQLite database."""
    import sqlite3

    with contextlib.ExitStack() as stack:
        if staging is None:
            import tempfile

            scratch = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="mlrig-sqlite-", dir=scratch_dir)
            )
            snap = Path(scratch) / src.name
        else:
            snap = staging
            snap.parent.mkdir(parents=True, exist_ok=True)
        try:
            _snapshot_into(src, snap)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
                return False
            raise BackupError(f"SQLite backup failed ({exc})", path=src) from exc
        _write_temp_copy(snap, tmp, fsync=fsync)
    return True


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree (symlinks are unlinked, never followed)."""
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
