"""retire_unknown_trials finds a trial's runs by the trial-number tag mlrig writes (code.hpo.trial_number)."""

from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient

from mlrig.orchestration.resume import retire_unknown_trials
from mlrig.tracking import MLflowSweepTracker


def test_runs_of_a_trial_the_study_does_not_know_are_retired(sqlite_tracking_uri: str) -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=2)  # knows trials 0 and 1
    tracker = MLflowSweepTracker("resume-retire", tracking_uri=sqlite_tracking_uri, background=False)
    with tracker.start_sweep_run("sweep", {}, "tiny", "s", None, None, False) as parent:
        assert parent is not None
        for number in (1, 2):  # trial 2: asked after the study's snapshot was taken
            with (
                tracker.start_trial_run(number) as trial,
                tracker.start_fold_run(trial, 0, trial_number=number),
            ):
                pass
        assert retire_unknown_trials(tracker, parent.run_id, study) == 2  # trial 2 and its fold
    names = sorted(
        r.info.run_name for r in MlflowClient(sqlite_tracking_uri).search_runs([parent.experiment_id])
    )
    retired = [n.split(".interrupted-")[0] for n in names if ".interrupted-" in n]
    assert sorted(retired) == ["trial_2", "trial_2_fold0"]
    assert "trial_1" in names and "trial_1_fold0" in names
