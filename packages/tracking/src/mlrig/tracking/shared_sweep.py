"""A sweep tracker for a sweep shared by many workers: the parent run is created once and left RUNNING (the
finaliser ends it), and every worker hangs its trial runs under it without owning it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from mlrig.tracking.lifecycle import terminate_run_safe
from mlrig.tracking.runs import RunHandle, TrackedRun
from mlrig.tracking.sweep import MLflowSweepTracker

__all__ = ["SharedSweepTracker"]


class SharedSweepTracker(MLflowSweepTracker):
    """:class:`MLflowSweepTracker` whose parent run outlives the process that created it.

    :meth:`create_shared_sweep_run` creates the parent (same name, tags and params as
    :meth:`start_sweep_run`) and leaves it RUNNING; :meth:`join_sweep_run` makes an existing parent the
    parent of this tracker's trial and refit runs; :meth:`end_shared_sweep_run` ends it (the finaliser only).
    """

    def __init__(self, experiment_name: str, **kwargs: Any) -> None:
        super().__init__(experiment_name, **kwargs)
        self._detached = False

    @contextmanager
    def _open_run(
        self, tracked: AbstractContextManager[TrackedRun], params: Mapping[str, object] | None = None
    ) -> Iterator[RunHandle | None]:
        if not self._detached:
            with super()._open_run(tracked, params) as handle:
                yield handle
            return
        # Entered, never exited: the run is created (and indexed) but not ended by this process.
        run = tracked.__enter__()
        self._register(run)
        with self._activate(run, params) as handle:
            yield handle
        run.flush()

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

    def end_shared_sweep_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End the shared parent (called once, by the sweep's finaliser)."""
        terminate_run_safe(run_id, status, client=self.client)
