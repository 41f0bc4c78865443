"""Distributed cleanup ends only the runs of trials whose heartbeat is stale, never a live worker's."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from mlrig.cli import main
from mlrig.naming import load_tags_registry
from mlrig.orchestration import AdvisoryLocks, DistributedConfig, heartbeat, open_shared_storage
from mlrig.orchestration.services import Services

INTERRUPTED = load_tags_registry().key("training", "interrupted")


def test_cleanup_fails_the_stale_trial_and_leaves_the_live_one(
    pg_services: Services, fresh_db: str, tmp_path: Path
) -> None:
    config = DistributedConfig(fresh_db, heartbeat_interval=1, grace_period=2)
    locks = AdvisoryLocks(fresh_db)
    storage = open_shared_storage(config, locks)
    study = optuna.create_study(study_name="cleanup_tiny", storage=storage)
    client = MlflowClient(pg_services.tracking_uri)
    experiment = client.create_experiment("cleanup")
    trials = [study.ask() for _ in range(2)]
    runs = []
    for trial in trials:
        run_id = client.create_run(experiment).info.run_id
        trial.set_user_attr("mlflow_run_id", run_id)
        storage.record_heartbeat(trial._trial_id)
        runs.append(run_id)
    live, dead = trials
    cli = ["cleanup-interrupted", "--root", str(tmp_path), "--experiment", "cleanup", "--optuna-storage"]
    cli += [fresh_db, "--tracking-uri", pg_services.tracking_uri]
    with heartbeat(storage, live._trial_id, 1):  # the live worker keeps beating; the dead one stopped
        time.sleep(3.5)
        patient = CliRunner().invoke(main, [*cli, "--grace-period", "3600", "--dry-run"])
        dry = CliRunner().invoke(main, [*cli, "--grace-period", "2", "--dry-run"])
        assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.RUNNING] * 2  # unchanged
        assert client.get_run(runs[1]).info.status == "RUNNING"
        # The workers' grace period: the dead trial is failed, the live one kept.
        real = CliRunner().invoke(main, [*cli, "--grace-period", "2"])
    assert patient.exit_code == 0 and "0 trial(s)" in patient.output, patient.output
    assert dry.exit_code == 0, dry.output
    assert f"would fail cleanup_tiny trial {dead.number}  run {runs[1]}" in dry.output
    assert (
        "1 trial(s)" in dry.output and "dry run" in dry.output and f"trial {live.number} " not in dry.output
    )
    assert real.exit_code == 0 and "1 trial(s)" in real.output and "KILLED" in real.output, real.output
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[live.number] == optuna.trial.TrialState.RUNNING
    assert states[dead.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.WAITING in states.values()  # the dead trial's parameters, queued again
    assert client.get_run(runs[0]).info.status == "RUNNING"
    killed = client.get_run(runs[1])
    assert killed.info.status == "KILLED" and killed.data.tags.get(INTERRUPTED) == "true"
    locks.close()
