"""``mlrig backup`` / ``restore`` / ``verify``: one PATH, or without PATH the whole project state."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlrig.cli.common import (
    check_tracking_uri,
    config_option,
    one_line,
    remember,
    resolve_config_dir,
    root_option,
    settled_backup_root,
    settled_tracking_uri,
    show_progress,
    user_errors,
)

_tracking_option = click.option("--tracking-uri", default=None, help="MLflow tracking URI.")


def _backup_target(root: Path, cfg: Path, backup_root: Path | None) -> Path:
    """``--backup-root``, else the one the root remembers (written by the first demo, sweep or backup), else
    ``<root>/backup`` when the root has one (what the demo uses), else the Drive folder of paths.yaml."""
    from mlrig.paths import get_drive_backup_base

    demo_default = root / "backup"
    backup_root = settled_backup_root(root, backup_root)
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
    uri = resolve_tracking_uri(
        settled_tracking_uri(root, tracking_uri), root_dir=root.absolute(), config_dir=cfg
    )
    check_tracking_uri(uri)
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
        self.tty = show_progress()
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
    if action == "backup":
        remember(root, backup_root=state.backup_root, tracking_uri=state.tracking_uri)


def _one_or_all(
    action: str,
    path: Path | None,
    root: Path,
    config_dir: Path | None,
    backup_root: Path | None,
    tracking_uri: str | None,
    dry_run: bool,
    **kw: Any,
) -> None:
    """``action`` on PATH, or without PATH on the whole project state (no dry run there)."""
    if path is not None:
        _transfer(action, path, root, config_dir, backup_root, dry_run)
    elif dry_run:
        raise click.UsageError("--dry-run needs a PATH")
    else:
        _whole_state(action, root, config_dir, backup_root, tracking_uri, **kw)


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
    _one_or_all("backup", path, root, config_dir, backup_root, tracking_uri, dry_run)


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
    _one_or_all("restore", path, root, config_dir, backup_root, tracking_uri, dry_run, delete=delete)


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
    except Exception as exc:  # any error is exit 2: 1 means "differs"
        message = exc.format_message() if isinstance(exc, click.ClickException) else one_line(exc)
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
