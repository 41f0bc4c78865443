"""mlrig.naming: run identity -- contexts, deterministic keys and fingerprints, run names, tags and experiment
names.

Pure functions over config: nothing here reserves versions, talks to MLflow or reads identity from environment
variables. See the package README for every key, pattern and tag. Names load on first use
(``mlrig.paths.lazy_exports``).
"""

from __future__ import annotations

from mlrig.paths import lazy_exports

# Not typing.TYPE_CHECKING: importing typing costs more than this module (type checkers honour the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlrig.naming.canonical import (
        canonical_json,
        compute_hash_16,
        compute_hash_64,
        compute_json_hash,
        fingerprint_json,
    )
    from mlrig.naming.context import (
        HPO_STAGES,
        PROCESS_TYPES,
        STAGES,
        NamingContext,
        build_parent_training_id,
        build_token_values,
        create_naming_context,
        parse_parent_training_id,
    )
    from mlrig.naming.errors import HashInputError, NamingConfigError, NamingError, TagKeyError
    from mlrig.naming.experiments import (
        build_aml_experiment_name,
        build_mlflow_experiment_name,
        extract_short_backbone_name,
        get_stage_config,
    )
    from mlrig.naming.fingerprints import (
        compute_bench_fp,
        compute_benchmark_config_hash,
        compute_conv_fp,
        compute_exec_fp,
        compute_hardware_fp,
        compute_spec_fp,
    )
    from mlrig.naming.keys import (
        TRIAL_METADATA_KEYS,
        build_hpo_study_family_hash,
        build_hpo_study_family_key,
        build_hpo_study_key,
        build_hpo_study_key_hash,
        build_hpo_study_key_v2,
        build_hpo_trial_key,
        build_hpo_trial_key_hash,
        compute_data_fingerprint,
        compute_eval_fingerprint,
        compute_refit_protocol_fp,
        compute_study_key_hash_v2,
        compute_trial_key_hash_from_configs,
        derive_eval_config,
    )
    from mlrig.naming.mlflow_config import (
        MlflowNamingSettings,
        get_auto_increment_config,
        get_index_config,
        get_mlflow_settings,
        get_naming_config,
        get_run_finder_config,
        get_tracking_config,
        load_mlflow_config,
    )
    from mlrig.naming.outputs import build_output_path
    from mlrig.naming.policy import (
        NamingPolicy,
        get_naming_policy,
        load_naming_policy,
        sanitize_semantic_suffix,
        validate_naming_policy,
        validate_run_name,
    )
    from mlrig.naming.run_keys import build_counter_key, build_mlflow_run_key, build_mlflow_run_key_hash
    from mlrig.naming.run_names import (
        auto_increment_process,
        build_mlflow_run_name,
        build_run_name_counter_key,
        format_run_name,
        is_run_name_versioned,
    )
    from mlrig.naming.tags import TagsRegistry, build_mlflow_tags, load_tags_registry, sanitize_tag_value

