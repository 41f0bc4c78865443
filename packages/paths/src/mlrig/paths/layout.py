"""Where outputs go: the outputs base, category directories and the v2 pattern renderer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlrig.paths.config import PROCESS_PATTERN_KEYS, PathsConfig, check_env, config_for
from mlrig.paths.errors import PathsConfigError, PathsError
from mlrig.paths.normalize import check_output_parts, normalize_component
from mlrig.paths.platforms import normalize_storage_env

# A pattern segment made only of this token disappears when the token is empty (benchmarks without a
# benchmark-config hash have no ``bench-`` level); every other token is required.
_OPTIONAL_SEGMENT_TOKENS = frozenset({"bench8"})


def _base_str(root_dir: Path | str, config: PathsConfig) -> str:
    # os.path on strings: pathlib's parsing would cost more than the rest of this.
    return os.path.join(os.path.abspath(root_dir), config.base["outputs"])  # noqa: PTH100, PTH118


def outputs_base(root_dir: Path | str, config: PathsConfig) -> Path:
    """``base.outputs`` of ``config`` (overrides applied): absolute as given, else under ``root_dir``."""
    return Path(_base_str(root_dir, config))


def get_outputs_dir(
    root_dir: Path | str,
    config_dir: Path | str | None = None,
    storage_env: str | None = None,
    *,
    config: PathsConfig | None = None,
) -> Path:
    """The outputs base directory for ``storage_env`` (default: ``config``'s env, else the detected
    platform), overrides applied; ``config`` is the run's loaded paths config (else it is loaded now)."""
    env = normalize_storage_env(storage_env or (config.storage_env if config is not None else None))
    return outputs_base(root_dir, config_for(root_dir, config_dir, env, config))


def _render(key: str, tokens: Mapping[str, object], config: PathsConfig, what: tuple[str, str]) -> list[str]:
    compiled = config.template(key)
    policy = config.normalize
    values = {}
    for name in compiled.names:
        value = tokens.get(name)
        if value is not None and value != "":
            values[name] = normalize_component(value, policy)
    if len(values) == len(compiled.names):
        # Normalised values hold no separator, so every "/" of the rendered text is a segment boundary.
        return (compiled.joined % values).split("/")
    segments = []
    for template, names in zip(compiled.segments, compiled.segment_names, strict=True):
        empty = [name for name in names if name not in values]
        if empty and set(names) <= _OPTIONAL_SEGMENT_TOKENS:
            continue
        if empty:
            raise PathsError(
                f"{what[0]} {what[1]!r}: missing token(s) {', '.join(repr(n) for n in empty)} "
                f"for pattern {config.patterns[key]!r} "
                f"(from {config.file_label})"
            )
        segments.append(template % values)
    return segments


def _category_dir(config: PathsConfig, category: str) -> list[str]:
    try:
        return config.outputs[category].split("/")
    except KeyError:
        known = ", ".join(sorted(config.outputs)) or "none"
        raise PathsConfigError(
            f"unknown output category {category!r} (known: {known})", file=config.file_label, key="outputs"
        ) from None


def render_output_path(
    root_dir: Path | str,
    process_type: str,
    tokens: Mapping[str, object],
    *,
    storage_env: str,
    config: PathsConfig,
) -> Path:
    """The output directory of one run, from its ``patterns.*_v2`` layout and token values.

    ``config`` must be loaded for ``storage_env`` (its overrides decide the base). Token values are
    normalised into single safe components; a missing required token raises ``PathsError``; the result is
    validated to lie inside the outputs base. Does not create anything.
    """
    env = normalize_storage_env(storage_env)
    check_env(config, env)
    key = PROCESS_PATTERN_KEYS.get(process_type)
    if key is None:
        raise PathsError(
            f"unknown process_type {process_type!r}; expected one of {', '.join(PROCESS_PATTERN_KEYS)}"
        )
    pattern = config.patterns.get(key)
    if pattern is None:
        raise PathsConfigError(
            f"process type {process_type!r} needs this pattern (schema_version 2)",
            file=config.file_label,
            key=f"patterns.{key}",
        )
    # The env is a token too; naming's tokens already carry it, so the copy is usually not needed.
    values = tokens if tokens.get("storage_env") == env else {**tokens, "storage_env": env}
    segments = _render(key, values, config, ("process_type", process_type))
    if process_type == "best_configurations":
        parts = _category_dir(config, "cache")
        parts += config.cache.get("best_configurations", "best_configurations").split("/")
    else:
        parts = _category_dir(config, "hpo" if process_type == "hpo_refit" else process_type)
    parts += segments
    if process_type in ("hpo", "hpo_refit") and "{trial8}" not in pattern and values.get("trial8"):
        parts.append("trial-" + normalize_component(values["trial8"], config.normalize))
    if process_type == "hpo_refit":
        parts.append("refit")
    return check_output_parts(_base_str(root_dir, config), parts, config.normalize.max_path_length)


def resolve_output_path(
    root_dir: Path | str,
    config_dir: Path | str | None,
    category: str,
    *,
    config: PathsConfig | None = None,
    **tokens: object,
) -> Path:
    """``<outputs>/<outputs[category]>``; with ``category="cache", subcategory=X``: ``<outputs>/cache/<X>``.

    ``storage_env=`` selects the env override (default: ``config``'s env, else the detected platform);
    ``config`` is the run's loaded paths config (else paths.yaml is loaded now). Further tokens fill
    ``patterns[category]`` when it exists, else are appended as normalised subdirectories in order.
    """
    given_env = str(tokens.pop("storage_env")) if tokens.get("storage_env") else None
    storage_env = normalize_storage_env(given_env or (config.storage_env if config is not None else None))
    config = config_for(root_dir, config_dir, storage_env, config)
    parts = _category_dir(config, category)
    if category == "cache" and "subcategory" in tokens:
        sub = str(tokens.pop("subcategory"))
        if sub not in config.cache:
            known = ", ".join(sorted(config.cache)) or "none"
            raise PathsConfigError(
                f"unknown cache subcategory {sub!r} (known: {known})", file=config.file_label, key="cache"
            )
        parts += config.cache[sub].split("/")
    if tokens:
        if category in config.patterns:
            parts += _render(category, {**tokens, "storage_env": storage_env}, config, ("category", category))
        else:
            parts += [normalize_component(v, config.normalize) for v in tokens.values()]
    return check_output_parts(_base_str(root_dir, config), parts, config.normalize.max_path_length)
