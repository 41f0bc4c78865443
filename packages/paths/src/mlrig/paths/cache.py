"""Dual-strategy cache files: a timestamped record, a ``latest`` copy and a bounded index, per cache type."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrig.paths.config import PathsConfig, config_for, load_paths_config
from mlrig.paths.errors import PathsError
from mlrig.paths.files import atomic_write_json, thaw
from mlrig.paths.layout import resolve_output_path
from mlrig.paths.normalize import normalize_component

logger = logging.getLogger(__name__)

_PATTERN_KEYS = {
    "best_configurations": "best_config_file",
    "final_training": "final_training_cache_file",
    "best_model_selection": "best_model_selection_cache_file",
}
# Every name the reference patterns use for the run identifier.
_IDENTIFIER_ALIASES = ("{trial}", "{run_id}", "{identifier}")
_PLACEHOLDER = re.compile(r"{([^{}]*)}")


def _local_config(
    root_dir: Path | str, config_dir: Path | str | None, config: PathsConfig | None
) -> PathsConfig:
    # Cache files are local bookkeeping: they live under the local outputs directory on every platform.
    return config_for(root_dir, config_dir, "local", config)


def get_cache_strategy_config(
    config_dir: Path | str | None, cache_type: str, *, config: PathsConfig | None = None
) -> dict[str, Any]:
    """``cache_strategies.<cache_type>`` as a plain dict, with every part enabled by default; ``config`` is
    the run's loaded paths config (else ``<config_dir>/paths.yaml`` is loaded now)."""
    loaded = config if config is not None else load_paths_config(config_dir)
    strategy = thaw(loaded.cache_strategies.get(cache_type, {}))
    for part in ("timestamped", "latest", "index"):
        section = strategy.get(part)
        strategy[part] = {"enabled": True} if not isinstance(section, dict) else {"enabled": True, **section}
    strategy.setdefault("strategy", "dual")
    return dict(strategy)


def _cache_dir(root_dir: Path | str, config: PathsConfig, cache_type: str) -> Path:
    return resolve_output_path(
        root_dir, None, "cache", subcategory=cache_type, storage_env="local", config=config
    )


def _latest_name(strategy: Mapping[str, Any], cache_type: str) -> str:
    return str(strategy["latest"].get("filename") or f"latest_{cache_type}.json")


def _index_name(strategy: Mapping[str, Any], cache_type: str) -> str:
    return str(strategy["index"].get("filename") or f"{cache_type}_index.json")


def _safe_name(name: str, cache_dir: Path) -> str:
    if not name or name in (".", "..") or re.search(r"[/\\\x00]", name):
        raise PathsError(f"cache file name {name!r} is not a plain file name inside {cache_dir}")
    return name


def get_cache_file_path(
    root_dir: Path | str,
    config_dir: Path | str | None,
    cache_type: str,
    filename: str | None = None,
    file_type: str | None = None,
    *,
    config: PathsConfig | None = None,
) -> Path:
    """A file in the cache directory of ``cache_type``: ``filename`` as given, or the ``latest`` (default)
    or ``index`` file of its strategy. Always a file path, never the directory."""
    local_config = _local_config(root_dir, config_dir, config)
    cache_dir = _cache_dir(root_dir, local_config, cache_type)
    if filename is not None:
        return cache_dir / _safe_name(filename, cache_dir)
    strategy = get_cache_strategy_config(None, cache_type, config=local_config)
    if file_type in (None, "latest"):
        return cache_dir / _latest_name(strategy, cache_type)
    if file_type == "index":
        return cache_dir / _index_name(strategy, cache_type)
    raise PathsError(f"file_type must be 'latest' or 'index', got {file_type!r} (pass filename= for others)")


