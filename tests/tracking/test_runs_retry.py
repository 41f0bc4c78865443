"""retry_with_backoff: what is retried, how often, how long."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    REQUEST_LIMIT_EXCEEDED,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
)

from mlrig.tracking import RetryPolicy, TrackingError, is_transient_error, retry_with_backoff


class Flaky:
    def __init__(self, errors: list[BaseException], result: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_transient_errors_are_retried_until_success() -> None:
    sleeps: list[float] = []
    func = Flaky([ConnectionResetError("reset"), MlflowException("x", error_code=TEMPORARILY_UNAVAILABLE)])
    assert retry_with_backoff(func, max_retries=3, base_delay=1.0, sleep=sleeps.append) == "ok"
    assert func.calls == 3
    assert len(sleeps) == 2
    assert 1.0 <= sleeps[0] <= 1.1 and 2.0 <= sleeps[1] <= 2.2


def test_max_retries_counts_retries_and_reraises_the_original() -> None:
    err = TimeoutError("slow")
    func = Flaky([err] * 10)
    with pytest.raises(TimeoutError) as info:
        retry_with_backoff(func, max_retries=2, base_delay=0.0, sleep=lambda _: None)
    assert info.value is err and func.calls == 3
    once = Flaky([TimeoutError()] * 2)
    with pytest.raises(TimeoutError):
        retry_with_backoff(once, max_retries=0, sleep=lambda _: None)
    assert once.calls == 1


def test_non_transient_errors_are_not_retried() -> None:
    for err in (
        ValueError("connection string invalid"),  # a message mentioning "connection" is not a reason
        MlflowException("bad", error_code=INVALID_PARAMETER_VALUE),
        MlflowException("dup", error_code=RESOURCE_ALREADY_EXISTS),
    ):
        func = Flaky([err])
        with pytest.raises(type(err)):
            retry_with_backoff(func, max_retries=5, sleep=lambda _: None)
        assert func.calls == 1


def test_classification() -> None:
    assert is_transient_error(MlflowException("x", error_code=INTERNAL_ERROR))
    assert is_transient_error(MlflowException("x", error_code=REQUEST_LIMIT_EXCEEDED))
    assert not is_transient_error(MlflowException("x", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_transient_error(KeyError("timeout"))


def test_backoff_is_capped_and_deadline_stops_early() -> None:
    sleeps: list[float] = []
    func = Flaky([ConnectionError()] * 10)
    with pytest.raises(ConnectionError):
        retry_with_backoff(func, max_retries=6, base_delay=1.0, max_delay=3.0, sleep=sleeps.append)
    assert all(s <= 3.3 for s in sleeps) and len(sleeps) == 6
    func = Flaky([ConnectionError()] * 10)
    with pytest.raises(ConnectionError):
        retry_with_backoff(func, max_retries=6, base_delay=1.0, deadline=2.5, sleep=lambda _: None)
    assert func.calls == 2  # 1 s fits in 2.5 s, the next 2 s sleep would not (1 + 2 > 2.5)


def test_invalid_settings_raise() -> None:
    with pytest.raises(TrackingError, match="max_retries"):
        retry_with_backoff(lambda: 1, max_retries=-1)
    with pytest.raises(TrackingError, match="deadline"):
        RetryPolicy(deadline=0)


def test_a_server_store_gets_one_layer_of_retries(tmp_path: Path) -> None:
    """Over HTTP MLflow's own client retries (bounded by MLFLOW_HTTP_REQUEST_*): mlrig makes one attempt per
    call there, and keeps its backoff for local stores (a locked SQLite database)."""
    from mlrig.tracking import MLflowSweepTracker, TrackedRun, retry_policy_for

    assert retry_policy_for("http://127.0.0.1:5000").max_retries == 0
    assert retry_policy_for("HTTPS://mlflow.example.org").max_retries == 0
    local = retry_policy_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert local.max_retries > 0
    tracker = MLflowSweepTracker("exp", tracking_uri="http://127.0.0.1:1", config_dir=None, root_dir=tmp_path)
    assert tracker.retry.max_retries == 0
    # a run's calls on a server that refuses: one attempt each, the failure recorded, nothing raised
    run = TrackedRun(tracker.client, experiment_id="1", run_name="r")
    calls = Flaky([ConnectionRefusedError("refused")] * 5)
    run.client.create_run = lambda *a, **k: calls()  # type: ignore[method-assign]
    assert run.create() is False
    assert calls.calls == 1 and run.failures
