"""A sweep tracker for a sweep shared by many workers: the parent run is created once and left RUNNING (the
finaliser ends it), and every worker hangs its trial runs under it without owning it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from mlrig.naming import (
    NamingContext,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    build_run_name_counter_key,
    is_run_name_versioned,
)
from mlrig.tracking.lifecycle import terminate_run_safe
from mlrig.tracking.pg_state import PostgresRunState
from mlrig.tracking.runs import TrackedRun
from mlrig.tracking.sweep import MLflowSweepTracker


@contextmanager
def _created(run: TrackedRun) -> Iterator[TrackedRun]:
    """Create ``run`` and flush what the block buffered; never end it (``track_run`` would, even when its
    context manager is only garbage-collected)."""
    run.create()
    yield run
    run.flush()


class SharedSweepTracker(MLflowSweepTracker):
    """:class:`MLflowSweepTracker` whose parent run outlives the process that created it.

    :meth:`create_shared_sweep_run` creates the parent (same name, tags and params as
    :meth:`start_sweep_run`) and leaves it RUNNING; :meth:`join_sweep_run` makes an existing parent the
    parent of this tracker's trial and refit runs; :meth:`end_shared_sweep_run` ends it (the finaliser only).
    """

    def __init__(
        self, experiment_name: str, *, run_state: PostgresRunState | None = None, **kwargs: Any
    ) -> None:
        super().__init__(experiment_name, **kwargs)
        self._detached = False
        # Distributed mode: versions and the index in PostgreSQL, shared by every worker (else: the files).
        self.run_state = run_state

    def _reserve_version(self, context: NamingContext) -> tuple[str, int] | None:
        if self.run_state is None:
            return super()._reserve_version(context)
        if not is_run_name_versioned(context, naming_config=self.naming_config):
            return None
        key = build_run_name_counter_key(context, naming_config=self.naming_config)
        try:
            return key, self.run_state.reserve_run_name_version(key, None)
        except Exception as exc:  # tracking never stops training: the unversioned name is used
            self._record(f"reserve run-name version for {key}: {exc}; using the unversioned name")
            return None

    def _register(self, run: TrackedRun) -> None:
        state = self.run_state
        if state is None:
            super()._register(run)
            return
        if run.run_id is None:
            return
        reserved = self._reserved.pop(run.run_name, None)
        try:
            if reserved is not None:
                state.commit_run_name_version(reserved[0], run.run_id, reserved[1])
            if run.run_key_hash:
                state.update_mlflow_index(
                    run.run_key_hash, run.run_id, run.experiment_id, self.tracking_uri,
                    experiment_name=self.experiment_name, run_name=run.run_name,
                )  # fmt: skip
        except Exception as exc:
            self._record(f"index/version bookkeeping for run {run.run_id}: {exc}")

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
        if not self._detached:
            return super()._track(
                run_name, tags, parent_run_id=parent_run_id, run_key=run_key, run_key_hash=run_key_hash,
                background=background,
            )  # fmt: skip
        # the same tags as every other run of this tracker (system tags, no keys the store must not get)
        run = TrackedRun(
            self.client, experiment_id=self._experiment() or "", run_name=run_name, tags=self._written(tags),
            parent_run_id=parent_run_id, experiment_name=self.experiment_name, run_key=run_key,
            run_key_hash=run_key_hash, retry=self.retry, failure_sink=self.failures,
            tags_registry=self.naming_config.tags,
        )  # fmt: skip
        return _created(run)

    def create_shared_sweep_run(self, *args: Any, **kwargs: Any) -> str | None:
        """Create the sweep parent run (the arguments of :meth:`start_sweep_run`); it stays RUNNING."""
        self._detached = True
        try:
            with self.start_sweep_run(*args, **kwargs) as handle:
                return handle.run_id if handle is not None else None
        finally:
            self._detached = False

    @contextmanager
    def join_sweep_run(self, run_id: str) -> Iterator[TrackedRun]:
        """Make ``run_id`` this tracker's sweep run for the block (it is not ended at the end)."""
        shell = TrackedRun(
            self.client,
            experiment_id=self._experiment() or "",
            run_name="sweep",
            experiment_name=self.experiment_name,
            retry=self.retry,
            failure_sink=self.failures,
        )
        shell.run_id = run_id
        previous, self._sweep = self._sweep, shell
        try:
            yield shell
        finally:
            shell.flush()
            self._sweep = previous
            if not self.wait(self.retry.deadline):
                self._record("background run endings still pending when the worker left the sweep")

    def find_shared_sweep_run(self, context: NamingContext) -> str | None:
        """A RUNNING sweep parent of ``context`` already in the store (e.g. created by a worker that died
        before publishing its id): the oldest active run with the context's run-key hash, the sweep run type
        and, when the context has one, its study name; None when there is none or the search failed."""
        experiment_id = self._experiment()
        if not experiment_id:
            return None
        tags = self.naming_config.tags
        run_key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(context))
        clauses = [
            f"tags.`{tags.key('grouping', 'run_key_hash')}` = '{run_key_hash}'",
            f"tags.`{tags.key('process', 'run_type')}` = 'sweep'",
            "attributes.status = 'RUNNING'",
        ]
        if context.study_name and "'" not in context.study_name:  # a quote would end the filter's string
            clauses.append(f"tags.`{tags.key('study', 'name')}` = '{context.study_name}'")
        try:
            runs = self.client.search_runs(
                [experiment_id], " and ".join(clauses), max_results=1, order_by=["attributes.start_time ASC"]
            )
        except Exception as exc:  # a new parent is created instead
            self._record(f"looking up an unpublished sweep parent ({run_key_hash[:12]}): {exc}")
            return None
        return runs[0].info.run_id if runs else None

    def end_shared_sweep_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End the shared parent (called once, by the sweep's finaliser)."""
        terminate_run_safe(run_id, status, client=self.client)
