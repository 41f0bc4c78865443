"""The local run index: ``run_key_hash → run_id`` (+ experiment, tracking URI, run name) in ``outputs/cache``.

File ``<outputs>/cache/<index.file_name>`` (default ``mlflow_index.json``), the reference layout::

    {"<run_key_hash>": {"run_id": ..., "experiment_id": ..., "tracking_uri": ..., "updated_at": ...,
                        "experiment_name": ..., "run_name": ..., "last_used_at": ...}}

* Writers take the persistent lock ``mlflow_index.lock`` for the whole read-modify-write and replace the file
  atomically; readers take no lock and keep a parsed copy per file state (inode, mtime, size).
* LRU: entries are ordered by ``last_used_at`` (set on every write, and refreshed by reads at most once per
  :data:`TOUCH_INTERVAL_S` per entry), and the least recently used beyond ``max_entries`` are evicted.
* A corrupt file is moved aside (``mlflow_index.json.corrupt-<stamp>``) with a warning and rebuilt empty; the
  index is only a cache, the finder falls back to the tag search and re-populates it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from mlrig.naming import get_index_config
from mlrig.paths import infer_config_dir
from mlrig.tracking._cache_files import (
    DEFAULT_LOCK_TIMEOUT,
    cache_dir,
    locked,
    parse_time,
    quarantine,
    read_json,
    utc_now,
    write_json,
)
from mlrig.tracking.errors import TrackingError

logger = logging.getLogger(__name__)

TOUCH_INTERVAL_S: Final = 3600.0
_REQUIRED: Final = ("run_id", "experiment_id", "tracking_uri")
_StatKey = tuple[int, int, int, int]
_read_cache: dict[str, tuple[_StatKey, dict[str, dict[str, Any]]]] = {}
_read_cache_lock = threading.Lock()


def get_mlflow_index_path(root_dir: Path | str, config_dir: Path | str | None = None) -> Path:
    """``<outputs>/cache/<index.file_name>`` for the project at ``root_dir`` (no directory is created)."""
    return cache_dir(root_dir, config_dir) / str(_config(root_dir, config_dir)["file_name"])


def _config(root_dir: Path | str, config_dir: Path | str | None) -> dict[str, Any]:
    return get_index_config(infer_config_dir(config_dir, root_dir=root_dir))


def _valid_entries(data: Any, path: Path) -> dict[str, dict[str, Any]] | None:
    """The well-formed entries of ``data``; None when ``data`` is not an index at all."""
    if not isinstance(data, dict):
        return None
    entries: dict[str, dict[str, Any]] = {}
    for key, entry in data.items():
        if isinstance(entry, dict) and all(isinstance(entry.get(f), str) and entry.get(f) for f in _REQUIRED):
            entries[key] = entry
        else:
            logger.warning("dropping malformed entry %r in %s", key, path)
    return entries


def _load_for_update(path: Path) -> dict[str, dict[str, Any]]:
    data, problem = read_json(path)
    if problem is None and data is not None:
        entries = _valid_entries(data, path)
        if entries is not None:
            return entries
        problem = f"top level is {type(data).__name__}, expected an object"
    if problem is not None:
        quarantine(path, problem)
    return {}


def _recency(entry: Mapping[str, Any]) -> datetime:
    return max(parse_time(entry.get("last_used_at")), parse_time(entry.get("updated_at")))


def _evict(entries: dict[str, dict[str, Any]], max_entries: int) -> dict[str, dict[str, Any]]:
    if len(entries) <= max_entries:
        return entries
    # Ties (same timestamp) keep the later-inserted entry, so the entry just written always survives.
    ranked = sorted(
        enumerate(entries.items()), key=lambda item: (_recency(item[1][1]), item[0]), reverse=True
    )
    survivors = {key for _, (key, _entry) in ranked[:max_entries]}
    kept = {key: entry for key, entry in entries.items() if key in survivors}
    logger.debug("run index: evicted %d least recently used entries", len(entries) - len(kept))
    return kept


def _write(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    write_json(path, entries)
    with _read_cache_lock:
        _read_cache.pop(str(path), None)


def update_mlflow_index(
    root_dir: Path | str,
    run_key_hash: str,
    run_id: str,
    experiment_id: str,
    tracking_uri: str,
    config_dir: Path | str | None = None,
    max_entries: int | None = None,
    *,
    experiment_name: str | None = None,
    run_name: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> Path:
    """Record ``run_key_hash → run_id`` (upsert, LRU eviction beyond ``max_entries``); returns the index path.

    ``max_entries`` defaults to ``index.max_entries`` of ``mlflow.yaml``; with ``index.enabled: false``
    nothing is written. Raises :class:`TrackingError` when an argument is empty or the lock is not obtained.
    """
    for name, value in (
        ("run_key_hash", run_key_hash),
        ("run_id", run_id),
        ("experiment_id", experiment_id),
        ("tracking_uri", tracking_uri),
    ):
        if not isinstance(value, str) or not value:
            raise TrackingError(f"update_mlflow_index: {name} must be a non-empty string, got {value!r}")
    config = _config(root_dir, config_dir)
    path = cache_dir(root_dir, config_dir) / str(config["file_name"])
    if not config["enabled"]:
        return path
    limit = int(config["max_entries"]) if max_entries is None else max_entries
    if limit < 1:
        raise TrackingError(f"update_mlflow_index: max_entries must be >= 1, got {limit}")
    now = utc_now()
    entry: dict[str, Any] = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "tracking_uri": tracking_uri,
        "updated_at": now,
        "last_used_at": now,
    }
    if experiment_name:
        entry["experiment_name"] = experiment_name
    if run_name:
        entry["run_name"] = run_name
    with locked(path, lock_timeout):
        entries = _load_for_update(path)
        entries.pop(run_key_hash, None)
        entries[run_key_hash] = entry
        _write(path, _evict(entries, limit))
    return path


def _stat_key(path: Path) -> _StatKey | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _read_entries(path: Path) -> dict[str, dict[str, Any]]:
    """The index entries, parsed once per file state; a corrupt file reads as empty (warned once)."""
    key = _stat_key(path)
    if key is None:
        return {}
    with _read_cache_lock:
        cached = _read_cache.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1]
    data, problem = read_json(path)
    entries = _valid_entries(data, path) if problem is None else None
    if entries is None:
        logger.warning(
            "run index %s is unreadable (%s); ignoring it until the next update rebuilds it", path, problem
        )
        entries = {}
    with _read_cache_lock:
        _read_cache[str(path)] = (key, entries)
    return entries


def _same_uri(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _touch(path: Path, run_key_hash: str, run_id: str) -> None:
    """Refresh ``last_used_at`` of one entry; best effort (a busy lock or an error only skips it)."""
    try:
        with locked(path, timeout=0.5):
            entries = _load_for_update(path)
            entry = entries.get(run_key_hash)
            if entry is None or entry.get("run_id") != run_id:
                return
            entry["last_used_at"] = utc_now()
            _write(path, entries)
    except (TrackingError, OSError) as exc:
        logger.debug("run index: could not refresh %s in %s: %s", run_key_hash, path, exc)


def find_in_mlflow_index(
    root_dir: Path | str,
    run_key_hash: str,
    tracking_uri: str | None = None,
    config_dir: Path | str | None = None,
) -> dict[str, Any] | None:
    """The index entry of ``run_key_hash`` (``run_id``, ``experiment_id``, ``tracking_uri``, and
    ``experiment_name`` / ``run_name`` when recorded), or None.

    None also when the index is disabled or missing, or the entry belongs to another ``tracking_uri``. The
    entry is not checked against MLflow here (the finder does that). Never raises for a corrupt file.
    """
    if not run_key_hash:
        return None
    config = _config(root_dir, config_dir)
    if not config["enabled"]:
        return None
    path = cache_dir(root_dir, config_dir) / str(config["file_name"])
    entry = _read_entries(path).get(run_key_hash)
    if entry is None:
        return None
    if tracking_uri is not None and not _same_uri(entry["tracking_uri"], tracking_uri):
        logger.debug(
            "run index entry %s is for %s, not %s; ignoring it",
            run_key_hash,
            entry["tracking_uri"],
            tracking_uri,
        )
        return None
    if datetime.now(UTC) - _recency(entry) > timedelta(seconds=TOUCH_INTERVAL_S):
        _touch(path, run_key_hash, entry["run_id"])
    result = {k: entry[k] for k in (*_REQUIRED, "experiment_name", "run_name") if entry.get(k)}
    return result
