"""``mlrig doctor``: every config file, the tracking store and the backup folder, with what to fix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True)
class Check:
    """One doctor check: its name, whether it passed, and what was found or what to fix."""

    name: str
    ok: bool
    detail: str


def _attempt(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def config_keys(config_dir: Path) -> Check:
    """Every config file against its schema: one line per unknown or unimplemented key or schema error,
    ``<file>:<line>: <key>: <problem>``; fails on errors only. Reads files, creates nothing."""
    from mlrig.orchestration import validate_configs

    try:
        report = validate_configs(config_dir, raise_on_error=False)
    except Exception as exc:
        return Check("config keys", False, f"{type(exc).__name__}: {exc}")
    existing = [f for f in report.files if f.is_file()]
    summary = (
        f"{len(existing)} file(s) checked, {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    lines = [summary, *(f"  {issue.level}: {issue}" for issue in report.issues)]
    return Check("config keys", not report.errors, "\n".join(lines))


def run_checks(
    root: Path, config_dir: Path, tracking_uri: str | None, backup_root: Path | None
) -> Iterator[Check]:
    """Run the doctor's checks in order (each independent of the others' outcome)."""
    from mlrig.naming import load_mlflow_config, load_naming_policy, load_tags_registry
    from mlrig.orchestration import load_experiment_config
    from mlrig.paths import get_drive_backup_base, get_outputs_dir, load_paths_config

    def paths_yaml() -> str:
        config = load_paths_config(config_dir)
        source = config.source or "packaged defaults (no paths.yaml)"
        return f"{source}; outputs at {get_outputs_dir(root, config_dir, 'local')}"

    yield _attempt("paths.yaml", paths_yaml)
    yield _attempt("naming.yaml", lambda: f"policy sections: {sorted(load_naming_policy(config_dir))}")
    yield _attempt("tags.yaml", lambda: f"registry loaded ({type(load_tags_registry(config_dir)).__name__})")
    yield _attempt("mlflow.yaml", lambda: f"sections: {', '.join(sorted(load_mlflow_config(config_dir)))}")
    yield config_keys(config_dir)
    for exp_file in sorted((config_dir / "experiment").glob("*.yaml")):

        def experiment(name: str = exp_file.stem) -> str:
            exp = load_experiment_config(config_dir, name, validate=False)  # keys: checked above
            return f"experiment {exp.name!r}, backbones {exp.backbones}"

        yield _attempt(f"experiment/{exp_file.name}", experiment)

    def tracking() -> str:
        from mlrig.cli.common import check_tracking_uri
        from mlrig.tracking import resolve_tracking_uri

        uri = resolve_tracking_uri(tracking_uri, root_dir=root, config_dir=config_dir)
        try:
            check_tracking_uri(uri)
        except click.ClickException as exc:
            raise ValueError(exc.format_message()) from None
        db = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None
        if db is not None and not Path(db).exists():
            # Opening it would create (or take over) it: the doctor looks, it never creates anything.
            return f"{uri}: not created yet (the first run creates it, or takes over a reference store)"
        client, takeover = open_store(root, config_dir, tracking_uri, backup_root)
        n = len(client.search_experiments(max_results=100))
        return f"{describe_store(takeover, client.tracking_uri)}; reachable ({n} experiment(s))"

    yield _attempt("tracking store", tracking)

    def backup() -> str:
        target = backup_root or get_drive_backup_base(config_dir)
        if target is None:
            raise ValueError("no backup folder: pass --backup-root or add a drive: section to paths.yaml")
        if not Path(target).is_dir():
            raise ValueError(f"{target} does not exist (on Colab: mount Drive first; elsewhere: create it)")
        with tempfile.NamedTemporaryFile(dir=target, prefix=".mlrig-doctor-"):
            pass
        return f"{target} is writable"

    yield _attempt("backup folder", backup)
    yield _attempt(
        "project root", lambda: f"{root} ({'writable' if os.access(root, os.W_OK) else 'read-only'})"
    )


def open_store(
    root: Path, config_dir: Path, tracking_uri: str | None, backup_root: Path | None, *, create: bool = True
) -> tuple[Any, Any]:
    """The MLflow client of the project's store and its :class:`~mlrig.tracking.StoreTakeover`.

    A reference-layout store on the Drive is taken over first (copied to ``<root>/mlruns/mlflow.db``) unless
    a local store or mlrig's own backup of one exists; ``backup_root`` defaults to paths.yaml's drive folder.
    Without ``create`` a root with none of these is refused in one line instead of getting an empty store.
    """
    from mlrig.paths import get_drive_backup_base
    from mlrig.storage import BackupError, DriveBackupStore
    from mlrig.tracking import (
        EMBEDDED_DB_PATH,
        resolve_tracking_uri,
        take_over_reference_store,
        tracking_client,
    )

    uri = resolve_tracking_uri(tracking_uri, root_dir=root, config_dir=config_dir)
    target = backup_root or get_drive_backup_base(config_dir)
    # the store's folder is backed up as <backup root>/<folder name>/ (mlruns/mlflow.db, mlruns/artifacts)
    db = (root / EMBEDDED_DB_PATH).resolve()
    backup = DriveBackupStore(root, Path(target), outputs_dir=db.parent) if target is not None else None
    takeover = take_over_reference_store(root, config_dir, tracking_uri=uri, backup=backup)
    if takeover.action == "none" and not create:  # opening the client would create an empty store
        raise click.ClickException(
            f"no MLflow store at {takeover.store} (nothing has run under {root} yet, and there is no backup "
            "or reference store to bring back)"
        )
    if takeover.action == "backup" and backup is not None:
        # restore first: opening the client now would create an empty store beside the good backup
        result = backup.restore(db, expect="file")
        if not result.ok:
            raise BackupError(
                f"the store is missing and its backup could not be restored: {result.reason}", path=db
            )
    return tracking_client(uri), takeover


def describe_store(takeover: Any, uri: str) -> str:
    """One line: which store is in use, where it came from and where its backup lives."""
    if takeover.action == "remote":
        return f"{uri} (not the embedded store: its server or owner keeps it durable; mlrig backs up nothing)"
    where = f"{takeover.store}"
    if takeover.source is not None:
        verb = "taken over now" if takeover.action == "taken-over" else f"taken over {takeover.taken_at}"
        where += f" ({verb} from the reference store {takeover.source}, which mlrig no longer writes)"
    elif takeover.action == "backup":
        where += " (restored from its backup)"
    else:
        where += " (embedded)"
    if takeover.backup is None:
        return f"{where}; backup: none (no backup folder configured)"
    state = "present" if takeover.backup.is_file() else "none yet"
    return f"{where}; backup: {takeover.backup} ({state})"
