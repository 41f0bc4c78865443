"""``naming.yaml``: loading, strict validation, and the text rules run names are built with."""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlrig.naming._files import opt_bool, opt_int, opt_str, read_config_file, section
from mlrig.naming._patterns import CONTROL_CHARS
from mlrig.naming.canonical import compute_hash_64
from mlrig.naming.errors import NamingConfigError, NamingError

if TYPE_CHECKING:
    from typing import Any, Final, Literal

    Kind = Literal["hash", "number", "suffix"]

NAMING_FILE: Final = "naming.yaml"
RUN_NAME_KINDS: Final = (
    "hpo_sweep",
    "hpo_trial",
    "hpo_trial_fold",
    "hpo_refit",
    "final_training",
    "benchmarking",
    "conversion",
    "best_configurations",
)
# Placeholders allowed in run-name patterns (the reference's "name" scope).
NAME_TOKENS: Final = frozenset(
    {
        "env", "model", "spec_fp", "exec_fp", "spec_hash", "exec_hash", "variant", "study_hash",
        "trial_hash", "study8", "trial8", "bench8", "bench_hash", "trial_number", "fold_idx", "conv_fp",
        "conv_hash", "spec8", "exec8", "conv8", "semantic_suffix", "version",
    }
)  # fmt: skip
_HASH_SOURCES: Final = frozenset(
    {"study_key_hash", "trial_key_hash", "spec_fp", "exec_fp", "conv_fp", "benchmark_config_hash"}
)
_NUMBER_SOURCES: Final = frozenset({"trial_number", "fold_idx", "variant"})
_SOURCES: Final = _HASH_SOURCES | _NUMBER_SOURCES | {"study_name", "parent_training_id"}
# Components fed from a conversion's parent_training_id, by component name.
_PARENT_FIELDS: Final = {"spec_hash": "spec_hash", "spec8": "spec_hash", "exec_hash": "exec_hash",
                         "exec8": "exec_hash", "variant": "variant"}  # fmt: skip
_COMPONENT_KEYS: Final = {
    "hash": {"source", "length", "format", "default"},
    "number": {"source", "format", "zero_pad", "default"},
    "suffix": {"source", "enabled", "max_length", "default"},
}
_TOP_KEYS: Final = {"schema_version", "separators", "run_names", "version", "normalize", "validate"}
_DEFAULT_FORBIDDEN: Final = ("/", "\\", ":", "*", "?", '"', "<", ">", "|")
_SUFFIX_DROP = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True, slots=True)
class Component:
    """One ``run_names.<kind>.components.<name>`` entry, validated."""

    name: str
    source: str
    kind: Kind
    parent_field: str | None
    length: int
    format: str
    zero_pad: int
    default: str | None
    max_length: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class RunNamePattern:
    """A validated ``run_names.<kind>`` entry: the pattern split into ``(literal, field)`` parts."""

    kind: str
    pattern: str
    parts: tuple[tuple[str, str | None], ...]
    components: Mapping[str, Component]

    @property
    def fields(self) -> tuple[str, ...]:
        """The placeholders of the pattern, in order."""
        return tuple(field for _, field in self.parts if field is not None)


@dataclass(frozen=True, slots=True)
class NormalizeRule:
    """``normalize.env`` / ``normalize.model``: sequential replacements, then optional lowercasing."""

    replace: tuple[tuple[str, str], ...]
    lowercase: bool

    def apply(self, value: str) -> str:
        """Normalise ``value`` (replacements in file order, then lowercase if configured)."""
        for old, new in self.replace:
            value = value.replace(old, new)
        return value.lower() if self.lowercase else value


@dataclass(frozen=True, slots=True)
class NamingPolicy:
    """``naming.yaml`` after validation (``source`` is the file it came from, ``None`` for an in-memory
    policy).
    """

    source: Path | None
    schema_version: int
    run_names: Mapping[str, RunNamePattern]
    version_format: str
    version_separator: str
    normalize_env: NormalizeRule
    normalize_model: NormalizeRule
    max_length: int
    warn_length: int
    forbidden_chars: tuple[str, ...]

    def pattern_for(self, kind: str) -> RunNamePattern:
        """The pattern of run-name kind ``kind``; a missing entry is a :class:`NamingConfigError`."""
        try:
            return self.run_names[kind]
        except KeyError:
            raise NamingConfigError(
                f"no pattern for run-name kind {kind!r} "
                f"(defined: {', '.join(sorted(self.run_names)) or 'none'})",
                file=self.source,
                key=f"run_names.{kind}",
            ) from None


