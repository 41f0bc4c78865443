"""The tag-key registry (``tags.yaml``) and the ``code.*`` tags of each stage."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from mlrig.naming._files import config_file, read_default_file, read_file
from mlrig.naming._patterns import CONTROL_CHARS, HEX_ID
from mlrig.naming.context import NamingContext
from mlrig.naming.errors import NamingConfigError, NamingError, TagKeyError
from mlrig.naming.mlflow_config import get_mlflow_settings
from mlrig.naming.run_keys import build_mlflow_run_key, build_mlflow_run_key_hash

if TYPE_CHECKING:
    from typing import Any

    from mlrig.naming.config import NamingConfig

logger = logging.getLogger(__name__)


TAGS_FILE: Final = "tags.yaml"
# MLflow's standard system tags (mlflow.utils.mlflow_tags): the only "mlflow." keys mlrig writes. Any other
# key in MLflow's reserved namespace (the reference's mlflow.runType) is dropped by written_tags.
MLFLOW_SYSTEM_TAGS: Final = frozenset(
    {
        "mlflow.parentRunId",
        "mlflow.runName",
        "mlflow.user",
        "mlflow.source.name",
        "mlflow.source.type",
        "mlflow.source.git.commit",
        "mlflow.source.git.branch",
        "mlflow.source.git.repoURL",
        "mlflow.note.content",
    }
)
# Foreign namespaces: written only to the store that owns them.
FOREIGN_NAMESPACES: Final = {"azureml.": ("azureml:",)}
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

    def run_type_tags(self, run_type: str, tracking_uri: str | None = None) -> dict[str, str]:
        """The run-type tags of a run: ``code.run_type`` (``process.run_type``), plus the Azure ML ones
        (``azureml.runType``; ``azureml.sweep`` on a sweep) when ``tracking_uri`` is an Azure ML store."""
        tags = {self.key("process", "run_type"): run_type}
        tags[self.key("azureml", "run_type")] = run_type
        if run_type == "sweep":
            tags[self.key("azureml", "sweep")] = "true"
        return written_tags(tags, tracking_uri)

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
    # One key per fact: the model is code.model (what the queries read; code.backbone/backbone are not
    # written), the environment code.env (the finder's key; not code.execution_platform), the user
    # mlflow.user (build_system_tags; not code.created_by).
    text("process", "model", context.model)
    text("process", "storage_env", context.storage_env)
    text("process", "env", context.environment)
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
        tags[key("hpo", "trial_number")] = str(context.trial_number)  # not the reference's bare trial_number
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


def written_tags(tags: Mapping[str, str], tracking_uri: str | None = None) -> dict[str, str]:
    """``tags`` without the keys mlrig must not write to ``tracking_uri``'s store: keys in MLflow's reserved
    ``mlflow.`` namespace other than its standard system tags, and ``azureml.`` keys unless the store is
    ``azureml://``. The one place that decides which keys reach a store (the trackers call it on every run).
    """
    uri = (tracking_uri or "").lower()
    out: dict[str, str] = {}
    for tag, value in tags.items():
        if tag.startswith("mlflow.") and tag not in MLFLOW_SYSTEM_TAGS:
            logger.debug("tag %s dropped: not an MLflow system tag", tag)
            continue
        foreign = next((p for ns, p in FOREIGN_NAMESPACES.items() if tag.startswith(ns)), None)
        if foreign is not None and not uri.startswith(foreign):
            logger.debug("tag %s dropped: the store %s is not %s", tag, tracking_uri, foreign[0])
            continue
        out[tag] = value
    return out


def build_system_tags(
    registry: TagsRegistry,
    *,
    git_commit: str | None = None,
    source_name: str | None = None,
    source_type: str = "LOCAL",
) -> dict[str, str]:
    """MLflow's standard system tags, which ``MlflowClient.create_run`` (unlike the fluent API) does not set:
    ``mlflow.user`` (``$USER``, ``$USERNAME``, else the login name, else ``system``), ``mlflow.source.name``
    (``source_name``, else the running program), ``mlflow.source.type`` and ``mlflow.source.git.commit``
    (when ``git_commit`` is given; :func:`mlrig.naming.detect_git_sha` finds it)."""
    key = registry.key
    tags = {
        key("mlflow", "user"): _user(),
        key("mlflow", "source_name"): source_name or _program(),
        key("mlflow", "source_type"): source_type,
    }
    if git_commit:
        tags[key("mlflow", "source_git_commit")] = git_commit
    return tags


def _user() -> str:
    name = os.environ.get("USER") or os.environ.get("USERNAME")
    if not name:
        try:
            import getpass

            name = getpass.getuser()
        except (OSError, KeyError, ImportError):
            name = None
    return name or "system"


def _program() -> str:
    import sys

    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return Path(argv0).name if argv0 not in ("", "-c", "-m") else "python"
