"""Options, settings and error handling shared by the ``mlrig`` commands (click, the standard library and
``mlrig.paths`` only at import; the tracking checks import mlrig.tracking when they run)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mlrig.paths import MlrigError, infer_config_dir, read_root_settings, write_root_settings

logger = logging.getLogger(__name__)

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
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")

# What the top-level options chose; set by ``main`` for each invocation.
VERBOSITY: dict[str, int] = {"verbose": 0, "quiet": 0}

# MLflow's own HTTP client settings for a tracking server: bounded, one layer of retries (MLflow's).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "azureml", "uc")


def configure(verbose: int, quiet: bool) -> None:
    """Log levels for this invocation: warnings by default, ``-v`` info, ``-vv`` debug, ``-q`` errors only;
    MLflow's INFO lines (its own logging setup reads ``MLFLOW_LOGGING_LEVEL``) are hidden unless ``-v``."""
    VERBOSITY.update(verbose=verbose, quiet=int(quiet))
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO)[min(verbose, 1)]
    level = logging.DEBUG if verbose >= 2 else level
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)  # basicConfig does nothing when the root already has a handler
    if "MLFLOW_LOGGING_LEVEL" not in os.environ or VERBOSITY.get("set_mlflow_level"):
        os.environ["MLFLOW_LOGGING_LEVEL"] = logging.getLevelName(level)
        VERBOSITY["set_mlflow_level"] = 1
    for name in ("mlflow", "alembic", "optuna"):
        logging.getLogger(name).setLevel(level)
    if not verbose:  # MLflow's tqdm bars for artifact transfers: noise beside mlrig's own progress
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    roots = logging.getLogger("mlrig.paths.roots")
    if not any(isinstance(f, _NoRootFallbackNoise) for f in roots.filters):
        roots.addFilter(_NoRootFallbackNoise())


class _NoRootFallbackNoise(logging.Filter):
    """Every command passes its root explicitly (``--root``), so the import-time "repository root not found;
    falling back to the current directory" of a lower layer says nothing to a CLI user: shown with ``-v``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(VERBOSITY["verbose"]) or "repository root not found" not in record.getMessage()


def quiet_libraries() -> None:
    """Optuna's ``[I …]`` trial lines and MLflow's INFO, at the invocation's level (after they are imported:
    both set their own levels on import)."""
    import optuna

    level = logging.getLogger().level
    optuna.logging.set_verbosity(level)
    logging.getLogger("mlflow").setLevel(level)


class MlrigGroup(click.Group):
    """The ``mlrig`` group: any error becomes one line on stderr (``Error: <Type>: <message>``), exit 1;
    ``-v`` keeps the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if VERBOSITY["verbose"]:
                raise
            raise click.ClickException(one_line(exc) + " (-v for the traceback)") from exc


def one_line(exc: BaseException) -> str:
    """``<Type>: <message>`` on one line (whitespace collapsed, at most 400 characters)."""
    text = " ".join(str(exc).split()) or repr(exc)
    text = text if len(text) <= 400 else text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


@contextmanager
def user_errors() -> Iterator[None]:
    """mlrig's typed errors (any ``MlrigError``) become one line, ``Error: <Type>: <message>``, and exit
    status 1 (no traceback; ``-v`` keeps it); anything else reaches :class:`MlrigGroup`, which says it in
    one line too."""
    try:
        yield
    except MlrigError as exc:
        if VERBOSITY["verbose"]:
            raise  # -v: the traceback
        raise click.ClickException(one_line(exc)) from exc


def resolve_config_dir(root: Path, config_dir: Path | None) -> Path:
    """``--config-dir`` or ``<root>/config``."""
    return infer_config_dir(config_dir, root_dir=root)


def emit_json(obj: Any) -> None:
    """``obj`` as JSON on stdout (paths and other values as strings)."""
    click.echo(json.dumps(obj, indent=2, default=str))


def status(message: str) -> None:
    """One progress line on stderr (nothing under ``-q``)."""
    if not VERBOSITY["quiet"]:
        click.echo(message, err=True)


def show_progress() -> bool:
    """Progress bars only on a terminal stderr, and not under ``-q``."""
    return not VERBOSITY["quiet"] and sys.stderr.isatty()


# ---- the root's remembered settings ----


def remembered(root: Path) -> dict[str, str]:
    """``<root>/.mlrig/settings.json`` (nothing when the root or the file does not exist)."""
    return read_root_settings(root) if root.is_dir() else {}


def settled_backup_root(root: Path, backup_root: Path | None) -> Path | None:
    """``--backup-root``, else the one the root remembers, else None."""
    if backup_root is not None:
        return backup_root
    saved = remembered(root).get("backup_root")
    return Path(saved) if saved else None


def settled_tracking_uri(root: Path, tracking_uri: str | None) -> str | None:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the one the root remembers, else None."""
    if tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return tracking_uri
    return remembered(root).get("tracking_uri") or None


def remember(root: Path, *, backup_root: Path | None, tracking_uri: str | None) -> None:
    """Write what a state-creating command used, so later commands on the root need no flags."""
    write_root_settings(
        root.absolute(),
        backup_root=str(backup_root.absolute()) if backup_root is not None else None,
        tracking_uri=tracking_uri,
    )


# ---- the tracking URI, checked before anything is created ----


def check_tracking_uri(uri: str) -> str:
    """Refuse an unknown URI scheme; for a tracking server bound MLflow's HTTP timeout and retries (unless
    the user set them) and check it answers, once; both failures are one line naming the URI."""
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
    if scheme and scheme not in _SCHEMES and not (len(scheme) == 1 and sys.platform == "win32"):
        raise click.ClickException(
            f"tracking URI {uri!r}: unknown scheme {scheme!r} (use sqlite:///…, file:…, http(s)://…, "
            "postgresql://…, databricks or azureml://…)"
        )
    if scheme in ("http", "https"):
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        _probe(uri)
    return uri


def _probe(uri: str) -> None:
    import urllib.error
    import urllib.request

    timeout = float(
        os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"])
    )
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=min(timeout, 10.0)):
            return
    except urllib.error.HTTPError:
        return  # it answered (a server without /health, or behind auth): MLflow's calls will say more
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"tracking server {uri} is unreachable: {reason}") from None
