"""``mlrig services up|down|status``: the local PostgreSQL + ``mlflow server`` of a root (distributed mode on
one machine, for development and tests)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlrig.cli.common import root_option, user_errors


@click.group()
def services() -> None:
    """Local PostgreSQL + mlflow server for distributed mode (data under <root>/services/)."""


@services.command()
@root_option
def up(root: Path) -> None:
    """Start the services of ROOT (nothing to do when they are up) and print their URIs."""
    with user_errors():
        from mlrig.orchestration.services import services_up

        running = services_up(root)
    click.echo(f"tracking_uri   {running.tracking_uri}")
    click.echo(f"optuna_storage {running.optuna_storage}")


@services.command()
@root_option
def down(root: Path) -> None:
    """Stop the services of ROOT by PID (the data stays under <root>/services/)."""
    with user_errors():
        from mlrig.orchestration.services import services_down

        stopped = services_down(root)
    click.echo("stopped" if stopped else "no services recorded for this root")


@services.command()
@root_option
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def status(root: Path, as_json: bool) -> None:
    """Show whether the services of ROOT are up; exit 1 when they are not."""
    from mlrig.orchestration.services import services_status

    running = services_status(root)
    if as_json:
        click.echo(json.dumps(running.to_json() if running is not None else {"up": False}))
    elif running is not None:
        click.echo(f"up: tracking_uri {running.tracking_uri}, optuna_storage {running.optuna_storage}")
    else:
        click.echo("down")
    if running is None:
        raise SystemExit(1)
