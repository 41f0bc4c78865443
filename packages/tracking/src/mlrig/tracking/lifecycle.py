"""Run termination: one ``runs/update`` call per run; terminations that could not reach the server are kept
and retried later (next tracked run, or process exit), so no run created by mlrig stays RUNNING once the
server is reachable again.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

import mlflow
from mlflow.entities import RunStatus, RunTag
from mlflow.tracking import MlflowClient

from mlrig.tracking.errors import TrackingError
from mlrig.tracking.retry import DEFAULT_RETRY, RetryPolicy
from mlrig.tracking.setup import tracking_client

logger = logging.getLogger(__name__)

TERMINAL_STATUSES: Final = frozenset({"FINISHED", "FAILED", "KILLED"})


def client_for(client: MlflowClient | None, tracking_uri: str | None) -> MlflowClient:
    if client is not None:
        return client
    if not tracking_uri:
        raise TrackingError(
            "either client or tracking_uri is required (mlrig never uses an implicit global URI)"
        )
    return tracking_client(tracking_uri)


def client_or_current(client: MlflowClient | None, tracking_uri: str | None) -> MlflowClient:
    """For the reference-signature helpers: ``client``, else ``tracking_uri``, else the current MLflow
    tracking URI (``mlflow.get_tracking_uri()``, read, never set), as the artifact helpers do."""
    if client is None and not tracking_uri:
        tracking_uri = mlflow.get_tracking_uri()
    return client_for(client, tracking_uri)


def set_terminated(client: MlflowClient, run_id: str, status: str) -> None:
    """One ``runs/update`` call. ``MlflowClient.set_terminated`` adds a ``runs/get`` per run against a server
    just to print a "View run at" line to stdout, which would break the 3-calls-per-trial budget.
    """
    store: Any = getattr(getattr(client, "_tracking_client", None), "store", None)
    if store is None or not hasattr(store, "update_run_info"):
        client.set_terminated(run_id, status=status)
        return
    store.update_run_info(
        run_id, run_status=RunStatus.from_string(status), end_time=int(time.time() * 1000), run_name=None
    )


def validate_status(status: str) -> str:
    if status not in TERMINAL_STATUSES:
        raise TrackingError(f"run status must be one of {sorted(TERMINAL_STATUSES)}, got {status!r}")
    return status


_pending_lock = threading.Lock()
_pending: dict[tuple[str, str], str] = {}
_atexit_registered = False


def remember_pending(tracking_uri: str, run_id: str, status: str) -> None:
    global _atexit_registered
    with _pending_lock:
        _pending[(tracking_uri, run_id)] = status
        if not _atexit_registered:
            atexit.register(retry_pending_terminations)
            _atexit_registered = True


def retry_pending_terminations(tracking_uri: str | None = None, retry: RetryPolicy | None = None) -> int:
    """Retry terminations that failed earlier (all URIs, or one); return how many runs are still pending."""
    policy = retry or RetryPolicy(max_retries=0, deadline=None)
    with _pending_lock:
        items = [(key, status) for key, status in _pending.items() if tracking_uri in (None, key[0])]
    for (uri, run_id), status in items:
        client = tracking_client(uri)

        def terminate(c: MlflowClient = client, r: str = run_id, s: str = status) -> None:
            set_terminated(c, r, s)

        try:
            policy.call(terminate, f"terminate run {run_id} ({status})")
        except Exception as exc:
            logger.debug("run %s at %s still not terminated: %s", run_id, uri, exc)
            continue
        with _pending_lock:
            _pending.pop((uri, run_id), None)
        logger.info("terminated run %s at %s as %s (deferred)", run_id, uri, status)
    with _pending_lock:
        return sum(1 for key in _pending if tracking_uri in (None, key[0]))


def has_pending_terminations() -> bool:
    """Whether some termination is still waiting for the server."""
    with _pending_lock:
        return bool(_pending)


def terminate_run_safe(
    run_id: str,
    status: str = "FINISHED",
    tags: Mapping[str, str] | None = None,
    check_status: bool = True,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """End ``run_id`` with ``status`` (tags first, in one batch); never raises for tracking failures.

    With ``check_status`` a run that is already terminal is left untouched (True). A termination that cannot
    reach the server returns False and is retried later (next tracked run or process exit). Without
    ``client``/``tracking_uri`` the current MLflow tracking URI is used (reference signature).
    """
    validate_status(status)
    mlflow_client = client_or_current(client, tracking_uri)
    policy = retry or DEFAULT_RETRY
    uri = str(mlflow_client.tracking_uri)
    try:
        if check_status:
            current = policy.call(lambda: mlflow_client.get_run(run_id).info.status, f"get run {run_id}")
            if current != "RUNNING":
                logger.info("run %s is already %s; not terminating it as %s", run_id, current, status)
                return True
        if tags:
            batch = [RunTag(str(k), str(v)) for k, v in tags.items()]
            policy.call(lambda: mlflow_client.log_batch(run_id, tags=batch), f"tag run {run_id}")
    except Exception as exc:
        logger.warning("terminate_run_safe(%s): %s: %s; terminating anyway", run_id, type(exc).__name__, exc)
    try:
        policy.call(lambda: set_terminated(mlflow_client, run_id, status), f"terminate run {run_id}")
    except Exception as exc:
        logger.warning(
            "could not terminate run %s as %s (%s: %s); will retry later",
            run_id,
            status,
            type(exc).__name__,
            exc,
        )
        remember_pending(uri, run_id, status)
        return False
    return True


def terminate_run_with_tags(
    run_id: str,
    status: str,
    tags: Mapping[str, str] | None,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """Reference name: :func:`terminate_run_safe` with ``check_status=True``."""
    return terminate_run_safe(
        run_id, status, tags, check_status=True, tracking_uri=tracking_uri, client=client, retry=retry
    )


def ensure_run_terminated(
    run_id: str,
    expected_status: str = "FINISHED",
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """End ``run_id`` as ``expected_status`` if it is still RUNNING (reference signature); never raises for
    tracking failures.

    A run already in another terminal status is left as it is (True; the mismatch is logged). False when the
    run cannot be read or terminated.
    """
    validate_status(expected_status)
    mlflow_client = client_or_current(client, tracking_uri)
    policy = retry or DEFAULT_RETRY
    try:
        current = policy.call(lambda: mlflow_client.get_run(run_id).info.status, f"get run {run_id}")
    except Exception as exc:
        logger.warning("ensure_run_terminated(%s): %s: %s", run_id, type(exc).__name__, exc)
        return False
    if current == "RUNNING":
        return terminate_run_safe(
            run_id, expected_status, check_status=False, client=mlflow_client, retry=policy
        )
    if current != expected_status:
        logger.info("run %s is already %s (expected %s); left as it is", run_id, current, expected_status)
    return True