def _no_unknown(
    cfg: Mapping[Any, Any], allowed: set[str], *, file: Path | None, prefix: str, what: str
) -> None:
    for name in cfg:
        if name not in allowed:
            raise NamingConfigError(
                f"unknown {what} (allowed: {', '.join(sorted(allowed))})", file=file, key=f"{prefix}{name}"
            )


def _fields(text: str, *, file: Path | None, key: str) -> tuple[tuple[str, str | None], ...]:
    try:
        raw = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise NamingConfigError(f"invalid pattern {text!r}: {exc}", file=file, key=key, value=text) from exc
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in raw:
        if field is not None and (not field.isidentifier() or spec or conversion):
            raise NamingConfigError(
                f"placeholder {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
                " must be a plain name like {model}",
                file=file,
                key=key,
                value=text,
            )
        parts.append((literal, field))
    return tuple(parts)


def _component(name: str, cfg: object, *, file: Path | None, key: str) -> Component:
    if not isinstance(cfg, Mapping):
        raise NamingConfigError(f"must be a mapping, got {cfg!r}", file=file, key=key, value=cfg)
    source = cfg.get("source")
    if source not in _SOURCES:
        raise NamingConfigError(
            f"source must be one of {', '.join(sorted(_SOURCES))}, got {source!r}",
            file=file,
            key=f"{key}.source",
        )
    parent_field = None
    kind: Kind
    if source == "parent_training_id":
        parent_field = _PARENT_FIELDS.get(name)
        if parent_field is None:
            raise NamingConfigError(
                f"source 'parent_training_id' feeds only {', '.join(sorted(_PARENT_FIELDS))}, not {name!r}",
                file=file,
                key=f"{key}.source",
            )
        kind = "number" if parent_field == "variant" else "hash"
    elif source in _NUMBER_SOURCES:
        kind = "number"
    elif source == "study_name":
        kind = "suffix"
    else:
        kind = "hash"
    _no_unknown(
        cfg, _COMPONENT_KEYS[kind], file=file, prefix=f"{key}.", what=f"setting for a {kind} component"
    )
    fmt_field = "number" if kind == "number" else "value"
    fmt = opt_str(cfg, "format", f"{{{fmt_field}}}", file=file, prefix=f"{key}.", allow_empty=True)
    bad = [f for _, f in _fields(fmt, file=file, key=f"{key}.format") if f is not None and f != fmt_field]
    if bad:
        raise NamingConfigError(
            f"format may only use {{{fmt_field}}}, got {fmt!r}", file=file, key=f"{key}.format", value=fmt
        )
    default = cfg.get("default")
    if default is not None:
        if isinstance(default, bool) or not isinstance(default, (str, int)):
            raise NamingConfigError(f"must be a string, got {default!r}", file=file, key=f"{key}.default")
        default = str(default)
    return Component(
        name=name,
        source=source,
        kind=kind,
        parent_field=parent_field,
        length=opt_int(cfg, "length", 8, file=file, prefix=f"{key}.", minimum=1),
        format=fmt,
        zero_pad=opt_int(cfg, "zero_pad", 0, file=file, prefix=f"{key}.", maximum=20),
        default=default,
        max_length=opt_int(cfg, "max_length", 30, file=file, prefix=f"{key}.", minimum=1),
        enabled=opt_bool(cfg, "enabled", True, file=file, prefix=f"{key}."),
    )


