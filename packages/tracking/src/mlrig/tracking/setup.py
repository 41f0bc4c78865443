"""Tracking-URI resolution, ``setup_mlflow`` and process-safe experiment get-or-create.

Nothing here runs at import time. Only :func:`setup_mlflow` changes MLflow's process-wide state (tracking URI
and active experiment), and only because the caller asked for it; the trackers use explicit clients.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import mlflow
from filelock import FileLock
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

from mlrig.naming import load_mlflow_config
from mlrig.paths import detect_repo_root
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.retry import retry_with_backoff

logger = logging.getLogger(__name__)

EMBEDDED_DB_PATH: Final = Path("mlruns") / "mlflow.db"
EMBEDDED_ARTIFACTS_DIR: Final = Path("mlruns") / "artifacts"
AZUREML_ARTIFACTS_DEFAULT_TIMEOUT_SECONDS: Final = 600
_SQLITE_PREFIX: Final = "sqlite:///"


def embedded_tracking_uri(root_dir: Path | str) -> str:
    """``sqlite:///<root>/mlruns/mlflow.db`` (absolute, independent of the working directory)."""
    db = Path(root_dir).resolve() / EMBEDDED_DB_PATH
    return f"{_SQLITE_PREFIX}{db}"


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    path = unquote(urlsplit(tracking_uri).path)
    if not path or path == "/:memory:":
        return None
    return Path(path)


def tracking_store_path(tracking_uri: str) -> Path | None:
    """The local SQLite file of a ``sqlite:///`` tracking URI; ``None`` for a server, Databricks, Azure ML or
    an in-memory store (their durability is not mlrig's to back up)."""
    return _sqlite_path(tracking_uri)


def default_artifact_location(tracking_uri: str) -> str | None:
    """Artifact location for new experiments of a SQLite store: ``<db dir>/artifacts`` as a ``file://`` URI.

    For the embedded store that is ``<root>/mlruns/artifacts``. MLflow itself would use ``./mlruns`` of the
    *current working directory*; other backends (servers, Azure ML) decide themselves (``None``).
    """
    db = _sqlite_path(tracking_uri)
    if db is None:
        return None
    return (db.parent / "artifacts").resolve().as_uri()


def _azureml_available() -> bool:
    try:
        return importlib.util.find_spec("azureml.mlflow") is not None
    except (ImportError, ValueError):
        return False


def _azure_uri_from_config(
    config: Mapping[str, Any], ml_client: Any | None, *, fallback_to_local: bool, config_dir: Path | None
) -> str | None:
    azure = config.get("azure_ml")
    if not isinstance(azure, Mapping) or not azure.get("enabled", False):
        return None
    reason: str | None = None
    if not _azureml_available():
        reason = "the optional 'azureml-mlflow' extra is not installed"
    elif ml_client is None:
        reason = "no ml_client was given (mlrig never reads Azure credentials itself)"
    if reason is None:
        workspace_client: Any = ml_client
        try:
            name = azure.get("workspace_name") or workspace_client.workspace_name
            return str(workspace_client.workspaces.get(name=name).mlflow_tracking_uri)
        except Exception as exc:
            reason = f"workspace lookup failed: {type(exc).__name__}: {exc}"
    message = f"[{config_dir or '?'}/mlflow.yaml] azure_ml.enabled=true but {reason}"
    if not fallback_to_local:
        raise TrackingError(message + " (fallback_to_local=False)")
    logger.warning("%s; using the embedded SQLite store", message)
    return None