def get_timestamped_cache_filename(
    config_dir: Path | str | None,
    cache_type: str,
    backbone: str,
    identifier: str,
    timestamp: str,
    *,
    config: PathsConfig | None = None,
) -> str:
    """``<pattern>`` of ``cache_type`` with normalised backbone, identifier and timestamp."""
    config = config if config is not None else load_paths_config(config_dir)
    strategy = config.cache_strategies.get(cache_type, {})
    timestamped = strategy.get("timestamped") if isinstance(strategy, Mapping) else None
    pattern = (timestamped or {}).get("pattern") or config.patterns.get(_PATTERN_KEYS.get(cache_type, ""))
    pattern = str(pattern or f"{cache_type}_{{backbone}}_{{identifier}}_{{timestamp}}.json")
    values = {
        "backbone": normalize_component(backbone, config.normalize),
        "identifier": normalize_component(identifier, config.normalize),
        "timestamp": normalize_component(timestamp, config.normalize),
    }
    for alias in _IDENTIFIER_ALIASES:
        pattern = pattern.replace(alias, "{identifier}")
    unknown = set(_PLACEHOLDER.findall(pattern)) - set(values)
    if unknown:
        raise PathsError(
            f"cache file pattern {pattern!r} for {cache_type!r} has unknown placeholders {unknown}"
        )
    return normalize_component(_PLACEHOLDER.sub(lambda m: values[m.group(1)], pattern), config.normalize)


def _now_iso() -> str:
    from datetime import datetime  # deferred: only writers need it

    return datetime.now().isoformat()


def _read_json(path: Path) -> Any:
    """JSON at ``path``; None (with a warning) when missing, unreadable or corrupt."""
    import json  # deferred: only cache readers need it

    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable cache file %s: %s", path, exc)
        return None


def _read_index(path: Path) -> list[dict[str, Any]]:
    data = _read_json(path)
    if data is None:
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        logger.warning("cache index %s has no 'entries' list; starting a new index", path)
        return []
    return [e for e in entries if isinstance(e, dict)]


def _unique(cache_dir: Path, name: str) -> Path:
    # Two saves in the same second with the same identity must not overwrite each other.
    candidate = cache_dir / name
    stem, dot, ext = name.rpartition(".")
    n = 1
    while candidate.exists():
        candidate = cache_dir / (f"{stem}_{n}.{ext}" if dot else f"{name}_{n}")
        n += 1
    return candidate


def _prune(cache_dir: Path, keep: int, protected: set[str]) -> None:
    files = sorted(
        (p for p in cache_dir.glob("*.json") if p.name not in protected),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )
    for old in files[: max(0, len(files) - keep)]:
        old.unlink(missing_ok=True)
        logger.info("removed old cache file %s (max_files=%d)", old, keep)


def save_cache_with_dual_strategy(
    root_dir: Path | str,
    config_dir: Path | str | None,
    cache_type: str,
    data: Mapping[str, Any],
    backbone: str,
    identifier: str,
    timestamp: str,
    additional_metadata: Mapping[str, Any] | None = None,
    *,
    config: PathsConfig | None = None,
) -> tuple[Path | None, Path | None, Path | None]:
    """Save ``data`` as a timestamped file, the ``latest`` copy and an index entry (each if enabled).

    Writes are atomic and the whole update runs under a file lock shared by all processes; a name collision
    gets a numeric suffix instead of overwriting. Returns the paths written (None for disabled parts).
    """
    from filelock import FileLock  # deferred: only writers need it, and it is slow to import

    local_config = _local_config(root_dir, config_dir, config)
    strategy = get_cache_strategy_config(None, cache_type, config=local_config)
    cache_dir = _cache_dir(root_dir, local_config, cache_type)
    cache_dir.mkdir(parents=True, exist_ok=True)
    latest_name, index_name = _latest_name(strategy, cache_type), _index_name(strategy, cache_type)
    with FileLock(str(cache_dir / f".{cache_type}.lock")):
        ts_path: Path | None = None
        if strategy["timestamped"].get("enabled", True):
            name = get_timestamped_cache_filename(
                None, cache_type, backbone, identifier, timestamp, config=local_config
            )
            ts_path = _unique(cache_dir, name)
        payload = dict(thaw(data))
        payload["cache_metadata"] = {
            "saved_at": _now_iso(),
            "timestamped_file": ts_path.name if ts_path else None,
            "cache_directory": str(cache_dir),
            "strategy": strategy.get("strategy", "dual"),
            "backbone": backbone,
            "identifier": identifier,
            "timestamp": timestamp,
            **thaw(additional_metadata or {}),
        }
        if ts_path is not None:
            atomic_write_json(ts_path, payload)
        latest_path = None
        if strategy["latest"].get("enabled", True):
            latest_path = cache_dir / latest_name
            atomic_write_json(latest_path, payload)
        index_path = None
        if strategy["index"].get("enabled", True):
            index_path = cache_dir / index_name
            entries = _read_index(index_path)
            entry: dict[str, Any] = {
                "timestamp": timestamp,
                "backbone": backbone,
                "identifier": identifier,
                "timestamped_file": ts_path.name if ts_path else None,
                "latest_file": latest_name if latest_path else None,
            }
            if strategy["index"].get("include_metadata", True):
                selection = payload.get("selection_criteria")
                if isinstance(selection, dict) and "best_value" in selection:
                    entry["best_value"] = selection["best_value"]
                metrics = payload.get("metrics")
                if isinstance(metrics, dict):
                    entry["metrics"] = {k: metrics.get(k) for k in ("macro-f1", "loss")}
            entries.append(entry)
            max_entries = strategy["index"].get("max_entries", 20)
            if max_entries:
                entries = entries[-int(max_entries) :]
            atomic_write_json(index_path, {"entries": entries})
        ts_cfg = strategy["timestamped"]
        if ts_path is not None and not ts_cfg.get("keep_all", True) and ts_cfg.get("max_files"):
            _prune(cache_dir, int(ts_cfg["max_files"]), {latest_name, index_name})
    return ts_path, latest_path, index_path


