"""The sync trusts nothing it has not looked at: destination stats are checked against the manifest, restore
keeps local-only files unless asked, and transient files are never copied."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mlrig.storage import BackupAction
from mlrig.storage.fileops import is_transient_name
from mlrig.storage.verify import sqlite_integrity_ok


def _corrupt_keeping_size_and_mtime(path: Path) -> None:
    """Flip bytes in place and put the mtime back: only inode/ctime (and content) tell the difference."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(st.st_size // 2)
        fh.write(b"\xff\x00CORRUPT\x00\xff")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _study(project, writer) -> Path:
    src = project.outputs / "hpo" / "study"
    for i in range(5):
        writer(src / f"trial_{i}" / "metrics.json", f'{{"loss": {i}}}' + " " * 200)
    writer(src / "fold_splits.json", '{"folds": [1, 2, 3]}' + " " * 100)
    return src


def test_corrupted_backup_copy_is_repaired_by_next_backup(project, writer, snapshot_tree):
    src = _study(project, writer)
    store = project.store()
    assert store.backup(src).action is BackupAction.COPIED
    _corrupt_keeping_size_and_mtime(project.mirror(src) / "trial_2" / "metrics.json")
    writer(project.mirror(src) / "fold_splits.json", "edited on the backup side")
    res = store.backup(src)
    assert res.action is BackupAction.COPIED, res
    assert sorted(res.stats.copied) == ["fold_splits.json", "trial_2/metrics.json"]
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)
    assert store.backup(src).action is BackupAction.SKIPPED


def test_corrupted_sqlite_backup_copy_is_repaired(project):
    src = project.outputs / "hpo" / "study"
    src.mkdir(parents=True)
    conn = sqlite3.connect(src / "study.db")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 100,)] * 500)
    conn.commit()
    conn.close()
    store = project.store()
    assert store.backup(src).ok
    copy = project.mirror(src) / "study.db"
    _corrupt_keeping_size_and_mtime(copy)
    assert not sqlite_integrity_ok(copy)
    res = store.backup(src)
    assert res.stats.copied == ("study.db",)
    assert sqlite_integrity_ok(copy)


def test_locally_edited_file_is_restored(project, writer, snapshot_tree):
    """The issue's reproduction: restore once, edit fold_splits.json and add new.txt, restore again."""
    src = _study(project, writer)
    store = project.store()
    store.backup(src)
    assert store.restore(src).action is BackupAction.SKIPPED
    _corrupt_keeping_size_and_mtime(src / "trial_0" / "metrics.json")
    writer(src / "fold_splits.json", "edited locally")
    writer(src / "new.txt", "local only")
    res = store.restore(src, expect="dir")
    assert res.action is BackupAction.COPIED, res
    assert sorted(res.stats.copied) == ["fold_splits.json", "trial_0/metrics.json"]
    assert res.stats.kept == ("new.txt",) and res.stats.deleted == ()
    assert snapshot_tree(src) == {**snapshot_tree(project.mirror(src)), "new.txt": "local only"}
    assert store.verify(src).extra == ()  # the backup itself was not touched by the restore
    assert store.verify(src).missing == ("new.txt",)


def test_local_only_entries_survive_restore_and_go_only_with_delete(project, writer, snapshot_tree):
    src = _study(project, writer)
    store = project.store()
    store.backup(src)
    writer(src / "notes.txt", "mine")
    writer(src / "scratch" / "a.bin", "a")
    writer(src / "scratch" / "b.bin", "b")
    dry = project.store(dry_run=True).restore(src)
    assert dry.stats.kept == ("notes.txt", "scratch") and dry.stats.deleted == ()
    kept = store.restore(src)
    assert kept.ok and kept.stats.kept == ("notes.txt", "scratch")
    assert (src / "notes.txt").read_text() == "mine" and (src / "scratch" / "b.bin").exists()
    gone = store.restore(src, delete=True)
    assert gone.ok and gone.stats.deleted == ("notes.txt", "scratch") and gone.stats.kept == ()
    assert snapshot_tree(src) == snapshot_tree(project.mirror(src))