def resolve_tracking_uri(
    tracking_uri: str | None = None,
    *,
    root_dir: Path | str | None = None,
    config_dir: Path | str | None = None,
    ml_client: Any | None = None,
    fallback_to_local: bool = True,
) -> str:
    """The tracking URI mlrig uses, without changing any MLflow state.

    Precedence: ``tracking_uri`` argument > a URI already set in this process (``mlflow.set_tracking_uri``)
    or ``MLFLOW_TRACKING_URI`` > ``mlflow.yaml`` Azure ML (``azure_ml.enabled``, the ``azureml-mlflow``
    extra installed and an ``ml_client`` given) > the embedded ``sqlite:///<root>/mlruns/mlflow.db``
    (``root_dir`` or the detected repository root). A URI the user set is never replaced.
    """
    if tracking_uri:
        return _checked(str(tracking_uri), "tracking_uri argument", fallback_to_local, root_dir, config_dir)
    if is_tracking_uri_set():  # type: ignore[no-untyped-call]
        source = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "mlflow.set_tracking_uri"
        return _checked(mlflow.get_tracking_uri(), source, fallback_to_local, root_dir, config_dir)
    cfg_dir = Path(config_dir) if config_dir is not None else None
    azure_uri = _azure_uri_from_config(
        load_mlflow_config(cfg_dir), ml_client, fallback_to_local=fallback_to_local, config_dir=cfg_dir
    )
    if azure_uri:
        return azure_uri
    return _embedded(root_dir, config_dir)


def _embedded(root_dir: Path | str | None, config_dir: Path | str | None) -> str:
    root = Path(root_dir) if root_dir is not None else detect_repo_root(config_dir=config_dir)
    return embedded_tracking_uri(root)


def _checked(
    uri: str, source: str, fallback_to_local: bool, root_dir: Path | str | None, config_dir: Path | str | None
) -> str:
    if "azureml" in uri.lower() and not _azureml_available():
        message = f"{source}={uri!r} is an Azure ML URI but the 'azureml-mlflow' extra is not installed"
        if not fallback_to_local:
            raise TrackingError(message)
        logger.warning("%s; falling back to the embedded SQLite store", message)
        return _embedded(root_dir, config_dir)
    return uri


def _prepare_sqlite(tracking_uri: str) -> FileLock | None:
    """Create the SQLite file's directory and return the lock serialising store creation on it."""
    db = _sqlite_path(tracking_uri)
    if db is None:
        return None
    db.parent.mkdir(parents=True, exist_ok=True)
    # on local disk beside the store: creating MLflow's schema is not safe for two processes at once
    return FileLock(str(db.parent / f".{db.name}.init.lock"), timeout=300)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # directories on some filesystems
        logger.debug("fsync of %s not supported", path)
    finally:
        os.close(fd)


