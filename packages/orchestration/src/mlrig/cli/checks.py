"""``mlrig doctor``: every config file, the tracking store and the backup folder, with what to fix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


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
        from mlrig.tracking import resolve_tracking_uri, tracking_client

        uri = resolve_tracking_uri(tracking_uri, root_dir=root, config_dir=config_dir)
        db = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None
        if db is not None and not Path(db).exists():
            # Opening it would create it: the doctor looks, it never creates anything.
            return f"{uri}: not created yet (the first run creates it)"
        n = len(tracking_client(uri).search_experiments(max_results=100))
        return f"{uri} reachable ({n} experiment(s))"

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
