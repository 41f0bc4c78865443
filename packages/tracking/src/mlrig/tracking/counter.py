"""The run-name version counter: unique, increasing versions per counter key, shared by processes.

File ``<outputs>/cache/run_name_counter.json`` (lock ``run_name_counter.lock``, never deleted)::

    {"schema_version": 2,
     "counters": {"<counter_key>": {"last_version": 3,
                                    "allocations": [{"version": 3, "run_id": ..., "status": "reserved",
                                                     "reserved_at": ..., "committed_at": null,
                                                     "expired_at": null}]}}}

* ``last_version`` is a high-water mark: a version is handed out once and never again, whatever happens to
  its reservation (committed, expired, pruned). Gaps are normal.
* The file stays small (every operation rewrites it): per key it keeps open reservations, expired ones until
  ``cleanup_stale_reservations(retention_days=...)`` prunes them, and the last :data:`COMMITTED_HISTORY`
  committed versions as an audit trail.
* Every operation is a locked read-modify-write with an atomic replace; a lock that cannot be obtained
  raises :class:`~mlrig.tracking.errors.TrackingError` instead of writing unlocked.
* Timestamps are timezone-aware UTC. A reference file (``{"allocations": [...]}``) is read and converted.
* A corrupt file is moved aside with a warning and rebuilt; the high-water marks still legible in it are
  salvaged so no version that may have been used is handed out again.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

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

COUNTER_FILE_NAME: Final = "run_name_counter.json"
DEFAULT_STALE_MINUTES: Final = 30
SCHEMA_VERSION: Final = 2
COMMITTED_HISTORY: Final = 20
_PENDING_PREFIX: Final = "pending"
_SALVAGE_NEW = re.compile(r'"((?:[^"\\]|\\.)+)"\s*:\s*\{\s*"last_version"\s*:\s*(\d+)')
_SALVAGE_OLD = re.compile(r'"counter_key"\s*:\s*"((?:[^"\\]|\\.)+)"\s*,\s*"version"\s*:\s*(\d+)')

_Counters = dict[str, dict[str, Any]]


def get_run_name_counter_path(root_dir: Path | str, config_dir: Path | str | None = None) -> Path:
    """``<outputs>/cache/run_name_counter.json`` for the project at ``root_dir`` (no directory is created)."""
    return cache_dir(root_dir, config_dir) / COUNTER_FILE_NAME


def _from_reference(allocations: list[Any]) -> _Counters:
    counters: _Counters = {}
    for alloc in allocations:
        if not isinstance(alloc, dict) or not isinstance(alloc.get("counter_key"), str):
            continue
        if not _is_int(alloc.get("version")):
            continue
        version = alloc["version"]
        slot = counters.setdefault(alloc["counter_key"], {"last_version": 0, "allocations": []})
        slot["last_version"] = max(slot["last_version"], version)
        slot["allocations"].append({k: v for k, v in alloc.items() if k != "counter_key"})
    return counters


def _parse(data: Any) -> _Counters | None:
    if not isinstance(data, dict):
        return None
    if "counters" not in data and isinstance(data.get("allocations"), list):
        return _from_reference(data["allocations"])
    counters = data.get("counters")
    if not isinstance(counters, dict):
        return None
    for slot in counters.values():
        if (
            not isinstance(slot, dict)
            or not _is_int(slot.get("last_version"))
            or not isinstance(slot.get("allocations"), list)
        ):
            return None
        if not all(isinstance(a, dict) and _is_int(a.get("version")) for a in slot["allocations"]):
            return None
    return counters


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _salvage(path: Path) -> _Counters:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    counters: _Counters = {}
    for pattern in (_SALVAGE_NEW, _SALVAGE_OLD):
        for match in pattern.finditer(text):
            try:
                key = json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue
            version = int(match.group(2))
            slot = counters.setdefault(key, {"last_version": 0, "allocations": []})
            slot["last_version"] = max(slot["last_version"], version)
    return counters


def _load(path: Path) -> _Counters:
    data, problem = read_json(path)
    if problem is None and data is None:
        return {}
    if problem is None:
        counters = _parse(data)
        if counters is not None:
            return counters
        problem = "not a run-name counter file"
    salvaged = _salvage(path)
    quarantine(path, problem)
    if salvaged:
        logger.warning(
            "salvaged version high-water marks for %d counter keys from %s", len(salvaged), path.name
        )
    return salvaged


def _save(path: Path, counters: _Counters) -> None:
    write_json(path, {"schema_version": SCHEMA_VERSION, "counters": counters})


def _trim_history(slot: dict[str, Any]) -> None:
    committed = sorted(a["version"] for a in slot["allocations"] if a.get("status") == "committed")
    if len(committed) > COMMITTED_HISTORY:
        cutoff = committed[-COMMITTED_HISTORY]
        slot["allocations"] = [
            a for a in slot["allocations"] if a.get("status") != "committed" or a["version"] >= cutoff
        ]


def _check_key(counter_key: str) -> None:
    if not isinstance(counter_key, str) or not counter_key:
        raise TrackingError(f"counter_key must be a non-empty string, got {counter_key!r}")


def reserve_run_name_version(
    counter_key: str,
    run_id: str | None,
    root_dir: Path | str,
    config_dir: Path | str | None = None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> int:
    """Reserve the next version for ``counter_key`` (from ``mlrig.naming.build_counter_key``) and return it.

    Versions are unique and increasing per key across processes. Reserving again with the same ``run_id``
    while its reservation is still open returns the same version; ``run_id=None`` always gets a fresh one.
    Raises :class:`TrackingError` when the lock is not obtained within ``lock_timeout`` seconds.
    """
    _check_key(counter_key)
    owner = run_id or f"{_PENDING_PREFIX}-{uuid.uuid4().hex}"
    path = get_run_name_counter_path(root_dir, config_dir)
    with locked(path, lock_timeout):
        counters = _load(path)
        slot = counters.setdefault(counter_key, {"last_version": 0, "allocations": []})
        if run_id:
            for alloc in slot["allocations"]:
                if alloc.get("run_id") == run_id and alloc.get("status") == "reserved":
                    return int(alloc["version"])
        versions = [a.get("version") for a in slot["allocations"] if isinstance(a.get("version"), int)]
        version: int = max([int(slot["last_version"]), *versions]) + 1
        slot["last_version"] = version
        slot["allocations"].append(
            {
                "version": version,
                "run_id": owner,
                "status": "reserved",
                "reserved_at": utc_now(),
                "committed_at": None,
                "expired_at": None,
            }
        )
        _save(path, counters)
    logger.debug("reserved version %d of %s for %s", version, counter_key, owner)
    return version


def commit_run_name_version(
    counter_key: str,
    run_id: str,
    version: int,
    root_dir: Path | str,
    config_dir: Path | str | None = None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> bool:
    """Mark ``version`` of ``counter_key`` as used by ``run_id``; True when it is (now) committed to it.

    A reservation that was expired meanwhile is still committed (its version was never handed out again).
    Committing again for the same run is a no-op returning True; False (with a warning) when the version was
    never reserved, was pruned from the history, or is committed to another run.
    """
    _check_key(counter_key)
    if not isinstance(run_id, str) or not run_id:
        raise TrackingError(f"commit_run_name_version: run_id must be a non-empty string, got {run_id!r}")
    path = get_run_name_counter_path(root_dir, config_dir)
    with locked(path, lock_timeout):
        counters = _load(path)
        slot = counters.get(counter_key)
        alloc = None
        if slot is not None:
            alloc = next((a for a in slot["allocations"] if a.get("version") == version), None)
        if slot is None or alloc is None:
            logger.warning(
                "no reservation of version %s for %s in %s; nothing committed", version, counter_key, path
            )
            return False
        if alloc.get("status") == "committed":
            if alloc.get("run_id") == run_id:
                return True
            logger.warning(
                "version %s of %s is already committed to run %s, not %s",
                version,
                counter_key,
                alloc["run_id"],
                run_id,
            )
            return False
        if alloc.get("status") == "expired":
            logger.info("committing version %s of %s after its reservation expired", version, counter_key)
        alloc.update(status="committed", committed_at=utc_now())
        if not (
            run_id.startswith(_PENDING_PREFIX)
            and not str(alloc.get("run_id", "")).startswith(_PENDING_PREFIX)
        ):
            alloc["run_id"] = run_id
        _trim_history(slot)
        _save(path, counters)
    return True


def cleanup_stale_reservations(
    root_dir: Path | str,
    config_dir: Path | str | None = None,
    stale_minutes: float = DEFAULT_STALE_MINUTES,
    *,
    retention_days: float | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> int:
    """Expire reservations open for more than ``stale_minutes``; returns how many were expired.

    Expired versions are never handed out again. With ``retention_days``, committed and expired allocations
    older than that are pruned from the file (the per-key high-water mark stays). No file: 0, nothing created.
    """
    if stale_minutes < 0:
        raise TrackingError(f"stale_minutes must be >= 0, got {stale_minutes}")
    path = get_run_name_counter_path(root_dir, config_dir)
    if not path.exists():
        return 0
    now = datetime.now(UTC)
    stale_before = now - timedelta(minutes=stale_minutes)
    prune_before = None if retention_days is None else now - timedelta(days=retention_days)
    expired = pruned = 0
    with locked(path, lock_timeout):
        counters = _load(path)
        for slot in counters.values():
            kept: list[dict[str, Any]] = []
            for alloc in slot["allocations"]:
                if alloc.get("status") == "reserved" and parse_time(alloc.get("reserved_at")) < stale_before:
                    alloc.update(status="expired", expired_at=now.isoformat())
                    expired += 1
                stamp = alloc.get("committed_at") or alloc.get("expired_at") or alloc.get("reserved_at")
                if (
                    prune_before is not None
                    and alloc.get("status") != "reserved"
                    and parse_time(stamp) < prune_before
                ):
                    pruned += 1
                    continue
                kept.append(alloc)
            slot["allocations"] = kept
        if expired or pruned:
            _save(path, counters)
    if expired or pruned:
        logger.info("run-name counter %s: expired %d stale reservations, pruned %d", path, expired, pruned)
    return expired
