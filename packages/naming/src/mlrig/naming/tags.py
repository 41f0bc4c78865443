"""The tag-key registry (``tags.yaml``) and the ``code.*`` tags of each stage."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlrig.naming._files import config_file, read_default_file, read_file
from mlrig.naming._patterns import CONTROL_CHARS, HEX_ID
from mlrig.naming.context import NamingContext
from mlrig.naming.errors import NamingConfigError, NamingError, TagKeyError
from mlrig.naming.mlflow_config import get_mlflow_settings
from mlrig.naming.run_keys import build_mlflow_run_key, build_mlflow_run_key_hash

if TYPE_CHECKING:
    from typing import Any, Final

    from mlrig.naming.config import NamingConfig

__all__ = ["TagsRegistry", "build_mlflow_tags", "load_tags_registry", "sanitize_tag_value"]


TAGS_FILE: Final = "tags.yaml"
# Identity values are never truncated (a cut id is useless for lookups); past this size they are rejected.
MAX_IDENTITY_TAG_LENGTH: Final = 5000


@dataclass(frozen=True)
class TagsRegistry:
    """Tag keys by ``(section, name)``, e.g. ``key("grouping", "study_key_hash") == "code.study_key_hash"``.

    ``raw`` is the read-only merge of the packaged defaults and the project's ``tags.yaml``.
    """

    raw: Mapping[str, Any] = field(hash=False)
    schema_version: int = 1
    _flat: dict[tuple[str, str], str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        flat = {
            (section, name): key
            for section, entries in self.raw.items()
            if isinstance(entries, Mapping)
            for name, key in entries.items()
            if isinstance(key, str)
        }
        object.__setattr__(self, "_flat", flat)

    def key(self, section: str, name: str) -> str:
        """The tag key of ``section.name``; unknown → :class:`TagKeyError`."""
        found = self._flat.get((section, name))
        if found is not None:
            return found
        entries = self.raw.get(section)
        if entries is None:
            raise TagKeyError(f"Missing tag key: {section}.{name}")
        if not isinstance(entries, Mapping):
            raise TagKeyError(f"Section '{section}' is not a dictionary")
        value = entries.get(name)
        if value is None:
            raise TagKeyError(f"Missing tag key: {section}.{name}")
        if not isinstance(value, str):
            raise TagKeyError(f"Tag key '{section}.{name}' is not a string: {type(value).__name__}")
        return value


def _sections(data: Mapping[str, Any], file: Path) -> dict[str, dict[str, str]]:
    if not isinstance(data, Mapping):
        raise NamingConfigError(f"top level must be a mapping, got {type(data).__name__}", file=file)
    out: dict[str, dict[str, str]] = {}
    for section, entries in data.items():
        if section == "schema_version":
            continue
        if not isinstance(section, str) or not isinstance(entries, Mapping):
            raise NamingConfigError(
                f"must be a mapping of tag names to tag keys, got {entries!r}", file=file, key=str(section)
            )
        for name, key in entries.items():
            if not isinstance(name, str) or not isinstance(key, str) or not key.strip():
                raise NamingConfigError(
                    f"tag key must be a non-empty string, got {key!r}",
                    file=file,
                    key=f"{section}.{name}",
                    value=key,
                )
        out[section] = dict(entries)
    return out


def _schema_version(data: Mapping[str, Any], default: int, file: Path) -> int:
    value = data.get("schema_version", default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise NamingConfigError(
            f"must be an integer >= 0, got {value!r}", file=file, key="schema_version", value=value
        )
    return value


def _registry(
    defaults: Mapping[str, Any], default_path: Path, user: Mapping[str, Any] | None, path: Path
) -> TagsRegistry:
    merged = _sections(defaults, default_path)
    version = _schema_version(defaults, 1, default_path)
    if user is not None:
        for section, entries in _sections(user, path).items():
            merged.setdefault(section, {}).update(entries)
        version = _schema_version(user, version, path)
    frozen = MappingProxyType({s: MappingProxyType(e) for s, e in merged.items()})
    return TagsRegistry(raw=frozen, schema_version=version)


def load_tags_registry(config_dir: Path | str | None = None) -> TagsRegistry:
    """The packaged default keys overlaid, section by section, with ``<config_dir>/tags.yaml`` when present.

    Both files are read now (a run holds its registry in its ``NamingConfig``, ``naming_config.tags``); an
    invalid file raises :class:`NamingConfigError`.
    """
    defaults, default_path = read_default_file(TAGS_FILE)
    path = config_file(TAGS_FILE, config_dir)
    user = read_file(path)
    if user is None:
        return _registry(defaults, default_path, None, default_path)
    return _registry(defaults, default_path, user, path)


def sanitize_tag_value(
    value: object,
    max_length: int | None = 250,
    config_dir: Path | str | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> str:
    """A descriptive tag value: ``str``, trimmed, control characters as spaces, cut to ``max_length``.

    Longer values keep ``max_length - 3`` characters plus ``...``. ``max_length=None`` uses ``mlflow.yaml``
    ``naming.tags.max_length`` (``naming_config``'s, else read from ``config_dir``). Falsy values give ``""``.
    """
    if value is None or value == "":
        return ""
    if max_length is None:
        max_length = get_mlflow_settings(config_dir, naming_config=naming_config).tag_max_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise NamingError(f"max_length must be an int >= 1, got {max_length!r}")
    return _sanitized(value, max_length)


def _sanitized(value: object, max_length: int) -> str:
    """:func:`sanitize_tag_value` with a validated ``max_length`` (the per-tag hot path)."""
    if value is None or value == "":
        return ""
    text = str(value)
    if CONTROL_CHARS.search(text):
        text = CONTROL_CHARS.sub(" ", text)
    text = text.strip()
    if len(text) <= max_length:
        return text
    return text[: max_length - 3] + "..." if max_length > 3 else text[:max_length]


def _identity(key: str, value: object) -> str:
    text = str(value)
    if not text or len(text) > MAX_IDENTITY_TAG_LENGTH or CONTROL_CHARS.search(text):
        raise NamingError(
            f"tag {key!r}: identity value must be 1..{MAX_IDENTITY_TAG_LENGTH} characters without control "
            f"characters, got {text[:80]!r} (length {len(text)})"
        )
    return text


def _hash_arg(name: str, given: str | None, from_context: str | None) -> str | None:
    if given is not None and (not isinstance(given, str) or not HEX_ID.fullmatch(given)):
        raise NamingError(f"{name} must be 8-64 lowercase hex characters, got {given!r}")
    if given and from_context and given != from_context:
        raise NamingError(f"{name}={given!r} disagrees with NamingContext.{name}={from_context!r}")
    return given or from_context


def build_mlflow_tags(
    context: NamingContext,
    output_dir: Path | str | None = None,
    parent_run_id: str | None = None,
    group_id: str | None = None,
    project_name: str | None = None,
    config_dir: Path | str | None = None,
    study_key_hash: str | None = None,
    study_family_hash: str | None = None,
    trial_key_hash: str | None = None,
    refit_protocol_fp: str | None = None,
    run_key_hash: str | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> dict[str, str]:
    """The ``code.*`` tags of a run (keys from the tags registry; see the package README for the per-stage
    table).

    ``naming_config`` is the run's :class:`~mlrig.naming.config.NamingConfig` (its registry and
    ``mlflow.yaml`` settings are used, no file is read); without it ``tags.yaml`` and ``mlflow.yaml`` are
    read from ``config_dir`` now.

    Grouping hashes come from the context unless passed explicitly (a conflicting value raises);
    ``run_key_hash`` defaults to the hash of :func:`build_mlflow_run_key` when the context has what the key
    needs. Descriptive values are sanitised per ``mlflow.yaml`` ``naming.tags``; identity values (hashes, ids,
    paths) are never truncated.
    """
    if not isinstance(context, NamingContext):
        raise NamingError(f"context must be a NamingContext, got {type(context).__name__}")
    if naming_config is not None:
        registry, settings = naming_config.tags, naming_config.mlflow
    else:
        registry, settings = load_tags_registry(config_dir), get_mlflow_settings(config_dir)
    key = registry.key
    tags: dict[str, str] = {}
    sanitize, max_length = settings.tag_sanitize, settings.tag_max_length

    def text(section: str, name: str, value: object) -> None:
        tags[key(section, name)] = _sanitized(value, max_length) if sanitize else str(value)

    def ident(section: str, name: str, value: object) -> None:
        tag = key(section, name)
        tags[tag] = _identity(tag, value)

    stage = context.stage or context.process_type
    text("process", "stage", stage)
    if context.process_type == "hpo_refit":
        text("process", "run_type", "refit")
    text("process", "model", context.model)
    text("process", "backbone", context.model)
    text("process", "storage_env", context.storage_env)
    text("process", "env", context.environment)
    text("process", "execution_platform", context.environment)
    text("process", "created_by", os.environ.get("USER") or os.environ.get("USERNAME") or "system")
    text("process", "project", project_name or settings.project_name)
    if context.study_name:
        text("study", "name", context.study_name)
    for name in ("spec_fp", "exec_fp", "conv_fp"):
        if getattr(context, name):
            ident("paths", name, getattr(context, name))
    if context.process_type in ("final_training", "conversion"):
        tags[key("legacy", "variant")] = str(context.variant)
    if context.trial_id:
        ident("legacy", "trial_id", context.trial_id)
    if context.parent_training_id:
        ident("legacy", "parent_training_id", context.parent_training_id)
    if context.trial_number is not None and context.process_type in ("hpo", "hpo_refit"):
        tags[key("hpo", "trial_number")] = str(context.trial_number)
        tags[key("legacy", "trial_number")] = str(context.trial_number)
    if context.benchmark_config_hash:
        ident("legacy", "benchmark_config_hash", context.benchmark_config_hash)
    if output_dir:
        ident("paths", "output_dir", output_dir)
    if parent_run_id:
        ident("grouping", "parent_run_id", parent_run_id)
    if group_id:
        ident("grouping", "group_id", group_id)

    study = _hash_arg("study_key_hash", study_key_hash, context.study_key_hash)
    trial = _hash_arg("trial_key_hash", trial_key_hash, context.trial_key_hash)
    family = _hash_arg("study_family_hash", study_family_hash, None)
    if study or trial or family:
        tags[key("grouping", "grouping_schema_version")] = "1"
    for name, value in (("study_key_hash", study), ("study_family_hash", family), ("trial_key_hash", trial)):
        if value:
            tags[key("grouping", name)] = value
    if refit_protocol_fp:
        tags[key("paths", "refit_protocol_fp")] = (
            _hash_arg("refit_protocol_fp", refit_protocol_fp, None) or ""
        )
    if run_key_hash is None:
        try:
            run_key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(context))
        except NamingError:
            run_key_hash = None  # e.g. a benchmark context without trial_id: no run key, no tag
    if run_key_hash:
        tags[key("grouping", "run_key_hash")] = _hash_arg("run_key_hash", run_key_hash, None) or ""
    return tags
