"""Symlinks and traversal: nothing outside the scope is read, nothing outside the target root is written."""

from __future__ import annotations

import os

from mlrig.storage import BackupAction


def test_symlink_to_outside_root_is_not_followed(project, writer, tmp_path, snapshot_tree):
    secret = writer(tmp_path / "home" / "secret.txt", "TOP SECRET")
    secret_dir = secret.parent
    src = project.outputs / "s"
    writer(src / "ok.txt", "ok")
    os.symlink(secret, src / "leak.txt")
    os.symlink(secret_dir, src / "leakdir")
    os.symlink(tmp_path / "missing", src / "broken")
    res = project.store().backup(src)
    assert res.ok
    assert sorted(res.stats.skipped_links) == ["broken", "leak.txt", "leakdir"]
    assert snapshot_tree(project.mirror(src)) == {"ok.txt": "ok"}
    assert "TOP SECRET" not in "".join(p.read_text() for p in project.backup_root.rglob("*") if p.is_file())


def test_symlink_inside_root_is_copied_as_content_without_loops(project, writer, snapshot_tree):
    shared = writer(project.outputs / "cache" / "best.json", "{}")
    src = project.outputs / "s"
    writer(src / "a.txt", "a")
    os.symlink(shared, src / "best.json")
    os.symlink(src, src / "loop")  # a directory link back to itself
    res = project.store().backup(src)
    assert res.ok and "loop" in res.stats.skipped_links
    assert snapshot_tree(project.mirror(src)) == {"a.txt": "a", "best.json": "{}"}
    assert not (project.mirror(src) / "best.json").is_symlink()


def test_local_path_symlinked_out_of_outputs_is_refused(project, writer, tmp_path):
    outside = writer(tmp_path / "elsewhere" / "f.txt", "x")
    link = project.outputs / "f.txt"
    os.symlink(outside, link)
    res = project.store().backup(link)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert "outputs" in res.reason


def test_dotdot_traversal_is_refused(project, writer):
    writer(project.root / "keys" / "token.txt", "x: 1")
    res = project.store().backup(project.outputs / ".." / "keys" / "token.txt")
    assert not res.ok and res.action is BackupAction.ERROR
    assert not any(project.backup_root.rglob("*"))


def test_backup_side_symlink_cannot_redirect_writes(project, writer, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (project.backup_root / "outputs").mkdir()
    os.symlink(victim, project.backup_root / "outputs" / "hpo")
    src = writer(project.outputs / "hpo" / "x.txt", "x")
    res = project.store().backup(src)
    assert (res.ok, res.action) == (False, BackupAction.ERROR)
    assert "outside" in res.reason
    assert list(victim.iterdir()) == []


def test_symlink_inside_backup_tree_is_replaced_not_followed(project, writer, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    src = project.outputs / "s"
    writer(src / "sub" / "a.txt", "a")
    mirror = project.mirror(src)
    mirror.mkdir(parents=True)
    os.symlink(victim, mirror / "sub")
    res = project.store().backup(src)
    assert res.ok, res
    assert list(victim.iterdir()) == []
    assert not (mirror / "sub").is_symlink()
    assert (mirror / "sub" / "a.txt").read_text() == "a"


def test_restore_never_writes_outside_root(project, writer, tmp_path):
    src = writer(project.outputs / "r" / "a.txt", "a")
    store = project.store()
    store.backup(src.parent)
    os.symlink(tmp_path / "secret-target", project.mirror(src.parent) / "evil")
    (tmp_path / "secret-target").write_text("outside the backup root")
    res = store.restore(src.parent)
    assert res.ok
    assert "evil" in res.stats.skipped_links
    assert not (src.parent / "evil").exists()
    # a restore target that resolves outside the root (local symlinked away) is refused
    os.symlink(tmp_path, project.outputs / "away")
    assert not store.restore(project.outputs / "away" / "x").ok
