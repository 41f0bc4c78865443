"""A sweep killed with SIGKILL mid-trial resumes: same study, same parent run, no RUNNING leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]

# The driver runs the sweep through the orchestration API with the test's faulty training function.
SWEEP = r"""
import os, sys
from pathlib import Path
from mlrig.orchestration import demo_data, load_experiment_config, run_local_hpo_sweep
from mlrig.orchestration.demo import prepare_demo_config
from tests.e2e.faulty_model import faulty

root = Path(sys.argv[1])
cfg = prepare_demo_config(root)
exp = load_experiment_config(cfg, "demo")
_, labels = demo_data.make_dataset(exp.data)
hang = os.environ.get("HANG_AT")
train = faulty(
    hang_at=tuple(int(v) for v in hang.split(":")) if hang else None, hang_marker=root / "hanging"
)

result = run_local_hpo_sweep(
    train, exp, "tiny", root_dir=root, config_dir=cfg, labels=[int(v) for v in labels],
    tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db", max_trials=3,
)
print("PARENT", result.parent_run_id, "NEW", len(result.trials), "RESUMED", result.resumed)
"""


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume(tmp_path: Path) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, "-c", SWEEP, str(tmp_path)], env={**env, "HANG_AT": "1:1"})
    deadline = time.monotonic() + 240
    while not (tmp_path / "hanging").exists():
        assert proc.poll() is None, "sweep ended before reaching the hanging fold"
        assert time.monotonic() < deadline, "sweep never reached trial 1 fold 1"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)

    done = subprocess.run(
        [sys.executable, "-c", SWEEP, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PARENT"))
    _, parent_id, _, new_trials, _, resumed = line.split()
    assert resumed == "True"
    assert int(new_trials) == 2  # trial 1 (killed, marked FAIL) is re-run, then trial 2

    db = next(tmp_path.glob("outputs/hpo/local/tiny/study-*/study.db"))
    study = optuna.load_study(study_name="hpo_tiny", storage=f"sqlite:///{db}")
    states = sorted(t.state.name for t in study.trials)
    # COMPLETE and PRUNED count towards max_trials; the killed trial is FAIL and was re-run.
    assert states.count("COMPLETE") + states.count("PRUNED") == 3 and states.count("FAIL") == 1

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    exp = client.get_experiment_by_name("mlrig_demo-hpo-tiny")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("code.stage") == "hpo_sweep"]
    assert [p.info.run_id for p in parents] == [parent_id]
    assert parents[0].info.status == "FINISHED"
    assert not [r for r in runs if r.info.status == "RUNNING"]
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert killed and all(r.data.tags.get("code.interrupted") == "true" for r in killed)