def _create_store(db: Path) -> None:
    """Create and migrate a new SQLite store on a temp file and move it into place (caller holds the lock)."""
    for stale in db.parent.glob(f"{glob.escape(db.name)}.tmp-*"):
        logger.warning("removing %s, left by a store creation that was killed", stale)
        stale.unlink(missing_ok=True)
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore  # deferred: a heavy import

    tmp = db.with_name(f"{db.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp_uri = f"{_SQLITE_PREFIX}{tmp}"
    store = SqlAlchemyStore(tmp_uri, default_artifact_location(f"{_SQLITE_PREFIX}{db}"))  # type: ignore[no-untyped-call]
    store.engine.dispose()  # closes the temp file before it is renamed
    vars(SqlAlchemyStore).get("_engine_map", {}).pop(tmp_uri, None)
    _fsync(tmp)
    tmp.replace(db)
    _fsync(db.parent)
    logger.info("created MLflow store %s", db)


def _has_store(db: Path) -> bool:
    # an empty file (a connect created it, then a crash) holds no store: it is replaced like a missing one
    try:
        return db.stat().st_size > 0
    except FileNotFoundError:
        return False


def ensure_tracking_store(tracking_uri: str) -> None:
    """Create the SQLite store of ``tracking_uri`` when it does not exist yet; other URIs are left alone.

    Crash-safe and exclusive: under a file lock beside the store, the schema is created and migrated on
    ``<name>.tmp-<pid>-<hex>`` and ``os.replace``d into place, so a process killed midway leaves no
    half-migrated store (its temp file is removed by the next creator) and concurrent creators wait for the
    first one. A store that exists is used as is; an empty file is replaced like a missing store.
    """
    db = _sqlite_path(tracking_uri)
    if db is None or _has_store(db):
        return
    lock = _prepare_sqlite(tracking_uri)
    if lock is None:
        return
    with lock:
        if not _has_store(db):
            _create_store(db)


def tracking_client(tracking_uri: str) -> MlflowClient:
    """``MlflowClient(tracking_uri)``; a SQLite store is created first by :func:`ensure_tracking_store`."""
    ensure_tracking_store(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


def get_or_create_experiment(
    name: str,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    artifact_location: str | None = None,
    tags: Mapping[str, str] | None = None,
    max_retries: int = 3,
    base_delay: float = 0.5,
) -> str:
    """The id of experiment ``name``, created when missing; safe when several processes create it at once.

    A concurrent creation (``RESOURCE_ALREADY_EXISTS``) is resolved by reading the winner's id. A *deleted*
    experiment of that name raises :class:`TrackingError` (restore it or pick another name). New experiments
    in a SQLite store get ``artifact_location`` or :func:`default_artifact_location`. Transient failures are
    retried; what remains raises :class:`TrackingError` naming the experiment and URI.
    """
    if not isinstance(name, str) or not name.strip():
        raise TrackingError(f"experiment name must be a non-empty string, got {name!r}")
    uri = tracking_uri or (client.tracking_uri if client is not None else resolve_tracking_uri())
    mlflow_client = client or tracking_client(uri)
    location = artifact_location or default_artifact_location(uri)

    def attempt() -> str:
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(
                    mlflow_client.create_experiment(
                        name, artifact_location=location, tags=dict(tags) if tags else None
                    )
                )
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = mlflow_client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise TrackingError(
                f"experiment {name!r} (id {found.experiment_id}) at {uri} is deleted; "
                "restore it or use another name"
            )
        return str(found.experiment_id)

    lock = _prepare_sqlite(uri)
    try:
        if lock is not None:
            with lock:
                return retry_with_backoff(
                    attempt, max_retries, base_delay, operation_name=f"get_or_create_experiment({name!r})"
                )
        return retry_with_backoff(
            attempt, max_retries, base_delay, operation_name=f"get_or_create_experiment({name!r})"
        )
    except TrackingError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"could not get or create experiment {name!r} at {uri}: {type(exc).__name__}: {exc}"
        ) from exc


def setup_mlflow(
    experiment_name: str | None = None,
    ml_client: Any | None = None,
    tracking_uri: str | None = None,
    fallback_to_local: bool = True,
    *,
    root_dir: Path | str | None = None,
    config_dir: Path | str | None = None,
) -> str:
    """Point MLflow's fluent API at the resolved tracking URI and experiment; return the URI.

    ``experiment_name`` defaults to ``MLFLOW_EXPERIMENT_NAME``; URI precedence is
    :func:`resolve_tracking_uri`'s.
    This is the one mlrig function that sets MLflow's process-wide URI and experiment, because that is what
    it is for; it sets ``AZUREML_ARTIFACTS_DEFAULT_TIMEOUT=600`` (when unset) for Azure ML URIs only.
    """
    name = experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        raise TrackingError("experiment_name must be provided or MLFLOW_EXPERIMENT_NAME must be set")
    uri = resolve_tracking_uri(
        tracking_uri,
        root_dir=root_dir,
        config_dir=config_dir,
        ml_client=ml_client,
        fallback_to_local=fallback_to_local,
    )
    experiment_id = get_or_create_experiment(name, tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    if "azureml" in uri.lower():
        os.environ.setdefault(
            "AZUREML_ARTIFACTS_DEFAULT_TIMEOUT", str(AZUREML_ARTIFACTS_DEFAULT_TIMEOUT_SECONDS)
        )
    logger.info("MLflow tracking at %s, experiment %r (id %s)", uri, name, experiment_id)
    return uri
