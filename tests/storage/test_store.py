"""DriveBackupStore on real directories: results, direction, scope, dry run, callbacks, ensure_local."""

from __future__ import annotations

import os
import time

import pytest

from mlrig.paths import PathScopeError
from mlrig.storage import (
    BackupAction,
    BackupConfigError,
    BackupError,
    BackupResult,
    DriveBackupStore,
    EnsureLocalOptions,
)


def test_drive_path_for_delegates_to_paths_mapping(project):
    store = project.store()
    local = project.outputs / "hpo" / "local" / "m" / "study-aaaa" / "study.db"
    assert store.drive_path_for(local) == project.backup_root / "outputs/hpo/local/m/study-aaaa/study.db"
    assert store.drive_path_for("outputs/x.json") == project.backup_root / "outputs/x.json"
    with pytest.raises(PathScopeError):
        store.drive_path_for(project.root / "src" / "outputs" / "z")
    with pytest.raises(ValueError, match="outputs"):
        store.drive_path_for(project.outputs / ".." / "secrets.txt")


def test_drive_path_refused_component_wise(project):
    store = project.store(mount_point=project.root.parent / "mnt")
    on_mount = project.root.parent / "mnt" / "MyDrive" / "x.txt"
    with pytest.raises(PathScopeError, match="already in Drive"):
        store.drive_path_for(on_mount)
    res = store.backup(on_mount)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert "already in Drive" in res.reason
    sibling = project.root.parent / "mnt2" / "x"
    assert "already in Drive" not in store.backup(sibling).reason


def test_root_must_exist(tmp_path):
    with pytest.raises(BackupConfigError, match="root_dir does not exist") as info:
        DriveBackupStore(tmp_path / "nope", tmp_path / "bk")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, OSError)


def test_backup_file_then_restore_direction(project, writer):
    src = writer(project.outputs / "cache" / "best.json", '{"a": 1}')
    store = project.store()
    res = store.backup(src, expect="file")
    assert (res.ok, res.action, res.src, res.dst) == (True, BackupAction.COPIED, src, project.mirror(src))
    assert project.mirror(src).read_text() == '{"a": 1}'
    assert project.mirror(src).stat().st_mtime_ns == src.stat().st_mtime_ns
    src.unlink()
    missing_local = store.backup(src)
    assert missing_local.action is BackupAction.MISSING and not missing_local.ok
    res = store.restore(src, expect="file")
    assert (res.ok, res.action, res.src, res.dst) == (True, BackupAction.COPIED, project.mirror(src), src)
    assert src.read_text() == '{"a": 1}'
    gone = store.restore(project.outputs / "cache" / "other.json")
    assert gone.action is BackupAction.MISSING
    assert gone.src == project.mirror(project.outputs / "cache" / "other.json")
    assert gone.dst == project.outputs / "cache" / "other.json"


def test_backup_unchanged_file_is_skipped(project, writer):
    src = writer(project.outputs / "a.txt", "one")
    store = project.store()
    assert store.backup(src).action is BackupAction.COPIED
    again = store.backup(src)
    assert (again.ok, again.action) == (True, BackupAction.SKIPPED)
    writer(src, "two!", mtime_ns=src.stat().st_mtime_ns + 10**9)
    assert store.backup(src).action is BackupAction.COPIED
    assert project.mirror(src).read_text() == "two!"


def test_out_of_scope_is_a_result_not_an_exception(project, writer):
    store = project.store()
    outside = writer(project.root / "src" / "outputs" / "z.txt", "x")
    for call in (store.backup, store.restore, store.ensure_local):
        res = call(outside)
        assert isinstance(res, BackupResult)
        assert (res.ok, res.action) == (False, BackupAction.ERROR)
        assert isinstance(res.error, PathScopeError)
    assert store.backup_exists(outside) is False
    assert not store.verify(outside).ok


def test_expect_mismatch(project, writer):
    writer(project.outputs / "d" / "f.txt", "x")
    store = project.store()
    assert store.backup(project.outputs / "d", expect="file").reason == "Expected file but got directory"
    assert (
        store.backup(project.outputs / "d" / "f.txt", expect="dir").reason
        == "Expected directory but got file"
    )
    assert store.backup(project.outputs / "d", expect="dir").ok
    res = store.restore(project.outputs / "d", expect="file")
    assert (res.ok, res.reason) == (False, "Expected file but backup is directory")
    assert store.backup_exists(project.outputs / "d", expect="dir")
    assert not store.backup_exists(project.outputs / "d", expect="file")
    assert store.backup_exists(project.outputs / "d" / "f.txt", expect="file")


