"""Fault injection: a failure at any step leaves the last good backup intact, and a re-run converges."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import mlrig.storage.fileops as fileops
import mlrig.storage.sync as sync_mod
from mlrig.storage import BackupAction


def _old_new(project, writer, n: int = 8) -> tuple[Path, dict[str, str], dict[str, str]]:
    src = project.outputs / "study"
    old = {f"t{i}/m.json": f"old {i}" * 50 for i in range(n)}
    for rel, text in old.items():
        writer(src / rel, text, mtime_ns=10**18)
    assert project.store().backup(src).ok
    new = {rel: f"NEW {rel}" * 70 for rel in list(old)[1:]}
    new["added/z.json"] = "added"
    for rel in old:
        (src / rel).unlink()
    for rel, text in new.items():
        writer(src / rel, text, mtime_ns=2 * 10**18)
    return src, old, new


def _assert_old_or_new(dst: Path, old: dict[str, str], new: dict[str, str], snapshot_tree) -> None:
    got = snapshot_tree(dst)
    for rel, text in got.items():
        assert text in (old.get(rel), new.get(rel)), f"{rel} is neither old nor new: {text[:30]!r}"
    for rel in old:
        if rel not in new:
            assert rel in got, f"{rel} deleted from the backup before the new copy was complete"
    assert not [p for p in dst.rglob("*.tmp")], "temp files left behind"


def _flaky(monkeypatch, module, name: str, fail_on: int, exc: BaseException) -> list[int]:
    calls = [0]
    real = getattr(module, name)

    def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == fail_on:
            raise exc
        return real(*a, **kw)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.parametrize("fail_on", [1, 3, 6])
def test_replace_failure_keeps_last_good_backup(project, writer, snapshot_tree, monkeypatch, fail_on):
    src, old, new = _old_new(project, writer)
    _flaky(monkeypatch, os, "replace", fail_on, OSError(errno.EIO, "Drive disconnected"))
    res = project.store().backup(src)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert "Drive disconnected" in res.reason
    _assert_old_or_new(project.mirror(src), old, new, snapshot_tree)
    monkeypatch.undo()
    again = project.store().backup(src)
    assert again.ok, again
    assert snapshot_tree(project.mirror(src)) == new
    assert project.store().verify(src, checksum=True).ok


def test_copy_failure_midway_through_a_file(project, writer, snapshot_tree, monkeypatch):
    src, old, new = _old_new(project, writer)
    sent = [0]
    real = os.sendfile

    def half_then_fail(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent[0] += 1
        if sent[0] == 4:
            real(out_fd, in_fd, offset, max(1, count // 2))
            raise OSError(errno.ENOSPC, "quota exceeded")
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", half_then_fail)
    res = project.store().backup(src)
    assert not res.ok and "quota exceeded" in res.reason
    _assert_old_or_new(project.mirror(src), old, new, snapshot_tree)
    monkeypatch.undo()
    assert project.store().backup(src).ok
    assert snapshot_tree(project.mirror(src)) == new


def test_deletion_failure_keeps_copies_and_converges(project, writer, snapshot_tree, monkeypatch):
    src, _old, new = _old_new(project, writer)
    _flaky(monkeypatch, sync_mod, "remove_path", 1, PermissionError(errno.EACCES, "read-only"))
    res = project.store().backup(src)
    assert not res.ok
    got = snapshot_tree(project.mirror(src))
    assert {rel: got[rel] for rel in new} == new  # all new content landed before any deletion
    monkeypatch.undo()
    assert project.store().backup(src).ok
    assert snapshot_tree(project.mirror(src)) == new


def test_partial_run_keeps_progress_in_manifest(project, writer, monkeypatch):
    src, _, new = _old_new(project, writer)
    _flaky(monkeypatch, os, "replace", 5, OSError(errno.EIO, "boom"))
    assert not project.store().backup(src).ok
    monkeypatch.undo()
    res = project.store().backup(src)
    assert res.ok
    assert len(res.stats.copied) == len(new) - 4  # the four finished copies are not redone


def test_single_file_failure_keeps_old_file(project, writer, monkeypatch):
    f = writer(project.outputs / "best.json", "old", mtime_ns=10**18)
    store = project.store()
    store.backup(f)
    writer(f, "new", mtime_ns=2 * 10**18)
    _flaky(monkeypatch, os, "replace", 1, OSError(errno.EIO, "boom"))
    res = store.backup(f)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert project.mirror(f).read_text() == "old"
    assert [p.name for p in project.mirror(f).parent.iterdir()] == ["best.json"]
    monkeypatch.undo()
    assert store.backup(f).ok and project.mirror(f).read_text() == "new"


def test_restore_failure_keeps_local_copy(project, writer, snapshot_tree, monkeypatch):
    d = project.outputs / "s"
    writer(d / "a.txt", "backup a", mtime_ns=2 * 10**18)
    writer(d / "b.txt", "backup b", mtime_ns=2 * 10**18)
    store = project.store()
    store.backup(d)
    writer(d / "a.txt", "local a", mtime_ns=10**18)
    writer(d / "b.txt", "local b", mtime_ns=10**18)
    _flaky(monkeypatch, os, "replace", 2, OSError(errno.EIO, "boom"))
    assert not store.restore(d).ok
    assert snapshot_tree(d) == {"a.txt": "backup a", "b.txt": "local b"}
    monkeypatch.undo()
    assert store.restore(d).ok
    assert snapshot_tree(d) == {"a.txt": "backup a", "b.txt": "backup b"}


def test_temp_removed_when_copy_raises(tmp_path, monkeypatch):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 1000)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "fsync")))
    with pytest.raises(OSError, match="fsync"):
        fileops.copy_file_atomic(src, tmp_path / "b.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_sendfile_unsupported_falls_back_to_a_clean_copy(tmp_path, monkeypatch):
    src = tmp_path / "a.bin"
    payload = os.urandom(300_000)
    src.write_bytes(payload)
    real = os.sendfile

    def partial_then_einval(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        real(out_fd, in_fd, offset, 1000)  # some bytes land before the error is reported
        raise OSError(errno.EINVAL, "sendfile not supported here")

    monkeypatch.setattr(os, "sendfile", partial_then_einval)
    assert fileops.copy_file_atomic(src, tmp_path / "b.bin") == len(payload)
    assert (tmp_path / "b.bin").read_bytes() == payload


def test_source_file_vanishing_mid_backup_is_skipped(project, writer, monkeypatch):
    src = project.outputs / "s"
    for i in range(4):
        writer(src / f"f{i}.txt", f"{i}")
    real = fileops.copy_file_stat

    def remove_f2_first(s: Path, d: Path, **kw):  # type: ignore[no-untyped-def]
        (src / "f2.txt").unlink(missing_ok=True)
        return real(s, d, **kw)

    monkeypatch.setattr(sync_mod, "copy_file_stat", remove_f2_first)
    res = project.store().backup(src)
    assert res.ok, res
    assert sorted(p.name for p in project.mirror(src).iterdir() if not p.name.startswith(".")) == [
        "f0.txt",
        "f1.txt",
        "f3.txt",
    ]
    monkeypatch.undo()
    assert project.store().backup(src).action is BackupAction.SKIPPED


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing in the store catches it, so no cleanup code runs."""


def test_manifest_checkpoints_survive_a_hard_stop(project, writer, monkeypatch):
    src = project.outputs / "s"
    for i in range(6):
        writer(src / f"f{i}.txt", f"{i}" * 100)
    monkeypatch.setattr(sync_mod, "_CHECKPOINT_SECONDS", 0.0)
    _flaky(monkeypatch, sync_mod, "copy_file_stat", 4, _Killed())
    with pytest.raises(_Killed):
        project.store().backup(src)
    monkeypatch.undo()
    res = project.store().backup(src)
    assert res.ok and len(res.stats.copied) == 3 and res.stats.unchanged == 3