_EXPORTS = {
    "canonical_json": "canonical",
    "compute_hash_16": "canonical",
    "compute_hash_64": "canonical",
    "compute_json_hash": "canonical",
    "fingerprint_json": "canonical",
    "HPO_STAGES": "context",
    "PROCESS_TYPES": "context",
    "STAGES": "context",
    "NamingContext": "context",
    "build_parent_training_id": "context",
    "build_token_values": "context",
    "create_naming_context": "context",
    "parse_parent_training_id": "context",
    "HashInputError": "errors",
    "NamingConfigError": "errors",
    "NamingError": "errors",
    "TagKeyError": "errors",
    "build_aml_experiment_name": "experiments",
    "build_mlflow_experiment_name": "experiments",
    "extract_short_backbone_name": "experiments",
    "get_stage_config": "experiments",
    "compute_bench_fp": "fingerprints",
    "compute_benchmark_config_hash": "fingerprints",
    "compute_conv_fp": "fingerprints",
    "compute_exec_fp": "fingerprints",
    "compute_hardware_fp": "fingerprints",
    "compute_spec_fp": "fingerprints",
    "TRIAL_METADATA_KEYS": "keys",
    "build_hpo_study_family_hash": "keys",
    "build_hpo_study_family_key": "keys",
    "build_hpo_study_key": "keys",
    "build_hpo_study_key_hash": "keys",
    "build_hpo_study_key_v2": "keys",
    "build_hpo_trial_key": "keys",
    "build_hpo_trial_key_hash": "keys",
    "compute_data_fingerprint": "keys",
    "compute_eval_fingerprint": "keys",
    "compute_refit_protocol_fp": "keys",
    "compute_study_key_hash_v2": "keys",
    "compute_trial_key_hash_from_configs": "keys",
    "derive_eval_config": "keys",
    "MlflowNamingSettings": "mlflow_config",
    "get_auto_increment_config": "mlflow_config",
    "get_index_config": "mlflow_config",
    "get_mlflow_settings": "mlflow_config",
    "get_naming_config": "mlflow_config",
    "get_run_finder_config": "mlflow_config",
    "get_tracking_config": "mlflow_config",
    "load_mlflow_config": "mlflow_config",
    "build_output_path": "outputs",
    "NamingPolicy": "policy",
    "get_naming_policy": "policy",
    "load_naming_policy": "policy",
    "sanitize_semantic_suffix": "policy",
    "validate_naming_policy": "policy",
    "validate_run_name": "policy",
    "build_counter_key": "run_keys",
    "build_mlflow_run_key": "run_keys",
    "build_mlflow_run_key_hash": "run_keys",
    "auto_increment_process": "run_names",
    "build_mlflow_run_name": "run_names",
    "build_run_name_counter_key": "run_names",
    "format_run_name": "run_names",
    "is_run_name_versioned": "run_names",
    "TagsRegistry": "tags",
    "build_mlflow_tags": "tags",
    "load_tags_registry": "tags",
    "sanitize_tag_value": "tags",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, distribution="mlrig-naming")

__all__ = [
    # errors
    "NamingError",
    "NamingConfigError",
    "HashInputError",
    "TagKeyError",
    # context and output paths
    "PROCESS_TYPES",
    "HPO_STAGES",
    "STAGES",
    "NamingContext",
    "create_naming_context",
    "build_token_values",
    "parse_parent_training_id",
    "build_parent_training_id",
    "build_output_path",
    # canonical JSON and hashes
    "canonical_json",
    "fingerprint_json",
    "compute_hash_64",
    "compute_hash_16",
    "compute_json_hash",
    # HPO keys and fingerprints
    "TRIAL_METADATA_KEYS",
    "build_hpo_study_key",
    "build_hpo_study_key_v2",
    "build_hpo_study_key_hash",
    "build_hpo_study_family_key",
    "build_hpo_study_family_hash",
    "build_hpo_trial_key",
    "build_hpo_trial_key_hash",
    "compute_study_key_hash_v2",
    "compute_trial_key_hash_from_configs",
    "compute_data_fingerprint",
    "compute_eval_fingerprint",
    "derive_eval_config",
    "compute_refit_protocol_fp",
    "compute_spec_fp",
    "compute_exec_fp",
    "compute_conv_fp",
    "compute_bench_fp",
    "compute_hardware_fp",
    "compute_benchmark_config_hash",
    # run keys
    "build_mlflow_run_key",
    "build_mlflow_run_key_hash",
    "build_counter_key",
    # run names
    "NamingPolicy",
    "load_naming_policy",
    "get_naming_policy",
    "validate_naming_policy",
    "validate_run_name",
    "sanitize_semantic_suffix",
    "format_run_name",
    "build_mlflow_run_name",
    "is_run_name_versioned",
    "build_run_name_counter_key",
    "auto_increment_process",
    # tags
    "TagsRegistry",
    "load_tags_registry",
    "build_mlflow_tags",
    "sanitize_tag_value",
    # experiments
    "build_mlflow_experiment_name",
    "build_aml_experiment_name",
    "get_stage_config",
    "extract_short_backbone_name",
    # mlflow.yaml
    "MlflowNamingSettings",
    "load_mlflow_config",
    "get_mlflow_settings",
    "get_naming_config",
    "get_index_config",
    "get_run_finder_config",
    "get_auto_increment_config",
    "get_tracking_config",
]
