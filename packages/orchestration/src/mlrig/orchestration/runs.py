"""Finding a sweep's parent run again, ending runs an interrupted session left RUNNING, SIGTERM as Ctrl-C."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from mlrig.naming import NamingContext, build_mlflow_run_key, build_mlflow_run_key_hash, load_tags_registry
from mlrig.tracking import MLflowSweepTracker, find_mlflow_run, search_runs_all, terminate_run_safe

__all__ = ["INTERRUPTED_TAG"]

logger = logging.getLogger(__name__)

# The packaged registry's key; a run uses its own tags.yaml (``mark_interrupted_children``).
INTERRUPTED_TAG = load_tags_registry().key("training", "interrupted")


def sweep_parent_run_id(
    tracker: MLflowSweepTracker, context: NamingContext, *, root_dir: Path, config_dir: Path
) -> str | None:
    """The run id of the existing sweep parent for ``context`` (run index, then the run-key tag), if any."""
    report = find_mlflow_run(
        tracker.experiment_name,
        context=context,
        run_key_hash=build_mlflow_run_key_hash(build_mlflow_run_key(context)),
        strict=True,
        root_dir=root_dir,
        config_dir=config_dir,
        client=tracker.client,
    )
    if report.found and report.run is not None:
        logger.info(
            "resuming sweep parent run %s (found by %s)", report.run.info.run_id, report.strategy_used
        )
        return str(report.run.info.run_id)
    return None


def mark_interrupted_children(tracker: MLflowSweepTracker, parent_run_id: str) -> int:
    """End every RUNNING descendant of ``parent_run_id`` as KILLED, tagged ``code.interrupted=true``."""
    experiment_id = tracker.client.get_run(parent_run_id).info.experiment_id
    interrupted = load_tags_registry(tracker.config_dir).key("training", "interrupted")
    count = 0
    frontier = [parent_run_id]
    while frontier:
        parent = frontier.pop()
        children = search_runs_all(tracker.client, [experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
        for child in children:
            frontier.append(child.info.run_id)
            if child.info.status == "RUNNING":
                terminate_run_safe(
                    child.info.run_id, "KILLED", tags={interrupted: "true"}, client=tracker.client
                )
                count += 1
    return count


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the sweep like Ctrl-C: current runs KILLED, study left resumable."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
