"""HPO study/trial keys, data/eval fingerprints and the refit protocol fingerprint (reference v2 scheme).

Every builder returns the canonical C1 JSON text (see :mod:`mlrig.naming.canonical`); the ``*_hash`` functions
and the fingerprints return its SHA-256 as 64 hex characters. Payloads, defaults and the ``"schema_version":
"2.0"`` marker are those of the reference project, so hashes computed here equal the ones already stored in
MLflow tags and output paths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlrig.naming.canonical import canonical_json, compute_hash_64
from mlrig.naming.errors import HashInputError, NamingError

if TYPE_CHECKING:
    from typing import Any

SCHEMA_VERSION = "2.0"
# Optuna/trial metadata that callers strip before hashing hyperparameters (reference behaviour).
TRIAL_METADATA_KEYS = frozenset({"backbone", "trial_number", "run_id"})

_EMPTY: Mapping[str, Any] = {}


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    """A config section as a mapping; ``None`` (an empty YAML section) counts as empty."""
    if value is None:
        return _EMPTY
    if not isinstance(value, Mapping):
        raise HashInputError(f"{what} must be a mapping, got {type(value).__name__}: {value!r}")
    return value


def _model(model: object) -> str:
    if not isinstance(model, str) or not model.strip():
        raise HashInputError(f"model must be a non-empty string, got {model!r}")
    return model.lower().strip()


def _hpo_v1_section(hpo: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "search_space": hpo.get("search_space", {}),
        "objective": hpo.get("objective", {}),
        "k_fold": hpo.get("k_fold", {}),
        "sampling": {
            "algorithm": _mapping(hpo.get("sampling", {}), "hpo_config.sampling").get("algorithm", "random")
        },
        "early_termination": hpo.get("early_termination", {}),
    }


def _v1_payload(
    data_config: Mapping[str, Any] | None,
    hpo_config: Mapping[str, Any] | None,
    benchmark_config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    data = _mapping(data_config, "data_config")
    bench_key: dict[str, Any] = {}
    if benchmark_config:
        bench = _mapping(
            _mapping(benchmark_config, "benchmark_config").get("benchmarking", {}), "benchmarking"
        )
        bench_key = {"metric": bench.get("metric", "macro-f1"), "max_length": bench.get("max_length", 512)}
    return {
        "schema_version": SCHEMA_VERSION,
        "data": {
            "name": data.get("name", ""),
            "version": data.get("version", ""),
            "local_path": str(data.get("local_path", "")),
            "schema": data.get("schema", {}),
        },
        "hpo": _hpo_v1_section(_mapping(hpo_config, "hpo_config")),
        "benchmark": bench_key,
    }


def build_hpo_study_key(
    data_config: Mapping[str, Any],
    hpo_config: Mapping[str, Any],
    model: str,
    benchmark_config: Mapping[str, Any] | None = None,
) -> str:
    """Legacy ("v1") study key: data name/version/local_path/schema, HPO space/objective/k_fold/sampling,
    model.
    """
    payload = _v1_payload(data_config, hpo_config, benchmark_config)
    payload["model"] = _model(model)
    return canonical_json(payload, what="study_key")


def build_hpo_study_key_hash(study_key: str) -> str:
    """SHA-256 (64 hex) of a study key string."""
    return compute_hash_64(_text(study_key, "study_key"))


def build_hpo_study_family_key(
    data_config: Mapping[str, Any],
    hpo_config: Mapping[str, Any],
    benchmark_config: Mapping[str, Any] | None = None,
) -> str:
    """The v1 study key without the model: groups the studies of several backbones on one data/HPO setup."""
    return canonical_json(_v1_payload(data_config, hpo_config, benchmark_config), what="study_family_key")


def build_hpo_study_family_hash(study_family_key: str) -> str:
    """SHA-256 (64 hex) of a study family key string."""
    return compute_hash_64(_text(study_family_key, "study_family_key"))


def _normalize_hyperparameter(name: str, value: object) -> object:
    if isinstance(value, int):  # bool included
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise HashInputError(f"hyperparameter {name!r} is {value!r}; non-finite floats cannot be hashed")
        # 13 significant digits ('.12e'), exactly as the reference does; -0.0 and 0.0 both become 0.0.
        return 0.0 if value == 0.0 else float(f"{value:.12e}")
    if isinstance(value, str):
        return value.lower().strip()
    if value is None:
        return "none"  # reference: str(None).lower()
    if isinstance(value, (list, tuple)) and all(
        item is None or isinstance(item, (str, int, float, bool)) for item in value
    ):
        return str(value).lower().strip()  # reference: str() of the sequence
    raise HashInputError(
        f"hyperparameter {name!r} has unsupported type {type(value).__name__} ({value!r}); "
        "use None, bool, int, float, str or a list/tuple of those"
    )


def build_hpo_trial_key(study_key_hash: str, hyperparameters: Mapping[str, Any]) -> str:
    """Trial key: the study key hash plus the normalised hyperparameters (sorted, floats to 13 digits, str
    lowered).
    """
    if not isinstance(study_key_hash, str):
        raise HashInputError(f"study_key_hash must be a string, got {type(study_key_hash).__name__}")
    params = _mapping(hyperparameters, "hyperparameters")
    normalized: dict[str, Any] = {}
    for name in sorted(params):
        if not isinstance(name, str):
            raise HashInputError(f"hyperparameter names must be strings, got {name!r}")
        normalized[name] = _normalize_hyperparameter(name, params[name])
    payload = {
        "schema_version": SCHEMA_VERSION,
        "study_key_hash": study_key_hash,
        "hyperparameters": normalized,
    }
    return canonical_json(payload, what="trial_key")


def build_hpo_trial_key_hash(trial_key: str) -> str:
    """SHA-256 (64 hex) of a trial key string."""
    return compute_hash_64(_text(trial_key, "trial_key"))


def compute_trial_key_hash_from_configs(
    study_key_hash: str, hyperparameters: Mapping[str, Any], config_dir: object = None
) -> str:
    """Trial key hash of Optuna ``trial.params`` after dropping ``backbone``, ``trial_number`` and ``run_id``.

    ``config_dir`` is accepted for signature compatibility with the reference and not used.
    """
    params = _mapping(hyperparameters, "hyperparameters")
    kept = {k: v for k, v in params.items() if k not in TRIAL_METADATA_KEYS}
    return build_hpo_trial_key_hash(build_hpo_trial_key(study_key_hash, kept))


def compute_data_fingerprint(data_config: Mapping[str, Any]) -> str:
    """Data fingerprint: SHA-256 of ``content_hash``/``manifest_hash`` if set, else of the semantic fields."""
    data = _mapping(data_config, "data_config")
    content = data.get("content_hash") or data.get("manifest_hash")
    if content:
        if not isinstance(content, (str, int)) or isinstance(content, bool):
            raise HashInputError(f"data_config.content_hash/manifest_hash must be a string, got {content!r}")
        return compute_hash_64(str(content))
    payload = {
        "name": data.get("name"),
        "version": data.get("version"),
        "split_seed": data.get("split_seed"),
        "label_mapping": data.get("label_mapping", {}),
        "schema": data.get("schema", {}),
    }
    return compute_hash_64(canonical_json(payload, what="data_config"))


def compute_eval_fingerprint(eval_config: Mapping[str, Any]) -> str:
    """Eval fingerprint: evaluator version, metric spec, thresholding and the whole eval config."""
    ec = _mapping(eval_config, "eval_config")
    payload = {
        "evaluator_version": ec.get("evaluator_version", "default"),
        "metric_spec": ec.get("metric", {}),
        "thresholding": ec.get("thresholding", {}),
        "full_eval_config": ec,
    }
    return compute_hash_64(canonical_json(payload, what="eval_config"))


def derive_eval_config(
    train_config: Mapping[str, Any] | None, hpo_config: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """The eval config the study key binds: ``train.eval``, else ``hpo.evaluation``, else one built from the
    objective.
    """
    train = _mapping(train_config, "train_config")
    hpo = _mapping(hpo_config, "hpo_config")
    if train:
        found = _mapping(train.get("eval", {}) or {}, "train_config.eval")
        if found:
            return found
    if hpo:
        found = _mapping(hpo.get("evaluation", {}) or {}, "hpo_config.evaluation")
        if found:
            return found
        return {"evaluator_version": "default", "metric": hpo.get("objective", {})}
    return {"evaluator_version": "default"}


def _git_head() -> str:
    import subprocess  # only for the opt-in include_code_version; keeps the import of naming light

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise NamingError(f"include_code_version=True but 'git rev-parse HEAD' failed: {exc}") from exc
    return out.stdout.strip()


def build_hpo_study_key_v2(
    data_config: Mapping[str, Any],
    hpo_config: Mapping[str, Any],
    train_config: Mapping[str, Any],
    model: str,
    *,
    data_fingerprint: str,
    eval_fingerprint: str,
    include_code_version: bool = False,
    code_version: str | None = None,
    variant: int = 1,
) -> str:
    """Study key v2: data identity + bound data/eval fingerprints, HPO setup, training budget, model.

    With ``include_code_version`` the key also binds ``code_version`` (default: ``git rev-parse HEAD``; a
    failing git raises instead of hashing a placeholder). ``variant`` > 1 (the n-th study of the same
    settings, made by ``run.mode: force_new``) is bound as ``"variant": n``; variant 1 leaves the key as the
    reference wrote it.
    """
    if isinstance(variant, bool) or not isinstance(variant, int) or variant < 1:
        raise HashInputError(f"study variant must be an integer >= 1, got {variant!r}")
    data = _mapping(data_config, "data_config")
    hpo = _mapping(hpo_config, "hpo_config")
    train = _mapping(train_config, "train_config")
    for what, fp in (("data_fingerprint", data_fingerprint), ("eval_fingerprint", eval_fingerprint)):
        if not isinstance(fp, str) or not fp:
            raise HashInputError(f"{what} must be a non-empty string, got {fp!r}")
    objective = _mapping(hpo.get("objective", {}), "hpo_config.objective")
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "data": {
            "name": data.get("name", ""),
            "version": data.get("version", ""),
            "schema": data.get("schema", {}),
            "split_seed": data.get("split_seed", "default"),
            "label_mapping": data.get("label_mapping", {}),
            "data_fingerprint": data_fingerprint,
        },
        "hpo": {
            "search_space": hpo.get("search_space", {}),
            # Hashed raw, as the reference did (not parsed: mlrig.tracking.objective_of reads the objective).
            "objective": {
                "metric": objective.get("metric", "macro-f1"),
                "direction": objective.get("direction", "maximize"),
            },
            "k_fold": hpo.get("k_fold", {}),
            "sampling": {
                "algorithm": _mapping(hpo.get("sampling", {}), "hpo_config.sampling").get(
                    "algorithm", "random"
                )
            },
            "early_termination": hpo.get("early_termination", {}),
        },
        "training": {
            "max_steps": train.get("max_steps"),
            "num_epochs": train.get("num_epochs"),
            "seed_policy": train.get("seed_policy", "default"),
        },
        "evaluation": {"eval_fingerprint": eval_fingerprint},
        "model": _model(model),
    }
    if include_code_version:
        payload["code_version"] = code_version if code_version is not None else _git_head()
    if variant > 1:
        payload["variant"] = variant
    return canonical_json(payload, what="study_key_v2")


def compute_study_key_hash_v2(
    data_config: Mapping[str, Any] | None,
    hpo_config: Mapping[str, Any] | None,
    train_config: Mapping[str, Any] | None,
    model: str,
    config_dir: object = None,
    *,
    variant: int = 1,
) -> str:
    """The production study key hash: v2 key with ``compute_data_fingerprint`` and ``derive_eval_config``.

    Raises (never returns ``None``) when an input cannot be hashed. ``config_dir`` is accepted for signature
    compatibility with the reference and not used. ``variant``: see :func:`build_hpo_study_key_v2`.
    """
    data_fp = compute_data_fingerprint(data_config or _EMPTY)
    eval_fp = compute_eval_fingerprint(derive_eval_config(train_config, hpo_config))
    key = build_hpo_study_key_v2(
        data_config or _EMPTY,
        hpo_config or _EMPTY,
        train_config or _EMPTY,
        model,
        data_fingerprint=data_fp,
        eval_fingerprint=eval_fp,
        variant=variant,
    )
    return build_hpo_study_key_hash(key)


def compute_refit_protocol_fp(
    data_config: Mapping[str, Any],
    train_config: Mapping[str, Any] | None = None,
    eval_config: Mapping[str, Any] | None = None,
) -> str:
    """Refit protocol fingerprint: dataset name/version/local_path, the fixed full-train protocol, eval
    metric.
    """
    data = _mapping(data_config, "data_config")
    train = _mapping(train_config, "train_config")
    evaluation = _mapping(train.get("evaluation", {}), "train_config.evaluation") if train else _EMPTY
    metric: Any = evaluation.get("metric", "macro-f1")
    postprocess: Any = evaluation.get("postprocess", {})
    if eval_config:
        override = _mapping(eval_config, "eval_config")
        metric = override.get("metric", metric)
        postprocess = override.get("postprocess", postprocess)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "dataset": {
            "name": data.get("name", ""),
            "version": data.get("version", ""),
            "local_path": str(data.get("local_path", "")),
        },
        "refit_protocol": {"split_strategy": "full_train", "use_validation": False},
        "eval": {"metric": metric, "postprocess": postprocess},
    }
    return compute_hash_64(canonical_json(payload, what="refit_protocol"))


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise HashInputError(f"{what} must be a string, got {type(value).__name__}")
    return value
