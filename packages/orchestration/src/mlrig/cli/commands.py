"""The ``mlrig`` command line.

Only click, the standard library and ``mlrig.paths`` are imported at start-up: every command imports what it
needs when it runs, so ``mlrig --help`` never loads mlflow, optuna or ``mlrig.orchestration``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from mlrig.cli.backup import backup, restore, verify
from mlrig.cli.common import config_option, resolve_config_dir, root_option, user_errors
from mlrig.cli.ops import cleanup_interrupted, doctor, runs
from mlrig.cli.services import services
from mlrig.cli.worker import worker

__all__ = ["main"]

_DISTRIBUTIONS = ("mlrig-paths", "mlrig-naming", "mlrig-storage", "mlrig-tracking", "mlrig-orchestration")


@click.group()
@click.version_option(package_name="mlrig-orchestration", prog_name="mlrig")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """mlrig: experiment plumbing for ML pipelines (paths, storage, naming, tracking, orchestration)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@main.command()
def versions() -> None:
    """Print the installed mlrig package versions."""
    from importlib.metadata import version

    for dist in _DISTRIBUTIONS:
        click.echo(f"{dist} {version(dist)}")


@main.command()
@root_option
@config_option
@click.option("--max-trials", type=click.IntRange(min=1), default=None, help="Override sampling.max_trials.")
@click.option(
    "--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite under <root>/mlruns)."
)
@click.option(
    "--backup-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder standing in for the Drive mount (default: <root>/backup).",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Run the sweeps with N workers.")
def demo(
    root: Path,
    config_dir: Path | None,
    max_trials: int | None,
    tracking_uri: str | None,
    backup_root: Path | None,
    workers: int | None,
) -> None:
    """Run the whole pipeline on a small numpy model: sweep → selection → final training → conversion →
    benchmark. Running it again resumes and reuses instead of duplicating. With --workers N: only the sweeps,
    by N worker processes on the root's services (started when not up)."""
    if workers is not None:
        from mlrig.cli.worker import demo_workers

        demo_workers(root, workers, config_dir, max_trials)
        return
    from mlrig.cli.report import demo_table
    from mlrig.orchestration import run_demo

    bars: dict[str, Any] = {}

    def progress(backbone: str, done: int, total: int) -> None:
        bar = bars.get(backbone)
        if bar is None:
            bar = click.progressbar(length=total, label=f"sweep {backbone:<8}", show_pos=True)
            bar.__enter__()
            bars[backbone] = bar
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    with user_errors():
        summary = run_demo(
            root,
            config_dir=config_dir,
            tracking_uri=tracking_uri,
            backup_root=backup_root,
            max_trials=max_trials,
            progress=progress,
        )
    for bar in bars.values():
        bar.__exit__(None, None, None)
    click.echo(demo_table(summary))


def _context_options(fn: Any) -> Any:
    options = [
        click.option("--process-type", required=True, help="hpo, hpo_refit, benchmarking, final_training, …"),
        click.option("--model", required=True, help="Backbone / model name."),
        click.option("--stage", default=None, help="Naming stage (hpo_sweep, hpo_trial, …)."),
        click.option("--storage-env", default="local", show_default=True),
        click.option("--study-key-hash", default=None),
        click.option("--trial-key-hash", default=None),
        click.option("--trial-number", type=int, default=None),
        click.option("--spec-fp", default=None),
        click.option("--exec-fp", default=None),
        click.option("--variant", type=int, default=1, show_default=True),
        click.option("--conv-fp", default=None),
        click.option("--parent-training-id", default=None),
        click.option("--benchmark-config-hash", default=None),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _context(kwargs: dict[str, Any]) -> Any:
    from mlrig.naming import create_naming_context

    trial_number = kwargs.get("trial_number")
    return create_naming_context(
        kwargs["process_type"],
        kwargs["model"],
        spec_fp=kwargs.get("spec_fp"),
        exec_fp=kwargs.get("exec_fp"),
        environment=kwargs["storage_env"],
        stage=kwargs.get("stage"),
        storage_env=kwargs["storage_env"],
        variant=kwargs["variant"],
        trial_number=trial_number,
        parent_training_id=kwargs.get("parent_training_id"),
        conv_fp=kwargs.get("conv_fp"),
        study_key_hash=kwargs.get("study_key_hash"),
        trial_key_hash=kwargs.get("trial_key_hash"),
        benchmark_config_hash=kwargs.get("benchmark_config_hash"),
    )


@main.command()
@root_option
@config_option
@_context_options
def paths(root: Path, config_dir: Path | None, **kwargs: Any) -> None:
    """Show where a run's outputs go (nothing is created)."""
    with user_errors():
        from mlrig.naming import build_output_path

        click.echo(build_output_path(root.absolute(), _context(kwargs), resolve_config_dir(root, config_dir)))


@main.command()
@root_option
@config_option
@_context_options
def names(root: Path, config_dir: Path | None, **kwargs: Any) -> None:
    """Preview a run's MLflow name and tags."""
    with user_errors():
        from mlrig.naming import build_mlflow_run_name, build_mlflow_tags

        cfg = resolve_config_dir(root, config_dir)
        context = _context(kwargs)
        click.echo(f"run name: {build_mlflow_run_name(context, cfg)}")
        for key, value in sorted(build_mlflow_tags(context, config_dir=cfg).items()):
            click.echo(f"  {key} = {value}")


for _command in (runs, backup, restore, verify, cleanup_interrupted, doctor, services, worker):
    main.add_command(_command)
