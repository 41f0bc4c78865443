"""``mlflow.yaml`` naming-related sections: ``naming``, ``index``, ``run_finder`` and per-stage ``tracking``.

Every accessor takes ``config_dir=None`` (resolved like every other config; the file is read on each call), a
pre-loaded ``config`` mapping, or the run's ``naming_config`` (:class:`~mlrig.naming.config.NamingConfig`,
whose settings are used as they are). It fills documented defaults for absent keys and raises
:class:`~mlrig.naming.errors.NamingConfigError` naming the file and key for a present but invalid value (the
reference logged a warning and silently used the default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from mlrig.naming._files import opt_bool, opt_int, opt_str, read_config_file, section
from mlrig.naming.errors import NamingConfigError

if TYPE_CHECKING:
    from typing import Any, Final

    from mlrig.naming.config import NamingConfig

MLFLOW_FILE: Final = "mlflow.yaml"
DEFAULT_AUTO_INCREMENT_PROCESSES: Final = {"hpo": True, "benchmarking": True}
_STAGE_DEFAULTS: Final[dict[str, dict[str, bool]]] = {
    "benchmark": {"log_artifacts": True},
    "training": {"log_checkpoint": True, "log_metrics_json": True},
    "conversion": {"log_onnx_model": True, "log_conversion_log": True},
}


@dataclass(frozen=True, slots=True)
class MlflowNamingSettings:
    """The validated naming-related settings of one ``mlflow.yaml`` (read-only: a run shares one)."""

    source: Path | None
    project_name: str
    tag_max_length: int
    tag_sanitize: bool
    run_name_max_length: int
    shorten_fingerprints: bool
    auto_increment_enabled: bool
    auto_increment_processes: Mapping[str, bool]
    auto_increment_format: str
    index_enabled: bool
    index_max_entries: int
    index_file_name: str
    strict_mode_default: bool
    tracking: Mapping[str, Mapping[str, Any]]

    def auto_increment_for(self, process_type: str) -> bool:
        """Whether run names of ``process_type`` (``hpo``, ``benchmarking``, ...) get a version suffix."""
        return self.auto_increment_enabled and self.auto_increment_processes.get(process_type, False)


def _compile(config: Mapping[str, Any], file: Path | None) -> MlflowNamingSettings:
    if not isinstance(config, Mapping):
        raise NamingConfigError(f"top level must be a mapping, got {type(config).__name__}", file=file)
    naming = section(config, "naming", file=file)
    tags = section(naming, "tags", file=file, prefix="naming.")
    run_name = section(naming, "run_name", file=file, prefix="naming.")
    auto = section(run_name, "auto_increment", file=file, prefix="naming.run_name.")
    prefix = "naming.run_name.auto_increment."
    processes = dict(DEFAULT_AUTO_INCREMENT_PROCESSES)
    for name, flag in section(auto, "processes", file=file, prefix=prefix).items():
        if not isinstance(name, str) or not isinstance(flag, bool):
            raise NamingConfigError(
                f"must map process types to true/false, got {name!r}: {flag!r}",
                file=file,
                key=f"{prefix}processes",
            )
        processes[name] = flag
    auto_format = opt_str(auto, "format", "{base}.{version}", file=file, prefix=prefix)
    if "{base}" not in auto_format or "{version}" not in auto_format:
        raise NamingConfigError(
            "must contain {base} and {version}", file=file, key=f"{prefix}format", value=auto_format
        )
    index = section(config, "index", file=file)
    file_name = opt_str(index, "file_name", "mlflow_index.json", file=file, prefix="index.")
    if "/" in file_name or "\\" in file_name or file_name in (".", ".."):
        raise NamingConfigError(
            "must be a plain file name (no path separators)",
            file=file,
            key="index.file_name",
            value=file_name,
        )
    tracking_raw = section(config, "tracking", file=file)
    tracking: dict[str, Mapping[str, Any]] = {}
    for stage in tracking_raw:
        stage_cfg = section(tracking_raw, stage, file=file, prefix="tracking.")
        for flag in ("enabled", *_STAGE_DEFAULTS.get(str(stage), {})):
            opt_bool(stage_cfg, flag, True, file=file, prefix=f"tracking.{stage}.")
        tracking[str(stage)] = stage_cfg
    return MlflowNamingSettings(
        source=file,
        project_name=opt_str(naming, "project_name", "mlrig", file=file, prefix="naming."),
        tag_max_length=opt_int(
            tags, "max_length", 250, file=file, prefix="naming.tags.", minimum=1, maximum=500
        ),
        tag_sanitize=opt_bool(tags, "sanitize", True, file=file, prefix="naming.tags."),
        run_name_max_length=opt_int(
            run_name, "max_length", 100, file=file, prefix="naming.run_name.", minimum=1
        ),
        shorten_fingerprints=opt_bool(
            run_name, "shorten_fingerprints", True, file=file, prefix="naming.run_name."
        ),
        auto_increment_enabled=opt_bool(auto, "enabled", False, file=file, prefix=prefix),
        auto_increment_processes=MappingProxyType(processes),
        auto_increment_format=auto_format,
        index_enabled=opt_bool(index, "enabled", True, file=file, prefix="index."),
        index_max_entries=opt_int(index, "max_entries", 1000, file=file, prefix="index.", minimum=1),
        index_file_name=file_name,
        strict_mode_default=opt_bool(
            section(config, "run_finder", file=file),
            "strict_mode_default",
            True,
            file=file,
            prefix="run_finder.",
        ),
        tracking=MappingProxyType(tracking),
    )


def get_mlflow_settings(
    config_dir: Path | str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> MlflowNamingSettings:
    """Validated settings of ``mlflow.yaml``, read now; of a pre-loaded ``config`` mapping; or the run's
    ``naming_config.mlflow`` as is.
    """
    if naming_config is not None:
        return naming_config.mlflow
    if config is not None:
        return _compile(config, None)
    raw, path = read_config_file(MLFLOW_FILE, config_dir)
    return _compile(raw, path)


def load_mlflow_config(config_dir: Path | str | None = None) -> Mapping[str, Any]:
    """Read-only ``mlflow.yaml``: ``<config_dir>/mlflow.yaml`` or the packaged default, validated."""
    raw, path = read_config_file(MLFLOW_FILE, config_dir)
    _compile(raw, path)
    return raw


def get_naming_config(
    config_dir: Path | str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> dict[str, Any]:
    """``naming:``: ``project_name``, ``tags.{max_length,sanitize}``,
    ``run_name.{max_length,shorten_fingerprints}``.
    """
    s = get_mlflow_settings(config_dir, config, naming_config=naming_config)
    return {
        "project_name": s.project_name,
        "tags": {"max_length": s.tag_max_length, "sanitize": s.tag_sanitize},
        "run_name": {
            "max_length": s.run_name_max_length,
            "shorten_fingerprints": s.shorten_fingerprints,
            "auto_increment": _auto_increment(s),
        },
    }


def _auto_increment(s: MlflowNamingSettings) -> dict[str, Any]:
    return {
        "enabled": s.auto_increment_enabled,
        "processes": dict(s.auto_increment_processes),
        "format": s.auto_increment_format,
    }


def get_auto_increment_config(
    config_dir: Path | str | None = None,
    process_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> dict[str, Any]:
    """``naming.run_name.auto_increment`` (``enabled``, ``processes``, ``format``).

    With ``process_type`` the result also has ``enabled_for_process`` = enabled and
    ``processes[process_type]``.
    """
    s = get_mlflow_settings(config_dir, config, naming_config=naming_config)
    result = _auto_increment(s)
    if process_type is not None:
        result["enabled_for_process"] = s.auto_increment_for(process_type)
    logging.getLogger(__name__).debug("auto_increment config for %s: %s", process_type, result)
    return result


def get_index_config(
    config_dir: Path | str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> dict[str, Any]:
    """``index:`` (``enabled``, ``max_entries``, ``file_name``) for tracking's local run index."""
    s = get_mlflow_settings(config_dir, config, naming_config=naming_config)
    return {"enabled": s.index_enabled, "max_entries": s.index_max_entries, "file_name": s.index_file_name}


def get_run_finder_config(
    config_dir: Path | str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> dict[str, Any]:
    """``run_finder:`` (``strict_mode_default``)."""
    settings = get_mlflow_settings(config_dir, config, naming_config=naming_config)
    return {"strict_mode_default": settings.strict_mode_default}


def get_tracking_config(
    config_dir: Path | str | None = None,
    stage: str | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    naming_config: NamingConfig | None = None,
) -> dict[str, Any]:
    """``tracking:``: the whole section for ``stage=None``, else the stage's settings over its defaults.

    Stage defaults: ``enabled: true`` plus ``benchmark.log_artifacts``, ``training.log_checkpoint`` /
    ``log_metrics_json``, ``conversion.log_onnx_model`` / ``log_conversion_log`` (all true).
    """
    s = get_mlflow_settings(config_dir, config, naming_config=naming_config)
    if stage is None:
        return {name: dict(cfg) for name, cfg in s.tracking.items()}
    result: dict[str, Any] = {"enabled": True, **_STAGE_DEFAULTS.get(stage, {})}
    result.update(s.tracking.get(stage, {}))
    return result
