"""Run tree with few round trips: create (name, parent, all tags) → one batch → terminate.

A tracked block costs three REST calls: ``runs/create`` with every tag, one ``runs/log-batch`` with params,
metrics and late tags, and ``runs/update`` with the final status. Failures *of tracking* are retried, then
logged and recorded on the :class:`TrackedRun`; they never raise into the caller's code. An exception from the
caller's own code propagates unchanged and the run ends ``FAILED`` (``KILLED`` for ``KeyboardInterrupt``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mlrig.naming import TagsRegistry, load_tags_registry
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.lifecycle import (
    client_for,
    has_pending_terminations,
    remember_pending,
    retry_pending_terminations,
    set_terminated,
    validate_status,
)
from mlrig.tracking.retry import RetryPolicy, is_transient_error, retry_policy_for
from mlrig.tracking.writer import submit_background

logger = logging.getLogger(__name__)

PARENT_RUN_ID_TAG: Final = "mlflow.parentRunId"
MAX_PARAM_VALUE_LENGTH: Final = 6000  # MLflow's limit for a param value


@dataclass(frozen=True)
class RunHandle:
    """Identity of a created MLflow run (reference fields plus ``run_name`` and ``parent_run_id``)."""

    run_id: str
    run_key: str
    run_key_hash: str
    experiment_id: str
    experiment_name: str
    tracking_uri: str
    artifact_uri: str | None = None
    study_key_hash: str | None = None
    study_family_hash: str | None = None
    run_name: str | None = None
    parent_run_id: str | None = None

    def __post_init__(self) -> None:
        for field_name in ("run_id", "experiment_id", "tracking_uri"):
            if not getattr(self, field_name):
                raise TrackingError(
                    f"RunHandle.{field_name} must be non-empty, got {getattr(self, field_name)!r}"
                )


def run_status_for(exc: BaseException | None) -> str:
    """Terminal status for a block that ended with ``exc``: FINISHED, KILLED (interrupt/exit) or FAILED."""
    if exc is None:
        return "FINISHED"
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        return "KILLED"
    return "FAILED"


# --------------------------------------------------------------------------------------------------
# TrackedRun
# ----------------------------------------------------------------------------------------------------


class TrackedRun:
    """A run being recorded. Params, metrics and tags are buffered and sent in one ``log_batch`` by
    :meth:`flush` / :meth:`end`. When the run could not be created, ``run_id`` is ``None`` and logging is a
    no-op; every tracking failure is logged and appended to :attr:`failures`.
    """

    def __init__(
        self,
        client: MlflowClient,
        *,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        experiment_name: str = "",
        run_key: str = "",
        run_key_hash: str = "",
        retry: RetryPolicy | None = None,
        failure_sink: list[str] | None = None,
        tags_registry: TagsRegistry | None = None,
    ) -> None:
        if not isinstance(run_name, str) or not run_name.strip():
            raise TrackingError(
                f"run_name must be a non-empty string, got {run_name!r} (experiment {experiment_id})"
            )
        self.client = client
        self.tracking_uri = str(client.tracking_uri)
        self.experiment_id = str(experiment_id)
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.parent_run_id = parent_run_id
        self.run_key = run_key
        self.run_key_hash = run_key_hash
        self.retry = retry or retry_policy_for(self.tracking_uri)
        self.run_id: str | None = None
        self.artifact_uri: str | None = None
        self.status: str | None = None
        self.failures: list[str] = []
        self._failure_sink = failure_sink
        # the run's own tag keys; a caller without a registry (reference-style calls) gets the project's
        self.tags_registry = tags_registry if tags_registry is not None else load_tags_registry()
        self._tags = dict(tags or {})
        if parent_run_id:
            self._tags[PARENT_RUN_ID_TAG] = parent_run_id
        self._params: dict[str, str] = {}
        self._metrics: list[Metric] = []
        self._late_tags: dict[str, str] = {}
        self._reported_failures = 0

    # -- lifecycle --------------------------------------------------------------------------------
    def create(self) -> bool:
        """One ``create_run`` call with name, parent and all tags (retried). False (recorded) on failure."""
        if not self.experiment_id:
            self._record(f"create run {self.run_name!r}", TrackingError("experiment unknown"))
            return False
        try:
            run = self.retry.call(
                lambda: self.client.create_run(self.experiment_id, tags=self._tags, run_name=self.run_name),
                f"create run {self.run_name!r}",
            )
        except Exception as exc:
            self._record(f"create run {self.run_name!r} in experiment {self.experiment_id}", exc)
            return False
        self.run_id = run.info.run_id
        self.artifact_uri = run.info.artifact_uri
        return True

    @property
    def handle(self) -> RunHandle | None:
        """The :class:`RunHandle` of the created run, or ``None`` when creation failed."""
        if self.run_id is None:
            return None
        return RunHandle(
            run_id=self.run_id,
            run_key=self.run_key,
            run_key_hash=self.run_key_hash,
            experiment_id=self.experiment_id,
            experiment_name=self.experiment_name,
            tracking_uri=self.tracking_uri,
            artifact_uri=self.artifact_uri,
            study_key_hash=self._tags.get(self.tags_registry.key("grouping", "study_key_hash")),
            study_family_hash=self._tags.get(self.tags_registry.key("grouping", "study_family_hash")),
            run_name=self.run_name,
            parent_run_id=self.parent_run_id,
        )

    @property
    def tags(self) -> dict[str, str]:
        """Tags sent at creation plus tags buffered since."""
        return {**self._tags, **self._late_tags}

    # -- buffered logging -------------------------------------------------------------------------
    def log_param(self, key: str, value: object) -> None:
        text = str(value)
        if len(text) > MAX_PARAM_VALUE_LENGTH:  # MLflow would reject the whole batch
            logger.warning(
                "param %r of run %r cut to %d characters", key, self.run_name, MAX_PARAM_VALUE_LENGTH
            )
            text = text[: MAX_PARAM_VALUE_LENGTH - 3] + "..."
        self._params[str(key)] = text

    def log_params(self, params: Mapping[str, object]) -> None:
        for key, value in params.items():
            self.log_param(key, value)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            self._record(f"metric {key!r} of run {self.run_name!r} is not a number: {value!r}", exc)
            return
        self._metrics.append(Metric(str(key), number, int(time.time() * 1000), int(step or 0)))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def set_tag(self, key: str, value: object) -> None:
        self._late_tags[str(key)] = str(value)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    def flush(self) -> bool:
        """Send buffered params/metrics/tags in one ``log_batch`` (chunked by MLflow only past its limits)."""
        if self._reported_failures != len(self.failures):
            self._late_tags[self.tags_registry.key("tracking", "failures")] = str(len(self.failures))
        if not (self._params or self._metrics or self._late_tags):
            return True
        if self.run_id is None:
            self._params.clear()
            self._metrics.clear()
            self._late_tags.clear()
            return False
        run_id = self.run_id
        params = [Param(k, v) for k, v in self._params.items()]
        tags = [RunTag(k, v) for k, v in self._late_tags.items()]
        metrics = list(self._metrics)
        try:
            try:
                self.retry.call(
                    lambda: self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags),
                    f"log batch to run {run_id}",
                )
            except Exception as exc:
                if not params or is_transient_error(exc):
                    raise
                # A rejected param (e.g. re-logged with another value) must not take the rest with it:
                # send the params one by one (error path only), then metrics and tags in one batch.
                rejected = self._log_params_one_by_one(run_id, params)
                self._record(f"params {rejected} rejected by run {run_id}", exc)
                failures_key = self.tags_registry.key("tracking", "failures")
                tags = [t for t in tags if t.key != failures_key]
                tags.append(RunTag(failures_key, str(len(self.failures))))
                self.retry.call(
                    lambda: self.client.log_batch(run_id, metrics=metrics, tags=tags),
                    f"log batch without params to run {run_id}",
                )
        except Exception as exc:
            self._record(
                f"log batch ({len(params)} params, {len(metrics)} metrics, {len(tags)} tags) to run {run_id}",
                exc,
            )
            return False
        finally:
            self._tags.update(self._late_tags)
            self._params.clear()
            self._metrics.clear()
            self._late_tags.clear()
        self._reported_failures = len(self.failures)
        return True

    def _log_params_one_by_one(self, run_id: str, params: list[Param]) -> list[str]:
        rejected = []
        for param in params:
            try:
                self.client.log_batch(run_id, params=[param])
            except Exception:
                rejected.append(param.key)
        return rejected

    def end(self, status: str = "FINISHED", *, background: bool = False) -> bool:
        """Flush, then set the terminal ``status`` (retried; if still failing it is retried later).

        With ``background`` both calls go to the tracking writer thread (FIFO) and this returns at once;
        failures are still recorded on :attr:`failures` (and the failure sink) when they happen.
        """
        validate_status(status)
        if background:
            submit_background(lambda: self._end_now(status))
            return True
        return self._end_now(status)

    def _end_now(self, status: str) -> bool:
        self.flush()
        if self.run_id is None or self.status is not None:
            return self.status == status
        run_id = self.run_id
        try:
            self.retry.call(
                lambda: set_terminated(self.client, run_id, status), f"terminate run {run_id} ({status})"
            )
        except Exception as exc:
            self._record(f"terminate run {run_id} as {status}", exc)
            remember_pending(self.tracking_uri, run_id, status)
            return False
        self.status = status
        return True

    def _record(self, what: str, exc: BaseException) -> None:
        self.record_failure(f"{what}: {type(exc).__name__}: {exc}")

    def record_failure(self, message: str) -> None:
        """Record a tracking failure of this run (logged; counted in ``code.tracking_failures``)."""
        self.failures.append(message)
        if self._failure_sink is not None:
            self._failure_sink.append(message)
        logger.warning("tracking failure (training continues): %s", message)


@contextmanager
def track_run(
    experiment_id: str,
    run_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    experiment_name: str = "",
    run_key: str = "",
    run_key_hash: str = "",
    retry: RetryPolicy | None = None,
    background: bool = False,
    failure_sink: list[str] | None = None,
    tags_registry: TagsRegistry | None = None,
) -> Iterator[TrackedRun]:
    """Create a run, yield its :class:`TrackedRun`, then flush and end it FINISHED / FAILED / KILLED.

    The caller's exception propagates unchanged (the run is marked first); tracking failures never raise.
    ``background=True`` sends the closing batch and the termination from the tracking writer thread, so the
    block costs the caller one REST call (the create); see :func:`~mlrig.tracking.writer.wait_for_background`.
    """
    mlflow_client = client_for(client, tracking_uri)
    run = TrackedRun(
        mlflow_client,
        experiment_id=experiment_id,
        run_name=run_name,
        tags=tags,
        parent_run_id=parent_run_id,
        experiment_name=experiment_name,
        run_key=run_key,
        run_key_hash=run_key_hash,
        retry=retry,
        failure_sink=failure_sink,
        tags_registry=tags_registry,
    )
    if has_pending_terminations():
        retry_pending_terminations(run.tracking_uri)
    run.create()
    try:
        yield run
    except BaseException as exc:
        run.end(run_status_for(exc), background=background)
        raise
    run.end("FINISHED", background=background)
