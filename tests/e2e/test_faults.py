"""Failures injected by the test's own training function (``faulty_model``): a failing trial does not stop the
sweep, and a failing final training leaves nothing the next run would take for finished."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mlrig.orchestration import demo_data, demo_model, load_experiment_config, run_local_hpo_sweep
from mlrig.orchestration.demo import prepare_demo_config, run_demo
from mlrig.orchestration.stages import RESULT_FILE, run_final_training
from tests.e2e.faulty_model import faulty


def test_failing_trial_is_recorded_fail_and_the_sweep_goes_on(tmp_path: Path) -> None:
    cfg = prepare_demo_config(tmp_path)
    exp = load_experiment_config(cfg, "demo")
    _, labels = demo_data.make_dataset(exp.data)
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    result = run_local_hpo_sweep(
        faulty(fail_trials=[1]),
        exp,
        "tiny",
        root_dir=tmp_path,
        config_dir=cfg,
        labels=[int(v) for v in labels],
        tracking_uri=uri,
        max_trials=2,
    )
    states = [(t.number, t.state) for t in result.trials]
    assert states[1] == (1, "FAIL") and len(states) == 3
    assert {s for n, s in states if n != 1} <= {"COMPLETE", "PRUNED"}
    study = optuna.load_study(study_name=result.study_name, storage=f"sqlite:///{result.study_dir}/study.db")
    failed = study.trials[1]
    assert failed.state.name == "FAIL" and "simulated failure of trial 1" in failed.user_attrs["error"]
    client = MlflowClient(tracking_uri=uri)
    run_id = result.trials[1].run_id
    assert run_id is not None and client.get_run(run_id).info.status != "RUNNING"
    assert result.refit_run_id is not None and result.best_trial_number in (0, 2)


@pytest.mark.slow
def test_final_training_variants_and_failure(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, max_trials=3)  # selection needs 3 finished trials
    assert summary.best is not None and summary.final_training is not None
    first = summary.final_training
    exp = load_experiment_config(summary.config_dir, "demo")
    kw = {"root_dir": tmp_path, "config_dir": summary.config_dir, "tracking_uri": summary.tracking_uri}
    with pytest.raises(RuntimeError, match="simulated failure"):
        run_final_training(faulty(fail_always=True), exp, summary.best, new_variant=True, **kw)
    broken = first.output_dir.parent / "v2"
    assert broken.is_dir() and not (broken / RESULT_FILE).exists()
    again = run_final_training(demo_model.train, exp, summary.best, **kw)
    assert again.reused and again.variant == first.variant == 1 and again.run_id == first.run_id
    fresh = run_final_training(demo_model.train, exp, summary.best, new_variant=True, **kw)
    assert not fresh.reused and fresh.variant == 3 and fresh.output_dir.name == "v3"
    assert (fresh.output_dir / RESULT_FILE).is_file() and fresh.run_id != first.run_id
    assert run_final_training(demo_model.train, exp, summary.best, **kw).variant == 3