def _run_name(kind: str, cfg: object, *, file: Path | None) -> RunNamePattern:
    key = f"run_names.{kind}"
    if not isinstance(cfg, Mapping):
        raise NamingConfigError(f"must be a mapping with a 'pattern', got {cfg!r}", file=file, key=key)
    _no_unknown(cfg, {"pattern", "components"}, file=file, prefix=f"{key}.", what="setting")
    if "pattern" not in cfg:
        raise NamingConfigError("required setting 'pattern' is missing", file=file, key=f"{key}.pattern")
    pattern = opt_str(cfg, "pattern", "", file=file, prefix=f"{key}.")
    parts = _fields(pattern, file=file, key=f"{key}.pattern")
    for _, field in parts:
        if field is not None and field not in NAME_TOKENS:
            raise NamingConfigError(
                f"unknown placeholder {{{field}}} (allowed: {', '.join(sorted(NAME_TOKENS))})",
                file=file,
                key=f"{key}.pattern",
                value=pattern,
            )
    comps = section(cfg, "components", file=file, prefix=f"{key}.")
    components = {
        str(name): _component(str(name), c, file=file, key=f"{key}.components.{name}")
        for name, c in comps.items()
    }
    return RunNamePattern(kind=kind, pattern=pattern, parts=parts, components=MappingProxyType(components))


def _normalize_rule(data: Mapping[str, Any], which: str, *, file: Path | None) -> NormalizeRule:
    cfg = section(data, which, file=file, prefix="normalize.")
    if not cfg:
        return NormalizeRule(replace=(("/", "_"), ("-", "_"), (" ", "_")), lowercase=False)
    replace = section(cfg, "replace", file=file, prefix=f"normalize.{which}.")
    for old, new in replace.items():
        if not isinstance(old, str) or not old or not isinstance(new, str):
            raise NamingConfigError(
                f"replacements must map non-empty strings to strings, got {old!r}: {new!r}",
                file=file,
                key=f"normalize.{which}.replace",
            )
    lowercase = opt_bool(cfg, "lowercase", False, file=file, prefix=f"normalize.{which}.")
    return NormalizeRule(replace=tuple(replace.items()), lowercase=lowercase)


def compile_naming_policy(policy: Mapping[str, Any], policy_path: Path | None = None) -> NamingPolicy:
    """Validate a ``naming.yaml`` mapping and return its compiled form; errors name the file and key."""
    file = policy_path
    if not isinstance(policy, Mapping):
        raise NamingConfigError(f"top level must be a mapping, got {type(policy).__name__}", file=file)
    _no_unknown(policy, _TOP_KEYS, file=file, prefix="", what="top-level key")
    schema_version = opt_int(policy, "schema_version", 1, file=file, minimum=1)
    section(policy, "separators", file=file)  # informational only; must still be a mapping
    run_names = section(policy, "run_names", file=file, required=True)
    compiled: dict[str, RunNamePattern] = {}
    for kind, cfg in run_names.items():
        if kind not in RUN_NAME_KINDS:
            raise NamingConfigError(
                f"unknown run-name kind (allowed: {', '.join(RUN_NAME_KINDS)})",
                file=file,
                key=f"run_names.{kind}",
            )
        compiled[kind] = _run_name(kind, cfg, file=file)
    version = section(policy, "version", file=file)
    version_format = opt_str(version, "format", "{separator}{number}", file=file, prefix="version.")
    fields = {f for _, f in _fields(version_format, file=file, key="version.format") if f is not None}
    if "number" not in fields or fields - {"number", "separator"}:
        raise NamingConfigError(
            "must contain {number} and may only use {separator} besides it",
            file=file,
            key="version.format",
            value=version_format,
        )
    separator = opt_str(version, "separator", "_", file=file, prefix="version.", allow_empty=True)
    normalize = section(policy, "normalize", file=file)
    validate = section(policy, "validate", file=file)
    max_length = opt_int(validate, "max_length", 256, file=file, prefix="validate.", minimum=1)
    warn_length = opt_int(validate, "warn_length", 150, file=file, prefix="validate.", minimum=1)
    forbidden = validate.get("forbidden_chars", _DEFAULT_FORBIDDEN)
    if not isinstance(forbidden, (list, tuple)) or not all(isinstance(c, str) and c for c in forbidden):
        raise NamingConfigError(
            f"must be a list of non-empty strings, got {forbidden!r}",
            file=file,
            key="validate.forbidden_chars",
        )
    return NamingPolicy(
        source=file,
        schema_version=schema_version,
        run_names=MappingProxyType(compiled),
        version_format=version_format,
        version_separator=separator,
        normalize_env=_normalize_rule(normalize, "env", file=file),
        normalize_model=_normalize_rule(normalize, "model", file=file),
        max_length=max_length,
        warn_length=warn_length,
        forbidden_chars=tuple(forbidden),
    )


