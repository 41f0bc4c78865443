"""Fetching a checkpoint back from the artifact store: the refit run's ``best_trial_checkpoint.tar.gz``
(written by :func:`mlrig.tracking.log_checkpoint_safe`) extracted into a local folder, atomically, so that a
stage on another machine (or after the local folder was deleted) can use it."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tarfile
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from mlrig.tracking.artifacts import ARCHIVE_ARTIFACT, ARCHIVE_EXTRACTED_PATH
from mlrig.tracking.errors import TrackingError

logger = logging.getLogger(__name__)


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):  # no absolute paths, no ``..``, no device files
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            for member in tar.getmembers():
                target = (into / member.name).resolve()
                if not target.is_relative_to(into.resolve()) or not (member.isfile() or member.isdir()):
                    raise TrackingError(f"unsafe member {member.name!r} in {archive.name}")
            tar.extractall(into)  # members checked above


def fetch_checkpoint_archive(
    client: MlflowClient,
    run_id: str,
    checkpoint_dir: Path | str,
    *,
    artifact_path: str = ARCHIVE_ARTIFACT,
    extracted_path: str = ARCHIVE_EXTRACTED_PATH,
) -> Path:
    """Download ``artifact_path`` of ``run_id`` and extract its ``<extracted_path>/`` folder as
    ``checkpoint_dir``: into a temp folder beside it, then one rename, so ``checkpoint_dir`` is
    either absent or complete. An existing ``checkpoint_dir`` is kept as is (another process fetched it
    first). Returns ``checkpoint_dir``; raises :class:`TrackingError` when the artifact cannot be had."""
    target = Path(checkpoint_dir)
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-fetch-", dir=target.parent))
    except OSError as exc:
        raise TrackingError(
            f"cannot create {target.parent} for the checkpoint of run {run_id}: {exc}"
        ) from exc
    try:
        try:
            archive = Path(client.download_artifacts(run_id, artifact_path, str(staging / "download")))
            _extract(archive, staging / "extracted")
        except Exception as exc:  # OSError, TarError and MLflow's errors (no such artifact, server down)
            raise TrackingError(f"checkpoint {artifact_path} of run {run_id}: {exc}") from exc
        folder = staging / "extracted" / extracted_path
        if not folder.is_dir():
            raise TrackingError(f"checkpoint {artifact_path} of run {run_id} has no {extracted_path}/ folder")
        try:
            folder.replace(target)  # one rename: the folder is absent or complete
        except OSError as exc:
            if not target.exists():  # not a lost race with another fetcher: a real failure
                raise TrackingError(f"cannot move the checkpoint of run {run_id} to {target}: {exc}") from exc
        logger.info("checkpoint of run %s fetched from the artifact store into %s", run_id, target)
        return target
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
