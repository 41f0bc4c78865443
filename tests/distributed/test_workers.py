"""N worker processes on one study in a real PostgreSQL, tracked in a real ``mlflow server`` on it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlrig.naming import build_mlflow_experiment_name, load_tags_registry
from mlrig.orchestration.services import Services
from tests.distributed.conftest import start_worker, wait_for

TAGS = load_tags_registry()
RUN_TYPE = TAGS.key("process", "run_type")  # azureml.runType is written on Azure ML stores only
INTERRUPTED = TAGS.key("training", "interrupted")


def _runs(tracking: str, name: str) -> list[Run]:
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(build_mlflow_experiment_name(name, "hpo", "tiny"))
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], max_results=1000))


def _study(storage: str, name: str) -> optuna.Study:
    """The study ``<name>_tiny_<study key>``: named after the sweep's study key in the shared database."""
    (found,) = [s for s in optuna.get_all_study_names(storage) if s.startswith(f"{name}_tiny_")]
    return optuna.load_study(study_name=found, storage=storage)


@pytest.mark.slow
def test_four_workers_share_one_study_on_an_empty_database(
    pg_services: Services, fresh_db: str, tmp_path: Path
) -> None:
    """4 workers started at once on an empty database (Optuna's schema is created under a lock): exactly 40
    COMPLETE trials, no duplicate numbers or parameter sets, 40 FINISHED trial runs under one parent."""
    tracking = pg_services.tracking_uri
    workers = [start_worker(tmp_path / f"w{i}", fresh_db, tracking, "four", "work") for i in range(4)]
    results = [w.result() for w in workers]  # each exits 0: none failed on the empty database
    study = _study(fresh_db, "four")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 40 and len(trials) == 40
    assert len({t.number for t in trials}) == 40
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 40
    assert sum(len(r["trials"]) for r in results) == 40  # type: ignore[arg-type]
    assert sum(bool(r["finalised"]) for r in results) == 1
    runs = _runs(tracking, "four")
    parents = {r["parent"] for r in results}
    assert len(parents) == 1
    parent = parents.pop()
    assert [r.info.run_id for r in runs if r.data.tags.get(RUN_TYPE) == "sweep"] == [parent]
    # the shared parent carries MLflow's system tags like every other run
    assert {"mlflow.user", "mlflow.source.name"} <= set(
        next(r for r in runs if r.info.run_id == parent).data.tags
    )
    trial_runs = [r for r in runs if r.data.tags.get(RUN_TYPE) == "trial"]
    assert len(trial_runs) == 40
    assert {r.info.status for r in trial_runs} == {"FINISHED"}
    assert {r.data.tags.get("mlflow.parentRunId") for r in trial_runs} == {parent}
    refits = [r for r in runs if r.data.tags.get(RUN_TYPE) == "refit"]
    assert len(refits) == 1 and refits[0].data.tags.get("mlflow.parentRunId") == parent
    assert {r.info.status for r in runs} == {"FINISHED"}  # the parent too: ended once, by the finaliser


@pytest.mark.slow
def test_a_killed_worker_costs_one_trial(pg_services: Services, fresh_db: str, tmp_path: Path) -> None:
    """SIGKILL one of 4 workers mid-trial (heartbeat 1 s, grace 3 s): its trial goes FAIL and is run again,
    its run ends KILLED + code.interrupted, the budget is still exactly 40 COMPLETE, nothing stays RUNNING."""
    tracking = pg_services.tracking_uri
    hang = tmp_path / "hanging"
    common = ["--sleep", "0.2", "--heartbeat", "1", "--grace", "3"]
    victim = start_worker(
        tmp_path / "victim", fresh_db, tracking, "kill", "work", *common, "--hang-file", str(hang)
    )
    # the others start once the victim hangs in its 2nd trial: started together, on a loaded machine they
    # could finish the 40 trials before the victim got a 2nd one
    wait_for(hang, writer=victim)
    others = [start_worker(tmp_path / f"w{i}", fresh_db, tracking, "kill", "work", *common) for i in range(3)]
    time.sleep(0.5)  # the hanging trial is mid-"training", its run open
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(30)
    for worker in others:
        worker.result()
    trials = _study(fresh_db, "kill").get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 40
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1
    assert optuna.trial.TrialState.RUNNING not in states
    rerun = [
        t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.params == failed[0].params
    ]
    assert len(rerun) == 1  # the retry: the same parameters, queued by the stale-trial callback
    runs = _runs(tracking, "kill")
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert [r.info.run_id for r in killed] == [failed[0].user_attrs["mlflow_run_id"]]
    assert killed[0].data.tags.get(INTERRUPTED) == "true"
    assert not [r for r in runs if r.info.status == "RUNNING"]
    trial_runs = [r for r in runs if r.data.tags.get(RUN_TYPE) == "trial" and r.info.status == "FINISHED"]
    assert len(trial_runs) == 40


@pytest.mark.slow
def test_simultaneous_starts_create_one_parent_per_round(
    pg_services: Services, fresh_db: str, tmp_path: Path
) -> None:
    """4 processes x 10 rounds of starts at the same instant on a fresh study: one parent run each round."""
    tracking = pg_services.tracking_uri
    start = f"{time.time() + 20:.3f}"  # past every process's imports: the 4 claims then race
    procs = [
        start_worker(tmp_path / f"c{i}", fresh_db, tracking, "claim", "claim", "--start-at", start)
        for i in range(4)
    ]
    results = [p.result() for p in procs]
    for r in range(10):
        claimed = {res["parents"][r] for res in results}  # type: ignore[index]
        assert len(claimed) == 1 and None not in claimed, (r, claimed)
        sweeps = [x for x in _runs(tracking, f"claim_{r}") if x.data.tags.get(RUN_TYPE) == "sweep"]
        assert [x.info.run_id for x in sweeps] == list(claimed)