def test_file_over_existing_backup_directory_is_an_error(project, writer):
    src = writer(project.outputs / "c.txt", "x")
    (project.mirror(src) / "keep").mkdir(parents=True)
    res = project.store().backup(src)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert isinstance(res.error, BackupError)
    assert (project.mirror(src) / "keep").is_dir()
    assert not (project.mirror(src) / "c.txt").exists()


def test_dry_run_reports_and_writes_nothing(project, writer):
    writer(project.outputs / "s" / "new.txt", "n")
    writer(project.outputs / "s" / "same.txt", "s")
    store = project.store()
    store.backup(project.outputs / "s")
    writer(project.outputs / "s" / "added.txt", "a")
    (project.outputs / "s" / "same.txt").unlink()
    before = sorted(p.relative_to(project.backup_root) for p in project.backup_root.rglob("*"))
    res = project.store(dry_run=True).backup(project.outputs / "s")
    assert (res.ok, res.action, res.reason) == (True, BackupAction.SKIPPED, "Dry run - would backup")
    assert res.stats.copied == ("added.txt",)
    assert res.stats.deleted == ("same.txt",)
    assert res.stats.unchanged == 1
    assert sorted(p.relative_to(project.backup_root) for p in project.backup_root.rglob("*")) == before


def test_callbacks_share_one_signature(project, writer):
    d = project.outputs / "trial"
    writer(d / "metrics.json", "{}")
    store = project.store()
    backup_to_drive = store.as_backup_callback()
    restore_from_drive = store.as_restore_callback()
    assert backup_to_drive(d, is_directory=True) is True
    assert backup_to_drive(d / "metrics.json") is True
    assert backup_to_drive(d / "metrics.json", is_directory=True) is False
    assert backup_to_drive(project.root / "elsewhere.txt") is False
    (d / "metrics.json").unlink()
    assert restore_from_drive(d / "metrics.json", is_directory=False) is True
    assert (d / "metrics.json").read_text() == "{}"


def test_ensure_local_matrix(project, writer):
    f = project.outputs / "m.txt"
    store = project.store()
    assert store.ensure_local(f).action is BackupAction.MISSING
    writer(f, "v1", mtime_ns=1_000_000_000_000_000_000)
    assert store.backup(f).ok
    # local only missing -> restored; if_missing=False -> skipped
    f.unlink()
    assert store.ensure_local(f, EnsureLocalOptions(if_missing=False)).action is BackupAction.SKIPPED
    assert not f.exists()
    assert store.ensure_local(f).action is BackupAction.COPIED
    assert f.read_text() == "v1"
    # local newer than backup: kept under every preference except "drive"
    writer(f, "local-newer", mtime_ns=1_000_000_100_000_000_000)
    for opts in (EnsureLocalOptions(), EnsureLocalOptions(if_stale=True), EnsureLocalOptions(prefer="newer")):
        assert store.ensure_local(f, opts).action is BackupAction.SKIPPED
        assert f.read_text() == "local-newer"
    assert store.ensure_local(f, EnsureLocalOptions(prefer="drive")).action is BackupAction.COPIED
    assert f.read_text() == "v1"
    # backup newer than local: default keeps local, if_stale / newer restore
    writer(f, "local-older", mtime_ns=900_000_000_000_000_000)
    assert store.ensure_local(f).reason == "Local file exists"
    assert store.ensure_local(f, EnsureLocalOptions(if_stale=True)).action is BackupAction.COPIED
    assert f.read_text() == "v1"
    assert store.ensure_local(f, EnsureLocalOptions(if_stale=True)).reason == "Local is up to date"
    with pytest.raises(ValueError, match="prefer"):
        EnsureLocalOptions(prefer="remote")  # type: ignore[arg-type]


def test_ensure_local_directory_newer_backup(project, writer):
    d = project.outputs / "study"
    writer(d / "a.txt", "a", mtime_ns=2_000_000_000_000_000_000)
    store = project.store()
    store.backup(d)
    writer(d / "a.txt", "A-old", mtime_ns=1_000_000_000_000_000_000)
    res = store.ensure_local(d, EnsureLocalOptions(prefer="newer"))
    assert res.action is BackupAction.COPIED
    assert (d / "a.txt").read_text() == "a"


