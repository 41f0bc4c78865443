"""What the stage runners share: where a stage writes (``Where``), the finished-stage marker, the variant
folders and the resolved-config artifact. (Internal to :mod:`mlrig.orchestration.stages`; not exported.)"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlrig.naming import (
    NamingConfig,
    NamingContext,
    build_mlflow_experiment_name,
    build_output_path,
    create_naming_context,
    load_naming_config,
)
from mlrig.orchestration.configs import ExperimentConfig
from mlrig.orchestration.state import ProjectState
from mlrig.storage import DriveBackupStore
from mlrig.tracking import (
    BaseTracker,
    MLflowBenchmarkTracker,
    MLflowConversionTracker,
    MLflowTrainingTracker,
    log_json_artifact,
)

RESULT_FILE = "stage_result.json"
CONFIG_FILE = "resolved_config.json"  # each stage's resolved configuration, also its run's artifact

StageTracker = TypeVar("StageTracker", MLflowTrainingTracker, MLflowConversionTracker, MLflowBenchmarkTracker)


@dataclass(frozen=True)
class Where:
    """Where every stage runner writes: the arguments the three runners share."""

    experiment: ExperimentConfig
    root_dir: Path
    config_dir: Path
    storage_env: str
    store: DriveBackupStore | None
    tracking_uri: str | None
    state: ProjectState | None = None
    naming_config: NamingConfig = field(init=False)

    def __post_init__(self) -> None:
        # Loaded once per stage: its output dirs, run name and tags all come from the same config files.
        object.__setattr__(self, "naming_config", load_naming_config(self.config_dir, self.storage_env))

    def context(self, process: str, backbone: str, **fields: Any) -> NamingContext:
        """The naming context of ``process`` (also its stage name) in this storage environment."""
        return create_naming_context(
            process,
            backbone,
            storage_env=self.storage_env,
            environment=self.storage_env,
            stage=process,
            **fields,
        )

    def output_dir(self, ctx: NamingContext) -> Path:
        """The output directory ``paths.yaml`` gives ``ctx`` (not created)."""
        return build_output_path(self.root_dir, ctx, self.config_dir, naming_config=self.naming_config)

    def tracker(self, cls: type[StageTracker], stage: str) -> StageTracker:
        """The stage's tracker, on the experiment ``<experiment>-<stage>`` named by mlrig.naming."""
        return cls(
            build_mlflow_experiment_name(self.experiment.name, stage),
            tracking_uri=self.tracking_uri,
            config_dir=self.config_dir,
            root_dir=self.root_dir,
            naming_config=self.naming_config,
        )


def log_stage_config(tracker: BaseTracker, out: Path, config: Mapping[str, Any]) -> None:
    """The stage's resolved configuration: ``<out>/resolved_config.json`` and the run's artifact."""
    run = tracker.run
    log_json_artifact(config, out / CONFIG_FILE, run.run_id if run else None, client=tracker.client)


def finished_result(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def existing_variants(parent: Path) -> list[int]:
    if not parent.is_dir():
        return []
    return sorted(int(m.group(1)) for p in parent.iterdir() if (m := re.fullmatch(r"v(\d+)", p.name)))


def pick_variant(parent: Path, new_variant: bool) -> int:
    """The newest finished variant (reused), else the unfinished newest one, else a new one."""
    existing = existing_variants(parent)
    finished = [v for v in existing if finished_result(parent / f"v{v}") is not None]
    if finished and not new_variant:
        return finished[-1]
    return (max(existing) + 1) if (new_variant and existing) else (existing[-1] if existing else 1)


def run_mode(config: Mapping[str, Any]) -> str:
    return str((config.get("run") or {}).get("mode", "reuse_if_exists"))
