"""Checkpoint archives and artifact uploads with retries and predictable artifact paths.

Artifact-path rule (the reference produced ``metrics.json/metrics.json``): MLflow's ``artifact_path`` is a
*folder*. mlrig keeps that, with one exception that makes file-like targets do what they say: when the last
component of ``artifact_path`` has the same suffix as the local file (``metrics.json`` for ``out/m.json``,
``best.tar.gz`` for ``ckpt_x1.tar.gz``) it is the file's full artifact path, and the file is stored under
exactly that name. A folder is uploaded as a folder named like the local one unless ``artifact_path``
is given.

Archive skip rules (``create_checkpoint_archive``), all reported in the manifest's ``skipped`` list, never by
size:

* directories named ``__pycache__``, ``.cache``, ``.ipynb_checkpoints``, ``.git``;
* files whose name ends with ``.pyc``, ``.pyo``, ``.tmp`` (temporaries of atomic writes) or ``.lock``;
* symlinks to directories, symlinks that resolve outside ``checkpoint_dir`` and non-regular files (sockets,
  FIFOs). Symlinks to files inside ``checkpoint_dir`` are archived as regular files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import mlflow
from mlflow.tracking import MlflowClient

from mlrig.paths import atomic_write_json
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.retry import RetryPolicy
from mlrig.tracking.setup import tracking_client

logger = logging.getLogger(__name__)

ARCHIVE_EXTRACTED_PATH: Final = "best_trial_checkpoint"
SKIPPED_DIR_NAMES: Final = frozenset({"__pycache__", ".cache", ".ipynb_checkpoints", ".git"})
SKIPPED_FILE_SUFFIXES: Final = (".pyc", ".pyo", ".tmp", ".lock")
ARCHIVE_ARTIFACT: Final = "best_trial_checkpoint.tar.gz"


def _full_suffix(name: str) -> str:
    """``.tar.gz`` for ``x.tar.gz``, ``.json`` for ``a.b.json`` (two-part only for compressed tarballs)."""
    lower = name.lower()
    for double in (".tar.gz", ".tar.bz2", ".tar.xz"):
        if lower.endswith(double):
            return double
    return Path(name).suffix.lower()


def _iter_checkpoint(root: Path, skipped: list[dict[str, str]]) -> Iterator[tuple[Path, str]]:
    """Yield ``(file, relative posix path)`` sorted, recording every skipped entry with its reason."""
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(current)
        rel_base = base.relative_to(root)
        keep_dirs = []
        for name in sorted(dirnames):
            rel = (rel_base / name).as_posix()
            if name in SKIPPED_DIR_NAMES:
                skipped.append({"path": rel + "/", "reason": f"directory name {name!r} is skipped"})
            elif (base / name).is_symlink():
                skipped.append({"path": rel + "/", "reason": "symlinked directory (not followed)"})
            else:
                keep_dirs.append(name)
        dirnames[:] = keep_dirs
        for name in sorted(filenames):
            path = base / name
            rel = (rel_base / name).as_posix()
            if name.lower().endswith(SKIPPED_FILE_SUFFIXES):
                skipped.append({"path": rel, "reason": f"file suffix in {list(SKIPPED_FILE_SUFFIXES)}"})
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    skipped.append({"path": rel, "reason": f"symlink to {target} outside the checkpoint"})
                    continue
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise TrackingError(f"cannot read checkpoint file {path}: {exc}") from exc
            if not stat.S_ISREG(mode):
                skipped.append({"path": rel, "reason": "not a regular file"})
                continue
            yield path, rel


def create_checkpoint_archive(
    checkpoint_dir: Path | str,
    trial_number: int | None = None,
    output_path: Path | str | None = None,
    *,
    extracted_path: str = ARCHIVE_EXTRACTED_PATH,
    compresslevel: int = 6,
) -> tuple[Path, dict[str, Any]]:
    """Stream ``checkpoint_dir`` into a ``tar.gz``; return ``(archive path, manifest)``.

    Members are ``<extracted_path>/<relative path>``. The archive is written to a temp file beside its target
    and renamed into place (``output_path``, default: a new ``.<dir name>.<random>.tar.gz`` next to
    ``checkpoint_dir``, i.e. on the same disk, not the system temp dir). Skipped entries (module docstring)
    are listed in ``manifest["skipped"]``; there is no size limit. A file that cannot be read raises
    :class:`TrackingError` naming it.
    """
    root = Path(checkpoint_dir).resolve()
    if not root.is_dir():
        raise TrackingError(f"checkpoint_dir {root} is not a directory")
    if output_path is None:
        fd, name = tempfile.mkstemp(prefix=f".{root.name}.", suffix=".tar.gz", dir=root.parent)
        os.close(fd)
        target = Path(name)
    else:
        target = Path(output_path).resolve()
        if target.is_relative_to(root):
            raise TrackingError(f"output_path {target} is inside checkpoint_dir {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    files: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz", compresslevel=compresslevel) as tar,
        ):
            for path, rel in _iter_checkpoint(root, skipped):
                try:
                    with path.open("rb") as fh:
                        info = tar.gettarinfo(fileobj=fh, arcname=f"{extracted_path}/{rel}")
                        info.mode = 0o644
                        tar.addfile(info, fh)
                except OSError as exc:
                    raise TrackingError(f"cannot archive checkpoint file {path}: {exc}") from exc
                files.append({"path": rel, "size": info.size})
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if output_path is None:
            target.unlink(missing_ok=True)
        raise
    for entry in skipped:
        logger.info("checkpoint archive %s: skipped %s (%s)", target.name, entry["path"], entry["reason"])
    manifest: dict[str, Any] = {
        "trial_number": trial_number,
        "archive_format": "tar.gz",
        "extracted_path": extracted_path,
        "files": files,
        "file_count": len(files),
        "total_size": sum(int(f["size"]) for f in files),
        "skipped": skipped,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return target, manifest


# --------------------------------------------------------------------------------------------------
# uploads
# ----------------------------------------------------------------------------------------------------


def _resolve_run(
    run_id: str | None, client: MlflowClient | None, tracking_uri: str | None
) -> tuple[str, MlflowClient]:
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise TrackingError("no run_id given and no active MLflow run")
        run_id = active.info.run_id
    if client is None:
        client = tracking_client(tracking_uri or mlflow.get_tracking_uri())
    return run_id, client


@dataclass(frozen=True)
class _Dest:
    """Where an upload goes and how it is retried: the arguments every upload takes."""

    run_id: str | None
    client: MlflowClient | None
    tracking_uri: str | None
    retry: RetryPolicy | None
    max_retries: int
    base_delay: float

    def upload(
        self, caller: str, local: Path, what: str, target: str, send: Callable[[MlflowClient, str], None]
    ) -> bool:
        """Resolve the run, then ``send(client, run_id)`` with retries; False (logged) on any failure."""
        try:
            rid, client = _resolve_run(self.run_id, self.client, self.tracking_uri)
        except TrackingError as exc:
            logger.warning("%s(%s): %s", caller, local, exc)
            return False
        operation = f"upload {what} to run {rid} as {target}"
        policy = self.retry or RetryPolicy(max_retries=self.max_retries, base_delay=self.base_delay)
        try:
            policy.call(lambda: send(client, rid), operation)
        except Exception as exc:
            logger.warning(
                "artifact upload failed (training continues): %s: %s: %s", operation, type(exc).__name__, exc
            )
            return False
        return True

    def upload_file(self, caller: str, local: Path, folder: str | None, name: str) -> bool:
        """Store the file ``local`` as ``<folder>/<name>`` (staged under ``name`` when its own differs)."""
        if not local.is_file():
            logger.warning("%s: %s does not exist or is not a file", caller, local)
            return False
        target = f"{(folder + '/') if folder else ''}{name}"
        if name == local.name:
            return self.upload(
                caller, local, str(local), target, lambda c, rid: c.log_artifact(rid, str(local), folder)
            )
        with _renamed(local, name) as staged:
            return self.upload(
                caller, local, str(local), target, lambda c, rid: c.log_artifact(rid, str(staged), folder)
            )


def _split_file_target(local: Path, artifact_path: str | None) -> tuple[str | None, str]:
    """``(folder, file name)`` the file is stored as (see the module's artifact-path rule)."""
    if not artifact_path:
        return None, local.name
    clean = artifact_path.strip("/")
    head, _, last = clean.rpartition("/")
    if last and _full_suffix(last) and _full_suffix(last) == _full_suffix(local.name):
        return (head or None), last
    return clean, local.name


def log_artifact_safe(
    local_path: Path | str,
    artifact_path: str | None = None,
    run_id: str | None = None,
    max_retries: int = 5,
    base_delay: float = 2.0,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """Upload one file (a folder goes to :func:`log_artifacts_safe`); True on success, never raises for
    tracking failures. ``run_id=None`` uses the active run. See the module docstring for ``artifact_path``.
    """
    local = Path(local_path)
    if local.is_dir():
        return log_artifacts_safe(
            local,
            artifact_path,
            run_id,
            max_retries,
            base_delay,
            tracking_uri=tracking_uri,
            client=client,
            retry=retry,
        )
    dest = _Dest(run_id, client, tracking_uri, retry, max_retries, base_delay)
    return dest.upload_file("log_artifact_safe", local, *_split_file_target(local, artifact_path))


@contextlib.contextmanager
def _renamed(local: Path, name: str) -> Iterator[Path]:
    """``local`` visible as ``name`` in a private temp dir on the same disk (hard link, else a copy)."""
    staging = Path(tempfile.mkdtemp(prefix=".mlrig-upload-", dir=local.parent))
    staged = staging / name
    try:
        try:
            os.link(local, staged)
        except OSError:
            shutil.copy2(local, staged)
        yield staged
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def log_artifacts_safe(
    local_dir: Path | str,
    artifact_path: str | None = None,
    run_id: str | None = None,
    max_retries: int = 5,
    base_delay: float = 2.0,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """Upload a folder as a folder: its files land under ``artifact_path`` (default: the folder's name)."""
    local = Path(local_dir)
    if not local.is_dir():
        logger.warning("log_artifacts_safe: %s is not a directory", local)
        return False
    target = (artifact_path or local.name).strip("/") or None
    dest = _Dest(run_id, client, tracking_uri, retry, max_retries, base_delay)
    return dest.upload(
        "log_artifacts_safe",
        local,
        f"folder {local}",
        f"{target or '<root>'}/",
        lambda c, rid: c.log_artifacts(rid, str(local), target),
    )


def _manifest_name(archive_name: str) -> str:
    suffix = _full_suffix(archive_name)
    stem = archive_name[: -len(suffix)] if suffix else archive_name
    return f"{stem}_manifest.json"


def upload_checkpoint_archive(
    archive_path: Path | str,
    manifest: dict[str, Any] | None = None,
    artifact_path: str | None = None,
    run_id: str | None = None,
    max_retries: int = 5,
    base_delay: float = 2.0,
    cleanup_on_failure: bool = True,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """Upload an archive as the file ``artifact_path`` (default ``best_trial_checkpoint.tar.gz``) and its
    manifest beside it as ``<stem>_manifest.json``. True only when both (or the archive, without a manifest)
    were stored. ``cleanup_on_failure`` deletes the local archive when its upload failed.
    """
    archive = Path(archive_path)
    target = (artifact_path or ARCHIVE_ARTIFACT).strip("/")
    if not _full_suffix(target.rpartition("/")[2]):
        target = f"{target}/{ARCHIVE_ARTIFACT}"  # a folder was given
    folder, _, name = target.rpartition("/")
    dest = _Dest(run_id, client, tracking_uri, retry, max_retries, base_delay)
    if not dest.upload_file("upload_checkpoint_archive", archive, folder or None, name):
        if cleanup_on_failure:
            archive.unlink(missing_ok=True)
        return False
    if manifest is None:
        return True
    staging = Path(tempfile.mkdtemp(prefix=".mlrig-manifest-", dir=archive.parent))
    try:
        manifest_file = staging / _manifest_name(name)
        atomic_write_json(manifest_file, manifest)
        return dest.upload_file(
            "upload_checkpoint_archive", manifest_file, folder or None, manifest_file.name
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def log_checkpoint_safe(
    checkpoint_dir: Path | str,
    artifact_path: str = "checkpoint.tar.gz",
    trial_number: int | None = None,
    run_id: str | None = None,
    *,
    tracking_uri: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
    extracted_path: str = ARCHIVE_EXTRACTED_PATH,
) -> bool:
    """Archive ``checkpoint_dir`` and upload it (+ manifest); the local archive is always removed."""
    try:
        archive, manifest = create_checkpoint_archive(
            checkpoint_dir, trial_number, extracted_path=extracted_path
        )
    except (TrackingError, OSError) as exc:
        logger.warning("could not archive checkpoint %s: %s", checkpoint_dir, exc)
        return False
    try:
        return upload_checkpoint_archive(
            archive, manifest, artifact_path, run_id, tracking_uri=tracking_uri, client=client, retry=retry
        )
    finally:
        archive.unlink(missing_ok=True)
