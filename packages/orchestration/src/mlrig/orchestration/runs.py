"""Finding a sweep's parent run again, ending runs an interrupted session left RUNNING, SIGTERM as Ctrl-C."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlrig.naming import NamingContext, TagsRegistry, build_mlflow_run_key, build_mlflow_run_key_hash
from mlrig.tracking import MLflowSweepTracker, find_mlflow_run, search_runs_all, terminate_run_safe

logger = logging.getLogger(__name__)

_CLOCK_SKEW_MS = 24 * 3600 * 1000


def end_interrupted_run(client: MlflowClient, run_id: str, *, tags: TagsRegistry) -> bool:
    """End ``run_id`` (left RUNNING by a dead process) as KILLED, tagged with the ``training.interrupted``
    key of ``tags`` -- the run's own registry (its ``tags.yaml``), never the packaged default."""
    return terminate_run_safe(
        run_id, "KILLED", tags={tags.key("training", "interrupted"): "true"}, client=client
    )


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


def descendants(tracker: MLflowSweepTracker, parent_run_id: str) -> list[Run]:
    """Every run below ``parent_run_id`` (children, grandchildren, ...).

    One paged search for the experiment's child runs started since the parent (a day early, for clocks of
    other machines), linked in memory: a search per run was the better part of a resume's time (a 200-trial
    sweep with 3 folds: 800 queries, ~5 s, twice per resume).
    """
    parent = tracker.client.get_run(parent_run_id).info
    since = (parent.start_time or 0) - _CLOCK_SKEW_MS
    children: dict[str, list[Run]] = {}
    for run in search_runs_all(
        tracker.client,
        [parent.experiment_id],
        f"tags.mlflow.parentRunId IS NOT NULL AND attributes.start_time >= {since}",
    ):
        children.setdefault(run.data.tags["mlflow.parentRunId"], []).append(run)
    found: list[Run] = []
    frontier = [parent_run_id]
    while frontier:
        below = children.get(frontier.pop(), [])
        frontier.extend(child.info.run_id for child in below)
        found.extend(below)
    return found


def mark_interrupted_children(tracker: MLflowSweepTracker, parent_run_id: str) -> int:
    """End every RUNNING descendant of ``parent_run_id`` as KILLED, tagged ``code.interrupted=true``."""
    count = 0
    for child in descendants(tracker, parent_run_id):
        if child.info.status == "RUNNING":
            end_interrupted_run(tracker.client, child.info.run_id, tags=tracker.naming_config.tags)
            count += 1
    return count


def retire_run(client: MlflowClient, run: Run, *, tags: TagsRegistry) -> None:
    """An attempt left by an interrupted process: ended KILLED + ``code.interrupted=true`` when still
    RUNNING, and renamed ``<name>.interrupted-<run id prefix>`` so its name is free for its replacement."""
    if run.info.status == "RUNNING":
        end_interrupted_run(client, run.info.run_id, tags=tags)
    client.update_run(run.info.run_id, name=f"{run.info.run_name}.interrupted-{run.info.run_id[:8]}")


def retire_namesakes(client: MlflowClient, run_id: str, *, tags: TagsRegistry) -> int:
    """Make ``run_id`` (a stage or refit run being re-run) the only run of its name; return how many moved.

    Runs of the same experiment with the same name, or RUNNING with the same run-key hash, are attempts of a
    process killed before the stage finished: a RUNNING one is ended KILLED + ``code.interrupted=true``
    (exactly like a sweep's runs), and each is renamed by :func:`retire_run` so the name stays unique.
    """
    run = client.get_run(run_id)
    key_tag = tags.key("grouping", "run_key_hash")
    name, key = run.info.run_name, run.data.tags.get(key_tag)
    moved = 0
    for other in search_runs_all(client, [run.info.experiment_id], ""):
        if other.info.run_id == run_id:
            continue
        same_key = bool(key) and other.data.tags.get(key_tag) == key and other.info.status == "RUNNING"
        if other.info.run_name != name and not same_key:
            continue
        retire_run(client, other, tags=tags)
        moved += 1
    if moved:
        logger.warning("%d earlier attempt(s) of run %r were left by an interrupted process", moved, name)
    return moved


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
