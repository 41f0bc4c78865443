"""Run names: the ``naming.yaml`` pattern of a context's stage, rendered, normalised and validated."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.naming._patterns import CONTROL_CHARS
from mlrig.naming.context import NamingContext, parse_parent_training_id
from mlrig.naming.errors import NamingError
from mlrig.naming.mlflow_config import get_mlflow_settings
from mlrig.naming.policy import (
    Component,
    NamingPolicy,
    RunNamePattern,
    check_run_name,
    compile_naming_policy,
    get_naming_policy,
    sanitize_semantic_suffix,
)
from mlrig.naming.run_keys import build_counter_key, build_mlflow_run_key, build_mlflow_run_key_hash

if TYPE_CHECKING:
    from typing import Any

    from mlrig.naming.config import NamingConfig


def auto_increment_process(context: NamingContext) -> str:
    """The ``auto_increment.processes`` key governing ``context``: ``hpo`` for every HPO stage, else the
    process.
    """
    return "hpo" if context.process_type in ("hpo", "hpo_refit") else context.process_type


def _clean(normalized: str, policy: NamingPolicy) -> str:
    # After the configured replacements, any forbidden or control character left in env/model becomes "_",
    # so an odd backbone name cannot make every run name of that model invalid.
    for char in policy.forbidden_chars:
        normalized = normalized.replace(char, "_")
    return CONTROL_CHARS.sub("_", normalized)


def _missing(pattern: RunNamePattern, field: str, source: str) -> NamingError:
    return NamingError(
        f"run name {pattern.kind!r} ({pattern.pattern!r}) needs {{{field}}} but NamingContext.{source} "
        "is not set "
        f"and naming.yaml gives no default for run_names.{pattern.kind}.components.{field}"
    )


def _component(comp: Component, context: NamingContext, pattern: RunNamePattern) -> str:
    if comp.kind == "suffix":
        if not comp.enabled:
            return ""
        if context.study_name:
            return sanitize_semantic_suffix(context.study_name, comp.max_length)
        return comp.default or ""
    value: Any
    if comp.parent_field is not None:
        parsed = parse_parent_training_id(context.parent_training_id)
        value = parsed[comp.parent_field] if parsed["spec_hash"] != "unknown" else None
    else:
        value = getattr(context, comp.source)
    if value is None or value == "":
        if comp.default is None:
            raise _missing(pattern, comp.name, comp.source)
        return comp.default
    if comp.kind == "number":
        number = str(int(value))
        return comp.format.format(number=number.zfill(comp.zero_pad) if comp.zero_pad else number)
    return comp.format.format(value=str(value)[: comp.length])


# Context field behind each built-in placeholder, for error messages.
_TOKEN_SOURCE = {
    "study_hash": "study_key_hash", "study8": "study_key_hash", "trial_hash": "trial_key_hash",
    "trial8": "trial_key_hash", "bench_hash": "benchmark_config_hash", "bench8": "benchmark_config_hash",
    "spec_hash": "spec_fp", "spec8": "spec_fp", "exec_hash": "exec_fp", "exec8": "exec_fp",
    "conv_hash": "conv_fp", "conv8": "conv_fp",
}  # fmt: skip


def _render(pattern: RunNamePattern, context: NamingContext, policy: NamingPolicy, suffix: str) -> str:
    tokens: dict[str, str] | None = None
    out: list[str] = []
    for literal, field in pattern.parts:
        out.append(literal)
        if field is None:
            continue
        comp = pattern.components.get(field)
        if comp is not None:
            out.append(_component(comp, context, pattern))
        elif field == "env":
            env = context.storage_env or ""
            out.append(_clean(policy.normalize_env.apply(env), policy))
        elif field == "model":
            out.append(_clean(policy.normalize_model.apply(context.model), policy))
        elif field == "version":
            out.append(suffix)
        elif field == "semantic_suffix":
            out.append(sanitize_semantic_suffix(context.study_name))
        else:
            tokens = tokens if tokens is not None else context.tokens()
            value = tokens.get(field, "")
            if not value:
                raise _missing(pattern, field, _TOKEN_SOURCE.get(field, field))
            out.append(value)
    return "".join(out)


def _policy(
    policy: Mapping[str, Any] | NamingPolicy | None,
    config_dir: Path | str | None,
    naming_config: NamingConfig | None,
) -> NamingPolicy:
    if policy is None:
        return naming_config.policy if naming_config is not None else get_naming_policy(config_dir)
    if isinstance(policy, NamingPolicy):
        return policy
    return compile_naming_policy(policy)


def format_run_name(
    process_type: str,
    context: NamingContext,
    policy: Mapping[str, Any] | NamingPolicy | None = None,
    config_dir: Path | str | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> str:
    """The base name (no version suffix) of run-name kind ``process_type`` (``hpo_trial``, ``conversion``,
    ...); the policy is ``policy``, else ``naming_config.policy``, else ``naming.yaml`` read now.
    """
    resolved = _policy(policy, config_dir, naming_config)
    return _render(resolved.pattern_for(process_type), context, resolved, "")


def _versioned(
    pattern: RunNamePattern,
    context: NamingContext,
    config_dir: Path | str | None,
    naming_config: NamingConfig | None,
) -> bool:
    if "version" not in pattern.fields:
        return False
    settings = get_mlflow_settings(config_dir, naming_config=naming_config)
    return settings.auto_increment_for(auto_increment_process(context))


def is_run_name_versioned(
    context: NamingContext,
    config_dir: Path | str | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> bool:
    """Whether ``context``'s run name takes a version suffix: its pattern has ``{version}`` and
    ``mlflow.yaml`` enables auto-increment for its process (tracking reserves a version only then).
    """
    policy = _policy(None, config_dir, naming_config)
    return _versioned(policy.pattern_for(_kind(context)), context, config_dir, naming_config)


def build_run_name_counter_key(
    context: NamingContext,
    config_dir: Path | str | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> str:
    """The version-counter key of ``context``'s run name: ``build_counter_key(project_name, auto-increment
    process, sha256(run_key), storage_env)`` (the same ``storage_env`` for reserving and committing).
    """
    settings = get_mlflow_settings(config_dir, naming_config=naming_config)
    run_key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(context))
    return build_counter_key(
        settings.project_name, auto_increment_process(context), run_key_hash, context.storage_env or ""
    )


def _kind(context: NamingContext) -> str:
    return context.stage or context.process_type


def build_mlflow_run_name(
    context: NamingContext,
    config_dir: Path | str | None = None,
    version: int | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> str:
    """The MLflow run name of ``context`` per ``naming.yaml`` (see the package README for every pattern).

    ``naming_config`` is the run's :class:`~mlrig.naming.config.NamingConfig` (no file is read); without it
    ``naming.yaml`` and ``mlflow.yaml`` are read from ``config_dir`` now.

    ``version`` (reserved by tracking's counter; naming never reserves one) is rendered with
    ``version.format`` (``_<N>`` by default) only when :func:`is_run_name_versioned` holds; otherwise it is
    ignored. The final name, suffix included, must pass :func:`validate_run_name`. Raises :class:`NamingError`
    -- never returns a fallback.
    """
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise NamingError(f"version must be an int >= 1, got {version!r}")
    policy = _policy(None, config_dir, naming_config)
    pattern = policy.pattern_for(_kind(context))
    suffix = ""
    if version is not None:
        if _versioned(pattern, context, config_dir, naming_config):
            suffix = policy.version_format.format(separator=policy.version_separator, number=version)
        else:
            logging.getLogger(__name__).debug(
                "version %s ignored: run names of %s are not auto-incremented", version, _kind(context)
            )
    name = _render(pattern, context, policy, suffix)
    check_run_name(name, policy)
    return name


def build_trial_run_name(trial_number: int | None, fold_idx: int | None = None) -> str:
    """The short name of a trial or fold run created without a naming context (reference
    ``create_child_run``): ``trial_{n}``, ``trial_{n}_fold{k}``, or ``fold{k}`` without a trial number.

    ``parse_trial_number`` reads ``n`` back. Runs created with a context use :func:`build_mlflow_run_name`.
    """
    for field, value in (("trial_number", trial_number), ("fold_idx", fold_idx)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise NamingError(f"{field} must be an int >= 0, got {value!r}")
    if trial_number is None:
        if fold_idx is None:
            raise NamingError("a trial run name needs trial_number or fold_idx")
        return f"fold{fold_idx}"
    return f"trial_{trial_number}" + ("" if fold_idx is None else f"_fold{fold_idx}")
