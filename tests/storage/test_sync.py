"""Incremental directory sync: skipping, deletions, type conflicts, manifest, checksum, temps, progress."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlrig.storage import BackupAction, Progress, sync_tree


def _seed(writer, top: Path, n: int = 5) -> None:
    for i in range(n):
        writer(top / f"d{i % 2}" / f"f{i}.txt", f"content {i}")


def test_mirror_copy_then_unchanged(project, writer, snapshot_tree):
    src = project.outputs / "study"
    _seed(writer, src)
    store = project.store()
    first = store.backup(src)
    assert first.action is BackupAction.COPIED and len(first.stats.copied) == 5
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)
    second = store.backup(src)
    assert second.action is BackupAction.SKIPPED
    assert second.stats.unchanged == 5 and second.stats.copied == ()


def test_only_changed_files_are_copied(project, writer, snapshot_tree, monkeypatch):
    src = project.outputs / "study"
    _seed(writer, src)
    store = project.store()
    store.backup(src)
    changed = src / "d1" / "f3.txt"
    writer(changed, "new content", mtime_ns=changed.stat().st_mtime_ns + 5 * 10**9)
    writer(src / "d2" / "new.txt", "brand new")
    copied: list[str] = []
    import mlrig.storage.sync as sync_mod

    real = sync_mod.copy_file_stat

    def spy(s: Path, d: Path, **kw):  # type: ignore[no-untyped-def]
        copied.append(d.relative_to(project.mirror(src)).as_posix())
        return real(s, d, **kw)

    monkeypatch.setattr(sync_mod, "copy_file_stat", spy)
    res = store.backup(src)
    assert sorted(copied) == ["d1/f3.txt", "d2/new.txt"]
    assert res.stats.unchanged == 4
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)


def test_deleted_local_files_disappear_from_backup(project, writer, snapshot_tree):
    src = project.outputs / "study"
    _seed(writer, src)
    (src / "d0" / "empty").mkdir()
    store = project.store()
    store.backup(src)
    assert (project.mirror(src) / "d0" / "empty").is_dir()
    (src / "d0" / "f0.txt").unlink()
    for p in (src / "d1").iterdir():
        p.unlink()
    (src / "d1").rmdir()
    res = store.backup(src)
    assert sorted(res.stats.deleted) == ["d0/f0.txt", "d1"]
    assert not (project.mirror(src) / "d1").exists()
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)


def test_type_conflicts_resolved(project, writer, snapshot_tree):
    src = project.outputs / "s"
    writer(src / "x" / "inner.txt", "dir before")
    writer(src / "y", "file before")
    store = project.store()
    store.backup(src)
    (src / "x" / "inner.txt").unlink()
    (src / "x").rmdir()
    writer(src / "x", "now a file")
    (src / "y").unlink()
    writer(src / "y" / "deep" / "z.txt", "now a dir")
    res = store.backup(src)
    assert res.ok, res
    assert snapshot_tree(project.mirror(src)) == {"x": "now a file", "y/deep/z.txt": "now a dir"}


def test_destination_edit_without_manifest_is_detected(project, writer, snapshot_tree):
    src = project.outputs / "s"
    _seed(writer, src, 3)
    store = project.store()
    store.backup(src)
    (project.mirror(src) / ".mlrig-manifest.json").unlink()
    writer(project.mirror(src) / "d0" / "f0.txt", "tampered!!")
    res = store.backup(src)
    assert res.stats.copied == ("d0/f0.txt",)
    assert res.stats.unchanged == 2
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)


def test_manifest_records_source_signature_and_copy_stat(project, writer):
    src = project.outputs / "s"
    f = writer(src / "a.txt", "abc")
    project.store().backup(src)
    data = json.loads((project.mirror(src) / ".mlrig-manifest.json").read_text())
    assert data["source"] == str(src)
    copy = (project.mirror(src) / "a.txt").stat()
    expected = [3, f.stat().st_mtime_ns, 3, copy.st_mtime_ns, copy.st_ino, copy.st_ctime_ns]
    assert data["files"]["a.txt"] == expected


def test_no_change_pass_reads_no_file_content(project, writer, monkeypatch):
    src = project.outputs / "s"
    _seed(writer, src, 6)
    store = project.store()
    store.backup(src)
    import mlrig.storage.sync as sync_mod

    def forbidden(*a, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("file content read during a no-change pass")

    monkeypatch.setattr(sync_mod, "file_digest", forbidden)
    monkeypatch.setattr(sync_mod, "copy_file_stat", forbidden)
    res = store.backup(src)
    assert res.action is BackupAction.SKIPPED and res.stats.unchanged == 6


def test_checksum_mode_catches_same_stat_change_and_skips_touch(project, writer, snapshot_tree):
    src = project.outputs / "s"
    f = writer(src / "a.txt", "aaaa")
    store = project.store(checksum=True)
    store.backup(src)
    st = f.stat()
    f.write_text("bbbb")  # same size, same mtime: only the hash notices
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert project.store().backup(src).action is BackupAction.SKIPPED
    res = store.backup(src)
    assert res.stats.copied == ("a.txt",)
    assert snapshot_tree(project.mirror(src)) == {"a.txt": "bbbb"}
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, content equal
    assert store.backup(src).action is BackupAction.SKIPPED


def test_leftover_temps_are_cleaned_and_never_copied(project, writer, snapshot_tree):
    src = project.outputs / "s"
    writer(src / "a.txt", "a")
    writer(src / ".a.txt.mlrig-0123456789ab.tmp", "half a file in the source")
    store = project.store()
    store.backup(src)
    leftover = writer(project.mirror(src) / "sub" / ".b.txt.mlrig-aaaaaaaaaaaa.tmp", "junk")
    writer(project.mirror(src) / "..mlrig-manifest.json.x1y2.tmp", "junk")
    writer(src / "sub" / "b.txt", "b")
    store.backup(src)
    assert not leftover.exists()
    assert not (project.mirror(src) / "..mlrig-manifest.json.x1y2.tmp").exists()
    assert snapshot_tree(project.mirror(src)) == {"a.txt": "a", "sub/b.txt": "b"}


def test_progress_reports_files_and_bytes(project, writer):
    src = project.outputs / "s"
    for i in range(4):
        writer(src / f"f{i}.bin", "x" * (100 * (i + 1)))
    seen: list[Progress] = []
    project.store(progress=seen.append).backup(src)
    assert seen[0] == Progress(0, 4, 0, 1000, "")
    assert seen[-1].files_done == 4 and seen[-1].bytes_done == 1000
    assert [p.files_done for p in seen] == [0, 1, 2, 3, 4]


def test_restore_directory_restores_edits_and_keeps_local_only_files(project, writer, snapshot_tree):
    src = project.outputs / "s"
    _seed(writer, src)
    store = project.store()
    store.backup(src)
    writer(src / "d0" / "f0.txt", "local edit", mtime_ns=src.stat().st_mtime_ns + 10**9)
    writer(src / "local_only.txt", "x")
    res = store.restore(src, expect="dir")
    assert res.ok and res.src == project.mirror(src) and res.dst == src
    assert res.stats.copied == ("d0/f0.txt",) and res.stats.kept == ("local_only.txt",)
    assert snapshot_tree(src) == {**snapshot_tree(project.mirror(src)), "local_only.txt": "x"}
    again = store.restore(src)
    assert again.action is BackupAction.SKIPPED and again.stats.kept == ("local_only.txt",)
    mirrored = store.restore(src, delete=True)
    assert mirrored.stats.deleted == ("local_only.txt",) and mirrored.stats.kept == ()
    assert snapshot_tree(src) == snapshot_tree(project.mirror(src))


@pytest.mark.parametrize("fsync", [True, False])
def test_sync_tree_function(tmp_path, writer, snapshot_tree, fsync):
    a, b = tmp_path / "a", tmp_path / "b"
    writer(a / "x" / "y.txt", "y")
    stats = sync_tree(a, b, [a], fsync=fsync)
    assert stats.copied == ("x/y.txt",) and stats.bytes_copied == 1
    assert snapshot_tree(b) == {"x/y.txt": "y"}


def test_single_file_leftover_temp_cleaned_and_progress(project, writer):
    f = writer(project.outputs / "study.json", "abc")
    leftover = writer(project.mirror(f).parent / ".study.json.mlrig-0123456789ab.tmp", "torn")
    unrelated = writer(project.mirror(f).parent / ".other.json.mlrig-0123456789ab.tmp", "someone else's")
    seen: list[Progress] = []
    assert project.store(progress=seen.append).backup(f).ok
    assert not leftover.exists() and unrelated.exists()
    assert seen == [Progress(0, 1, 0, 3, "study.json"), Progress(1, 1, 3, 3, "study.json")]
