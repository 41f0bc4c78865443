"""The ``mlrig`` command line.

Only click, the standard library and ``mlrig.paths`` are imported at start-up: every command imports what it
needs when it runs, so ``mlrig --help`` never loads mlflow, optuna or ``mlrig.orchestration``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mlrig.cli.backup import backup, restore, verify
from mlrig.cli.common import (
    MlrigGroup,
    config_option,
    configure,
    emit_json,
    json_option,
    resolve_config_dir,
    root_option,
    user_errors,
)
from mlrig.cli.ops import cleanup_interrupted, doctor, studies
from mlrig.cli.pipeline import demo, pipeline, sweep
from mlrig.cli.runs import experiments, runs
from mlrig.cli.services import services
from mlrig.cli.worker import worker

_DISTRIBUTIONS = ("mlrig-paths", "mlrig-naming", "mlrig-storage", "mlrig-tracking", "mlrig-orchestration")


@click.group(cls=MlrigGroup)
@click.version_option(package_name="mlrig-orchestration", prog_name="mlrig")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug) and tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Errors only: no progress, no warnings.")
def main(verbose: int, quiet: bool) -> None:
    """mlrig: experiment plumbing for ML pipelines (paths, storage, naming, tracking, orchestration)."""
    configure(verbose, quiet)


@main.command()
@json_option
def versions(as_json: bool) -> None:
    """Print the installed mlrig package versions, mlflow, optuna and Python."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for dist in (*_DISTRIBUTIONS, "mlflow", "mlflow-skinny", "optuna"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            if dist != "mlflow":  # the full mlflow (the UI) is optional: the [ui] extra
                found[dist] = "not installed"
    found["python"] = f"{platform.python_version()} ({sys.executable})"
    if as_json:
        emit_json(found)
        return
    for dist, ver in found.items():
        click.echo(f"{dist} {ver}")


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


for _command in (
    runs,
    experiments,
    studies,
    demo,
    sweep,
    pipeline,
    backup,
    restore,
    verify,
    cleanup_interrupted,
    doctor,
    services,
    worker,
):
    main.add_command(_command)
