"""Run tree primitives: create/batch/terminate, statuses, call budget against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from mlrig.tracking import (
    RetryPolicy,
    RunHandle,
    TrackingError,
    create_child_run,
    create_run_safe,
    get_or_create_experiment,
    retry_pending_terminations,
    terminate_run_safe,
    track_run,
)

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05, deadline=10)


@pytest.fixture
def no_http_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own HTTP retries off, so faults reach mlrig's retry layer quickly."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def _experiment(uri: str) -> str:
    return get_or_create_experiment(f"exp-{uuid.uuid4().hex[:8]}", tracking_uri=uri)


def test_track_run_creates_tags_batch_and_finishes(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    with track_run(exp, "run-a", tags={"code.stage": "hpo_trial"}, tracking_uri=sqlite_tracking_uri) as run:
        run.log_params({"lr": 0.01, "bs": 8})
        run.log_metric("loss", 0.5, step=1)
        run.log_metric("loss", 0.25, step=2)
        run.set_tag("late", "yes")
        assert run.run_id is not None
    client = MlflowClient(sqlite_tracking_uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "run-a"
    assert got.data.params == {"lr": "0.01", "bs": "8"}
    assert got.data.tags["code.stage"] == "hpo_trial"
    assert got.data.tags["late"] == "yes"
    history = client.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, 0.5), (2, 0.25)]
    assert run.failures == []


def test_user_exception_propagates_unchanged_and_run_failed(sqlite_tracking_uri: str) -> None:
    class UserError(Exception):
        pass

    exp = _experiment(sqlite_tracking_uri)
    err = UserError("boom")
    with pytest.raises(UserError) as info, track_run(exp, "r", tracking_uri=sqlite_tracking_uri) as run:
        run.log_metric("m", 1.0)
        raise err
    assert info.value is err
    got = MlflowClient(sqlite_tracking_uri).get_run(run.run_id or "")
    assert got.info.status == "FAILED"
    assert got.data.metrics == {"m": 1.0}  # logged data is still flushed


def test_keyboard_interrupt_marks_killed(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    with pytest.raises(KeyboardInterrupt), track_run(exp, "r", tracking_uri=sqlite_tracking_uri) as run:
        raise KeyboardInterrupt
    assert MlflowClient(sqlite_tracking_uri).get_run(run.run_id or "").info.status == "KILLED"


def test_child_run_nesting_and_default_name(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    parent = create_run_safe(exp, "parent", tracking_uri=sqlite_tracking_uri)
    assert parent is not None
    with create_child_run(parent, 3, tracking_uri=sqlite_tracking_uri) as trial:  # experiment from the parent
        fold_cm = create_child_run(
            trial.run_id or "", 3, fold_idx=1, experiment_id=exp, tracking_uri=sqlite_tracking_uri
        )
        with fold_cm as fold:
            pass
    client = MlflowClient(sqlite_tracking_uri)
    t = client.get_run(trial.run_id or "")
    f = client.get_run(fold.run_id or "")
    assert t.info.run_name == "trial_3" and t.data.tags["mlflow.parentRunId"] == parent
    assert t.data.tags["trial_number"] == "3"
    assert f.info.run_name == "trial_3_fold1" and f.data.tags["mlflow.parentRunId"] == trial.run_id
    assert f.data.tags["fold_idx"] == "1"
    assert t.info.status == f.info.status == "FINISHED"
    assert terminate_run_safe(parent, tracking_uri=sqlite_tracking_uri)
    assert client.get_run(parent).info.status == "FINISHED"


def test_terminate_run_safe_leaves_terminal_runs_alone(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    run_id = create_run_safe(exp, "r", tags={"a": "1"}, tracking_uri=sqlite_tracking_uri)
    assert run_id is not None
    assert terminate_run_safe(run_id, "FAILED", tags={"why": "x"}, tracking_uri=sqlite_tracking_uri)
    assert terminate_run_safe(run_id, "FINISHED", tracking_uri=sqlite_tracking_uri)
    got = MlflowClient(sqlite_tracking_uri).get_run(run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["why"] == "x" and got.data.tags["a"] == "1"


def test_invalid_arguments_raise_tracking_error(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    with pytest.raises(TrackingError, match="run_name"):
        create_run_safe(exp, "  ", tracking_uri=sqlite_tracking_uri)
    with pytest.raises(TrackingError, match="status"):
        terminate_run_safe("abc", "DONE", tracking_uri=sqlite_tracking_uri)
    with pytest.raises(TrackingError, match="run_id"):
        RunHandle("", "", "", "1", "e", "uri")
    with pytest.raises(TrackingError, match="client or tracking_uri"):
        create_run_safe(exp, "x")


def test_run_handle_fields(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    tags = {"code.study_key_hash": "a" * 64}
    with track_run(
        exp, "r", tags=tags, tracking_uri=sqlite_tracking_uri, run_key="k", run_key_hash="h"
    ) as run:
        handle = run.handle
    assert handle is not None
    assert handle.run_id == run.run_id and handle.experiment_id == exp
    assert handle.run_key == "k" and handle.run_key_hash == "h"
    assert handle.study_key_hash == "a" * 64
    assert handle.artifact_uri and handle.run_id in handle.artifact_uri


@pytest.mark.slow
def test_trial_costs_three_rest_calls(mlflow_server_uri: str, loopback_proxy: Callable[..., Any]) -> None:
    proxy = loopback_proxy(mlflow_server_uri)
    exp = _experiment(proxy.uri)
    parent = create_run_safe(exp, "sweep", tracking_uri=proxy.uri)
    assert parent is not None
    client = MlflowClient(proxy.uri)
    per_trial = []
    for n in range(3):
        proxy.reset()
        with create_child_run(
            parent, n, experiment_id=exp, client=client, additional_tags={"code.stage": "hpo_trial"}
        ) as trial:
            trial.log_params({"lr": 0.1 * (n + 1), "layers": n})
            trial.log_metrics({"macro-f1": 0.5 + n / 10, "loss": 1.0})
            trial.set_tag("code.trial_state", "complete")
        per_trial.append([path for _, path in proxy.api_calls()])
    for calls in per_trial:
        assert len(calls) == 3, calls
        assert calls[0].endswith("/runs/create")
        assert calls[1].endswith("/runs/log-batch")
        assert calls[2].endswith("/runs/update")
    got = MlflowClient(mlflow_server_uri).get_run(trial.run_id or "")
    assert got.data.tags["mlflow.parentRunId"] == parent
    assert got.data.params == {"lr": "0.30000000000000004", "layers": "2"}
    assert got.info.status == "FINISHED"


@pytest.mark.slow
def test_unreachable_server_never_raises_and_terminates_later(
    mlflow_server_uri: str, loopback_proxy: Callable[..., Any], no_http_retries: None
) -> None:
    proxy = loopback_proxy(mlflow_server_uri)
    exp = _experiment(proxy.uri)
    with track_run(exp, "survivor", tracking_uri=proxy.uri, retry=FAST) as run:
        proxy.down = True  # server "goes away" mid-run
        run.log_metric("m", 1.0)
        result = sum(range(10))  # the training code keeps going
    assert result == 45
    assert run.run_id is not None
    assert any("log batch" in f for f in run.failures) and any("terminate" in f for f in run.failures)
    assert MlflowClient(mlflow_server_uri).get_run(run.run_id).info.status == "RUNNING"
    proxy.down = False
    assert retry_pending_terminations(proxy.uri) == 0
    assert MlflowClient(mlflow_server_uri).get_run(run.run_id).info.status == "FINISHED"

    proxy.down = True
    assert create_run_safe(exp, "never", tracking_uri=proxy.uri, retry=FAST) is None
    with track_run(exp, "detached", tracking_uri=proxy.uri, retry=FAST) as detached:
        detached.log_param("p", 1)
    assert detached.run_id is None and detached.failures


def test_background_endings_are_drained(sqlite_tracking_uri: str) -> None:
    from mlrig.tracking import wait_for_background

    exp = _experiment(sqlite_tracking_uri)
    runs = []
    for n in range(3):
        with track_run(exp, f"bg{n}", tracking_uri=sqlite_tracking_uri, background=True) as run:
            run.log_metric("m", float(n))
        runs.append(run)
    assert wait_for_background(timeout=60)
    client = MlflowClient(sqlite_tracking_uri)
    for n, run in enumerate(runs):
        got = client.get_run(run.run_id or "")
        assert got.info.status == "FINISHED" and got.data.metrics == {"m": float(n)}


_EXIT_SCRIPT = """
import sys
from mlrig.tracking import get_or_create_experiment, track_run
uri = sys.argv[1]
exp = get_or_create_experiment("exit", tracking_uri=uri)
with track_run(exp, "left-to-the-writer", tracking_uri=uri, background=True) as run:
    run.log_param("p", "1")
