"""Distributed cleanup ends only the runs of trials whose heartbeat is stale, never a live worker's."""

from __future__ import annotations

import time

import optuna
from mlflow.tracking import MlflowClient

from mlrig.naming import load_tags_registry
from mlrig.orchestration import AdvisoryLocks, DistributedConfig, heartbeat, open_shared_storage
from mlrig.orchestration.services import Services
from mlrig.orchestration.worker import cleanup_stale_trials

INTERRUPTED = load_tags_registry().key("training", "interrupted")


def test_cleanup_fails_the_stale_trial_and_leaves_the_live_one(pg_services: Services, fresh_db: str) -> None:
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
    with heartbeat(storage, live._trial_id, 1):  # the live worker keeps beating; the dead one stopped
        time.sleep(3.5)
        # What `mlrig cleanup-interrupted --optuna-storage URL` runs, with the workers' grace period.
        failed = cleanup_stale_trials(fresh_db, pg_services.tracking_uri, grace_period=2)
    assert failed == 1
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[live.number] == optuna.trial.TrialState.RUNNING
    assert states[dead.number] == optuna.trial.TrialState.FAIL
    assert optuna.trial.TrialState.WAITING in states.values()  # the dead trial's parameters, queued again
    assert client.get_run(runs[0]).info.status == "RUNNING"
    killed = client.get_run(runs[1])
    assert killed.info.status == "KILLED" and killed.data.tags.get(INTERRUPTED) == "true"
    locks.close()
