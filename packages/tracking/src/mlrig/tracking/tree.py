"""Reference-compatible run helpers on top of :func:`~mlrig.tracking.runs.track_run`:
``create_run_safe``, ``create_child_run`` (sweep → trial → fold nesting through ``mlflow.parentRunId``) and
``resolve_experiment_id`` (which, as in the reference, uses the current MLflow tracking URI when given no
``client``/``tracking_uri``; the run-creating helpers require one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlrig.naming import build_trial_run_name
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.lifecycle import client_for, client_or_current
from mlrig.tracking.retry import DEFAULT_RETRY, RetryPolicy
from mlrig.tracking.runs import TrackedRun, track_run

logger = logging.getLogger(__name__)


def create_run_safe(
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> str | None:
    """Create a RUNNING run (name, ``mlflow.parentRunId`` and all tags in one call); its id, or ``None`` after
    retries were exhausted (logged). An empty name or experiment id raises :class:`TrackingError`.
    """
    if not experiment_id:
        raise TrackingError(f"create_run_safe: experiment_id is required for run {run_name!r}")
    run = TrackedRun(
        client_for(client, tracking_uri),
        experiment_id=experiment_id,
        run_name=run_name,
        tags=tags,
        parent_run_id=parent_run_id,
        retry=retry,
    )
    run.create()
    return run.run_id


@contextmanager
def create_child_run(
    parent_run_id: str,
    trial_number: int | None = None,
    experiment_name: str | None = None,
    additional_tags: Mapping[str, str] | None = None,
    *,
    run_name: str | None = None,
    fold_idx: int | None = None,
    experiment_id: str | None = None,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> Iterator[TrackedRun]:
    """A nested run under ``parent_run_id`` (tag ``mlflow.parentRunId``), ended when the block exits.

    Yields a :class:`TrackedRun` (the reference yielded ``None``). The run name defaults to
    ``trial_<n>`` (``_fold<k>`` appended for a fold). Tags: ``trial_number`` and ``fold_idx`` when given,
    then ``additional_tags``. Pass ``experiment_id`` to save the ``get_run(parent)`` lookup. If the run cannot
    be created the block still runs (``run_id is None``); a nested run is never silently replaced by an
    unnested one.
    """
    if not parent_run_id:
        raise TrackingError("create_child_run: parent_run_id is required")
    mlflow_client = client_for(client, tracking_uri)
    policy = retry or DEFAULT_RETRY
    name = run_name
    if name is None:
        if trial_number is None:
            raise TrackingError(
                f"create_child_run(parent {parent_run_id}): run_name or trial_number is required"
            )
        name = build_trial_run_name(trial_number, fold_idx)
    exp_id = experiment_id or resolve_experiment_id(
        experiment_name, parent_run_id, client=mlflow_client, retry=policy
    )
    tags: dict[str, str] = {}
    if trial_number is not None:
        tags["trial_number"] = str(trial_number)
    if fold_idx is not None:
        tags["fold_idx"] = str(fold_idx)
    tags.update(additional_tags or {})
    with track_run(
        exp_id or "",
        name,
        tags=tags,
        parent_run_id=parent_run_id,
        client=mlflow_client,
        experiment_name=experiment_name or "",
        retry=policy,
    ) as run:
        yield run


def resolve_experiment_id(
    experiment_name: str | None = None,
    parent_run_id: str | None = None,
    active_run: Run | None = None,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> str | None:
    """The experiment id from, in order, the parent run, the experiment name, ``active_run`` (reference
    signature); None (logged) when none of them gives one. Never raises for tracking failures.
    """
    if parent_run_id or experiment_name:
        found = _experiment_of(client_or_current(client, tracking_uri), parent_run_id, experiment_name, retry)
        if found is not None:
            return found
    if active_run is not None:
        return str(active_run.info.experiment_id)
    logger.warning(
        "no experiment id from parent run %r, experiment %r or the active run", parent_run_id, experiment_name
    )
    return None


def _experiment_of(
    client: MlflowClient, parent_run_id: str | None, experiment_name: str | None, retry: RetryPolicy | None
) -> str | None:
    policy = retry or DEFAULT_RETRY
    if parent_run_id:
        try:
            return str(
                policy.call(
                    lambda: client.get_run(parent_run_id).info.experiment_id, f"get run {parent_run_id}"
                )
            )
        except Exception as exc:
            logger.warning("parent run %s not readable (%s: %s)", parent_run_id, type(exc).__name__, exc)
    if experiment_name:
        try:
            found = policy.call(
                lambda: client.get_experiment_by_name(experiment_name), f"get experiment {experiment_name!r}"
            )
        except Exception as exc:
            logger.warning("experiment %r not readable (%s: %s)", experiment_name, type(exc).__name__, exc)
        else:
            if found is not None:
                return str(found.experiment_id)
    return None