print(run.run_id)
"""


@pytest.mark.slow
def test_background_endings_finish_at_interpreter_exit(sqlite_tracking_uri: str) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, sqlite_tracking_uri], capture_output=True, text=True, check=True
    )
    run_id = out.stdout.strip().splitlines()[-1]
    got = MlflowClient(sqlite_tracking_uri).get_run(run_id)
    assert got.info.status == "FINISHED" and got.data.params == {"p": "1"}


def test_rejected_param_does_not_lose_metrics(sqlite_tracking_uri: str) -> None:
    exp = _experiment(sqlite_tracking_uri)
    with track_run(exp, "params", tracking_uri=sqlite_tracking_uri) as run:
        run.log_param("lr", 0.1)
        assert run.flush()
        run.log_param("lr", 0.2)  # MLflow params are immutable: the server rejects this one
        run.log_param("long", "x" * 7000)  # over MLflow's limit: cut, not rejected
        run.log_metric("f1", 0.8)
    got = MlflowClient(sqlite_tracking_uri).get_run(run.run_id or "")
    assert got.data.metrics == {"f1": 0.8}
    assert got.data.params["lr"] == "0.1"
    assert got.data.params["long"] == "x" * 5997 + "..."
    assert any("params ['lr'] rejected" in f for f in run.failures)
    assert got.data.tags["code.tracking_failures"] == "1"
