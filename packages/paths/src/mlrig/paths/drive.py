"""The one mapping from a local output path to its place on the backup mount (e.g. Google Drive)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mlrig.paths.config import PathsConfig, config_for, load_paths_config
from mlrig.paths.errors import PathScopeError
from mlrig.paths.layout import outputs_base
from mlrig.paths.normalize import is_within

logger = logging.getLogger(__name__)

DEFAULT_MOUNT_POINT = "/content/drive"


def is_drive_path(path: Path | str, mount_point: Path | str = DEFAULT_MOUNT_POINT) -> bool:
    """Whether ``path`` is on the mount at ``mount_point``, comparing whole path components after
    normalising ``..`` (``/content/drive2/x`` is not on ``/content/drive``). Relative paths are False."""
    if path is None:
        raise TypeError("path cannot be None")
    text = os.fspath(path)
    if not os.path.isabs(text):  # noqa: PTH117 - str in, no Path objects on this path
        return False
    return is_within(os.path.normpath(text), os.path.normpath(os.fspath(mount_point)))


def map_to_backup(
    local_path: Path | str, root_dir: Path | str, backup_root: Path | str, outputs_dir: Path | str
) -> Path:
    """Where ``local_path`` lives under ``backup_root``: the backup mirrors ``<root>/<outputs>/**``.

    Relative paths are taken relative to ``root_dir``; ``..`` and symlinks are resolved first. Raises
    ``PathScopeError`` unless the path is inside ``outputs_dir`` (the configured outputs directory, not any
    folder named ``outputs``), and when it already lies under ``backup_root``.
    """
    root = Path(os.path.abspath(root_dir))  # noqa: PTH100 - lexical; symlinks resolved below
    local = Path(local_path)
    if not local.is_absolute():
        local = root / local
    real = os.path.realpath(local)
    real_backup = os.path.realpath(backup_root)
    if is_within(real, real_backup):
        raise PathScopeError(f"{str(local_path)!r} is already on the backup side ({real_backup})")
    outputs = Path(os.path.normpath(root / outputs_dir))
    real_outputs = os.path.realpath(outputs)
    if not is_within(real, real_outputs):
        raise PathScopeError(
            f"{str(local_path)!r} (resolved {real!r}) is not inside the outputs directory {real_outputs!r}"
        )
    relative = os.path.relpath(real, real_outputs)
    # The backup mirrors the outputs folder as the repo names it (``outputs/...``), even when that folder is
    # a symlink to another volume; an outputs dir outside the root mirrors under its own name.
    inside = is_within(str(outputs), str(root))
    prefix = Path(os.path.relpath(outputs, root)) if inside else Path(outputs.name)
    return Path(backup_root) / prefix if relative == "." else Path(backup_root) / prefix / relative


def get_drive_backup_base(config_dir: Path | str | None, *, config: PathsConfig | None = None) -> Path | None:
    """``{drive.mount_point}/MyDrive/{drive.backup_base_dir}`` from paths.yaml (None without a ``drive``
    section). The folder name defaults to ``project.name``; nothing is hard-coded. ``config`` is the run's
    loaded paths config (else ``<config_dir>/paths.yaml`` is loaded now)."""
    drive = (config if config is not None else load_paths_config(config_dir)).drive
    return None if drive is None else drive.backup_base


def get_drive_backup_path(
    root_dir: Path | str,
    config_dir: Path | str | None,
    local_path: Path | str,
    *,
    config: PathsConfig | None = None,
) -> Path | None:
    """The backup location of ``local_path`` (see :func:`map_to_backup`) with the configured Drive base and
    the local outputs directory; None (logged at debug) when the path is out of scope. ``config`` is the
    run's paths config loaded for ``local`` or no env (else paths.yaml is loaded now)."""
    local_config = config_for(root_dir, config_dir, "local", config)
    if local_config.drive is None:
        return None
    outputs = outputs_base(root_dir, local_config)
    try:
        return map_to_backup(local_path, root_dir, local_config.drive.backup_base, outputs)
    except PathScopeError as exc:
        logger.debug("no backup path: %s", exc)
        return None
