"""``mlrig runs``, ``cleanup-interrupted`` and ``doctor``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from mlrig.cli.backup import _backup_root_option, _tracking_option
from mlrig.cli.common import config_option, resolve_config_dir, root_option, user_errors


def _client(root: Path, config_dir: Path | None, tracking_uri: str | None) -> Any:
    from mlrig.cli.checks import open_store

    client, _ = open_store(root.absolute(), resolve_config_dir(root, config_dir), tracking_uri, None)
    return client


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments())
        raise click.ClickException(f"no MLflow experiment {name!r}; known: {', '.join(names) or 'none'}")
    return str(experiment.experiment_id)


def _row(run: Any, metric: str | None = None) -> str:
    value = "" if metric is None else f"  {metric}={run.data.metrics.get(metric)}"
    return f"{run.info.run_id}  {run.info.status:<8}  {run.info.run_name}{value}"


_experiment_option = click.option("--experiment", required=True, help="MLflow experiment name.")


@click.group()
def runs() -> None:
    """Find, list and rank MLflow runs."""


@runs.command("find")
@root_option
@config_option
@_tracking_option
@_experiment_option
@click.option("--run-key-hash", default=None)
@click.option("--run-id", default=None)
@click.option("--run-name", default=None)
def runs_find(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    run_key_hash: str | None,
    run_id: str | None,
    run_name: str | None,
) -> None:
    """Find one run (run index → run-key tag → name) and say how it was found."""
    if not (run_key_hash or run_id or run_name):
        raise click.UsageError("give --run-key-hash, --run-id or --run-name")
    with user_errors():
        from mlrig.tracking import find_mlflow_run

        report = find_mlflow_run(
            experiment,
            run_id=run_id,
            run_key_hash=run_key_hash,
            strict=run_name is None,
            root_dir=root.absolute(),
            config_dir=resolve_config_dir(root, config_dir),
            run_name=run_name,
            client=_client(root, config_dir, tracking_uri),
        )
    if not report.found or report.run is None:
        raise click.ClickException(
            f"run not found in {experiment!r} (tried {', '.join(report.strategies_attempted)})"
            + (f": {report.error}" if report.error else "")
        )
    click.echo(f"{_row(report.run)}  (found by {report.strategy_used})")


@runs.command("list")
@root_option
@config_option
@_tracking_option
@_experiment_option
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE filter (repeatable).")
@click.option("--status", default=None, help="FINISHED, FAILED, KILLED or RUNNING (default: any).")
def runs_list(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    tags: tuple[str, ...],
    status: str | None,
) -> None:
    """List the runs of an experiment (all pages), newest first."""
    required = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        required[key] = value
    with user_errors():
        from mlrig.tracking import query_runs_by_tags

        client = _client(root, config_dir, tracking_uri)
        found = query_runs_by_tags(client, [_experiment_id(client, experiment)], required, status=status)
    for run in found:
        click.echo(_row(run))
    click.echo(f"{len(found)} run(s)")


@runs.command("best")
@root_option
@config_option
@_tracking_option
@_experiment_option
@click.option("--metric", required=True)
@click.option(
    "--direction", type=click.Choice(["maximize", "minimize"]), default="maximize", show_default=True
)
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE filter (repeatable).")
def runs_best(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    metric: str,
    direction: str,
    tags: tuple[str, ...],
) -> None:
    """The FINISHED run with the best value of METRIC (deterministic tie-break)."""
    required = dict(t.partition("=")[::2] for t in tags)
    with user_errors():
        from mlrig.tracking import find_best_run_by_metric, query_runs_by_tags

        client = _client(root, config_dir, tracking_uri)
        found = query_runs_by_tags(client, [_experiment_id(client, experiment)], required)
        best = find_best_run_by_metric(found, metric, maximize=direction == "maximize")
    if best is None:
        raise click.ClickException(f"no FINISHED run in {experiment!r} has metric {metric!r}")
    click.echo(_row(best, metric))


@click.command("cleanup-interrupted")
@root_option
@config_option
@_tracking_option
@_experiment_option
@click.option(
    "--older-than-minutes",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Only runs started at least this long ago.",
)
@click.option("--dry-run", is_flag=True)
@click.option("--optuna-storage", envvar="MLRIG_OPTUNA_STORAGE", default=None, help="Distributed mode.")
def cleanup_interrupted(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    older_than_minutes: float,
    dry_run: bool,
    optuna_storage: str | None,
) -> None:
    """End RUNNING runs left behind by dead processes as KILLED, tagged code.interrupted=true.

    "Dead" is decided by the root's owner (pid + host + process start time): while a live process owns
    the root its runs are left alone, however long they have been running. In distributed mode (an Optuna
    storage URL) only trials whose heartbeat is stale are failed and their runs ended.
    """
    if optuna_storage:
        from mlrig.cli.worker import cleanup_distributed

        cleanup_distributed(root, optuna_storage, tracking_uri, dry_run)
        return
    from mlrig.paths import owner_is_alive, read_owner

    holder = read_owner(root.absolute())
    if holder is not None and owner_is_alive(holder):
        click.echo(f"root {root.absolute()} is owned by the live {holder.describe()}: 0 interrupted run(s)")
        return
    with user_errors():
        from mlrig.orchestration import INTERRUPTED_TAG
        from mlrig.tracking import query_runs_by_tags, terminate_run_safe

        client = _client(root, config_dir, tracking_uri)
        cutoff = (time.time() - older_than_minutes * 60) * 1000
        stale = [
            r
            for r in query_runs_by_tags(client, [_experiment_id(client, experiment)], {}, status="RUNNING")
            if r.info.start_time <= cutoff
        ]
        for run in stale:
            click.echo(("would end " if dry_run else "ending ") + _row(run))
            if not dry_run:
                terminate_run_safe(run.info.run_id, "KILLED", tags={INTERRUPTED_TAG: "true"}, client=client)
    click.echo(f"{len(stale)} interrupted run(s)" + (" (dry run)" if dry_run else ""))


@click.command()
@root_option
@config_option
@_tracking_option
@_backup_root_option
def doctor(root: Path, config_dir: Path | None, tracking_uri: str | None, backup_root: Path | None) -> None:
    """Check every config file, the tracking URI and the backup folder, and say what to fix."""
    from mlrig.cli.checks import run_checks

    problems = 0
    if backup_root is None and (root / "backup").is_dir():
        backup_root = root / "backup"  # what the demo used
    for check in run_checks(root.absolute(), resolve_config_dir(root, config_dir), tracking_uri, backup_root):
        click.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        problems += 0 if check.ok else 1
    if problems:
        raise click.ClickException(f"{problems} problem(s) found")
    click.echo("all checks passed")
