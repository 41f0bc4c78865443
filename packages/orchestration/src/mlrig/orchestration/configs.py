"""The experiment's config files in the reference formats: experiment, data, HPO, train, selection, stages."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlrig.orchestration.errors import OrchestrationError
from mlrig.paths import read_yaml_config, thaw

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


# The sections an override can address (``<section>.<key>...=<value>``): the ExperimentConfig attributes.
CONFIG_SECTIONS = tuple(attr for attr, _ in _FILES.values())


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text  # not YAML (an unbalanced bracket, a stray colon): the literal string


def apply_overrides(experiment: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """``experiment`` with Hydra-style overrides applied: ``hpo.sampling.max_trials=4`` sets an existing key
    (the value parsed as YAML: ``4``, ``0.1``, ``true``, ``[a, b]``, ``null``); ``+train.epochs=3`` adds a
    new one. The first part names the section (``data``, ``hpo``, ``train``, ``benchmark``, ``conversion``,
    ``selection``, ``final_training``). An unknown section or key raises :class:`OrchestrationError` naming
    it, before anything is created; the overridden files are then checked against their schemas.
    """
    sections: dict[str, Any] = {
        attr: copy.deepcopy(thaw(getattr(experiment, attr))) for attr in CONFIG_SECTIONS
    }
    for item in overrides:
        add = item.startswith("+")
        key, sep, raw = item.removeprefix("+").partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise OrchestrationError(f"override {item!r} is not <section>.<key>=<value>")
        if parts[0] not in sections:
            raise OrchestrationError(
                f"override {item!r}: unknown section {parts[0]!r} (one of {', '.join(CONFIG_SECTIONS)})"
            )
        node = sections[parts[0]]
        for depth, part in enumerate(parts[1:], start=1):
            last = depth == len(parts) - 1
            if not isinstance(node, dict):
                raise OrchestrationError(f"override {item!r}: {'.'.join(parts[:depth])} is not a mapping")
            if part not in node and not add:
                known = ", ".join(sorted(map(str, node))) or "none"
                raise OrchestrationError(
                    f"override {item!r}: unknown key {'.'.join(parts[: depth + 1])} (known there: {known}; "
                    f"prefix with + to add a key)"
                )
            if last:
                node[part] = _parse_value(raw)
            else:
                node = node.setdefault(part, {}) if add else node[part]
        if len(parts) == 1:
            raise OrchestrationError(f"override {item!r}: name a key inside {parts[0]!r}")
    if overrides:
        _check_overridden(experiment, sections, overrides)
    return replace(experiment, **sections)


def _check_overridden(
    experiment: ExperimentConfig, sections: Mapping[str, Any], overrides: Sequence[str]
) -> None:
    """The overridden sections against their file schemas; an error names the override."""
    import yaml

    from mlrig.orchestration.schemas import validate_config_text
    from mlrig.orchestration.validation import section_schema

    touched = {o.removeprefix("+").split(".", 1)[0] for o in overrides}
    for section in sorted(touched):
        schema = section_schema(section)
        text = yaml.safe_dump(sections[section], sort_keys=False)
        for issue in validate_config_text(text, Path(f"<override {section}>"), schema):
            if issue.level == "error":
                raise OrchestrationError(f"override {section}.{issue.key}: {issue.problem}")


def resolved_config(experiment: ExperimentConfig, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Everything a run of ``experiment`` reads, after overrides: what ``resolved_config.yaml`` holds."""
    out: dict[str, Any] = {"experiment_name": experiment.name, "config_dir": str(experiment.config_dir)}
    out["overrides"] = list(overrides)
    for attr in CONFIG_SECTIONS:
        out[attr] = thaw(getattr(experiment, attr))
    return out
