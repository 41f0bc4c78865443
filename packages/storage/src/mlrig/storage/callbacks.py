"""The reference project's HPO backup API (``infrastructure/shared/backup.py``), same names and
arguments, on top of :class:`~mlrig.storage.store.DriveBackupStore`.

``backup_to_drive`` is either a store or the reference's callable
``backup_to_drive(path, is_directory=False) -> bool`` (e.g. ``store.as_backup_callback()``). Differences from
the reference: the Optuna callbacks back up after every *terminal* trial (COMPLETE, PRUNED or FAIL; the
reference only after COMPLETE, so a sweep ending in pruned or failed trials left a stale ``study.db`` on
Drive), and ``backup_hpo_study_to_drive`` backs up the study given by ``study_key_hash`` (else every study
folder of the backbone) instead of the first ``study-*`` folder it met. Optuna is never imported: the
callbacks only read ``trial.state.name``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from mlrig.paths import STUDY_DB, is_drive_path, is_v2_path, parse_hpo_path
from mlrig.storage.results import PathCallback
from mlrig.storage.store import DriveBackupStore

logger = logging.getLogger(__name__)

# Optuna's finished states (``TrialState.is_finished()``), by name so that storage never imports optuna.
TERMINAL_TRIAL_STATES: Final = frozenset({"COMPLETE", "PRUNED", "FAIL"})

BackupTarget = DriveBackupStore | PathCallback


def _on_drive(path: Path, backup_to_drive: BackupTarget) -> bool:
    mount = backup_to_drive.mount_point if isinstance(backup_to_drive, DriveBackupStore) else None
    return is_drive_path(path) if mount is None else is_drive_path(path, mount_point=mount)


def _backup(backup_to_drive: BackupTarget, path: Path, is_directory: bool) -> bool:
    """One backup through the store (its result is logged) or the callable; never raises."""
    if isinstance(backup_to_drive, DriveBackupStore):
        result = backup_to_drive.backup(path, expect="dir" if is_directory else "file")
        if not result.ok:
            logger.warning("backup of %s failed: %s", path, result)
        return result.ok
    try:
        ok = bool(backup_to_drive(path, is_directory=is_directory))
    except Exception as exc:
        logger.warning("backup of %s failed: %s: %s", path, type(exc).__name__, exc)
        return False
    if not ok:
        logger.warning("backup of %s failed (the backup callable returned a false value)", path)
    return ok


def immediate_backup_if_needed(
    target_path: Path | str,
    backup_to_drive: BackupTarget | None,
    backup_enabled: bool = True,
    is_directory: bool = False,
) -> bool:
    """Back up ``target_path`` now (reference signature); True when it was backed up.

    Skipped (False, logged at DEBUG) when there is no ``backup_to_drive``, backups are disabled, the path is
    already on the Drive mount or does not exist. Never raises.
    """
    target = Path(target_path)
    if backup_to_drive is None or not backup_enabled:
        logger.debug("backup of %s skipped: backups disabled", target)
        return False
    if _on_drive(target, backup_to_drive):
        logger.debug("backup of %s skipped: already on the Drive mount", target)
        return False
    if not target.exists():
        logger.debug("backup of %s skipped: it does not exist", target)
        return False
    ok = _backup(backup_to_drive, target, is_directory)
    if ok:
        logger.info("backed up %s", target)
    return ok


def create_incremental_backup_callback(
    target_path: Path | str,
    backup_to_drive: BackupTarget | None,
    backup_enabled: bool = True,
    is_directory: bool = False,
) -> Callable[[Any, Any], None]:
    """An Optuna ``study.optimize`` callback ``(study, trial)`` backing up ``target_path`` after every
    terminal trial (COMPLETE, PRUNED, FAIL). Reference signature; it never raises into Optuna."""
    target = Path(target_path)

    def backup_after_trial(study: Any, trial: Any) -> None:
        state = getattr(getattr(trial, "state", None), "name", None)
        if state not in TERMINAL_TRIAL_STATES:
            return
        if immediate_backup_if_needed(target, backup_to_drive, backup_enabled, is_directory):
            logger.debug("backed up %s after trial %s (%s)", target, getattr(trial, "number", "?"), state)

    return backup_after_trial


def create_study_db_backup_callback(
    target_path: Path | str, backup_to_drive: BackupTarget | None, backup_enabled: bool = True
) -> Callable[[Any, Any], None]:
    """:func:`create_incremental_backup_callback` for the study's ``study.db`` file (reference signature)."""
    return create_incremental_backup_callback(
        target_path, backup_to_drive, backup_enabled, is_directory=False
    )


def _study8(folder: Path) -> str | None:
    """The study hash (8 hex) of a study folder, read through ``mlrig.paths.parse_hpo_path`` from a trial."""
    for child in folder.iterdir():
        info = parse_hpo_path(child) if child.is_dir() else None
        if info is not None:
            return info["study8"]
    return None


def _study_folders(backbone_dir: Path) -> list[Path]:
    """Study folders of a backbone output dir: those holding a ``study.db`` or a v2 trial folder."""
    if not backbone_dir.is_dir():
        return []
    return sorted(
        child
        for child in backbone_dir.iterdir()
        if child.is_dir()
        and ((child / STUDY_DB).is_file() or any(g.is_dir() and is_v2_path(g) for g in child.iterdir()))
    )


def backup_hpo_study_to_drive(
    backbone: str,
    backbone_output_dir: Path | str,
    checkpoint_config: Mapping[str, Any] | None,
    hpo_config: Mapping[str, Any] | None,
    backup_to_drive: BackupTarget | None,
    backup_enabled: bool = True,
    *,
    study_key_hash: str | None = None,
) -> bool:
    """Back up the HPO study folder(s) of ``backbone`` (``study.db``, SQLite-safe, and every trial folder)
    after a sweep (reference signature; ``checkpoint_config`` and ``hpo_config`` are accepted and unused, as
    there).

    With ``study_key_hash`` only that study is backed up; without it every study folder under
    ``backbone_output_dir`` (the reference picked the first in directory order). True when every backup
    succeeded; False (logged) when disabled, when there is no study folder or a backup failed. A folder
    already on the Drive mount needs no backup (True).
    """
    del checkpoint_config, hpo_config  # reference signature
    base = Path(backbone_output_dir)
    if backup_to_drive is None or not backup_enabled:
        logger.debug("HPO study backup of %s skipped: backups disabled", backbone)
        return False
    if _on_drive(base, backup_to_drive):
        logger.info("HPO study of %s is already on the Drive mount (%s); nothing to back up", backbone, base)
        return True
    folders = _study_folders(base)
    if study_key_hash is not None:
        short = study_key_hash[:8].lower()
        folders = [
            f for f in folders if (_study8(f) or "") == short or (_study8(f) is None and short in f.name)
        ]
    if not folders:
        logger.warning(
            "no HPO study folder of %s under %s%s",
            backbone,
            base,
            f" for study {study_key_hash[:8]}" if study_key_hash else "",
        )
        return False
    if len(folders) > 1:
        logger.info("backing up %d study folders of %s under %s", len(folders), backbone, base)
    results = [_backup(backup_to_drive, folder, is_directory=True) for folder in folders]
    return all(results)
