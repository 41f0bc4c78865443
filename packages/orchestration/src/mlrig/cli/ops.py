"""``mlrig cleanup-interrupted`` and ``doctor``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from mlrig.cli.backup import _backup_root_option, _tracking_option
from mlrig.cli.common import (
    config_option,
    emit_json,
    json_option,
    resolve_config_dir,
    root_option,
    settled_backup_root,
    settled_tracking_uri,
    user_errors,
)
from mlrig.cli.runs import existing_client, experiment_id

_experiment_option = click.option(
    "--experiment", required=True, help="Experiment name, or a unique part of it."
)


def _row(run: Any) -> str:
    return f"{run.info.run_id}  {run.info.status:<8}  {run.info.run_name}"


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
@click.option(
    "--grace-period",
    type=click.IntRange(min=1),
    default=None,
    help="Distributed mode: seconds without a heartbeat before a trial is stale (default 20; use the "
    "workers' grace period).",
)
def cleanup_interrupted(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    older_than_minutes: float,
    dry_run: bool,
    optuna_storage: str | None,
    grace_period: int | None,
) -> None:
    """End RUNNING runs left behind by dead processes as KILLED, tagged code.interrupted=true.

    "Dead" is decided by the root's owner (pid + host + process start time): while a live process owns
    the root its runs are left alone, however long they have been running. In distributed mode (an Optuna
    storage URL) only trials whose heartbeat is older than --grace-period are failed and their runs ended;
    --dry-run lists them.
    """
    if optuna_storage:
        from mlrig.cli.worker import cleanup_distributed

        cleanup_distributed(root, optuna_storage, tracking_uri, dry_run, grace_period)
        return
    if grace_period is not None:
        raise click.UsageError("--grace-period is for distributed mode (--optuna-storage)")
    from mlrig.paths import owner_is_alive, read_owner

    holder = read_owner(root.absolute())
    if holder is not None and owner_is_alive(holder):
        click.echo(f"root {root.absolute()} is owned by the live {holder.describe()}: 0 interrupted run(s)")
        return
    with user_errors():
        from mlrig.naming import load_tags_registry
        from mlrig.orchestration import end_interrupted_run
        from mlrig.tracking import query_runs_by_tags

        tags = load_tags_registry(resolve_config_dir(root, config_dir))  # the root's own tags.yaml

        client = existing_client(root, config_dir, tracking_uri)
        cutoff = (time.time() - older_than_minutes * 60) * 1000
        stale = [
            r
            for r in query_runs_by_tags(client, [experiment_id(client, experiment)[0]], {}, status="RUNNING")
            if r.info.start_time <= cutoff
        ]
        for run in stale:
            click.echo(("would end " if dry_run else "ending ") + _row(run))
            if not dry_run:
                end_interrupted_run(client, run.info.run_id, tags=tags)
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
    backup_root = settled_backup_root(root, backup_root)
    if backup_root is None and (root / "backup").is_dir():
        backup_root = root / "backup"  # what the demo uses
    tracking_uri = settled_tracking_uri(root, tracking_uri)
    cfg = resolve_config_dir(root, config_dir)
    for check in run_checks(root.absolute(), cfg, tracking_uri, backup_root):
        click.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        problems += 0 if check.ok else 1
    if problems:
        raise click.ClickException(f"{problems} problem(s) found")
    click.echo("all checks passed")


def _study_row(db: Path) -> dict[str, Any]:
    """One Optuna ``study.db``, read-only (no migration, no lock file): name, trials by state, best value."""
    import sqlite3

    from mlrig.paths import parse_study_dir

    info = parse_study_dir(db.parent) or {}
    row: dict[str, Any] = {
        "study_hash": info.get("study8", ""),
        "model": info.get("model", ""),
        "storage_env": info.get("storage_env", ""),
    }
    con = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute("SELECT study_name FROM studies")]
        states = dict(con.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())
        direction = con.execute("SELECT direction FROM study_directions LIMIT 1").fetchone()
        best = "MAX" if direction is None or direction[0] == "MAXIMIZE" else "MIN"
        value = con.execute(
            f"SELECT {best}(v.value) FROM trial_values v JOIN trials t USING (trial_id) "
            "WHERE t.state = 'COMPLETE'"
        ).fetchone()[0]
    except sqlite3.Error as exc:
        return {**row, "error": str(exc), "path": str(db.parent)}
    finally:
        con.close()
    return {
        **row,
        "study_name": ", ".join(names),
        "trials": states,
        "best_value": value,
        "path": str(db.parent),
    }


@click.command()
@root_option
@config_option
@json_option
def studies(root: Path, config_dir: Path | None, as_json: bool) -> None:
    """List the Optuna studies under the root's outputs (hash as in study-<hash>, model, trials by state,
    best value); reads the study files without changing them."""
    from mlrig.paths import STUDY_DB, find_study_dirs

    if not root.is_dir():
        raise click.ClickException(f"project root {root.absolute()} does not exist")
    with user_errors():
        folders = find_study_dirs(root.absolute(), resolve_config_dir(root, config_dir))
    found = [_study_row(d / STUDY_DB) for d in folders if (d / STUDY_DB).is_file()]
    if as_json:
        emit_json(found)
        return
    for item in found:
        trials = (
            ", ".join(f"{n} {s.lower()}" for s, n in sorted(item.get("trials", {}).items())) or "no trials"
        )
        best = item.get("best_value")
        shown = "-" if best is None else f"{best:.4f}"
        click.echo(f"{item['study_hash']}  {item['model']:<12} {shown:>8}  {trials}  {item['path']}")
    if not found:
        click.echo(f"no study under {root.absolute()}", err=True)
