"""Run keys (stable identity strings of a run, reference templates) and the version-counter key."""

from __future__ import annotations

from mlrig.naming.canonical import compute_hash_64
from mlrig.naming.context import NamingContext
from mlrig.naming.errors import NamingError


def build_mlflow_run_key(context: NamingContext) -> str:
    """The run key of ``context`` (reference templates, raw ``context.model``).

    ================  ==========================================================================
    hpo_sweep         ``hpo:{model}:study_{study_key_hash}``
    hpo_trial         ``hpo:{model}:{trial_id}``  (``trial_id`` required)
    hpo_trial_fold    ``hpo:{model}:{trial_id}:fold{fold_idx}``  (``trial_id`` required)
    hpo_refit         ``hpo_refit:{model}:{trial_id}``  (``trial_id`` required)
    benchmarking      ``benchmark:{model}:{trial_id}``  (``trial_id`` required)
    final_training    ``final_training:{model}:spec_{spec_fp}:exec_{exec_fp}:v{variant}``
    conversion        ``conversion:{model}:{parent_training_id}:conv_{conv_fp}``
    other             ``{process_type}:{model}:spec_{spec_fp}``
    ================  ==========================================================================
    """
    model, stage = context.model, context.stage
    if stage == "hpo_sweep":
        return f"hpo:{model}:study_{context.study_key_hash}"
    if stage in ("hpo_trial", "hpo_trial_fold", "hpo_refit", "benchmarking"):
        if not context.trial_id:
            raise NamingError(
                f"{stage} run key requires NamingContext.trial_id (e.g. 'trial_3' or 'trial-<trial8>')"
            )
        prefix = {"hpo_refit": "hpo_refit", "benchmarking": "benchmark"}.get(stage, "hpo")
        key = f"{prefix}:{model}:{context.trial_id}"
        return f"{key}:fold{context.fold_idx}" if stage == "hpo_trial_fold" else key
    if stage == "final_training":
        return f"final_training:{model}:spec_{context.spec_fp}:exec_{context.exec_fp}:v{context.variant}"
    if stage == "conversion":
        return f"conversion:{model}:{context.parent_training_id}:conv_{context.conv_fp}"
    return f"{context.process_type}:{model}:spec_{context.spec_fp}"


def build_mlflow_run_key_hash(run_key: str) -> str:
    """SHA-256 (64 hex) of a run key."""
    if not isinstance(run_key, str) or not run_key:
        raise NamingError(f"run_key must be a non-empty string, got {run_key!r}")
    return compute_hash_64(run_key)


def build_counter_key(project_name: str, process_type: str, run_key_hash: str, environment: str) -> str:
    """``{project_name}:{process_type}:{run_key_hash}:{environment}``, the run-name version counter's key."""
    for field, value in (
        ("project_name", project_name),
        ("process_type", process_type),
        ("run_key_hash", run_key_hash),
        ("environment", environment),
    ):
        if not isinstance(value, str) or not value or ":" in value:
            raise NamingError(f"{field} must be a non-empty string without ':', got {value!r}")
    return f"{project_name}:{process_type}:{run_key_hash}:{environment}"
