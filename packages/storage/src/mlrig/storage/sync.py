"""Incremental, crash-safe directory sync (one direction: ``src_top`` → ``dst_top``).

Order of work: leftover temps are removed, changed files are copied atomically one by one, and only when every
copy succeeded are entries that no longer exist in the source deleted (restore keeps them unless asked). A
crash at any point leaves each destination file either its old or its new complete version; a re-run
converges. A manifest (``.mlrig-manifest.json`` in ``dst_top``) records, per file copied, the source signature
and the destination's stat as written, so a no-change pass is one ``lstat`` per file on each side and a copy
that was edited or corrupted since (its size, mtime, inode or ctime moved) is copied again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrig.paths import atomic_write_json
from mlrig.storage.errors import BackupError
from mlrig.storage.fileops import (
    Signature,
    copy_file_stat,
    file_digest,
    fsync_dir,
    has_sqlite_suffix,
    remove_path,
    signature,
)
from mlrig.storage.results import Progress, ProgressCallback, SyncStats
from mlrig.storage.scan import MANIFEST_NAME, Tree, scan_tree

logger = logging.getLogger(__name__)

_MANIFEST_VERSION = 3
_CHECKPOINT_SECONDS = 30.0
# rel -> [*source signature, dst size, dst mtime_ns, dst inode, dst ctime_ns, (sha256 of the copy)]
Manifest = dict[str, list[Any]]
_DST_FIELDS = 4


@dataclass
class SyncPlan:
    """What a sync will do; ``copy_after`` entries wait until conflicting destination entries are deleted."""

    src: Tree
    dst: Tree
    copy_now: list[str] = field(default_factory=list)
    copy_after: list[str] = field(default_factory=list)
    mkdirs_now: list[str] = field(default_factory=list)
    mkdirs_after: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    manifest: Manifest = field(default_factory=dict)
    previous: Manifest = field(default_factory=dict)
    unchanged: int = 0

    @property
    def is_noop(self) -> bool:
        """Nothing to copy, create or delete (kept destination-only entries do not count)."""
        return not (self.copy_now or self.copy_after or self.mkdirs_now or self.mkdirs_after or self.delete)


def _ancestors(rel: str) -> Iterable[str]:
    parts = rel.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def load_manifest(dst_top: Path, src_top: Path) -> Manifest:
    """Entries of ``dst_top``'s manifest if written for ``src_top``; empty when absent or unreadable."""
    import json  # deferred: `import mlrig.storage` does not need it

    path = dst_top / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable manifest %s (%s)", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != _MANIFEST_VERSION:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return files if data.get("source") == str(src_top) else {}


def _save_manifest(dst_top: Path, src_top: Path, files: Manifest) -> None:
    payload = {"version": _MANIFEST_VERSION, "source": str(src_top), "files": dict(sorted(files.items()))}
    atomic_write_json(dst_top / MANIFEST_NAME, payload, indent=None)


