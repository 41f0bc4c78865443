"""``paths.yaml``: loading, validating and applying storage-environment overrides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlrig.paths.errors import PathsConfigError, PathsError
from mlrig.paths.files import read_yaml_config, thaw
from mlrig.paths.normalize import NormalizePolicy
from mlrig.paths.patterns import PatternTemplate
from mlrig.paths.platforms import normalize_storage_env

PATHS_FILE = "paths.yaml"
_DEFAULTS_FILE = Path(__file__).with_name("defaults") / PATHS_FILE

# Placeholders allowed in path patterns, and those that exist only in run names (rejected in paths).
PATH_TOKENS = frozenset(
    [
        "storage_env",
        "model",
        "spec_fp",
        "exec_fp",
        "variant",
        "study8",
        "trial8",
        "bench8",
        "trial_id",
        "parent_training_id",
        "conv_fp",
        "backbone",
        "trial",
        "run_id",
        "identifier",
        "timestamp",
        "spec8",
        "exec8",
        "conv8",
    ]
)
NAME_ONLY_TOKENS = frozenset(
    [
        "env",
        "spec_hash",
        "exec_hash",
        "study_hash",
        "trial_hash",
        "bench_hash",
        "trial_number",
        "fold_idx",
        "conv_hash",
        "semantic_suffix",
        "version",
    ]
)
# process_type -> the patterns key that lays it out.
PROCESS_PATTERN_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "hpo": "hpo_v2",
        "hpo_refit": "hpo_v2",
        "benchmarking": "benchmarking_v2",
        "final_training": "final_training_v2",
        "conversion": "conversion_v2",
        "best_configurations": "best_config_v2",
    }
)
_REQUIRED_V2 = tuple(sorted(set(PROCESS_PATTERN_KEYS.values())))
_PLACEHOLDER = re.compile(r"{([^{}]*)}")
_OVERRIDABLE = ("base", "outputs", "cache", "drive")


@dataclass(frozen=True)
class RepoRootSettings:
    """``repository_root``: how the repository root is recognised and searched for."""

    required_markers: tuple[str, ...] = ("config",)
    extra_markers: tuple[str, ...] = (".git", "pyproject.toml", "setup.cfg")
    workspace_candidates: tuple[str, ...] = ()
    platform_candidates: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    max_depth: int = 10
    fallback_to_cwd: bool = True
    warn_on_fallback: bool = True


@dataclass(frozen=True)
class DriveSettings:
    """``drive``: where the backup mount is and the project folder on it."""

    mount_point: str
    backup_base_dir: str

    @property
    def backup_base(self) -> Path:
        """``{mount_point}/MyDrive/{backup_base_dir}``."""
        return Path(self.mount_point) / "MyDrive" / self.backup_base_dir


@dataclass(frozen=True)
class PathsConfig:
    """A validated, immutable ``paths.yaml`` with the overrides of ``storage_env`` applied.

    Load it once per run (:func:`load_paths_config`) and pass it down as ``config=``: functions given one
    read no file. Its patterns are compiled once, when it is made.
    """

    source: Path | None
    schema_version: int
    project_name: str
    storage_env: str | None
    base: Mapping[str, str]
    outputs: Mapping[str, str]
    cache: Mapping[str, str]
    patterns: Mapping[str, str]
    cache_strategies: Mapping[str, Any]
    files: Mapping[str, Any]
    repository_root: RepoRootSettings
    drive: DriveSettings | None
    normalize: NormalizePolicy
    raw: Mapping[str, Any]
    _templates: Mapping[str, PatternTemplate] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        templates = {}
        for key, pattern in self.patterns.items():
            try:
                templates[key] = PatternTemplate(pattern)
            except ValueError as exc:  # unbalanced braces
                raise PathsConfigError(
                    f"not a valid pattern: {exc}", file=self.file_label, key=f"patterns.{key}", value=pattern
                ) from exc
        object.__setattr__(self, "_templates", MappingProxyType(templates))

    def template(self, key: str) -> PatternTemplate:
        """``patterns[key]`` compiled (``KeyError`` when there is no such pattern)."""
        return self._templates[key]

    @property
    def file_label(self) -> str:
        """The file this config came from, for messages."""
        return str(self.source) if self.source else f"<packaged defaults {_DEFAULTS_FILE}>"


def _fail(src: Path, key: str, message: str, *value: object) -> PathsConfigError:
    if value:
        return PathsConfigError(message, file=src, key=key, value=value[0])
    return PathsConfigError(message, file=src, key=key)


def _mapping(src: Path, data: Mapping[str, Any], key: str, *, required: bool = False) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None and not required:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise _fail(src, key, "must be a mapping", value)
    return value


def _str_map(src: Path, data: Mapping[str, Any], key: str, *, relative: bool = False) -> Mapping[str, str]:
    section = _mapping(src, data, key)
    for name, value in section.items():
        if not isinstance(value, str) or not value:
            raise _fail(src, f"{key}.{name}", "must be a non-empty string", value)
        if relative and (value.startswith("/") or any(p in ("", ".", "..") for p in value.split("/"))):
            raise _fail(src, f"{key}.{name}", "must be a relative folder without '.', '..' or '//'", value)
    return section


def _int(src: Path, key: str, value: Any, *, minimum: int = 1, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(src, key, f"must be an integer >= {minimum}", value)
    return value


def _bool(src: Path, key: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(src, key, "must be true or false", value)
    return value


def _str_tuple(src: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        raise _fail(src, key, "must be a list of strings", thaw(value))
    return value


def _check_pattern(src: Path, key: str, pattern: Any) -> None:
    if not isinstance(pattern, str) or not pattern:
        raise _fail(src, f"patterns.{key}", "must be a non-empty string", pattern)
    for token in _PLACEHOLDER.findall(pattern):
        if token in NAME_ONLY_TOKENS:
            raise _fail(src, f"patterns.{key}", f"placeholder '{{{token}}}' is for run names only", pattern)
        if token not in PATH_TOKENS:
            raise _fail(src, f"patterns.{key}", f"unknown placeholder '{{{token}}}'", pattern)
    literal = _PLACEHOLDER.sub("x", pattern)
    if any(part in (".", "..") for part in literal.split("/")) or literal.startswith("/"):
        raise _fail(src, f"patterns.{key}", "must be a relative pattern without '.' or '..'", pattern)


def _normalize_policy(src: Path, data: Mapping[str, Any]) -> NormalizePolicy:
    section = _mapping(src, data, "normalize_paths")
    if not section:
        return NormalizePolicy()
    replace = _mapping(src, section, "replace")
    for old, new in replace.items():
        if not isinstance(old, str) or not isinstance(new, str):
            raise _fail(src, f"normalize_paths.replace.{old}", "must map a string to a string", new)
    forbidden = section.get("forbidden_chars") or ""
    if isinstance(forbidden, tuple):
        forbidden = "".join(str(c) for c in forbidden)
    if not isinstance(forbidden, str):
        raise _fail(src, "normalize_paths.forbidden_chars", "must be a string or list", forbidden)
    return NormalizePolicy(
        replace=tuple(replace.items()),
        forbidden_chars=forbidden,
        lowercase=_bool(src, "normalize_paths.lowercase", section.get("lowercase"), False),
        max_component_length=_int(
            src, "normalize_paths.max_component_length", section.get("max_component_length", 255)
        )
        or 255,
        max_path_length=_int(
            src, "normalize_paths.max_path_length", section.get("max_path_length"), optional=True
        ),
    )


def _repo_settings(src: Path, data: Mapping[str, Any], base: Mapping[str, str]) -> RepoRootSettings:
    section = _mapping(src, data, "repository_root")
    search = _mapping(src, section, "search")
    platforms = _mapping(src, section, "platform_candidates")
    candidates = {}
    for name, value in platforms.items():
        env = normalize_storage_env(str(name)) if str(name) != "" else name
        candidates[env] = _str_tuple(src, f"repository_root.platform_candidates.{name}", value)
    markers: tuple[str, ...] = (base.get("config", "config"),)
    if (
        _bool(src, "repository_root.markers_from_base", section.get("markers_from_base"), True)
        and "src" in base
    ):
        markers += (base["src"],)
    extra = section.get("extra_markers", (".git", "pyproject.toml", "setup.cfg"))
    return RepoRootSettings(
        required_markers=markers,
        extra_markers=_str_tuple(src, "repository_root.extra_markers", extra),
        workspace_candidates=_str_tuple(
            src, "repository_root.workspace_candidates", section.get("workspace_candidates")
        ),
        platform_candidates=MappingProxyType(candidates),
        max_depth=_int(src, "repository_root.search.max_depth", search.get("max_depth", 10)) or 10,
        fallback_to_cwd=_bool(
            src, "repository_root.search.fallback_to_cwd", search.get("fallback_to_cwd"), True
        ),
        warn_on_fallback=_bool(
            src, "repository_root.search.warn_on_fallback", search.get("warn_on_fallback"), True
        ),
    )


def _apply_overrides(src: Path, data: Mapping[str, Any], storage_env: str | None) -> Mapping[str, Any]:
    overrides = _mapping(src, data, "env_overrides")
    by_env: dict[str, Mapping[str, Any]] = {}
    for name, value in overrides.items():
        try:
            env = normalize_storage_env(str(name))
        except ValueError as exc:
            raise _fail(src, f"env_overrides.{name}", "is not a storage environment", name) from exc
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise _fail(src, f"env_overrides.{name}", "must be a mapping", value)
        for section in value:
            if section not in _OVERRIDABLE:
                raise _fail(
                    src,
                    f"env_overrides.{name}.{section}",
                    f"only {', '.join(_OVERRIDABLE)} can be overridden",
                )
        by_env[env] = value
    chosen = by_env.get(storage_env or "")
    if not chosen:
        return data
    merged = dict(data)
    for section, values in chosen.items():
        if not isinstance(values, Mapping):
            raise _fail(src, f"env_overrides.{storage_env}.{section}", "must be a mapping", values)
        merged[section] = MappingProxyType({**_mapping(src, data, section), **values})
    return MappingProxyType(merged)


def _build(src: Path, source: Path | None, data: Mapping[str, Any], storage_env: str | None) -> PathsConfig:
    version = data.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(src, "schema_version", "must be an integer >= 1", version)
    if version > 2:
        raise _fail(src, "schema_version", "is newer than this mlrig-paths understands (max 2)", version)
    applied = _apply_overrides(src, data, storage_env)
    base = _str_map(src, applied, "base")
    if not isinstance(base.get("outputs"), str):
        raise _fail(src, "base.outputs", "must be a non-empty string", base.get("outputs"))
    patterns = _mapping(src, applied, "patterns", required=version >= 2)
    if version >= 2:
        missing = [k for k in _REQUIRED_V2 if k not in patterns]
        if missing:
            raise _fail(src, "patterns", f"missing required pattern keys: {', '.join(missing)}")
    for key, pattern in patterns.items():
        _check_pattern(src, key, pattern)
    strategies = _mapping(src, applied, "cache_strategies")
    for name, strategy in strategies.items():
        if not isinstance(strategy, Mapping):
            raise _fail(src, f"cache_strategies.{name}", "must be a mapping", strategy)
    project = _mapping(src, applied, "project").get("name") or src.parent.parent.name
    if not isinstance(project, str):
        raise _fail(src, "project.name", "must be a string", project)
    drive_section = _mapping(src, applied, "drive")
    drive = None
    if drive_section:
        mount = drive_section.get("mount_point", "/content/drive")
        backup = drive_section.get("backup_base_dir", project)
        if not isinstance(mount, str) or not mount.startswith("/"):
            raise _fail(src, "drive.mount_point", "must be an absolute path", mount)
        if not isinstance(backup, str) or not backup or "/" in backup.strip("/") or backup in (".", ".."):
            raise _fail(src, "drive.backup_base_dir", "must be one folder name", backup)
        drive = DriveSettings(mount, backup.strip("/"))
    return PathsConfig(
        source=source,
        schema_version=version,
        project_name=project,
        storage_env=storage_env,
        base=base,
        outputs=_str_map(src, applied, "outputs", relative=True),
        cache=_str_map(src, applied, "cache", relative=True),
        patterns=patterns,
        cache_strategies=strategies,
        files=_mapping(src, applied, "files"),
        repository_root=_repo_settings(src, applied, base),
        drive=drive,
        normalize=_normalize_policy(src, applied),
        raw=data,
    )


def load_paths_config(config_dir: Path | str | None, storage_env: str | None = None) -> PathsConfig:
    """The validated ``<config_dir>/paths.yaml`` with ``storage_env``'s ``env_overrides`` applied.

    Uses the packaged defaults (same layout, project ``mlrig``) when the file does not exist or ``config_dir``
    is None. ``storage_env=None`` applies no override (callers that compute a base directory pass the detected
    platform). The file is read on every call; a run loads its config once and passes it down. Raises
    ``PathsConfigError`` naming the file and key for any invalid value.
    """
    env = None if storage_env in (None, "") else normalize_storage_env(storage_env)
    path = Path(config_dir) / PATHS_FILE if config_dir is not None else _DEFAULTS_FILE
    data = read_yaml_config(path)
    source = path if data is not None and config_dir is not None else None
    if data is None:
        path = _DEFAULTS_FILE
        data = read_yaml_config(path)
        if data is None:  # pragma: no cover - broken installation
            raise PathsConfigError("packaged defaults are missing", file=_DEFAULTS_FILE)
    return _build(path, source, data, env)


def default_config_dir(root_dir: Path | str) -> Path:
    """``<root_dir>/config``: where a project keeps its config files unless told otherwise."""
    return Path(root_dir) / "config"


def config_for(
    root_dir: Path | str, config_dir: Path | str | None, storage_env: str | None, config: PathsConfig | None
) -> PathsConfig:
    """``config`` when given (loaded for ``storage_env`` or for no env, else ``PathsError``), otherwise the
    project's paths.yaml loaded now for ``storage_env`` (``config_dir``, default ``<root_dir>/config``)."""
    if config is None:
        return load_paths_config(
            config_dir if config_dir is not None else default_config_dir(root_dir), storage_env
        )
    check_env(config, storage_env)
    return config


def check_env(config: PathsConfig, storage_env: str | None) -> None:
    """Raise ``PathsError`` unless ``config`` was loaded for ``storage_env`` or for no env."""
    if config.storage_env not in (None, storage_env):
        raise PathsError(f"config was loaded for storage_env {config.storage_env!r}, not {storage_env!r}")
