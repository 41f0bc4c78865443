"""Reading YAML configs (immutable values, read afresh on every call) and writing files atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlrig.paths.errors import PathsConfigError


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

    The file is read on every call, so an edit is seen at once; callers that need a file many times per run
    load it once and pass the value down (e.g. :class:`~mlrig.paths.config.PathsConfig`). Raises
    ``PathsConfigError`` (with line/column) on bad YAML or a top level that is not a mapping.
    """
    try:
        return _parse(Path(path))
    except (FileNotFoundError, NotADirectoryError):
        return None


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
