"""The ``mlrig`` command line."""

from __future__ import annotations

from importlib.metadata import version

import click

_DISTRIBUTIONS = ("mlrig-paths", "mlrig-naming", "mlrig-storage", "mlrig-tracking", "mlrig-orchestration")


@click.group()
@click.version_option(version("mlrig-orchestration"), prog_name="mlrig")
def main() -> None:
    """mlrig: experiment plumbing for ML pipelines."""


@main.command()
def versions() -> None:
    """Print the installed mlrig package versions."""
    for dist in _DISTRIBUTIONS:
        click.echo(f"{dist} {version(dist)}")
