"""``mlrig worker``: join the distributed sweeps of an experiment and work until their budgets are reached."""

from __future__ import annotations

from pathlib import Path

import click

from mlrig.cli.common import config_option, root_option, user_errors


@click.command()
@root_option
@config_option
@click.option("--experiment", default="demo", show_default=True, help="Experiment config name.")
@click.option("--backbone", "backbones", multiple=True, help="Only these backbones (default: all).")
@click.option("--max-trials", type=click.IntRange(min=1), default=None, help="Override sampling.max_trials.")
@click.option(
    "--optuna-storage", default=None, help="postgresql+psycopg://… (default: $MLRIG_OPTUNA_STORAGE)."
)
@click.option(
    "--tracking-uri", default=None, help="http(s)://… MLflow server (default: $MLFLOW_TRACKING_URI)."
)
@click.option(
    "--train", "train_spec", default=None, help="module:function training the model (default: demo)."
)
@click.option("--heartbeat-interval", type=click.IntRange(min=1), default=None, help="Seconds between beats.")
@click.option(
    "--grace-period", type=click.IntRange(min=1), default=None, help="Seconds before a trial is stale."
)
def worker(
    root: Path,
    config_dir: Path | None,
    experiment: str,
    backbones: tuple[str, ...],
    max_trials: int | None,
    optuna_storage: str | None,
    tracking_uri: str | None,
    train_spec: str | None,
    heartbeat_interval: int | None,
    grace_period: int | None,
) -> None:
    """Join the sweeps (one Optuna study in PostgreSQL per backbone, one MLflow server) and run trials until
    each budget is reached. Start it K times on K machines, kill or restart it at any moment."""
    with user_errors():
        from mlrig.cli.common import resolve_config_dir
        from mlrig.orchestration import load_experiment_config, run_worker
        from mlrig.orchestration.demo import prepare_demo_config
        from mlrig.orchestration.worker_launch import load_train_fn, resolve_distributed_uris

        root = root.absolute()
        root.mkdir(parents=True, exist_ok=True)
        if config_dir is None and experiment == "demo":
            cfg = prepare_demo_config(root)
        else:
            cfg = resolve_config_dir(root, config_dir)
        exp = load_experiment_config(cfg, experiment)
        storage, tracking = resolve_distributed_uris(root, optuna_storage, tracking_uri)
        train = load_train_fn(train_spec)
        labels: list[int] = []
        if train_spec is None:  # the demo's rows: its CV folds are made from their labels
            from mlrig.orchestration import demo_data

            labels = [int(v) for v in demo_data.make_dataset(exp.data)[1]]
        for backbone in backbones or exp.backbones:
            result = run_worker(
                train, exp, backbone, root_dir=root, config_dir=cfg, labels=labels, storage_url=storage,
                tracking_uri=tracking, max_trials=max_trials, heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
            )  # fmt: skip
            done = " (finalised: refit + parent ended)" if result.finalised else ""
            click.echo(f"{backbone}: {len(result.trials)} trial(s) by {result.worker_id}{done}")


def demo_workers(root: Path, workers: int, config_dir: Path | None, max_trials: int | None) -> None:
    """``mlrig demo --workers N``: the demo's sweeps by N worker processes; exit 1 when one failed."""
    with user_errors():
        from mlrig.orchestration.worker_launch import run_demo_workers

        result = run_demo_workers(root.absolute(), workers, config_dir=config_dir, max_trials=max_trials)
    click.echo(f"{workers} worker(s) done, exit codes {result.exit_codes}")
    click.echo(f"runs: {result.tracking_uri}   studies: {result.optuna_storage}")
    if any(result.exit_codes):
        raise SystemExit(1)


def cleanup_distributed(
    root: Path, optuna_storage: str, tracking_uri: str | None, dry_run: bool, grace_period: int | None = None
) -> None:
    """``mlrig cleanup-interrupted`` with an Optuna storage URL: fail only heartbeat-stale trials (older than
    ``grace_period`` seconds, default 2 x the default heartbeat interval); ``dry_run`` lists them only."""
    with user_errors():
        from mlrig.orchestration.worker import cleanup_stale_trials, list_stale_trials
        from mlrig.orchestration.worker_launch import resolve_distributed_uris

        if dry_run:  # read-only: the tracking server is not needed to list them
            stale = list_stale_trials(optuna_storage, grace_period=grace_period)
            for trial in stale:
                click.echo(f"would fail {trial.study_name} trial {trial.number}  run {trial.run_id or '-'}")
            click.echo(f"{len(stale)} trial(s) of dead workers (stale heartbeat) (dry run)")
            return
        storage, tracking = resolve_distributed_uris(root.absolute(), optuna_storage, tracking_uri)
        count = cleanup_stale_trials(storage, tracking, grace_period=grace_period)
    click.echo(f"{count} trial(s) of dead workers (stale heartbeat): FAIL, their runs KILLED")
