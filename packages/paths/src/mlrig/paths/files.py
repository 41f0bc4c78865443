"""Reading YAML configs (cached, immutable) and writing files atomically."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from mlrig.paths.errors import PathsConfigError

# Not typing.TYPE_CHECKING: importing typing costs more than this module (type checkers honour the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clear_config_cache",
    "freeze",
    "read_yaml_config",
    "thaw",
]

# How long a cached YAML file is trusted before it is stat-ed again.
_RESTAT_SECONDS = 1.0


class _Entry:
    # A plain class, not a dataclass: this module is on the import path of every config reader.
    __slots__ = ("checked_at", "mtime_ns", "size", "value")

    def __init__(self, mtime_ns: int, size: int, checked_at: float, value: Mapping[str, Any] | None) -> None:
        self.mtime_ns, self.size, self.checked_at, self.value = mtime_ns, size, checked_at, value


_yaml_cache: dict[str, _Entry] = {}
_yaml_lock = threading.Lock()


def freeze(obj: Any) -> Any:
    """A deeply immutable copy: mappings become read-only proxies, lists/sets become tuples."""
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, list | tuple | set | frozenset):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """Plain ``dict``/``list`` from a frozen value (for hashing, serialising or editing a copy)."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [thaw(v) for v in obj]
    return obj


def clear_config_cache() -> None:
    """Forget every cached YAML file (the next read stats and parses again)."""
    with _yaml_lock:
        _yaml_cache.clear()


def _parse(path: Path) -> Mapping[str, Any]:
    import yaml  # deferred: importing PyYAML costs more than the rest of mlrig.paths

    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PathsConfigError(f"not UTF-8 text: {exc.reason}", file=path) from exc
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise PathsConfigError(
            f"invalid YAML: {exc.problem or exc}",
            file=path,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from exc
    except yaml.YAMLError as exc:
        raise PathsConfigError(f"invalid YAML: {exc}", file=path) from exc
    if not isinstance(data, Mapping):
        raise PathsConfigError("the top level must be a mapping", file=path, value=type(data).__name__)
    frozen: Mapping[str, Any] = freeze(data)
    return frozen


def read_yaml_config(path: Path | str) -> Mapping[str, Any] | None:
    """The parsed YAML mapping at ``path`` (deeply immutable), or ``None`` when the file does not exist.

    Cached per absolute path and keyed by (mtime_ns, size); the file is re-stat-ed at most once per second.
    Raises ``PathsConfigError`` (with line/column) on bad YAML or a top level that is not a mapping.
    """
    return read_yaml_abs(os.path.abspath(path))  # noqa: PTH100 - lexical only; resolve() would stat


def read_yaml_abs(key: str) -> Mapping[str, Any] | None:
    """:func:`read_yaml_config` for a path already made absolute (the per-call path of config readers)."""
    now = time.monotonic()
    entry = _yaml_cache.get(key)
    if entry is not None and now - entry.checked_at < _RESTAT_SECONDS:
        return entry.value
    try:
        st = os.stat(key)  # noqa: PTH116
    except FileNotFoundError:
        with _yaml_lock:
            _yaml_cache[key] = _Entry(-1, -1, now, None)
        return None
    except NotADirectoryError:
        return None
    if entry is not None and entry.mtime_ns == st.st_mtime_ns and entry.size == st.st_size:
        entry.checked_at = now
        return entry.value
    value = _parse(Path(key))
    with _yaml_lock:
        _yaml_cache[key] = _Entry(st.st_mtime_ns, st.st_size, now, value)
    return value


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, ``os.replace``."""
    import tempfile  # deferred: it imports random, shutil and more, and only writers need it

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)  # noqa: PTH105
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically; frozen values are thawed first."""
    import json  # deferred: only writers need it

    atomic_write_text(path, json.dumps(thaw(obj), indent=indent, ensure_ascii=False, default=str) + "\n")