def test_ensure_local_prefer_drive_never_deletes_local_only_files(project, writer):
    from mlrig.storage import EnsureLocalOptions

    src = _study(project, writer)
    store = project.store()
    store.backup(src)
    writer(src / "fold_splits.json", "edited locally")
    writer(src / "extra.txt", "mine")
    res = store.ensure_local(src, EnsureLocalOptions(prefer="drive"))
    assert res.action is BackupAction.COPIED and res.stats.kept == ("extra.txt",)
    assert (src / "extra.txt").exists()


@pytest.mark.parametrize(
    "name",
    ["owner.lock", ".owner.lock", "study.db-journal", "study.db-wal", "x-shm", "cache.tmp", "a.json-wal"],
)
def test_transient_names(name):
    assert is_transient_name(name)


def test_lock_and_transient_files_are_never_copied(project, writer, snapshot_tree):
    src = _study(project, writer)
    transient = [
        "run.lock",
        "trial_0/.trial.lock",
        "study.db-journal",
        "study.db-wal",
        "study.db-shm",
        "x.tmp",
    ]
    for rel in transient:
        writer(src / rel, "live process state")
    store = project.store()
    res = store.backup(src)
    assert res.ok and not set(transient) & set(res.stats.copied)
    backed_up = snapshot_tree(project.mirror(src))
    assert not [rel for rel in backed_up if is_transient_name(Path(rel).name)]
    single = store.backup(src / "run.lock", expect="file")
    assert single.action is BackupAction.SKIPPED and not project.mirror(src / "run.lock").exists()
    # a stale lock on the backup side is removed by the next backup; a restore leaves local ones alone
    writer(project.mirror(src) / "stale.lock", "old")
    assert store.backup(src).stats.deleted == ("stale.lock",)
    restored = store.restore(src)
    assert restored.ok and restored.stats.kept == ()
    assert all((src / rel).exists() for rel in transient)


def test_checksum_mode_repairs_what_stats_cannot_see(project, writer, snapshot_tree):
    """Without a manifest a same-size, same-mtime copy is adopted by stats; checksum mode compares content."""
    src = _study(project, writer)
    project.store().backup(src)
    (project.mirror(src) / ".mlrig-manifest.json").unlink()
    _corrupt_keeping_size_and_mtime(project.mirror(src) / "trial_4" / "metrics.json")
    res = project.store(checksum=True).backup(src)
    assert res.stats.copied == ("trial_4/metrics.json",)
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)
    # entries written in checksum mode serve the stat mode too: nothing is copied again
    assert project.store().backup(src).action is BackupAction.SKIPPED


def test_checksum_mode_sqlite_copy_checked_against_what_was_written(project):
    src = project.outputs / "s"
    src.mkdir()
    conn = sqlite3.connect(src / "study.db")
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.commit()
    conn.close()
    store = project.store(checksum=True)
    assert store.backup(src).stats.copied == ("study.db",)
    assert store.backup(src).action is BackupAction.SKIPPED
    copy = project.mirror(src) / "study.db"
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF
    st = copy.stat()
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.backup(src).stats.copied == ("study.db",)


def test_a_manifest_rewritten_by_another_process_is_read_again(project, writer):
    """The in-process manifest cache is keyed by the manifest file's stat: a rewrite is never missed."""
    import json

    src = _study(project, writer)
    store = project.store()
    store.backup(src)
    copy = project.mirror(src) / "trial_1" / "metrics.json"
    _corrupt_keeping_size_and_mtime(copy)
    manifest = project.mirror(src) / ".mlrig-manifest.json"
    data = json.loads(manifest.read_text())
    st = copy.stat()
    data["files"]["trial_1/metrics.json"][2:] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    tmp = manifest.with_name("rewritten.json")
    tmp.write_text(json.dumps(data))
    tmp.replace(manifest)  # what another process's atomic write does
    assert store.backup(src).action is BackupAction.SKIPPED  # it trusted the new record, so it read it
