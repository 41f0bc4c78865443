"""Comparing a source with its backup: sizes, optional SHA-256, SQLite integrity."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from mlrig.storage.fileops import file_digest, has_sqlite_suffix, is_sqlite_file
from mlrig.storage.results import VerifyReport
from mlrig.storage.scan import scan_tree
from mlrig.storage.sqlite_check import check_sqlite

logger = logging.getLogger(__name__)


def sqlite_integrity_ok(path: Path) -> bool:
    """True when the SQLite copy ``path``, opened read-only, is sound (:func:`check_sqlite`)."""
    check = check_sqlite(path, read_only=True)
    if not check.ok:
        logger.warning("SQLite copy %s is unsound (%s)", path, check.reason)
    return check.ok


def files_match(src: Path, dst: Path, *, checksum: bool) -> bool:
    """Same content as far as checked: SQLite copies by mtime and integrity (a snapshot differs byte-wise),
    else size and, with ``checksum``, SHA-256."""
    # the header is read from the backup copy: opening the live source outside SQLite would drop this
    # process's SQLite locks on it (see copy_file_stat)
    if has_sqlite_suffix(src.name) and is_sqlite_file(dst):
        # a snapshot carries the source's mtime from when it was taken; a later commit moves the source's
        try:
            fresh = src.stat().st_mtime_ns == dst.stat().st_mtime_ns
        except OSError:
            return False
        return fresh and sqlite_integrity_ok(dst)
    try:
        if src.stat().st_size != dst.stat().st_size:
            return False
    except OSError:
        return False
    return not checksum or file_digest(src) == file_digest(dst)


def verify_paths(src: Path, dst: Path, scope: Iterable[Path], *, checksum: bool = False) -> VerifyReport:
    """Compare ``src`` (file or directory) with its copy ``dst``: what is missing, extra or differing."""
    if src.is_file():
        if not dst.is_file():
            return VerifyReport(False, src, dst, 1, missing=(src.name,), reason="backup file missing")
        same = files_match(src, dst, checksum=checksum)
        return VerifyReport(
            same, src, dst, 1, differing=() if same else (src.name,), reason="" if same else "content differs"
        )
    if not dst.is_dir():
        return VerifyReport(False, src, dst, 0, reason="backup directory missing")
    source = scan_tree(src, scope)
    backup = scan_tree(dst)
    missing = tuple(sorted(source.files.keys() - backup.files.keys()))
    extra = tuple(sorted((backup.files.keys() | backup.others) - source.files.keys()))
    differing = tuple(
        rel
        for rel in sorted(source.files.keys() & backup.files.keys())
        if not files_match(Path(source.files[rel][0]), dst / rel, checksum=checksum)
    )
    ok = not (missing or extra or differing)
    reason = "" if ok else f"{len(missing)} missing, {len(extra)} extra, {len(differing)} differing"
    return VerifyReport(ok, src, dst, len(source.files), missing, extra, differing, reason)