def test_verify_reports_differences(project, writer):
    d = project.outputs / "v"
    writer(d / "a.txt", "aaaa")
    writer(d / "b.txt", "bbbb")
    store = project.store()
    assert not store.verify(d).ok
    store.backup(d)
    rep = store.verify(d, checksum=True)
    assert rep.ok and rep.checked == 2
    writer(project.mirror(d) / "a.txt", "AAAA")  # same size, other content
    assert store.verify(d).ok
    rep = store.verify(d, checksum=True)
    assert not rep.ok and rep.differing == ("a.txt",)
    (project.mirror(d) / "b.txt").unlink()
    writer(project.mirror(d) / "zzz.txt", "z")
    rep = store.verify(d)
    assert rep.missing == ("b.txt",) and rep.extra == ("zzz.txt",)


def test_relative_paths_resolve_against_root_not_cwd(project, writer, tmp_path, monkeypatch):
    writer(project.outputs / "r.txt", "r")
    monkeypatch.chdir(tmp_path)
    res = project.store().backup("outputs/r.txt")
    assert res.ok and res.dst == project.backup_root / "outputs" / "r.txt"


def test_only_outputs_false_covers_whole_root(project, writer):
    src = writer(project.root / "notes" / "n.txt", "n")
    store = project.store(only_outputs=False)
    assert store.backup(src).ok
    assert (project.backup_root / "notes" / "n.txt").read_text() == "n"


def test_outputs_override_outside_root(project, writer, tmp_path):
    external = tmp_path / "volume" / "outputs"
    f = writer(external / "hpo" / "x.txt", "x")
    store = project.store(outputs_dir=external)
    res = store.backup(f)
    assert res.ok, res
    assert res.dst == project.backup_root / "outputs" / "hpo" / "x.txt"
    assert os.path.realpath(res.dst).startswith(os.path.realpath(project.backup_root))


def test_missing_backup_root_is_not_created(project, writer, tmp_path):
    f = writer(project.outputs / "a.txt", "a")
    gone = tmp_path / "unmounted" / "MyDrive" / "proj"
    res = DriveBackupStore(project.root, gone, scratch_dir=project.scratch).backup(f)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert "mounted" in res.reason
    assert not (tmp_path / "unmounted").exists()


def test_backup_root_inside_outputs_is_refused(project):
    with pytest.raises(BackupConfigError, match="inside the outputs dir"):
        DriveBackupStore(project.root, project.outputs / "backup")


def test_unexpected_exception_becomes_an_error_result(project, writer):
    d = project.outputs / "p"
    writer(d / "a.txt", "a")

    def broken_progress(_: object) -> None:
        raise RuntimeError("progress bar crashed")

    res = project.store(progress=broken_progress).backup(d)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert isinstance(res.error, RuntimeError)


def test_lock_timeout_is_an_error_result(project, writer, tmp_path):
    import subprocess
    import sys

    f = writer(project.outputs / "a.txt", "a")
    lock_file = project.store()._lock_file
    ready = tmp_path / "ready"
    code = (
        "import sys, time, pathlib, filelock\n"
        "with filelock.FileLock(sys.argv[1]):\n"
        "    pathlib.Path(sys.argv[2]).touch()\n"
        "    time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(lock_file), str(ready)])
    try:
        for _ in range(300):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists()
        res = project.store(lock_timeout=0.2).backup(f)
        assert (res.ok, res.action) == (False, BackupAction.ERROR)
        assert "timed out" in res.reason
    finally:
        proc.kill()
        proc.wait()
    assert project.store().backup(f).ok


def test_result_str_matches_reference_format(tmp_path):
    res = BackupResult(True, BackupAction.COPIED, tmp_path / "b.txt", tmp_path / "d.txt", "r")
    assert str(res) == "\u2713 [COPIED] b.txt -> d.txt (r)"
    bad = BackupResult(False, BackupAction.ERROR, tmp_path / "b.txt", tmp_path / "d.txt", "x")
    assert str(bad) == "\u2717 [ERROR] b.txt -> d.txt (x)"
    assert bool(res) and not bool(bad)
    assert BackupAction.MISSING == "missing"


def test_single_file_dry_run(project, writer):
    f = writer(project.outputs / "a.bin", "12345")
    res = project.store(dry_run=True).backup(f, expect="file")
    assert (res.ok, res.action, res.reason) == (True, BackupAction.SKIPPED, "Dry run - would backup")
    assert res.stats.copied == ("a.bin",) and res.stats.bytes_copied == 5
    assert not project.mirror(f).exists()
    project.store().backup(f)
    f.unlink()
    res = project.store(dry_run=True).restore(f)
    assert res.reason == "Dry run - would restore" and not f.exists()
