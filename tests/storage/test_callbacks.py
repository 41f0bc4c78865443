"""The reference's HPO backup API on DriveBackupStore: real Optuna studies (``study.optimize`` with the
callbacks), real SQLite files, a temporary backup root; reference-style calls and the reference HPO config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from mlrig.storage.callbacks import (
    backup_hpo_study_to_drive,
    create_incremental_backup_callback,
    create_study_db_backup_callback,
    immediate_backup_if_needed,
)
from tests.fixtures import REFERENCE_CONFIG_DIR
from tests.storage.conftest import Project

S8, S8B = "1234abcd", "5678ef01"


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _hpo_config() -> dict[str, Any]:
    loaded = yaml.safe_load((REFERENCE_CONFIG_DIR / "hpo" / "smoke.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _study_dir(project: Project, study8: str = S8) -> Path:
    folder = project.outputs / "hpo" / "local" / "distilbert" / f"study-{study8}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    if trial.number == 1:
        raise optuna.TrialPruned
    if trial.number == 2:
        raise ValueError("training diverged")
    return x


def test_study_db_callback_backs_up_after_every_terminal_trial(project: Project) -> None:
    db = _study_dir(project) / "study.db"
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name="hpo_distilbert")
    store = project.store()
    backup = store.as_backup_callback()
    calls: list[Path] = []

    def counting_backup(path: Path | str, is_directory: bool = False) -> bool:
        calls.append(Path(path))
        return backup(path, is_directory=is_directory)

    callback = create_study_db_backup_callback(db, counting_backup, backup_enabled=True)
    study.optimize(_objective, n_trials=3, callbacks=[callback], catch=(ValueError,))

    assert calls == [db, db, db]  # COMPLETE, PRUNED, FAIL: one backup each
    copy = project.mirror(db)
    backed_up = optuna.load_study(study_name="hpo_distilbert", storage=f"sqlite:///{copy}")
    states = [t.state.name for t in backed_up.trials]
    # The last trial failed: the reference (backup only after COMPLETE) would have left one trial on Drive.
    assert states == ["COMPLETE", "PRUNED", "FAIL"]


def test_incremental_directory_callback_with_a_store(project: Project) -> None:
    folder = _study_dir(project)
    study = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name="s")
    callback = create_incremental_backup_callback(folder, project.store(), True, is_directory=True)

    def objective(trial: optuna.Trial) -> float:
        (folder / f"trial-{trial.number:08x}").mkdir()
        (folder / f"trial-{trial.number:08x}" / "metrics.json").write_text("{}")
        return trial.suggest_float("x", 0.0, 1.0)

    study.optimize(objective, n_trials=2, callbacks=[callback])
    mirror = project.mirror(folder)
    assert (mirror / "trial-00000000" / "metrics.json").is_file()
    assert (mirror / "trial-00000001" / "metrics.json").is_file()
    assert len(optuna.load_study(study_name="s", storage=f"sqlite:///{mirror / 'study.db'}").trials) == 2


def test_callbacks_skip_unfinished_trials_and_disabled_backups(project: Project) -> None:
    db = _study_dir(project) / "study.db"
    db.write_bytes(b"")
    calls: list[Path] = []

    def record(path: Path | str, is_directory: bool = False) -> bool:
        calls.append(Path(path))
        return True

    class Running:
        state = optuna.trial.TrialState.RUNNING
        number = 0

    create_study_db_backup_callback(db, record)(None, Running())
    create_study_db_backup_callback(db, record, backup_enabled=False)(
        None, type("T", (), {"state": optuna.trial.TrialState.COMPLETE})()
    )
    assert calls == []


def test_immediate_backup_if_needed_skip_rules_and_failures(project: Project, tmp_path: Path) -> None:
    target = _study_dir(project) / "benchmark.json"
    target.write_text("{}")
    store = project.store()
    assert immediate_backup_if_needed(target, store.as_backup_callback()) is True
    assert project.mirror(target).read_text() == "{}"
    assert immediate_backup_if_needed(target, store, backup_enabled=False) is False
    assert immediate_backup_if_needed(target, None) is False
    assert immediate_backup_if_needed(target.with_name("missing.json"), store) is False
    mount = tmp_path / "mnt"
    on_drive = mount / "MyDrive" / "x.json"
    on_drive.parent.mkdir(parents=True, exist_ok=True)
    on_drive.write_text("{}")
    assert immediate_backup_if_needed(on_drive, project.store(mount_point=mount)) is False

    def broken(path: Path | str, is_directory: bool = False) -> bool:
        raise OSError("drive went away")

    assert immediate_backup_if_needed(target, broken) is False  # logged, never raised


def _study_with_trial(project: Project, study8: str) -> Path:
    folder = _study_dir(project, study8)
    trial = folder / "trial-9492cb65"
    trial.mkdir(exist_ok=True)
    (trial / "trial_meta.json").write_text(f'{{"study": "{study8}"}}')
    optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name=f"hpo_{study8}")
    return folder


def test_backup_hpo_study_to_drive_reference_call(project: Project) -> None:
    hpo = _hpo_config()
    first, second = _study_with_trial(project, S8), _study_with_trial(project, S8B)
    backbone_dir = first.parent
    store = project.store()
    # reference call: (backbone, backbone_output_dir, checkpoint_config, hpo_config, backup_to_drive, enabled)
    ok = backup_hpo_study_to_drive(
        "distilbert", backbone_dir, hpo.get("checkpoint", {}), hpo, store.as_backup_callback(), True,
        study_key_hash=S8B + "0" * 56,
    )  # fmt: skip
    assert ok
    assert (project.mirror(second) / "trial-9492cb65" / "trial_meta.json").is_file()
    assert (project.mirror(second) / "study.db").is_file()
    assert not project.mirror(first).exists()  # only the study asked for
    assert backup_hpo_study_to_drive("distilbert", backbone_dir, hpo.get("checkpoint", {}), hpo, store)
    assert (project.mirror(first) / "trial-9492cb65" / "trial_meta.json").is_file()  # without a hash: all
    assert not backup_hpo_study_to_drive("distilbert", backbone_dir, None, hpo, store, False)
    assert not backup_hpo_study_to_drive("bert", backbone_dir.with_name("bert"), None, hpo, store)
