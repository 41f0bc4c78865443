"""Retry with exponential backoff for transient tracking failures (server down, 5xx, 429, locked SQLite)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from mlrig.tracking.errors import TrackingError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# MLflow error codes that describe a condition which may clear by itself. MLflow reports a failed connection
# ("API request to ... failed with exception ...") as INTERNAL_ERROR / 500, so that code is transient too.
_TRANSIENT_CODES: Final = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL_ERROR", "ABORTED"}
)
_TRANSIENT_HTTP: Final = frozenset({408, 429, 500, 502, 503, 504})


def is_transient_error(exc: BaseException) -> bool:
    """True for failures worth retrying: connection/timeouts, HTTP 408/429/5xx, a locked SQLite database.

    Classified by exception type and MLflow error code, never by free-text substrings of arbitrary messages
    (a ``ValueError("connection string invalid")`` is not retried).
    """
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        import requests
    except ImportError:  # pragma: no cover - requests ships with mlflow-skinny
        requests = None  # type: ignore[assignment]
    if requests is not None and isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
    ):
        return True
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        if exc.error_code in _TRANSIENT_CODES:
            return True
        status: Any = getattr(exc, "get_http_status_code", lambda: None)()
        try:
            return int(status) in _TRANSIENT_HTTP
        except (TypeError, ValueError):
            return False
    try:
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower()


def retry_with_backoff(
    func: Callable[[], T],
    max_retries: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 60.0,
    operation_name: str = "operation",
    *,
    deadline: float | None = None,
    is_retryable: Callable[[BaseException], bool] = is_transient_error,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``func()``; on a transient error retry up to ``max_retries`` times with exponential backoff.

    ``max_retries`` counts *retries* (``max_retries=0`` → one attempt). The sleep before retry ``k`` (0-based)
    is ``min(base_delay * 2**k, max_delay)`` plus up to 10 % jitter. ``deadline`` (seconds from the first
    call) caps the total time: no retry is started that would sleep past it. A non-transient error, or the
    last transient one, is re-raised unchanged, so callers can still catch the original type.
    """
    if max_retries < 0:
        raise TrackingError(
            f"retry_with_backoff({operation_name}): max_retries must be >= 0, got {max_retries}"
        )
    if base_delay < 0 or max_delay < 0:
        raise TrackingError(
            f"retry_with_backoff({operation_name}): delays must be >= 0, got base_delay={base_delay}, "
            f"max_delay={max_delay}"
        )
    start = time.monotonic()
    slept = 0.0  # counted separately so an injected (fake) sleep still honours the deadline
    attempt = 0
    while True:
        try:
            return func()
        except Exception as exc:
            if attempt >= max_retries or not is_retryable(exc):
                raise
            delay = min(base_delay * (2**attempt), max_delay)
            delay += random.uniform(0.0, 0.1 * delay)
            elapsed = max(time.monotonic() - start, slept)
            if deadline is not None and elapsed + delay > deadline:
                logger.warning(
                    "%s: giving up after %d attempt(s), deadline %.1fs", operation_name, attempt + 1, deadline
                )
                raise
            logger.info(
                "%s failed (attempt %d/%d, %s: %s); retrying in %.2fs",
                operation_name,
                attempt + 1,
                max_retries + 1,
                type(exc).__name__,
                exc,
                delay,
            )
            sleep(delay)
            slept += delay
            attempt += 1


@dataclass(frozen=True)
class RetryPolicy:
    """How tracking calls are retried: ``max_retries`` retries after the first attempt, exponential backoff
    from ``base_delay`` capped at ``max_delay``, and an overall ``deadline`` in seconds per operation.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    deadline: float | None = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_delay < 0 or self.max_delay < 0:
            raise TrackingError(f"RetryPolicy values must be >= 0, got {self!r}")
        if self.deadline is not None and self.deadline <= 0:
            raise TrackingError(f"RetryPolicy.deadline must be > 0 or None, got {self.deadline!r}")

    def call(self, func: Callable[[], T], operation_name: str) -> T:
        """``retry_with_backoff(func, ...)`` with this policy."""
        return retry_with_backoff(
            func,
            self.max_retries,
            self.base_delay,
            self.max_delay,
            operation_name,
            deadline=self.deadline,
        )


DEFAULT_RETRY: Final = RetryPolicy()


# Stores reached over HTTP: MLflow's own client already retries connection errors, 429 and 5xx
# (MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT / _BACKOFF_FACTOR), so mlrig adds no second layer there.
_HTTP_SCHEMES: Final = ("http://", "https://", "databricks", "azureml://")
SINGLE_ATTEMPT: Final = RetryPolicy(max_retries=0, deadline=None)


def retry_policy_for(tracking_uri: str | None) -> RetryPolicy:
    """The retry policy of a store: one attempt over HTTP (MLflow's client retries, bounded by its
    ``MLFLOW_HTTP_REQUEST_*`` settings); :data:`DEFAULT_RETRY` for local stores (a locked SQLite database)."""
    if tracking_uri and tracking_uri.lower().startswith(_HTTP_SCHEMES):
        return SINGLE_ATTEMPT
    return DEFAULT_RETRY
