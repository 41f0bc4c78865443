"""Colab mount and store creation, with a fake ``google.colab`` module (the real one exists only on Colab)."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

import pytest

from mlrig.storage import BackupAction, BackupError, create_colab_store, mount_colab_drive
from tests.fixtures import REFERENCE_CONFIG_DIR

REFERENCE_CONFIG = REFERENCE_CONFIG_DIR


@pytest.fixture
def fake_colab(monkeypatch):
    calls: list[tuple[str, dict[str, object]]] = []
    drive = types.ModuleType("google.colab.drive")

    def mount(mountpoint: str, **kwargs: object) -> None:
        calls.append((mountpoint, kwargs))
        if getattr(drive, "fail", False):
            raise ValueError("mount failed: timeout")
        (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)

    drive.mount = mount  # type: ignore[attr-defined]
    colab = types.ModuleType("google.colab")
    colab.drive = drive  # type: ignore[attr-defined]
    google = types.ModuleType("google")
    google.colab = colab  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    drive.calls = calls  # type: ignore[attr-defined]
    return drive


@pytest.fixture
def no_colab(monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", None)
    monkeypatch.setitem(sys.modules, "google.colab.drive", None)


def _config_with_mount(tmp_path: Path, mount: Path) -> Path:
    cfg = tmp_path / "repo" / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    text = (REFERENCE_CONFIG / "paths.yaml").read_text()
    assert 'mount_point: "/content/drive"' in text
    (cfg / "paths.yaml").write_text(text.replace('mount_point: "/content/drive"', f'mount_point: "{mount}"'))
    return cfg


def test_mount_outside_colab_is_a_clear_import_error(no_colab, tmp_path):
    with pytest.raises(ImportError, match="not running in Google Colab"):
        mount_colab_drive(tmp_path / "drive")


def test_mount_returns_mydrive(fake_colab, tmp_path):
    mount = tmp_path / "drive"
    assert mount_colab_drive(mount, force_remount=True) == mount / "MyDrive"
    assert fake_colab.calls == [(str(mount), {"force_remount": True, "timeout_ms": 120_000})]


def test_mount_failure_is_a_backup_error(fake_colab, tmp_path):
    fake_colab.fail = True
    with pytest.raises(BackupError, match="could not mount Google Drive") as info:
        mount_colab_drive(tmp_path / "drive")
    assert isinstance(info.value, OSError)


def test_create_colab_store_from_config(fake_colab, tmp_path, project):
    mount = tmp_path / "gdrive"
    cfg = _config_with_mount(tmp_path, mount)
    store = create_colab_store(root_dir=project.root, config_dir=cfg)
    assert store is not None
    assert fake_colab.calls[0][0] == str(mount)
    assert store.backup_root == mount / "MyDrive" / "resume-ner-azureml"
    assert store.backup_root.is_dir()
    f = project.outputs / "hpo" / "x.json"
    f.parent.mkdir(parents=True)
    f.write_text("{}")
    res = store.backup(f)
    assert res.ok and res.dst == mount / "MyDrive" / "resume-ner-azureml" / "outputs" / "hpo" / "x.json"
    on_drive = store.backup(res.dst)
    assert (on_drive.ok, on_drive.action) == (False, BackupAction.ERROR)
    assert "already in Drive" in on_drive.reason


def test_mount_argument_and_backup_base_agree(fake_colab, tmp_path, project):
    cfg = _config_with_mount(tmp_path, tmp_path / "configured")
    other = tmp_path / "argument"
    store = create_colab_store(root_dir=project.root, config_dir=cfg, mount_point=other)
    assert store is not None
    assert fake_colab.calls[0][0] == str(other)
    assert store.backup_root == other / "MyDrive" / "resume-ner-azureml"


def test_create_colab_store_without_paths_yaml_uses_packaged_defaults(fake_colab, tmp_path, project):
    store = create_colab_store(root_dir=project.root, mount_point=tmp_path / "m")
    assert store is not None
    assert store.backup_root.parent == tmp_path / "m" / "MyDrive"


def test_create_colab_store_outside_colab_returns_none(no_colab, project, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mlrig.storage.colab"):
        assert create_colab_store(root_dir=project.root, mount_point=tmp_path / "m") is None
    assert "Could not mount Drive" in caplog.text
    assert not (tmp_path / "m").exists()


def test_store_options_pass_through(fake_colab, tmp_path, project):
    store = create_colab_store(root_dir=project.root, mount_point=tmp_path / "m", dry_run=True, checksum=True)
    assert store is not None and store.dry_run and store.checksum