def _dst_stat(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _snapshotted(src: str, sig: Signature) -> bool:
    """Whether ``src`` is copied as a SQLite snapshot (a ``-wal`` in its signature, or a SQLite name): its
    copy differs from it byte-wise, and the live file is never read outside SQLite."""
    return len(sig) != 2 or has_sqlite_suffix(src)


def _compare(
    src: str, sig: Signature, dst: str, dst_sig: Signature, entry: list[Any] | None, checksum: bool
) -> list[Any] | None:
    """The manifest entry to keep when ``dst`` holds the current version of ``src``, else None (copy)."""
    digest = entry[-1] if entry and isinstance(entry[-1], str) else None
    recorded = tuple(entry[:-1] if digest else entry) if entry else None
    sqlite = _snapshotted(src, sig)
    if checksum:
        if sqlite:
            # a snapshot never equals its live source byte-wise: same source state, copy intact as written
            same_source = digest is not None and recorded is not None and recorded[: len(sig)] == sig
            if same_source and file_digest(Path(dst)) == digest:
                return [*sig, *dst_sig, digest]
            return None
        digest = file_digest(Path(src))
        return [*sig, *dst_sig, digest] if digest == file_digest(Path(dst)) else None
    if recorded is not None:
        return list(entry or ()) if recorded == sig + dst_sig else None
    if sqlite or dst_sig[:2] != sig:
        return None
    return [*sig, *dst_sig]  # no record (first run, or a copy made elsewhere): same size and mtime adopted


def plan_sync(
    src_top: Path, dst_top: Path, scope: Iterable[Path], *, checksum: bool = False, delete: bool = True
) -> SyncPlan:
    """Compare the trees and decide what to copy, create, delete (or keep, ``delete=False``); writes nothing.

    Without ``checksum`` a file is unchanged when both its source signature and its destination stat equal
    what the manifest recorded at copy time; with ``checksum`` the contents are compared (SHA-256).
    """
    plan = SyncPlan(src=scan_tree(src_top, scope), dst=scan_tree(dst_top))
    src, dst = plan.src, plan.dst
    old = plan.previous = load_manifest(dst_top, src_top)
    blocked = (src.dirs & (dst.files.keys() | dst.others)) | (src.files.keys() & (dst.dirs | dst.others))

    def is_blocked(rel: str) -> bool:
        return rel in blocked or any(a in blocked for a in _ancestors(rel))

    dst_files, manifest, get = dst.files, plan.manifest, old.get
    for rel, (path, sig) in src.files.items():
        found = dst_files.get(rel)
        if found is not None:
            entry = get(rel)
            if not checksum and entry is not None and tuple(entry) == sig + found[1]:  # hot path of _compare
                manifest[rel] = entry
                plan.unchanged += 1
                continue
            kept = _compare(path, sig, found[0], found[1], entry, checksum)
            if kept is not None:
                manifest[rel] = kept
                plan.unchanged += 1
                continue
        (plan.copy_after if is_blocked(rel) else plan.copy_now).append(rel)
    plan.copy_now.sort()
    plan.copy_after.sort()
    for rel in sorted(src.dirs - dst.dirs):
        (plan.mkdirs_after if is_blocked(rel) else plan.mkdirs_now).append(rel)
    extra = (
        (dst.files.keys() - src.files.keys())
        | (dst.dirs - src.dirs)
        | (dst.others - src.files.keys() - src.dirs)
    )
    if delete:
        extra |= dst.transient
    gone = (extra if delete else set()) | blocked
    plan.delete = sorted(r for r in gone if not any(a in gone for a in _ancestors(r)))
    if not delete:
        keep = extra - gone
        plan.kept = sorted(r for r in keep if not any(a in keep or a in gone for a in _ancestors(r)))
    return plan


class _Copier:
    def __init__(
        self,
        src_top: Path,
        dst_top: Path,
        plan: SyncPlan,
        *,
        fsync: bool,
        scratch_dir: Path | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.dst_top, self.plan, self.fsync, self.scratch = dst_top, plan, fsync, scratch_dir
        self.src_top, self.progress = src_top, progress
        todo = plan.copy_now + plan.copy_after
        self.files_total = len(todo)
        self.bytes_total = sum(plan.src.files[r][1][0] for r in todo)
        self.files_done = self.bytes_done = 0
        self.touched: set[Path] = set()
        self.copied: list[str] = []
        self.last_checkpoint = time.monotonic()

    def checkpoint(self, force: bool = False) -> None:
        """Save the manifest of what is copied so far (after a failure, or every ``_CHECKPOINT_SECONDS``),
        so a run killed midway (a Colab disconnect) does not upload finished files again."""
        if not force and time.monotonic() - self.last_checkpoint < _CHECKPOINT_SECONDS:
            return
        merged = {**self.plan.previous, **self.plan.manifest}
        with contextlib.suppress(OSError, ValueError):
            kept = {r: merged[r] for r in merged if r in self.plan.src.files}
            _save_manifest(self.dst_top, self.src_top, kept)
        self.last_checkpoint = time.monotonic()

    def report(self, current: str = "") -> None:
        if self.progress is not None:
            self.progress(
                Progress(self.files_done, self.files_total, self.bytes_done, self.bytes_total, current)
            )

    def mkdirs(self, rels: list[str]) -> None:
        for rel in rels:
            (self.dst_top / rel).mkdir(parents=True, exist_ok=True)

    def copy(self, rels: list[str], checksum: bool) -> None:
        for rel in rels:
            src_text, sig = self.plan.src.files[rel]
            path = Path(src_text)
            dst = self.dst_top / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                sqlite = _snapshotted(src_text, sig)
                # a live database is never read outside SQLite (copy_file_stat says why); its snapshot
                # differs from it byte-wise anyway, so the digest recorded is that of what was written
                digest = file_digest(path) if checksum and not sqlite else None
                st = copy_file_stat(path, dst, fsync=self.fsync, scratch_dir=self.scratch)
                self.bytes_done += st.st_size
                if checksum and sqlite:
                    digest = file_digest(dst)
            except FileNotFoundError:
                if os.path.lexists(src_text):
                    raise
                # removed locally after the scan (e.g. a rotated checkpoint): skipped, not a failure
                logger.info("%s vanished before it could be copied; skipped", path)
                self.plan.manifest.pop(rel, None)
                self.files_done += 1
                continue
            self.touched.add(dst.parent)
            self.copied.append(rel)
            try:
                stable = signature(path) == sig
            except OSError:
                stable = False
            if stable:  # a file changing during the copy is left out of the manifest: next run recopies it
                entry = [*sig, *_dst_stat(st)]
                self.plan.manifest[rel] = [*entry, digest] if digest else entry
            else:
                self.plan.manifest.pop(rel, None)
                logger.info("%s changed while being copied; it will be copied again next run", path)
            self.files_done += 1
            self.report(rel)
            self.checkpoint()


def sync_tree(
    src_top: Path,
    dst_top: Path,
    scope: Iterable[Path],
    *,
    dry_run: bool = False,
    checksum: bool = False,
    fsync: bool = True,
    scratch_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    delete: bool = True,
) -> SyncStats:
    """Make ``dst_top`` mirror ``src_top`` (see the module doc for the crash guarantees).

    With ``delete=False`` destination entries the source does not have are left alone and listed in
    ``SyncStats.kept``; ``checksum=True`` compares contents instead of trusting recorded stats.
    """
    plan = plan_sync(src_top, dst_top, scope, checksum=checksum, delete=delete)
    links = tuple(sorted(plan.src.skipped_links))
    if dry_run:
        todo = plan.copy_now + plan.copy_after
        return SyncStats(
            copied=tuple(todo),
            deleted=tuple(plan.delete),
            unchanged=plan.unchanged,
            skipped_links=links,
            bytes_copied=sum(plan.src.files[r][1][0] for r in todo),
            kept=tuple(plan.kept),
        )
    for tmp in plan.dst.temps:
        logger.info("removing leftover temp file %s", tmp)
        with contextlib.suppress(OSError):
            tmp.unlink()
    old_manifest = plan.previous
    dst_top.mkdir(parents=True, exist_ok=True)
    copier = _Copier(src_top, dst_top, plan, fsync=fsync, scratch_dir=scratch_dir, progress=progress)
    copier.report()
    try:
        copier.mkdirs(plan.mkdirs_now)
        copier.copy(plan.copy_now, checksum)
        for rel in plan.delete:
            logger.debug("deleting %s (no longer in %s)", dst_top / rel, src_top)
            remove_path(dst_top / rel)
        copier.mkdirs(plan.mkdirs_after)
        copier.copy(plan.copy_after, checksum)
    except (OSError, ValueError) as exc:
        copier.checkpoint(force=True)  # keep what was copied so far: the re-run skips it
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"sync {src_top} -> {dst_top} failed ({exc})", path=dst_top) from exc
    if fsync:
        for directory in copier.touched:
            fsync_dir(directory)
    if plan.manifest != old_manifest:
        _save_manifest(dst_top, src_top, plan.manifest)
    return SyncStats(
        copied=tuple(copier.copied),
        deleted=tuple(plan.delete),
        unchanged=plan.unchanged,
        skipped_links=links,
        bytes_copied=copier.bytes_done,
        kept=tuple(plan.kept),
    )
