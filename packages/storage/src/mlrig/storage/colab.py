"""Google Colab: mount Drive and build a ``DriveBackupStore`` from ``paths.yaml``."""

from __future__ import annotations

import importlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlrig.paths import DriveSettings, detect_repo_root, infer_config_dir, load_paths_config
from mlrig.storage.errors import BackupError
from mlrig.storage.store import DriveBackupStore

logger = logging.getLogger(__name__)

DEFAULT_MOUNT_POINT = "/content/drive"


def mount_colab_drive(
    mount_point: Path | str = DEFAULT_MOUNT_POINT, *, force_remount: bool = False, timeout_ms: int = 120_000
) -> Path:
    """Mount Google Drive at ``mount_point`` with ``google.colab.drive`` and return ``<mount_point>/MyDrive``.

    Raises ``ImportError`` outside Colab and ``BackupError`` when the mount itself fails (or ``MyDrive`` does
    not appear afterwards).
    """
    try:
        drive: Any = importlib.import_module("google.colab.drive")
    except ImportError as exc:
        raise ImportError("google.colab.drive not available (not running in Google Colab)") from exc
    try:
        drive.mount(str(mount_point), force_remount=force_remount, timeout_ms=timeout_ms)
    except Exception as exc:
        raise BackupError(f"could not mount Google Drive ({exc})", path=Path(mount_point)) from exc
    my_drive = Path(mount_point) / "MyDrive"
    if not my_drive.is_dir():
        raise BackupError("Google Drive mounted but MyDrive is missing", path=my_drive)
    logger.info("Google Drive mounted at %s", mount_point)
    return my_drive


def create_colab_store(
    root_dir: Path | str | None = None,
    config_dir: Path | str | None = None,
    mount_point: Path | str | None = None,
    **store_options: Any,
) -> DriveBackupStore | None:
    """Mount Drive and return a store backing up ``<root>/outputs`` to ``<mount>/MyDrive/<backup_base_dir>``.

    The mount point is the argument when given, else ``drive.mount_point`` from paths.yaml; the backup base
    is always built from that same mount point (``drive.backup_base_dir``, default ``project.name``). Returns
    None (logged) when Drive cannot be mounted; ``store_options`` go to ``DriveBackupStore``.
    """
    root = Path(root_dir) if root_dir is not None else detect_repo_root(config_dir=config_dir)
    cfg_dir = infer_config_dir(config_dir, root_dir=root)
    config = load_paths_config(cfg_dir)
    drive = config.drive or DriveSettings(DEFAULT_MOUNT_POINT, config.project_name or root.name)
    mount = Path(mount_point) if mount_point is not None else Path(drive.mount_point)
    if Path(drive.mount_point) != mount:
        logger.info("mounting at %s (argument) instead of drive.mount_point %s", mount, drive.mount_point)
        drive = replace(drive, mount_point=str(mount))  # base and mount must agree (reference bug W-B13)
    try:
        mount_colab_drive(mount)
    except (ImportError, BackupError) as exc:
        logger.warning("Could not mount Drive: %s", exc)
        return None
    backup_base = drive.backup_base
    backup_base.mkdir(parents=True, exist_ok=True)
    logger.info("Drive backup store: %s -> %s", root, backup_base)
    return DriveBackupStore(root, backup_base, config_dir=cfg_dir, mount_point=mount, **store_options)
