"""The distributed entry points as a user runs them: ``mlrig demo --workers 2`` (two ``mlrig worker``
processes) on the session's services, end to end in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import build_mlflow_experiment_name, load_tags_registry
from mlrig.orchestration.services import Services
from tests.distributed.conftest import REPO

RUN_TYPE = load_tags_registry().key("process", "run_type")


@pytest.mark.slow
def test_demo_with_two_workers_completes_every_study(pg_services: Services) -> None:
    """``mlrig demo --workers 2 --max-trials 2`` on a root whose services run (``services up`` is a no-op):
    rc 0, per backbone 2 finished trials (COMPLETE, or PRUNED by the demo's bandit policy), one parent,
    one refit, no run left RUNNING."""
    root = Path(pg_services.root)
    cmd = [
        sys.executable,
        "-m",
        "mlrig.cli",
        "demo",
        "--workers",
        "2",
        "--max-trials",
        "2",
        "--root",
        str(root),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "exit codes [0, 0]" in proc.stdout
    names = optuna.get_all_study_names(pg_services.optuna_storage)
    client = MlflowClient(pg_services.tracking_uri)
    for backbone in ("tiny", "small"):
        (name,) = [n for n in names if n.startswith(f"hpo_{backbone}_")]
        trials = optuna.load_study(study_name=name, storage=pg_services.optuna_storage).get_trials()
        states = [t.state for t in trials]
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        assert len(states) == 2 and all(s in done for s in states), states
        assert optuna.trial.TrialState.COMPLETE in states  # the first trial is never pruned
        experiment = client.get_experiment_by_name(
            build_mlflow_experiment_name("mlrig_demo", "hpo", backbone)
        )
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        kinds = [r.data.tags.get(RUN_TYPE) for r in runs]
        assert kinds.count("sweep") == 1 and kinds.count("refit") == 1, kinds
        assert kinds.count("trial") == 2
        assert not [r for r in runs if r.info.status == "RUNNING"]