def _load_named(cache_dir: Path, name: object) -> dict[str, Any] | None:
    if not isinstance(name, str):
        return None
    try:
        _safe_name(name, cache_dir)
    except PathsError as exc:
        logger.warning("ignoring cache index entry: %s", exc)
        return None
    data = _read_json(cache_dir / name)
    return data if isinstance(data, dict) else None


def _file_matches(path: Path, data: Mapping[str, Any], timestamp: str | None, identifier: str | None) -> bool:
    """Whether ``path`` is a timestamped cache file (not a latest copy) for ``timestamp``/``identifier``.

    mlrig records both in ``cache_metadata``; the reference recorded neither, only the file name
    ``<type>_<backbone>_<identifier>_<timestamp>.json`` with the timestamp as given, so that is read instead.
    """
    meta = data.get("cache_metadata")
    if not isinstance(meta, dict) or Path(str(meta.get("timestamped_file"))).name != path.name:
        return False
    if timestamp is not None:
        saved = meta.get("timestamp")
        if saved != timestamp and (saved is not None or not path.stem.endswith(f"_{timestamp}")):
            return False
    if identifier is not None:
        saved = meta.get("identifier")
        if saved != identifier and (saved is not None or f"_{identifier}_" not in path.stem):
            return False
    return True


def load_cache_file(
    root_dir: Path | str,
    config_dir: Path | str | None,
    cache_type: str,
    use_latest: bool = True,
    specific_timestamp: str | None = None,
    specific_identifier: str | None = None,
    *,
    config: PathsConfig | None = None,
) -> dict[str, Any] | None:
    """A saved cache payload: by timestamp, by identifier (newest first), the latest, or the newest index
    entry. Never reads outside the cache directory; corrupt files are skipped with a warning; None if absent.
    """
    local_config = _local_config(root_dir, config_dir, config)
    strategy = get_cache_strategy_config(None, cache_type, config=local_config)
    cache_dir = _cache_dir(root_dir, local_config, cache_type)
    if not cache_dir.is_dir():
        return None
    entries = _read_index(cache_dir / _index_name(strategy, cache_type))
    if specific_timestamp is not None or specific_identifier is not None:
        for entry in reversed(entries):
            if (specific_timestamp is None or entry.get("timestamp") == specific_timestamp) and (
                specific_identifier is None or entry.get("identifier") == specific_identifier
            ):
                found = _load_named(cache_dir, entry.get("timestamped_file"))
                if found is not None:
                    return found
        # Entries trimmed from the index still have their files: match on the saved metadata.
        for path in sorted(cache_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True):
            data = _load_named(cache_dir, path.name)
            if data is not None and _file_matches(path, data, specific_timestamp, specific_identifier):
                return data
        return None
    if use_latest and strategy["latest"].get("enabled", True):
        latest = _load_named(cache_dir, _latest_name(strategy, cache_type))
        if latest:
            return latest
    for entry in reversed(entries):
        found = _load_named(cache_dir, entry.get("timestamped_file"))
        if found is not None:
            return found
    return None
