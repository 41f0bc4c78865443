"""The experiment's config files in the reference formats: experiment, data, HPO, train, selection, stages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrig.orchestration.errors import OrchestrationError
from mlrig.paths import read_yaml_config, thaw

__all__ = ["ExperimentConfig", "load_experiment_config", "resolve_seed"]

DEFAULT_CONFIG_DIR = Path(__file__).with_name("defaults")

# experiment file key -> (attribute, default file)
_FILES = {
    "data_config": ("data", None),
    "hpo_config": ("hpo", None),
    "train_config": ("train", "train.yaml"),
    "benchmark_config": ("benchmark", "benchmark.yaml"),
    "conversion_config": ("conversion", "conversion.yaml"),
    "selection_config": ("selection", "best_model_selection.yaml"),
    "final_training_config": ("final_training", "final_training.yaml"),
}


def load_yaml(path: Path, *, required: bool = True) -> dict[str, Any]:
    """``path`` as a plain dict (via ``mlrig.paths.read_yaml_config``); ``{}`` when optional and absent."""
    data = read_yaml_config(path)
    if data is None:
        if required:
            raise OrchestrationError(f"config file not found: {path}")
        return {}
    result: dict[str, Any] = thaw(data)
    return result


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment: its name and the configs its stages read (plain dicts in the reference formats)."""

    name: str
    config_dir: Path
    data: Mapping[str, Any]
    hpo: Mapping[str, Any]
    train: Mapping[str, Any]
    benchmark: Mapping[str, Any]
    conversion: Mapping[str, Any]
    selection: Mapping[str, Any]
    final_training: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backbones(self) -> list[str]:
        """``search_space.backbone.values`` of the HPO config."""
        values = ((self.hpo.get("search_space") or {}).get("backbone") or {}).get("values") or []
        if not values:
            raise OrchestrationError(
                f"{self.config_dir}: hpo config has no search_space.backbone.values (nothing to sweep)"
            )
        return [str(v) for v in values]


def resolve_seed(experiment: ExperimentConfig) -> int:
    """The seed of every training job of ``experiment`` (sweep trials, refit, final training):
    ``train.training.seed``, else the HPO config's ``seed``, else 42."""
    training = experiment.train.get("training") or {}
    return int(training.get("seed", experiment.hpo.get("seed", 42)))


def load_experiment_config(
    config_dir: Path | str, experiment: str, *, stage: str | None = None, validate: bool = True
) -> ExperimentConfig:
    """``<config_dir>/experiment/<experiment>.yaml`` and the files it points to (relative to ``config_dir``).

    ``stage`` applies ``stages.<stage>.hpo_config`` when present, as the reference experiment file does.
    With ``validate`` (default) every config file is first checked against its schema
    (:func:`~mlrig.orchestration.validate_configs`): unknown or unimplemented keys are warned about, schema
    errors raise -- before anything is created.
    """
    from mlrig.orchestration.validation import validate_configs

    cfg_dir = Path(config_dir)
    if validate:
        validate_configs(cfg_dir, experiment)
    exp_file = cfg_dir / "experiment" / f"{experiment}.yaml"
    exp = load_yaml(exp_file)
    name = exp.get("experiment_name")
    if not isinstance(name, str) or not name:
        raise OrchestrationError(
            f"{exp_file}: key 'experiment_name' must be a non-empty string (got {name!r})"
        )
    refs = dict(exp)
    stage_cfg = ((exp.get("stages") or {}).get(stage) or {}) if stage else {}
    if stage_cfg.get("hpo_config"):
        refs["hpo_config"] = stage_cfg["hpo_config"]
    loaded: dict[str, dict[str, Any]] = {}
    for key, (attr, default) in _FILES.items():
        ref = refs.get(key, default)
        if ref is None:
            raise OrchestrationError(f"{exp_file}: key {key!r} is required")
        path = cfg_dir / str(ref)
        if cfg_dir.resolve() not in path.resolve().parents:
            raise OrchestrationError(f"{exp_file}: key {key!r} points outside {cfg_dir}: {ref!r}")
        loaded[attr] = load_yaml(path, required=key in ("data_config", "hpo_config") or key in exp)
    return ExperimentConfig(name=name, config_dir=cfg_dir, **loaded)