def validate_naming_policy(policy: Mapping[str, Any], policy_path: Path | None = None) -> None:
    """Raise :class:`NamingConfigError` (file + key) unless ``policy`` is a valid ``naming.yaml`` mapping."""
    compile_naming_policy(policy, policy_path)


def get_naming_policy(config_dir: Path | str | None = None) -> NamingPolicy:
    """The compiled policy of ``<config_dir>/naming.yaml`` (packaged default when absent), read now.

    A run holds its policy in its :class:`~mlrig.naming.config.NamingConfig` (``naming_config.policy``).
    """
    raw, path = read_config_file(NAMING_FILE, config_dir)
    return compile_naming_policy(raw, path)


def load_naming_policy(config_dir: Path | str | None = None, validate: bool = True) -> Mapping[str, Any]:
    """The raw (read-only) ``naming.yaml`` mapping; validated unless ``validate=False``."""
    raw, path = read_config_file(NAMING_FILE, config_dir)
    if validate:
        compile_naming_policy(raw, path)
    return raw


def _as_policy(policy: Mapping[str, Any] | NamingPolicy) -> NamingPolicy:
    if isinstance(policy, NamingPolicy):
        return policy
    return compile_naming_policy(policy)


def validate_run_name(name: str, policy: Mapping[str, Any] | NamingPolicy) -> None:
    """Check ``name`` against the policy's ``validate`` rules: non-empty, ``max_length``, forbidden/control
    chars.

    Raises :class:`NamingError` (a ``ValueError``) with the reference's ``max_length:`` / ``forbidden:``
    prefixes; a name longer than ``warn_length`` is only logged.
    """
    check_run_name(name, _as_policy(policy))


def check_run_name(name: str, policy: NamingPolicy) -> None:
    """:func:`validate_run_name` against a compiled policy (the hot path)."""
    if not isinstance(name, str) or not name.strip():
        raise NamingError(f"empty: Run name must be a non-empty string, got {name!r}")
    if len(name) > policy.max_length:
        raise NamingError(
            f"max_length: Run name exceeds max length ({policy.max_length}): {name[:50]}... "
            f"(length: {len(name)})"
        )
    if len(name) > policy.warn_length:
        logging.getLogger(__name__).warning(
            "Run name is longer than %d characters (%d): %s", policy.warn_length, len(name), name
        )
    bad = [c for c in policy.forbidden_chars if c in name]
    if CONTROL_CHARS.search(name):
        bad.append("<control character>")
    if bad:
        raise NamingError(f"forbidden: Run name contains forbidden characters {bad}: {name[:50]}...")


def sanitize_semantic_suffix(study_name: str | None, max_length: int = 30, model: str | None = None) -> str:
    """``"_" + cleaned study name`` for HPO sweep names, or ``""`` for an empty name.

    Whitespace is removed, ``/`` becomes ``-``, anything but ASCII letters, digits, ``_``, ``-`` and ``.`` is
    dropped. A result longer than ``max_length`` keeps its head and ends in ``-`` plus 6 hex of its SHA-256,
    so two long study names never merge. ``model`` is accepted for signature compatibility and not used.
    """
    if not study_name:
        return ""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise NamingError(f"max_length must be an int >= 1, got {max_length!r}")
    cleaned = _SUFFIX_DROP.sub("", re.sub(r"\s+", "", study_name).replace("/", "-"))
    if len(cleaned) > max_length:
        digest = compute_hash_64(cleaned)[:6]
        cleaned = cleaned[: max_length - 7] + "-" + digest if max_length >= 8 else cleaned[:max_length]
    return f"_{cleaned}" if cleaned else ""
