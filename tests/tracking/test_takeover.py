"""Taking over the reference layout's store: ``<MyDrive>/<project>-mlflow/mlflow.db`` on a fake Drive.

Real MLflow stores throughout; a temp folder stands in for ``/content/drive`` (paths.yaml
``drive.mount_point``) and ``COLAB_GPU`` makes mlrig detect Colab.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow.tracking import MlflowClient

from mlrig.cli import main
from mlrig.storage import DriveBackupStore
from mlrig.tracking import (
    TrackingError,
    reference_store_candidates,
    take_over_reference_store,
)

EXPERIMENTS = {"resume_ner_baseline-hpo-distilbert": 3, "resume_ner_baseline-training-distilbert": 2}


def _fingerprint(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    """The fake ``/content/drive`` with a reference-layout store of 5 runs, artifacts logged on the Drive."""
    folder = tmp_path / "drive" / "MyDrive" / "resume-ner-mlflow"
    folder.mkdir(parents=True)
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    note = tmp_path / "note.txt"
    note.write_text("logged by the reference project\n")
    for name, n in EXPERIMENTS.items():
        exp = client.create_experiment(name, artifact_location=(folder / "artifacts" / name).as_uri())
        for i in range(n):
            run = client.create_run(exp, run_name=f"{name}_trial_{i}", tags={"trial_number": str(i)})
            client.log_metric(run.info.run_id, "macro-f1", 0.5 + i / 10)
            client.log_artifact(run.info.run_id, str(note))
            client.set_terminated(run.info.run_id, "FINISHED")
    return tmp_path / "drive"


@pytest.fixture
def project(tmp_path: Path, drive: Path, reference_config_dir: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(reference_config_dir, root / "config")
    paths_yaml = root / "config" / "paths.yaml"
    text = paths_yaml.read_text()
    assert 'mount_point: "/content/drive"' in text
    paths_yaml.write_text(text.replace('mount_point: "/content/drive"', f'mount_point: "{drive}"'))
    return root


def _cli(*args: str) -> Result:
    return CliRunner(env={"COLAB_GPU": "1"}).invoke(main, list(args), catch_exceptions=False)


def test_reference_store_is_taken_over_and_listed_by_the_cli(project: Path, drive: Path) -> None:
    reference = drive / "MyDrive" / "resume-ner-mlflow" / "mlflow.db"
    before = _fingerprint(reference)
    local = project / "mlruns" / "mlflow.db"
    assert not local.exists()

    for name, n in EXPERIMENTS.items():
        result = _cli("runs", "list", "--root", str(project), "--experiment", name)
        assert result.exit_code == 0, result.output
        assert f"{n} run(s)" in result.output
        assert all(f"{name}_trial_{i}" in result.output for i in range(n))

    assert _fingerprint(reference) == before  # never written, not even its mtime
    assert not list(reference.parent.glob("mlflow.db-*"))  # no journal/WAL left on the Drive
    assert local.is_file() and (project / "mlruns" / "mlflow.db.takeover.json").is_file()

    # the local copy is the store from now on; the reference runs' artifacts stay readable on the Drive
    client = MlflowClient(f"sqlite:///{local}")
    exp = client.get_experiment_by_name("resume_ner_baseline-hpo-distilbert")
    assert exp is not None
    old = client.search_runs([exp.experiment_id])[0]
    assert old.info.artifact_uri.startswith(drive.as_uri())
    assert [f.path for f in client.list_artifacts(old.info.run_id)] == ["note.txt"]
    new = client.create_run(exp.experiment_id, run_name="after-takeover")
    assert new.info.artifact_uri.startswith((project / "mlruns" / "artifacts").resolve().as_uri())
    assert _fingerprint(reference) == before

    result = _cli("doctor", "--root", str(project), "--backup-root", str(drive / "MyDrive" / "backup"))
    row = next(line for line in result.output.splitlines() if "tracking store" in line)
    assert row.startswith("[ok]"), result.output
    assert f"from the reference store {reference}" in row and str(local.resolve()) in row
    assert f"backup: {drive / 'MyDrive' / 'backup' / 'mlruns' / 'mlflow.db'} (none yet)" in row


def test_a_local_store_or_its_backup_wins_over_the_reference(project: Path, drive: Path) -> None:
    reference = drive / "MyDrive" / "resume-ner-mlflow" / "mlflow.db"
    backup_root = drive / "MyDrive" / "backup"
    backup_root.mkdir()
    store = DriveBackupStore(project, backup_root, outputs_dir=project / "mlruns")
    local = project / "mlruns" / "mlflow.db"
    local.parent.mkdir()
    MlflowClient(f"sqlite:///{local}").create_experiment("mine")
    assert store.backup(local, expect="file").ok
    kwargs = {"platform": "colab", "backup": store}

    found = take_over_reference_store(project, project / "config", **kwargs)  # type: ignore[arg-type]
    assert (found.action, found.source) == ("local", None)
    assert found.backup == backup_root / "mlruns" / "mlflow.db"

    local.unlink()  # a VM reset: mlrig's own backup is newer than anything the reference wrote
    found = take_over_reference_store(project, project / "config", **kwargs)  # type: ignore[arg-type]
    assert found.action == "backup" and not local.exists()

    shutil.rmtree(backup_root)
    found = take_over_reference_store(project, project / "config", platform="colab")
    assert found.action == "taken-over" and found.source == reference
    # read with sqlite3: MLflow's engine cache still holds the unlinked file of the same URI in this process
    with sqlite3.connect(local) as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM experiments")}
    assert set(EXPERIMENTS) <= names and "mine" not in names


def test_nothing_is_taken_over_elsewhere(project: Path, drive: Path, tmp_path: Path) -> None:
    cfg = project / "config"
    assert reference_store_candidates(cfg, platform="local") == []
    assert reference_store_candidates(cfg, platform="kaggle", kaggle_working=tmp_path) == [
        tmp_path / "mlflow.db"
    ]
    assert reference_store_candidates(cfg, platform="colab") == [
        drive / "MyDrive" / "resume-ner-mlflow" / "mlflow.db"
    ]
    assert take_over_reference_store(project, cfg, platform="local").action == "none"
    other = f"sqlite:///{tmp_path}/elsewhere.db"
    assert take_over_reference_store(project, cfg, tracking_uri=other, platform="colab").action == "remote"
    assert not (project / "mlruns" / "mlflow.db").exists()


def test_a_corrupt_reference_store_stops_with_a_clear_error(project: Path, drive: Path) -> None:
    reference = drive / "MyDrive" / "resume-ner-mlflow" / "mlflow.db"
    data = bytearray(reference.read_bytes())
    data[4096 : 4096 * 3] = b"\xff" * 8192  # garbage over the first table pages, header intact
    reference.write_bytes(bytes(data))
    with pytest.raises((TrackingError, sqlite3.DatabaseError)):
        take_over_reference_store(project, project / "config", platform="colab")
    assert not list((project / "mlruns").glob("mlflow.db*"))  # no half copy left to be mistaken for a store


def test_project_state_restore_first_takes_over_the_reference_store(
    project: Path, drive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's restore-first step (``ProjectState``) takes the reference store over, like the CLI."""
    from mlrig.orchestration import ProjectState
    from mlrig.tracking import embedded_tracking_uri

    monkeypatch.setenv("COLAB_GPU", "1")
    reference = drive / "MyDrive" / "resume-ner-mlflow" / "mlflow.db"
    before = _fingerprint(reference)
    state = ProjectState(
        project, tmp_path / "backup", embedded_tracking_uri(project), config_dir=project / "config"
    )
    done = state.restore_first()
    local = project / "mlruns" / "mlflow.db"
    assert any("taken over" in line for line in done), done
    client = MlflowClient(f"sqlite:///{local}")
    for name, n in EXPERIMENTS.items():
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        assert len(client.search_runs([experiment.experiment_id])) == n
    assert _fingerprint(reference) == before
    assert state.restore_first() == []  # the local copy is used from now on: nothing taken over again
