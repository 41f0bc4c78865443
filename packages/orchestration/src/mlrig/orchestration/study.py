"""The Optuna study of one sweep: where its ``study.db`` lives, restoring it from backup, resuming it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.search_space import build_pruner, build_sampler
from mlrig.orchestration.state import restore_sqlite
from mlrig.paths import STUDY_DB, build_study_dir, load_paths_config
from mlrig.storage import DriveBackupStore
from mlrig.tracking import objective_of

logger = logging.getLogger(__name__)

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name_for(hpo_config: Mapping[str, Any], backbone: str) -> str:
    """``checkpoint.study_name`` with ``{backbone}`` filled in, else ``hpo_<backbone>``."""
    template = (hpo_config.get("checkpoint") or {}).get("study_name") or hpo_config.get("study_name")
    return str(template).replace("{backbone}", backbone) if template else f"hpo_{backbone}"


def backup_or_warn(store: DriveBackupStore | None, path: Path, *, expect: Literal["file", "dir"]) -> None:
    """Back ``path`` up to ``store`` (when there is one); a failed backup is logged, never raised."""
    if store is None:
        return
    result = store.backup(path, expect=expect)
    if not result.ok:
        logger.warning("backup of %s failed: %s", path, result.reason or result.error)


def study_dir_for(
    root_dir: Path, config_dir: Path, backbone: str, study_key_hash: str, storage_env: str
) -> Path:
    """``<local outputs>/hpo/<storage_env>/<model>/study-<study8>``: always on local disk, because SQLite is
    never opened on a network or FUSE mount; it reaches the backup only through the SQLite-safe copy."""
    local = load_paths_config(config_dir, "local")
    return build_study_dir(root_dir, backbone, study_key_hash, storage_env=storage_env, config=local)


@dataclass
class StudySetup:
    """An opened study and how it was obtained."""

    study: optuna.Study
    study_name: str
    storage_path: Path
    restored_from_backup: bool
    resumed: bool
    orphans_failed: int
    fresh: bool = False  # opened by ``run.mode: force_new``: a new study (and sweep parent) beside the old
    variant: int = 1  # the n-th study of these settings (``<name>_<n>``); part of its study key hash

    @property
    def done_trials(self) -> int:
        """Trials that count towards ``max_trials`` (COMPLETE and PRUNED; FAIL is re-run)."""
        return len(self.study.get_trials(deepcopy=False, states=DONE_STATES))


def _study_name_for_mode(storage: optuna.storages.BaseStorage, name: str, mode: str) -> tuple[str, int, bool]:
    """``run.mode``: ``reuse_if_exists`` opens the newest study of ``name`` (``name``, ``name_2``, ...);
    ``force_new`` a fresh ``name_<n>`` beside the existing ones (``name`` itself when there is none).
    Returns the name, its variant ``n`` (1 for ``name``) and whether the study is fresh."""
    if mode not in ("reuse_if_exists", "force_new"):
        raise OrchestrationError(f"run.mode must be reuse_if_exists or force_new, got {mode!r}")
    names = {s.study_name for s in storage.get_all_studies()}
    pattern = re.compile(rf"{re.escape(name)}_(\d+)")
    variants = [1] if name in names else []
    variants += [int(m.group(1)) for n in names if (m := pattern.fullmatch(n))]
    newest = max(variants, default=None)
    if newest is None:
        return name, 1, True
    if mode == "reuse_if_exists":
        return (name if newest == 1 else f"{name}_{newest}"), newest, False
    return f"{name}_{newest + 1}", newest + 1, True


def open_study(
    study_dir: Path,
    hpo_config: Mapping[str, Any],
    backbone: str,
    *,
    seed: int,
    store: DriveBackupStore | None = None,
) -> StudySetup:
    """Create or resume the study in ``study_dir/study.db``, restored from ``store`` first when it is missing,
    corrupt or older than the backup (:func:`~mlrig.orchestration.state.restore_sqlite`).

    On resume, trials left RUNNING by a dead process are marked FAIL so they are re-run. With
    ``checkpoint.auto_resume: false`` an existing study with trials is an error, never silently reused.
    """
    study_dir.mkdir(parents=True, exist_ok=True)
    db = study_dir / STUDY_DB
    restored = restore_sqlite(store, db) is not None
    existed = db.exists()
    checkpoint = hpo_config.get("checkpoint") or {}
    auto_resume = bool(checkpoint.get("auto_resume", True))
    _, direction = objective_of(hpo_config)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}", engine_kwargs={"connect_args": {"timeout": 60}})
    mode = str((hpo_config.get("run") or {}).get("mode", "reuse_if_exists"))
    name, variant, fresh = _study_name_for_mode(storage, study_name_for(hpo_config, backbone), mode)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction=StudyDirection.MAXIMIZE if direction == "maximize" else StudyDirection.MINIMIZE,
        sampler=build_sampler(hpo_config, seed),
        pruner=build_pruner(hpo_config),
        load_if_exists=True,
    )
    trials = study.get_trials(deepcopy=False)
    if trials and not auto_resume:
        raise OrchestrationError(
            f"study {name!r} in {db} already has {len(trials)} trials and checkpoint.auto_resume is false; "
            "remove the study folder or set auto_resume: true"
        )
    orphans = 0
    study_id = storage.get_study_id_from_name(name)
    for trial in trials:
        if trial.state == TrialState.RUNNING:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            orphans += 1
    if orphans:
        logger.warning("marked %d trial(s) left RUNNING by an interrupted sweep as FAIL", orphans)
    return StudySetup(
        study=study,
        study_name=name,
        storage_path=db,
        restored_from_backup=restored,
        resumed=existed and bool(trials),
        orphans_failed=orphans,
        fresh=fresh and mode == "force_new",
        variant=variant,
    )
