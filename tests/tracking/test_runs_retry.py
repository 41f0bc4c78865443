"""retry_with_backoff: what is retried, how often, how long."""

from __future__ import annotations

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
