"""Locating and reading naming's config files, with the packaged defaults as fallback."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.naming.errors import NamingConfigError
from mlrig.paths import PathsConfigError, infer_config_dir, read_yaml_config

if TYPE_CHECKING:
    from typing import Any


DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"


def config_file(name: str, config_dir: Path | str | None) -> Path:
    """``<config_dir>/<name>``; ``config_dir=None`` is found by ``mlrig.paths.infer_config_dir``."""
    return (infer_config_dir() if config_dir is None else Path(config_dir)) / name


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
