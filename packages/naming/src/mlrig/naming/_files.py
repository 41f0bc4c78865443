"""Locating and reading naming's config files, with the packaged defaults as fallback."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.naming.errors import NamingConfigError
from mlrig.paths import PathsConfigError, infer_config_dir, read_yaml_config

if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")


DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


# Parsed/validated views keyed by (file, kind); the raw mapping object is kept to detect reloads, because
# read_yaml_config hands out the same immutable object for as long as the file is unchanged.
_parsed: dict[tuple[Path, str], tuple[Mapping[str, Any], object]] = {}


# (file name, config dir as str) -> file path: saves rebuilding Path objects on every hot-path call.
_locations: dict[tuple[str, str], Path] = {}


def config_file(name: str, config_dir: Path | str | None) -> Path:
    """``<config_dir>/<name>``; ``config_dir=None`` is found by ``mlrig.paths.infer_config_dir``."""
    if config_dir is None:
        return infer_config_dir() / name
    key = (name, os.fspath(config_dir))
    path = _locations.get(key)
    if path is None:
        if len(_locations) > 256:
            _locations.clear()
        path = _locations[key] = Path(config_dir) / name
    return path


def read_file(path: Path) -> Mapping[str, Any] | None:
    """``path`` via ``mlrig.paths.read_yaml_config`` (``None`` when absent); bad file → NamingConfigError."""
    try:
        return read_yaml_config(path)
    except (PathsConfigError, OSError) as exc:
        raise NamingConfigError(f"cannot be read: {exc}", file=path) from exc


def read_default_file(name: str) -> tuple[Mapping[str, Any], Path]:
    """The packaged default ``name``."""
    path = config_file(name, DEFAULTS_DIR)
    data = read_file(path)
    if data is None:
        raise NamingConfigError("packaged default is missing (broken installation)", file=path)
    return data, path


def read_config_file(name: str, config_dir: Path | str | None) -> tuple[Mapping[str, Any], Path]:
    """``<config_dir>/<name>`` when present, else the packaged default; returns the mapping and the file read.

    A present but unreadable file raises :class:`NamingConfigError` (never a silent fallback to the defaults).
    """
    path = config_file(name, config_dir)
    data = read_file(path)
    if data is not None:
        return data, path
    return read_default_file(name)


def parsed(path: Path, kind: str, raw: Mapping[str, Any], parse: Callable[[Mapping[str, Any], Path], T]) -> T:
    """``parse(raw, path)``, memoised for as long as ``raw`` is the object read for ``path``."""
    key = (path, kind)
    hit = _parsed.get(key)
    if hit is not None and hit[0] is raw:
        return hit[1]  # type: ignore[return-value]
    value = parse(raw, path)
    _parsed[key] = (raw, value)
    return value


_MISSING = object()


def section(
    data: Mapping[str, Any], key: str, *, file: Path | None, prefix: str = "", required: bool = False
) -> Mapping[str, Any]:
    """The mapping at ``data[key]``; absent or ``null`` gives ``{}`` unless ``required``."""
    value = data.get(key, _MISSING)
    dotted = f"{prefix}{key}"
    if value is _MISSING or value is None:
        if required:
            raise NamingConfigError("required section is missing", file=file, key=dotted)
        return {}
    if not isinstance(value, Mapping):
        raise NamingConfigError(f"must be a mapping, got {value!r}", file=file, key=dotted, value=value)
    return value


def opt_bool(
    data: Mapping[str, Any], key: str, default: bool, *, file: Path | None, prefix: str = ""
) -> bool:
    """``data[key]`` as a bool (``default`` when absent); any other type is an error."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise NamingConfigError(
            f"must be true or false, got {value!r}", file=file, key=f"{prefix}{key}", value=value
        )
    return value


def opt_int(
    data: Mapping[str, Any],
    key: str,
    default: int,
    *,
    file: Path | None,
    prefix: str = "",
    minimum: int = 0,
    maximum: int | None = None,
) -> int:
    """``data[key]`` as an int within ``minimum..maximum`` (``default`` when absent); bools are rejected."""
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum and value > maximum)
    ):
        bounds = f"{minimum}..{maximum}" if maximum else f">= {minimum}"
        raise NamingConfigError(
            f"must be an integer {bounds}, got {value!r}", file=file, key=f"{prefix}{key}", value=value
        )
    return value


def opt_str(
    data: Mapping[str, Any],
    key: str,
    default: str,
    *,
    file: Path | None,
    prefix: str = "",
    allow_empty: bool = False,
) -> str:
    """``data[key]`` as a string (``default`` when absent)."""
    value = data.get(key, default)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        kind = "a string" if allow_empty else "a non-empty string"
        raise NamingConfigError(
            f"must be {kind}, got {value!r}", file=file, key=f"{prefix}{key}", value=value
        )
    return value
