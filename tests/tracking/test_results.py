"""mlrig.tracking.results on a real SQLite store: curves, train-set keys, trials table, logged model."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mlrig.tracking import (
    StepLogger,
    get_or_create_experiment,
    log_pyfunc_model,
    log_trials_table,
    track_run,
    train_set_metrics,
    trials_table_rows,
)


def test_train_set_metrics_get_their_own_key() -> None:
    assert train_set_metrics({"macro-f1": 0.9, "loss": 0.1, "evaluated_on_train": 1.0}) == {
        "train_macro-f1": 0.9,
        "train_loss": 0.1,
    }
    assert train_set_metrics({"train_loss": 0.2}) == {"train_loss": 0.2}


def test_step_logger_logs_the_curve_and_the_final_scores_once(sqlite_tracking_uri: str) -> None:
    client = MlflowClient(sqlite_tracking_uri)
    exp = get_or_create_experiment("curves", client=client)
    pruned_at: list[int] = []
    with track_run(exp, "r", client=client) as run:
        curve = StepLogger(run, "macro-f1", lambda step, _v: step == 3 and not pruned_at.append(step))
        assert [curve(epoch, 0.1 * epoch) for epoch in (1, 2, 3)] == [False, False, True]
        curve.log_final({"macro-f1": 0.30000000000000004, "loss": 0.5})
    assert run.run_id
    history = [(m.step, m.value) for m in client.get_metric_history(run.run_id, "macro-f1")]
    assert sorted(history) == [(1, 0.1), (2, 0.2), (3, pytest.approx(0.3))]  # no duplicate last point
    assert [(m.step, m.value) for m in client.get_metric_history(run.run_id, "loss")] == [(3, 0.5)]
    assert pruned_at == [3] and curve.last_step == 3


def test_trials_table(tmp_path: Path, sqlite_tracking_uri: str) -> None:
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 0.1})
    study.optimize(lambda t: t.suggest_float("lr", 0.0, 1.0), n_trials=2)
    pruned = study.ask()
    pruned.suggest_float("lr", 0.0, 1.0)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    rows = trials_table_rows(study)
    assert [(r["number"], r["state"]) for r in rows] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "PRUNED")]
    assert rows[0]["param_lr"] == 0.1 and rows[2]["value"] is None
    client = MlflowClient(sqlite_tracking_uri)
    exp = get_or_create_experiment("sweep", client=client)
    with track_run(exp, "parent", client=client) as run:
        assert log_trials_table(study, tmp_path / "trials.csv", run.run_id, client=client)
    assert run.run_id
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["trials.csv"]
    text = (tmp_path / "trials.csv").read_text(encoding="utf-8").splitlines()
    assert text[0] == "number,state,value,run_id,param_lr" and text[3].startswith("2,PRUNED,,")


def test_a_model_that_cannot_be_logged_is_a_warning(
    sqlite_tracking_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = MlflowClient(sqlite_tracking_uri)
    exp = get_or_create_experiment("models", client=client)
    with track_run(exp, "final", client=client) as run:
        assert run.run_id
        with caplog.at_level(logging.WARNING, logger="mlrig.tracking.results"):
            info = log_pyfunc_model(client, exp, run.run_id, SimpleNamespace(), register_as="m", alias="a")
    assert info is None and "not logged (training continues)" in caplog.text
    assert run.run_id and client.get_run(run.run_id).info.status == "FINISHED"
