"""``mlrig runs``, ``backup``/``restore``/``verify``, ``cleanup-interrupted`` and ``doctor``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from mlrig.cli.common import config_option, resolve_config_dir, root_option, user_errors
from mlrig.paths import MlrigError


def _client(root: Path, config_dir: Path | None, tracking_uri: str | None) -> Any:
    from mlrig.tracking import resolve_tracking_uri, tracking_client

    uri = resolve_tracking_uri(
        tracking_uri, root_dir=root.absolute(), config_dir=resolve_config_dir(root, config_dir)
    )
    return tracking_client(uri)


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments())
        raise click.ClickException(f"no MLflow experiment {name!r}; known: {', '.join(names) or 'none'}")
    return str(experiment.experiment_id)


def _row(run: Any, metric: str | None = None) -> str:
    value = "" if metric is None else f"  {metric}={run.data.metrics.get(metric)}"
    return f"{run.info.run_id}  {run.info.status:<8}  {run.info.run_name}{value}"


_tracking_option = click.option("--tracking-uri", default=None, help="MLflow tracking URI.")
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


def _backup_target(root: Path, cfg: Path, backup_root: Path | None) -> Path:
    """``--backup-root``, else ``<root>/backup`` when the root has one (what the demo uses), else the Drive
    folder of paths.yaml."""
    from mlrig.paths import get_drive_backup_base

    demo_default = root / "backup"
    target = backup_root or (demo_default if demo_default.is_dir() else get_drive_backup_base(cfg))
    if target is None:
        raise click.ClickException("no backup root: pass --backup-root or configure drive: in paths.yaml")
    return Path(target)


def _store(root: Path, config_dir: Path | None, backup_root: Path | None, dry_run: bool = False) -> Any:
    from mlrig.storage import DriveBackupStore

    cfg = resolve_config_dir(root, config_dir)
    target = _backup_target(root, cfg, backup_root)
    return DriveBackupStore(root.absolute(), target, dry_run=dry_run, config_dir=cfg)


def _state(root: Path, config_dir: Path | None, backup_root: Path | None, tracking_uri: str | None) -> Any:
    from mlrig.orchestration import ProjectState
    from mlrig.tracking import resolve_tracking_uri

    cfg = resolve_config_dir(root, config_dir)
    target = _backup_target(root, cfg, backup_root)
    uri = resolve_tracking_uri(tracking_uri, root_dir=root.absolute(), config_dir=cfg)
    return ProjectState(root.absolute(), target, uri, config_dir=cfg)


_backup_root_option = click.option(
    "--backup-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Backup folder (default: <root>/backup when it exists, else drive.mount_point/MyDrive/"
    "drive.backup_base_dir from paths.yaml).",
)


def _transfer(
    action: str, path: Path, root: Path, config_dir: Path | None, backup_root: Path | None, dry_run: bool
) -> None:
    with user_errors():
        store = _store(root, config_dir, backup_root, dry_run)
        result = getattr(store, action)(path.absolute() if not path.is_absolute() else path)
    click.echo(f"{result.action.name}: {result.src} -> {result.dst} ({result.reason})")
    if not result.ok:
        raise click.ClickException(f"{action} failed: {result.reason or result.error}")


class _Bars:
    """A progress bar per part on stderr when it is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.bar: Any = None

    def __call__(self, progress: Any) -> None:
        if not self.tty:
            return
        if self.bar is None or progress.files_done == 0:
            self.close()
            self.bar = click.progressbar(length=max(progress.files_total, 1), file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.update(progress.files_done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _whole_state(
    action: str,
    root: Path,
    config_dir: Path | None,
    backup_root: Path | None,
    tracking_uri: str | None,
    **kw: Any,
) -> None:
    bars = _Bars()
    with user_errors():
        state = _state(root, config_dir, backup_root, tracking_uri)
        try:
            done = getattr(state, f"{action}_all")(progress=bars, **kw)
        finally:
            bars.close()
    copied = sum(len(r.stats.copied) for _, r in done)
    unchanged = sum(r.stats.unchanged for _, r in done)
    kept = sum(len(r.stats.kept) for _, r in done)
    failed = [(p, r) for p, r in done if not r.ok]
    for part, result in failed:
        click.echo(f"{part.name}: {result.reason}", err=True)
    click.echo(
        f"{action}: {len(done)} part(s) of {root.absolute()} <-> {state.backup_root}: {copied} copied, "
        f"{unchanged} unchanged" + (f", {kept} local-only kept" if kept else "")
    )
    if failed:
        raise click.ClickException(f"{action} failed for {', '.join(p.name for p, _ in failed)}")


def _path_command(fn: Any) -> Any:
    """The arguments every backup-side command takes: [PATH], --root, --config-dir, --backup-root,
    --tracking-uri."""
    for decorator in reversed(
        (
            click.argument("path", type=click.Path(path_type=Path), required=False),
            root_option,
            config_option,
            _backup_root_option,
            _tracking_option,
        )
    ):
        fn = decorator(fn)
    return fn


@click.command()
@_path_command
@click.option("--dry-run", is_flag=True)
def backup(
    path: Path | None,
    root: Path,
    config_dir: Path | None,
    backup_root: Path | None,
    tracking_uri: str | None,
    dry_run: bool,
) -> None:
    """Back up PATH (under the outputs directory), or without PATH the whole project state (outputs,
    caches, the embedded MLflow store and its artifacts), atomically and incrementally."""
    if path is not None:
        _transfer("backup", path, root, config_dir, backup_root, dry_run)
    elif dry_run:
        raise click.UsageError("--dry-run needs a PATH")
    else:
        _whole_state("backup", root, config_dir, backup_root, tracking_uri)


@click.command()
@_path_command
@click.option("--dry-run", is_flag=True)
@click.option("--delete", is_flag=True, help="Also delete local files the backup does not have.")
def restore(
    path: Path | None,
    root: Path,
    config_dir: Path | None,
    backup_root: Path | None,
    tracking_uri: str | None,
    dry_run: bool,
    delete: bool,
) -> None:
    """Restore PATH, or without PATH the whole project state, from the backup folder (local-only files are
    kept unless --delete)."""
    if path is not None:
        _transfer("restore", path, root, config_dir, backup_root, dry_run)
    elif dry_run:
        raise click.UsageError("--dry-run needs a PATH")
    else:
        _whole_state("restore", root, config_dir, backup_root, tracking_uri, delete=delete)


@click.command()
@_path_command
@click.option("--checksum", is_flag=True, help="Compare contents, not only size and mtime.")
def verify(
    path: Path | None,
    root: Path,
    config_dir: Path | None,
    backup_root: Path | None,
    tracking_uri: str | None,
    checksum: bool,
) -> None:
    """Compare PATH (or the whole project state) with its backup: exit 0 when equal, 1 when they differ,
    2 on error."""
    try:
        if path is not None:
            reports = [
                (str(path), _store(root, config_dir, backup_root).verify(path.absolute(), checksum=checksum))
            ]
        else:
            state = _state(root, config_dir, backup_root, tracking_uri)
            if not state.backup_root.is_dir():
                raise click.ClickException(f"backup folder {state.backup_root} does not exist")
            reports = [(p.name, r) for p, r in state.verify_all(checksum=checksum)]
    except (MlrigError, OSError, click.ClickException) as exc:
        message = (
            exc.format_message() if isinstance(exc, click.ClickException) else f"{type(exc).__name__}: {exc}"
        )
        click.echo(f"Error: {message}", err=True)
        sys.exit(2)
    for name, report in reports:
        click.echo(
            f"{name}: checked {report.checked} file(s): missing {len(report.missing)}, extra "
            f"{len(report.extra)}, differing {len(report.differing)} {report.reason}"
        )
        for item in (*report.missing, *report.differing):
            click.echo(f"  {item}")
    if not all(r.ok for _, r in reports):
        click.echo(f"Error: the backup of {path or root.absolute()} differs from the local copy", err=True)
        sys.exit(1)


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
def cleanup_interrupted(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    older_than_minutes: float,
    dry_run: bool,
) -> None:
    """End RUNNING runs left behind by dead processes as KILLED, tagged code.interrupted=true.

    "Dead" is decided by the root's owner (pid + host + process start time): while a live process owns
    the root its runs are left alone, however long they have been running.
    """
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
