"""Options and error handling shared by the ``mlrig`` commands (click, the standard library and
``mlrig.paths`` only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mlrig.paths import MlrigError, infer_config_dir

root_option = click.option(
    "--root",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="Project root (outputs/, mlruns/ and config/ live here).",
)
config_option = click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Config directory (default: <root>/config).",
)


@contextmanager
def user_errors() -> Iterator[None]:
    """mlrig's typed errors (any ``MlrigError``) become one line, ``Error: <Type>: <message>``, and exit
    status 1 (no traceback); anything else is a bug and keeps its traceback."""
    try:
        yield
    except MlrigError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


def resolve_config_dir(root: Path, config_dir: Path | None) -> Path:
    """``--config-dir`` or ``<root>/config``."""
    return infer_config_dir(config_dir, root_dir=root)
