"""``BaseTracker``: what every stage tracker shares (URI, client, config toggles, run bookkeeping).

See ``trackers.py`` for the guarantees of every tracker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final

from mlrig.naming import (
    NamingConfig,
    NamingContext,
    NamingError,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    build_mlflow_run_name,
    build_mlflow_tags,
    build_run_name_counter_key,
    build_system_tags,
    detect_git_sha,
    get_tracking_config,
    is_run_name_versioned,
    load_naming_config,
    written_tags,
)
from mlrig.tracking.artifacts import log_artifact_safe, log_checkpoint_safe
from mlrig.tracking.counter import commit_run_name_version, reserve_run_name_version
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.index import update_mlflow_index
from mlrig.tracking.retry import RetryPolicy, retry_policy_for
from mlrig.tracking.runs import RunHandle, TrackedRun, track_run
from mlrig.tracking.setup import get_or_create_experiment, resolve_tracking_uri, tracking_client
from mlrig.tracking.writer import wait_for_background

logger = logging.getLogger(__name__)

# MLflow run ids: 32 lowercase hex (SQLite/file/server stores) or a dashed UUID (Azure ML). The reference
# accepted only the latter and silently dropped lineage on every local backend.
RUN_ID_PATTERN: Final = re.compile(
    r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.IGNORECASE
)


class BaseTracker:
    """Common set-up for the stage trackers (``stage`` is the ``mlflow.yaml`` ``tracking.<stage>`` key).

    ``naming_config`` is the run's :class:`mlrig.naming.NamingConfig`; without it the tracker loads one from
    ``config_dir`` when it is made. Every run name, tag and counter key it builds uses that one object.
    """

    stage: ClassVar[str | None] = None

    def __init__(
        self,
        experiment_name: str,
        *,
        tracking_uri: str | None = None,
        config_dir: Path | str | None = None,
        root_dir: Path | str | None = None,
        retry: RetryPolicy | None = None,
        background: bool = True,
        naming_config: NamingConfig | None = None,
    ) -> None:
        if not experiment_name:
            raise TrackingError(f"{type(self).__name__}: experiment_name is required")
        self.experiment_name = experiment_name
        self.config_dir = Path(config_dir) if config_dir is not None else None
        self.tracking_uri = resolve_tracking_uri(tracking_uri, root_dir=root_dir, config_dir=config_dir)
        self.client = tracking_client(self.tracking_uri)
        self.retry = retry or retry_policy_for(self.tracking_uri)
        self._naming_given = naming_config is not None
        self.naming_config = naming_config or load_naming_config(self.config_dir)
        self.config: dict[str, Any] = (
            get_tracking_config(self.config_dir, self.stage, naming_config=self.naming_config)
            if self.stage
            else {"enabled": True}
        )
        self.root_dir = Path(root_dir) if root_dir is not None else None
        self.background = background
        self.failures: list[str] = []
        self._experiment_id: str | None = None
        self._run: TrackedRun | None = None
        self._reserved: dict[str, tuple[str, int]] = {}
        self._system_tags: dict[str, str] | None = None

    # -- configuration ----------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """``tracking.<stage>.enabled`` from ``mlflow.yaml`` (true when absent)."""
        return bool(self.config.get("enabled", True))

    def _flag(self, name: str) -> bool:
        return self.enabled and bool(self.config.get(name, True))

    def _tag_key(self, section: str, name: str) -> str:
        return self.naming_config.tags.key(section, name)

    def _run_type(self, run_type: str) -> dict[str, str]:
        """``code.run_type`` (and the Azure ML run-type tags on an Azure ML store) of a ``run_type`` run."""
        return self.naming_config.tags.run_type_tags(run_type, self.tracking_uri)

    def _written(self, tags: Mapping[str, str]) -> dict[str, str]:
        """MLflow's system tags (user, source, git commit) + ``tags``, without the keys this store must not
        get (:func:`mlrig.naming.written_tags`)."""
        if self._system_tags is None:
            # the code's commit: the root's checkout, else the working directory's (the demo's root is none)
            sha = detect_git_sha(self.root_dir) if self.root_dir is not None else None
            self._system_tags = build_system_tags(
                self.naming_config.tags, git_commit=sha or detect_git_sha(Path.cwd())
            )
        return written_tags({**self._system_tags, **tags}, self.tracking_uri)

    def _lineage(self, upstream: Mapping[str, str | None] | None) -> dict[str, str]:
        """``code.lineage.<name>`` tags for the upstream run ids in ``upstream`` (names of the registry's
        ``lineage`` section, e.g. ``hpo_refit_run_id``) plus the run's description (``mlflow.note.content``)
        linking to them, which the MLflow UI shows on the run page. An id that is not an MLflow run id is
        recorded in ``failures``, not tagged."""
        tags: dict[str, str] = {}
        lines: list[str] = []
        for name, run_id in (upstream or {}).items():
            if not run_id:
                continue
            if not RUN_ID_PATTERN.match(run_id):
                self._record(f"lineage: {name} {run_id!r} is not an MLflow run id; not tagged")
                continue
            tags[self._tag_key("lineage", name)] = run_id
            label = name.removesuffix("_run_id").replace("_", " ")
            lines.append(f"- {label}: [{run_id}](#/runs/{run_id})")
        if lines:
            tags[self._tag_key("mlflow", "note")] = "Upstream runs:\n" + "\n".join(lines)
        return tags

    @property
    def run(self) -> TrackedRun | None:
        """The run currently open in this tracker (``None`` outside a ``start_*`` block)."""
        return self._run

    # -- runs -------------------------------------------------------------------------------------
    def _experiment(self) -> str | None:
        if self._experiment_id is None:
            try:
                self._experiment_id = get_or_create_experiment(
                    self.experiment_name, client=self.client, max_retries=self.retry.max_retries
                )
            except TrackingError as exc:
                self._record(str(exc))
        return self._experiment_id

    def _record(self, message: str) -> None:
        self.failures.append(message)
        logger.warning("tracking failure (training continues): %s", message)

    # -- run-name versions and the run index (only with a root_dir: that is where outputs/cache lives) ---
    def _reserve_version(self, context: NamingContext) -> tuple[str, int] | None:
        """``(counter key, fresh version)`` when ``context``'s run name is auto-incremented, else ``None``."""
        naming = self.naming_config
        if self.root_dir is None or not is_run_name_versioned(context, naming_config=naming):
            return None
        key = build_run_name_counter_key(context, naming_config=naming)
        try:
            return key, reserve_run_name_version(key, None, self.root_dir, self.config_dir)
        except (TrackingError, OSError) as exc:
            self._record(f"reserve run-name version for {key}: {exc}; using the unversioned name")
            return None

    def _register(self, run: TrackedRun) -> None:
        """After creation: commit the reserved version to the run id and record the run in the index."""
        if run.run_id is None or self.root_dir is None:
            return
        reserved = self._reserved.pop(run.run_name, None)
        try:
            if reserved is not None:
                commit_run_name_version(reserved[0], run.run_id, reserved[1], self.root_dir, self.config_dir)
            if run.run_key_hash:
                update_mlflow_index(
                    self.root_dir,
                    run.run_key_hash,
                    run.run_id,
                    run.experiment_id,
                    self.tracking_uri,
                    self.config_dir,
                    experiment_name=self.experiment_name,
                    run_name=run.run_name,
                )
        except (TrackingError, OSError) as exc:
            self._record(f"index/version bookkeeping for run {run.run_id}: {exc}")

    def _identity(
        self,
        run_name: str | None,
        context: NamingContext | None,
        output_dir: Path | str | None,
        parent_run_id: str | None,
        group_id: str | None,
        **hashes: str | None,
    ) -> tuple[str, dict[str, str], str, str]:
        """``(run name, tags, run key, run key hash)`` from the naming layer."""
        if run_name is None:
            if context is None:
                raise TrackingError(f"{type(self).__name__}: run_name or context is required")
            reserved = self._reserve_version(context)
            version = reserved[1] if reserved is not None else None
            run_name = build_mlflow_run_name(context, version=version, naming_config=self.naming_config)
            if reserved is not None:
                self._reserved[run_name] = reserved
        if context is None:
            return run_name, {}, "", ""
        tags = build_mlflow_tags(
            context,
            output_dir=output_dir,
            parent_run_id=parent_run_id,
            group_id=group_id,
            naming_config=self.naming_config,
            **hashes,
        )
        try:
            run_key = build_mlflow_run_key(context)
        except NamingError:
            run_key = ""
        run_key_hash = tags.get(self._tag_key("grouping", "run_key_hash"), "")
        if run_key and not run_key_hash:
            run_key_hash = build_mlflow_run_key_hash(run_key)
        return run_name, tags, run_key, run_key_hash

    def _track(
        self,
        run_name: str,
        tags: Mapping[str, str],
        *,
        parent_run_id: str | None = None,
        run_key: str = "",
        run_key_hash: str = "",
        background: bool = False,
    ) -> AbstractContextManager[TrackedRun]:
        """:func:`track_run` in this tracker's experiment, with its client, retry policy and failure list."""
        return track_run(
            self._experiment() or "",
            run_name,
            tags=self._written(tags),
            parent_run_id=parent_run_id,
            client=self.client,
            experiment_name=self.experiment_name,
            run_key=run_key,
            run_key_hash=run_key_hash,
            retry=self.retry,
            background=background,
            failure_sink=self.failures,
            tags_registry=self.naming_config.tags,
        )

    @contextmanager
    def _activate(self, run: TrackedRun, params: Mapping[str, object] | None) -> Iterator[RunHandle | None]:
        """``run`` as the tracker's open run for the block (``params`` buffered on it first)."""
        if params:
            run.log_params(params)
        previous, self._run = self._run, run
        try:
            yield run.handle
        finally:
            self._run = previous

    @contextmanager
    def _open_run(
        self, tracked: AbstractContextManager[TrackedRun], params: Mapping[str, object] | None = None
    ) -> Iterator[RunHandle | None]:
        """Create the stage run ``tracked`` (from :meth:`_track`; ``params`` go in its closing batch), index
        it, make it the open run for the block, and end it."""
        with tracked as run:
            self._register(run)
            with self._activate(run, params) as handle:
                yield handle

    def _current(self, what: str) -> TrackedRun | None:
        if self._run is None:
            logger.debug("%s: no open run in %s; nothing logged", what, type(self).__name__)
        return self._run

    def log_params(self, params: Mapping[str, object]) -> None:
        """Buffer params on the open run (sent with its closing batch)."""
        if (run := self._current("log_params")) is not None:
            run.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer metrics on the open run (sent with its closing batch, or at :meth:`flush`)."""
        if (run := self._current("log_metrics")) is not None:
            run.log_metrics(metrics, step)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Buffer tags on the open run."""
        if (run := self._current("set_tags")) is not None:
            run.set_tags(tags)

    def flush(self) -> bool:
        """Send what is buffered on the open run now (one ``log_batch``)."""
        run = self._current("flush")
        return run.flush() if run is not None else False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until run endings sent in the background (sweep children) are done; True when drained."""
        return wait_for_background(timeout)

    def log_artifact(self, local: Path | str, artifact_path: str | None = None) -> bool:
        """Upload a file or folder to the open run (``artifact_path`` as in
        :func:`~mlrig.tracking.artifacts.log_artifact_safe`); a failure is logged and recorded, not raised."""
        return self._upload(local, artifact_path)

    def _upload(self, local: Path | str, artifact_path: str | None) -> bool:
        run = self._current("upload")
        if run is None or run.run_id is None:
            return False
        ok = log_artifact_safe(local, artifact_path, run.run_id, client=self.client, retry=self.retry)
        if not ok:  # counted on the run too (its code.tracking_failures tag)
            run.record_failure(
                f"upload of {local} to run {run.run_id} as {artifact_path or Path(local).name} failed"
            )
        return ok

    def _upload_checkpoint(
        self, checkpoint_dir: Path | str, artifact_path: str, trial_number: int | None
    ) -> bool:
        run = self._current("upload checkpoint")
        if run is None or run.run_id is None:
            return False
        ok = log_checkpoint_safe(
            checkpoint_dir, artifact_path, trial_number, run.run_id, client=self.client, retry=self.retry
        )
        if not ok:
            run.record_failure(f"checkpoint upload of {checkpoint_dir} to run {run.run_id} failed")
        return ok
