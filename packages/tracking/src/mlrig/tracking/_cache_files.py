"""Shared plumbing of the run index and the version counter: location, lock, load-or-quarantine, timestamps.

The lock file (``<name>.lock`` beside the data file) is never deleted: deleting it after unlocking let two
processes hold "the" lock at once in the reference. Writers hold the lock for the whole read-modify-write and
write through ``mlrig.paths.atomic_write_json`` (unique temp name, fsync, ``os.replace``), so readers
that take no lock always see a complete file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from filelock import FileLock, Timeout

from mlrig.paths import atomic_write_text, resolve_output_path
from mlrig.tracking.errors import TrackingError

logger = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT: Final = 10.0
# Hold times are ~1-3 ms; filelock's default 50 ms poll would leave the lock idle under contention.
_POLL_INTERVAL_S: Final = 0.002
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def cache_dir(root_dir: Path | str, config_dir: Path | str | None) -> Path:
    """``<outputs>/cache`` of the project at ``root_dir`` (config: ``config_dir`` or ``<root_dir>/config``).

    Nothing is created: directories appear with the first write.
    """
    return resolve_output_path(root_dir, config_dir, "cache")


def lock_path(path: Path) -> Path:
    """The persistent lock file guarding ``path`` (``mlflow_index.json`` → ``mlflow_index.lock``)."""
    return path.with_suffix(".lock")


@contextmanager
def locked(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the inter-process lock of ``path``; after ``timeout`` s raise :class:`TrackingError`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(path), timeout=timeout, poll_interval=_POLL_INTERVAL_S)
    try:
        lock.acquire()
    except Timeout as exc:
        raise TrackingError(
            f"could not lock {lock_path(path)} within {timeout:g}s to update {path}; "
            "another process holds it (nothing was written)"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string (timezone-aware, comparable across machines)."""
    return datetime.now(UTC).isoformat()


def parse_time(value: object) -> datetime:
    """An ISO timestamp as aware UTC; naive values (reference files) are local time; junk → the epoch."""
    if not isinstance(value, str):
        return _EPOCH
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return _EPOCH
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.astimezone(UTC)


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(data, None)`` for readable JSON, ``(None, None)`` when missing, ``(None, reason)`` when corrupt."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable: {exc}"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"


def write_json(path: Path, obj: Any) -> None:
    """Atomically replace ``path`` with compact JSON (C encoder: the file is rewritten on every update)."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def quarantine(path: Path, reason: str) -> Path | None:
    """Move a corrupt ``path`` aside as ``<name>.corrupt-<UTC stamp>`` (call with the lock held); warn."""
    target = path.with_name(f"{path.name}.corrupt-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}")
    try:
        path.replace(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning(
            "%s is corrupt (%s) and could not be moved aside (%s); rebuilding it", path, reason, exc
        )
        return None
    logger.warning("%s was corrupt (%s); moved it to %s and rebuilt it", path, reason, target.name)
    return target
