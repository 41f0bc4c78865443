"""Options and error handling shared by the ``mlrig`` commands (click and the standard library only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

__all__ = ["config_option", "resolve_config_dir", "root_option", "user_errors"]

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
    """mlrig's typed errors become a one-line message and exit status 1 (no traceback)."""
    from mlrig.naming import NamingError
    from mlrig.paths import PathsError
    from mlrig.storage import BackupError

    try:
        yield
    except (PathsError, NamingError, BackupError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        if type(exc).__name__ in ("OrchestrationError", "TrackingError"):
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
        raise


def resolve_config_dir(root: Path, config_dir: Path | None) -> Path:
    """``--config-dir`` or ``<root>/config``."""
    return config_dir if config_dir is not None else root / "config"
