"""The schema of each config file mlrig reads (one place per file), and :func:`validate_configs`.

``naming.yaml`` and ``tags.yaml`` are held to their own loaders in mlrig.naming (``naming.yaml`` refuses any
unknown key; ``tags.yaml`` sections map free names to tag keys); every other file to the schema below.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrig.orchestration import schemas
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.schemas import ANY, OK, SEARCH_SPACE, Each, Leaf, Spec, unimplemented
from mlrig.paths import MlrigError, read_yaml_config

logger = logging.getLogger(__name__)

_RUN_MODE = Leaf(choices=("reuse_if_exists", "force_new"))
_OBJECTIVE: Spec = {"metric": OK, "direction": Leaf(choices=("maximize", "minimize")), "goal": OK}
_BASE: Spec = {
    "outputs": OK,
    "config": OK,
    "src": OK,
    "*": unimplemented("only base.outputs, base.config and base.src are read (repository markers, outputs)"),
}
_CACHE_STRATEGY: Spec = {
    "strategy": OK,
    "pattern": OK,
    "timestamped": {"enabled": OK, "keep_all": OK, "max_files": OK, "pattern": OK},
    "latest": {
        "enabled": OK,
        "filename": OK,
        "include_timestamped_ref": unimplemented(
            "the latest file is always a full copy (as in the reference)"
        ),
    },
    "index": {"enabled": OK, "max_entries": OK, "include_metadata": OK, "filename": OK},
}

PATHS_SCHEMA: Mapping[str, Spec] = {
    "schema_version": OK,
    "project": {"name": OK},
    "base": _BASE,
    "env_overrides": Each({"base": _BASE, "outputs": ANY, "cache": ANY, "drive": ANY}),
    "outputs": ANY,
    "cache": ANY,
    "files": unimplemented(
        "mlrig names metrics/benchmark/checkpoint files itself; cache file names come from "
        "cache_strategies.<type>.latest/index.filename"
    ),
    "patterns": ANY,  # every pattern is checked by mlrig.paths (placeholders, required v2 keys)
    "cache_strategy_defaults": ANY,  # a YAML anchor holder for cache_strategies
    "cache_strategies": Each(_CACHE_STRATEGY),
    "repository_root": {
        "markers_from_base": OK,
        "extra_markers": OK,
        "workspace_candidates": OK,
        "platform_candidates": ANY,
        "search": {"max_depth": OK, "fallback_to_cwd": OK, "warn_on_fallback": OK},
        "cache": unimplemented("mlrig.paths keeps no caches: a run finds its root once and passes it down"),
    },
    "drive": {"mount_point": OK, "backup_base_dir": OK},
    "normalize_paths": {
        "replace": ANY,
        "lowercase": OK,
        "max_component_length": OK,
        "max_path_length": OK,
        "forbidden_chars": OK,
    },
}

MLFLOW_SCHEMA: Mapping[str, Spec] = {
    "azure_ml": {"enabled": OK, "workspace_name": OK},
    "local": ANY,
    "tracking": Each({"*": OK}),  # enabled and the stage's log_* switches
    "naming": {
        "project_name": OK,
        "tags": {"max_length": OK, "sanitize": OK},
        "run_name": {
            "max_length": OK,
            "shorten_fingerprints": OK,
            "auto_increment": {"enabled": OK, "processes": ANY, "format": OK},
        },
    },
    "index": {"enabled": OK, "max_entries": OK, "file_name": OK},
    "run_finder": {"strict_mode_default": OK},
}

EXPERIMENT_SCHEMA: Mapping[str, Spec] = {
    "experiment_name": OK,
    "data_config": OK,
    "hpo_config": OK,
    "train_config": OK,
    "benchmark_config": OK,
    "conversion_config": OK,
    "selection_config": OK,
    "final_training_config": OK,
    "strict_config": OK,
    "model_config": unimplemented(
        "a backbone's settings belong to your training function (TrainRequest.params)"
    ),
    "env_config": unimplemented("environments come from paths.yaml env_overrides and --storage-env"),
    "stages": Each(
        {
            "hpo_config": OK,
            "aml_experiment": unimplemented("Azure ML job submission is not part of mlrig"),
            "backbones": unimplemented("the backbones are the HPO config's search_space.backbone.values"),
        }
    ),
    "naming": {
        "include_backbone_in_experiment": unimplemented(
            "HPO experiments are always <experiment>-hpo-<backbone>"
        )
    },
}

HPO_SCHEMA: Mapping[str, Spec] = {
    "search_space": SEARCH_SPACE,  # each entry as Optuna will read it
    "sampling": {
        "algorithm": Leaf(choices=("random", "tpe", "bayesian")),
        "max_trials": Leaf(kind="int", minimum=1),
        "timeout_minutes": Leaf(kind="number", minimum=0),
    },
    "early_termination": {
        "policy": Leaf(choices=("bandit", "median", "none")),
        "evaluation_interval": Leaf(kind="int", minimum=1),
        "slack_factor": Leaf(kind="number", minimum=0),
        "delay_evaluation": Leaf(kind="int", minimum=0),
    },
    "objective": _OBJECTIVE,
    "run": {"mode": _RUN_MODE},
    "selection": {
        "accuracy_threshold": Leaf(kind="number", minimum=0),
        "use_relative_threshold": Leaf(kind="bool"),
        "min_accuracy_gain": Leaf(kind="number", minimum=0),
    },
    "k_fold": {
        "enabled": Leaf(kind="bool"),
        "n_splits": Leaf(kind="int", minimum=2),
        "random_seed": Leaf(kind="int"),
        "shuffle": Leaf(kind="bool"),
        "stratified": Leaf(kind="bool"),
    },
    "checkpoint": {
        "enabled": Leaf(unimplemented_values={"false": "the study is always kept in study.db"}),
        "study_name": OK,
        "auto_resume": OK,
        "storage_path": unimplemented("study.db lives in the study folder of paths.yaml patterns.hpo_v2"),
        "save_only_best": unimplemented(
            "trial checkpoints are your training function's outputs; mlrig keeps them"
        ),
    },
    "mlflow": {"log_best_checkpoint": OK},
    "refit": {"enabled": OK},
    "distributed": {"storage": OK, "heartbeat_interval": OK, "grace_period": OK},  # mlrig worker
    "cleanup": unimplemented("runs left RUNNING are always ended KILLED on resume and trials FAIL"),
    "seed": Leaf(kind="int"),
    "study_name": OK,
}

SELECTION_SCHEMA: Mapping[str, Spec] = {
    "run": {
        "mode": Leaf(
            choices=("reuse_if_exists", "force_new"),
            unimplemented_values={"reuse_if_exists": "selection always re-queries MLflow (force_new)"},
        )
    },
    "objective": _OBJECTIVE,
    "champion_selection": {
        "min_trials_per_group": Leaf(kind="int", minimum=1),
        "top_k_for_stable_score": Leaf(kind="int", minimum=1),
        "require_artifact_available": OK,
        "artifact_check_source": Leaf(choices=("tag", "disk")),
        "prefer_schema_version": Leaf(choices=("auto", "1.0", "2.0")),
        "allow_mixed_schema_groups": OK,
    },
    "scoring": {"f1_weight": OK, "latency_weight": OK, "normalize_weights": OK},
    "benchmark": {"required_metrics": OK, "latency_aggregation": Leaf(choices=("latest", "median", "mean"))},
}

FINAL_TRAINING_SCHEMA: Mapping[str, Spec] = {
    "run": {
        "mode": Leaf(
            choices=("reuse_if_exists", "force_new", "resume_if_incomplete"),
            unimplemented_values={"resume_if_incomplete": "an unfinished variant is trained again"},
        )
    },
    "*": unimplemented(
        "final training takes the champion's params, the train config and the experiment seed"
    ),
}

# Files handed whole to the user's functions: mlrig reads only the keys named in the comments.
TRAIN_SCHEMA: Mapping[str, Spec] = {"*": ANY}  # training.seed
DATA_SCHEMA: Mapping[str, Spec] = {
    "*": ANY
}  # name, version, schema, label_mapping, split seed: the study key
BENCHMARK_SCHEMA: Mapping[str, Spec] = {"run": {"mode": _RUN_MODE}, "benchmarking": ANY, "output": ANY}
CONVERSION_SCHEMA: Mapping[str, Spec] = {"target": {"format": OK}, "*": ANY}

# experiment key -> (schema, default file when the key is absent)
_REFERENCED: Mapping[str, tuple[Mapping[str, Spec], str | None]] = {
    "data_config": (DATA_SCHEMA, None),
    "hpo_config": (HPO_SCHEMA, None),
    "train_config": (TRAIN_SCHEMA, "train.yaml"),
    "benchmark_config": (BENCHMARK_SCHEMA, "benchmark.yaml"),
    "conversion_config": (CONVERSION_SCHEMA, "conversion.yaml"),
    "selection_config": (SELECTION_SCHEMA, "best_model_selection.yaml"),
    "final_training_config": (FINAL_TRAINING_SCHEMA, "final_training.yaml"),
}


def section_schema(section: str) -> Mapping[str, Spec]:
    """The schema of an ExperimentConfig section (``hpo``, ``train``, …: the file it was read from)."""
    return _REFERENCED[f"{section}_config"][0]


class ConfigValidationError(OrchestrationError):
    """A config file breaks its schema (or, under ``strict``, has an unknown or unimplemented key)."""


@dataclass(frozen=True)
class ConfigReport:
    """What :func:`validate_configs` found, file by file."""

    files: tuple[Path, ...]
    issues: tuple[schemas.ConfigIssue, ...]

    @property
    def errors(self) -> list[schemas.ConfigIssue]:
        """The issues that stop a run."""
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[schemas.ConfigIssue]:
        """Unknown and unimplemented keys (errors under ``strict``)."""
        return [i for i in self.issues if i.level == "warning"]


def _delegated(path: Path, load: str) -> list[schemas.ConfigIssue]:
    """naming.yaml/tags.yaml through their own loader; its typed error becomes one issue."""
    from mlrig import naming

    if not path.is_file():
        return []
    try:
        getattr(naming, load)(path.parent)
    except MlrigError as exc:
        key = str(getattr(exc, "key", "") or "")
        line = getattr(exc, "line", None) or (schemas.key_line(path, key) if key else None)
        return [schemas.ConfigIssue(path, line, key, str(exc), "error")]
    return []


def _referenced(config_dir: Path, exp_file: Path) -> list[tuple[Path, Mapping[str, Spec]]]:
    exp = read_yaml_config(exp_file) or {}
    found: list[tuple[Path, Mapping[str, Spec]]] = []
    for key, (schema, default) in _REFERENCED.items():
        refs = [exp.get(key, default)]
        if key == "hpo_config":
            refs += [
                s.get("hpo_config") for s in (exp.get("stages") or {}).values() if isinstance(s, Mapping)
            ]
        for ref in dict.fromkeys(r for r in refs if isinstance(r, str) and r):
            found.append((config_dir / ref, schema))
    return found


def validate_configs(
    config_dir: Path | str,
    experiment: str | None = None,
    *,
    strict: bool | None = None,
    raise_on_error: bool = True,
) -> ConfigReport:
    """Check every config file of ``config_dir`` (and of ``experiment``'s files) against its schema.

    Reads files only; creates nothing, so it runs before any store, study or folder exists. Each unknown or
    unimplemented key is logged as a warning ``<file>:<line>: <key>: <problem>``; schema errors (and, when
    ``strict`` -- default: the experiment's ``strict_config`` -- the warnings too) raise
    :class:`ConfigValidationError` listing them all. With ``raise_on_error=False`` nothing is logged or
    raised: the caller reports the returned :class:`ConfigReport`.
    """
    cfg = Path(config_dir)
    issues: list[schemas.ConfigIssue] = []
    files: list[Path] = []
    for name, schema in (("paths.yaml", PATHS_SCHEMA), ("mlflow.yaml", MLFLOW_SCHEMA)):
        files.append(cfg / name)
        issues += schemas.validate_config_file(cfg / name, schema)
    for name, load in (("naming.yaml", "load_naming_policy"), ("tags.yaml", "load_tags_registry")):
        files.append(cfg / name)
        issues += _delegated(cfg / name, load)
    experiments = (
        [cfg / "experiment" / f"{experiment}.yaml"] if experiment else sorted(cfg.glob("experiment/*.yaml"))
    )
    seen = set(files)
    for exp_file in experiments:
        issues += schemas.validate_config_file(exp_file, EXPERIMENT_SCHEMA)
        files.append(exp_file)
        if strict is None and experiment and (read_yaml_config(exp_file) or {}).get("strict_config") is True:
            strict = True
        for path, schema in _referenced(cfg, exp_file):
            if path not in seen:
                seen.add(path)
                files.append(path)
                issues += schemas.validate_config_file(path, schema)
    report = ConfigReport(tuple(files), tuple(issues))
    if raise_on_error:  # otherwise the caller reports them (mlrig doctor lists them itself)
        for issue in report.warnings:
            logger.warning("%s", issue)
    failing = report.issues if strict else report.errors
    if failing and raise_on_error:
        raise ConfigValidationError(
            ("" if len(failing) == 1 and not strict else f"{len(failing)} config problem(s)")
            + (" (strict): " if strict else ": " if len(failing) > 1 else "")
            + "; ".join(map(str, failing))
        )
    return report
