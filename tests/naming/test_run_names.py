"""Run names from naming.yaml: every pattern, normalisation, versions, validation and typed config errors."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlrig.naming import (
    NamingConfigError,
    NamingContext,
    NamingError,
    build_counter_key,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    build_mlflow_run_name,
    build_run_name_counter_key,
    create_naming_context,
    format_run_name,
    is_run_name_versioned,
    load_naming_policy,
    sanitize_semantic_suffix,
    validate_naming_policy,
    validate_run_name,
)
from tests.fixtures import REFERENCE_CONFIG_DIR

S = "1234abcd" * 8
T = "feedbeef" * 8
B = "0badcafe" * 8
SPEC = "5bec5bec5bec5bec"
EXEC = "e8ece8ece8ece8ec"
CONV = "c0c0c0c0c0c0c0c0"


def hpo(stage: str, **kw: Any) -> NamingContext:
    base: dict[str, Any] = {"environment": "local", "stage": stage, "study_key_hash": S}
    return create_naming_context("hpo", kw.pop("model", "distilbert"), **{**base, **kw})


def bench(env: str = "local", **kw: Any) -> NamingContext:
    return create_naming_context(
        "benchmarking", "distilbert", environment=env, study_key_hash=S, trial_key_hash=T, **kw
    )


REFIT = create_naming_context(
    "hpo_refit", "distilbert", environment="colab", study_key_hash=S, trial_key_hash=T, trial_number=7,
    trial_id="trial_7",
)  # fmt: skip
FINAL = create_naming_context("final_training", "distilbert", SPEC, EXEC, environment="local", variant=2)
CONVERSION = create_naming_context(
    "conversion",
    "distilbert",
    environment="azure",
    conv_fp=CONV,
    parent_training_id=f"spec_{SPEC}_exec_{EXEC}/v2",
)
S8, T8, B8, SP8, EX8, C8 = S[:8], T[:8], B[:8], SPEC[:8], EXEC[:8], CONV[:8]

CASES: list[tuple[str, NamingContext, int | None, str]] = [
    ("sweep", hpo("hpo_sweep", study_name="hpo_distilbert_test_v3"), 1,
     f"local_distilbert_hpo_study-{S8}_hpo_distilbert_test_v3_1"),
    ("sweep-no-name", hpo("hpo_sweep"), None, f"local_distilbert_hpo_study-{S8}"),
    ("trial", hpo("hpo_trial", trial_number=3, trial_id="trial_3"), 2,
     f"local_distilbert_hpo_trial_study-{S8}_t03_2"),
    ("trial-123", hpo("hpo_trial", trial_number=123), None, f"local_distilbert_hpo_trial_study-{S8}_t123"),
    ("fold", hpo("hpo_trial_fold", trial_number=3, fold_idx=1), 5,
     f"local_distilbert_hpo_trial_study-{S8}_t03_fold1"),
    ("refit", REFIT, 1, f"colab_distilbert_hpo_refit_study-{S8}_trial-{T8}_t07_1"),
    ("final", FINAL, 9, f"local_distilbert_final_training_spec-{SP8}_exec-{EX8}_v2"),
    ("bench", bench("kaggle", benchmark_config_hash=B, trial_id="trial_1"), 4,
     f"kaggle_distilbert_benchmark_study-{S8}_trial-{T8}_bench-{B8}_4"),
    ("bench-no-hash", bench(), None, f"local_distilbert_benchmark_study-{S8}_trial-{T8}_bench-unknown"),
    ("conversion", CONVERSION, 3, f"azureml_distilbert_conversion_spec-{SP8}_exec-{EX8}_v2_conv-{C8}"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "context", "version", "expected"), CASES, ids=[c[0] for c in CASES])
def test_reference_patterns(
    reference_config_dir: Path, label: str, context: NamingContext, version: int | None, expected: str
) -> None:
    assert build_mlflow_run_name(context, reference_config_dir, version=version) == expected


@pytest.mark.parametrize(("label", "context", "version", "expected"), CASES, ids=[c[0] for c in CASES])
def test_packaged_defaults_give_the_same_names(
    config_dir: Path, label: str, context: NamingContext, version: int | None, expected: str
) -> None:
    assert build_mlflow_run_name(context, config_dir, version=version) == expected


def test_format_run_name_is_the_base_without_version(reference_config_dir: Path) -> None:
    trial = hpo("hpo_trial", trial_number=3)
    assert format_run_name("hpo_trial", trial, config_dir=reference_config_dir) == (
        f"local_distilbert_hpo_trial_study-{S[:8]}_t03"
    )
    policy = load_naming_policy(reference_config_dir)
    assert format_run_name("hpo_trial", trial, policy) == f"local_distilbert_hpo_trial_study-{S[:8]}_t03"


@pytest.mark.parametrize(
    ("model", "rendered"),
    [
        ("xlm-roberta/base", "xlm_roberta_base"),
        ("distil bert", "distil_bert"),
        ('we:ird*mo?del"<x>|y\\z', "we_ird_mo_del__x__y_z"),
    ],
)
def test_model_is_normalised(reference_config_dir: Path, model: str, rendered: str) -> None:
    name = build_mlflow_run_name(hpo("hpo_trial", trial_number=0, model=model), reference_config_dir)
    assert name == f"local_{rendered}_hpo_trial_study-{S[:8]}_t00"
    validate_run_name(name, load_naming_policy(reference_config_dir))


def test_version_only_when_auto_increment_enabled_for_process(tmp_path: Path, reference_dir: Path) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    mlflow = yaml.safe_load((reference_dir / "mlflow.yaml").read_text())
    mlflow["naming"]["run_name"]["auto_increment"]["processes"]["hpo"] = False
    (cfg / "mlflow.yaml").write_text(yaml.safe_dump(mlflow))
    trial = hpo("hpo_trial", trial_number=3, trial_id="trial_3")
    bench = create_naming_context(
        "benchmarking",
        "distilbert",
        environment="local",
        study_key_hash=S,
        trial_key_hash=T,
        trial_id="trial_1",
    )
    assert not re.search(r"_7$", build_mlflow_run_name(trial, cfg, version=7))
    assert not is_run_name_versioned(trial, cfg)
    assert build_mlflow_run_name(bench, cfg, version=7).endswith("_7")
    assert is_run_name_versioned(bench, cfg)
    mlflow["naming"]["run_name"]["auto_increment"]["enabled"] = False
    (cfg / "mlflow.yaml").write_text(yaml.safe_dump(mlflow))
    assert build_mlflow_run_name(
        bench,
        cfg,
        version=7,
    ).endswith("bench-unknown")
    assert not is_run_name_versioned(bench, cfg)


@pytest.mark.parametrize("version", [0, -1, True, 1.5, "2"])
def test_bad_version_is_rejected(config_dir: Path, version: Any) -> None:
    with pytest.raises(NamingError, match="version"):
        build_mlflow_run_name(hpo("hpo_sweep"), config_dir, version=version)


def test_naming_never_reads_hpo_study_key_hash_env(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_STUDY_KEY_HASH", "ffffffff" * 8)
    assert "ffffffff" not in build_mlflow_run_name(hpo("hpo_trial", trial_number=1), config_dir)


def rn(policy: dict[str, Any], kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = policy["run_names"][kind]
    return entry


def comp(policy: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = policy["run_names"][kind]["components"][name]
    return entry


def write_naming(cfg: Path, reference_dir: Path, edit: Any) -> None:
    policy = yaml.safe_load((reference_dir / "naming.yaml").read_text())
    edit(policy)
    (cfg / "naming.yaml").write_text(yaml.safe_dump(policy))


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p.pop("run_names"), "run_names"),
        (lambda p: p.update(schema_version="abc"), "schema_version"),
        (lambda p: p.update(schema_version=0), "schema_version"),
        (lambda p: p.update(bogus=1), "bogus"),
        (lambda p: p["run_names"].update(hpo_trail={"pattern": "{env}"}), "run_names.hpo_trail"),
        (lambda p: rn(p, "hpo_trial").update(pattern="{env}_{trial_id}"), "run_names.hpo_trial.pattern"),
        (lambda p: rn(p, "hpo_trial").update(pattern="{env}_{}"), "run_names.hpo_trial.pattern"),
        (lambda p: rn(p, "hpo_trial").update(pattern="{env:>5}"), "run_names.hpo_trial.pattern"),
        (lambda p: rn(p, "hpo_trial").update(pattern="{env"), "run_names.hpo_trial.pattern"),
        (lambda p: rn(p, "hpo_trial").pop("pattern"), "run_names.hpo_trial.pattern"),
        (lambda p: comp(p, "hpo_trial", "study_hash").update(source="env"),
         "run_names.hpo_trial.components.study_hash.source"),
        (lambda p: comp(p, "hpo_trial", "study_hash").update(length=0),
         "run_names.hpo_trial.components.study_hash.length"),
        (lambda p: comp(p, "hpo_trial", "trial_number").update(format="{value}"),
         "run_names.hpo_trial.components.trial_number.format"),
        (lambda p: comp(p, "hpo_trial", "trial_number").update(zero_pad="2"),
         "run_names.hpo_trial.components.trial_number.zero_pad"),
        (lambda p: comp(p, "hpo_trial", "trial_number").update(colour="red"),
         "run_names.hpo_trial.components.trial_number.colour"),
        (lambda p: comp(p, "hpo_sweep", "semantic_suffix").update(enabled="yes"),
         "run_names.hpo_sweep.components.semantic_suffix.enabled"),
        (lambda p: comp(p, "conversion", "conv_hash").update(source="parent_training_id"),
         "run_names.conversion.components.conv_hash.source"),
        (lambda p: p["version"].update(format="{separator}"), "version.format"),
        (lambda p: p["validate"].update(max_length="long"), "validate.max_length"),
        (lambda p: p["validate"].update(forbidden_chars="/"), "validate.forbidden_chars"),
        (lambda p: p["normalize"]["model"].update(lowercase=1), "normalize.model.lowercase"),
        (lambda p: p["normalize"]["model"].update(replace=["/"]), "normalize.model.replace"),
    ],
)  # fmt: skip
def test_invalid_naming_yaml_is_a_typed_error_naming_file_and_key(
    config_dir: Path, reference_dir: Path, edit: Any, key: str
) -> None:
    write_naming(config_dir, reference_dir, edit)
    with pytest.raises(NamingConfigError) as info:
        build_mlflow_run_name(hpo("hpo_trial", trial_number=1), config_dir)
    assert "naming.yaml" in str(info.value)
    assert info.value.key == key, str(info.value)
    assert info.value.file == config_dir / "naming.yaml"


def test_bad_yaml_syntax_is_a_naming_config_error(config_dir: Path) -> None:
    (config_dir / "naming.yaml").write_text("run_names:\n  hpo_trial: [unclosed\n")
    with pytest.raises(NamingConfigError, match=r"naming\.yaml"):
        load_naming_policy(config_dir)


def test_missing_pattern_kind_is_a_typed_error(config_dir: Path, reference_dir: Path) -> None:
    write_naming(config_dir, reference_dir, lambda p: p["run_names"].pop("conversion"))
    ctx = create_naming_context(
        "conversion", "m", environment="local", conv_fp=CONV, parent_training_id=f"spec_{SPEC}_exec_{EXEC}/v1"
    )
    with pytest.raises(NamingConfigError) as info:
        build_mlflow_run_name(ctx, config_dir)
    assert info.value.key == "run_names.conversion"
    best = create_naming_context("best_configurations", "m", spec_fp=SPEC, environment="local")
    with pytest.raises(NamingConfigError, match=r"run_names\.best_configurations"):
        build_mlflow_run_name(best, config_dir)


def test_placeholder_without_value_or_default_raises(config_dir: Path) -> None:
    (config_dir / "naming.yaml").write_text(
        "run_names:\n  final_training:\n    pattern: '{env}_{model}_study-{study_hash}_v{variant}'\n"
    )
    ctx = create_naming_context("final_training", "m", SPEC, EXEC, environment="local")
    with pytest.raises(NamingError, match=r"NamingContext\.study_key_hash"):
        build_mlflow_run_name(ctx, config_dir)
    with_hash = create_naming_context(
        "final_training", "m", SPEC, EXEC, environment="local", study_key_hash=S
    )
    assert build_mlflow_run_name(with_hash, config_dir) == f"local_m_study-{S[:8]}_v1"


def test_component_without_default_raises_when_source_missing(config_dir: Path) -> None:
    (config_dir / "naming.yaml").write_text(
        "run_names:\n  benchmarking:\n    pattern: '{model}_bench-{bench_hash}'\n"
        "    components:\n      bench_hash: {source: benchmark_config_hash, length: 4}\n"
    )
    ctx = create_naming_context(
        "benchmarking", "m", environment="local", study_key_hash=S, trial_key_hash=T, benchmark_config_hash=B
    )
    assert build_mlflow_run_name(ctx, config_dir) == f"m_bench-{B[:4]}"
    bare = create_naming_context("benchmarking", "m", environment="local", study_key_hash=S, trial_key_hash=T)
    with pytest.raises(NamingError, match="benchmark_config_hash"):
        build_mlflow_run_name(bare, config_dir)


def test_length_is_validated_after_the_version_suffix(config_dir: Path, reference_dir: Path) -> None:
    base = build_mlflow_run_name(hpo("hpo_trial", trial_number=1), config_dir)
    write_naming(config_dir, reference_dir, lambda p: p["validate"].update(max_length=len(base)))
    assert build_mlflow_run_name(hpo("hpo_trial", trial_number=1), config_dir) == base
    with pytest.raises(NamingError, match="max_length"):
        build_mlflow_run_name(hpo("hpo_trial", trial_number=1), config_dir, version=2)


def test_validate_run_name_rules(reference_config_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    policy = load_naming_policy(reference_config_dir)
    validate_run_name("ok_name", policy)
    with pytest.raises(NamingError, match=r"^max_length: Run name exceeds max length \(256\)"):
        validate_run_name("x" * 257, policy)
    with pytest.raises(NamingError, match=r"^forbidden:.*':'"):
        validate_run_name("a:b", policy)
    with pytest.raises(NamingError, match="forbidden"):
        validate_run_name("a\nb", policy)
    with pytest.raises(NamingError, match="empty"):
        validate_run_name("", policy)
    with caplog.at_level(logging.WARNING, logger="mlrig.naming"):
        validate_run_name("y" * 200, policy)
    assert "longer than 150" in caplog.text


def test_validate_naming_policy_accepts_reference_and_rejects_bad() -> None:
    reference = REFERENCE_CONFIG_DIR / "naming.yaml"
    validate_naming_policy(yaml.safe_load(reference.read_text()), reference)
    with pytest.raises(NamingConfigError, match="run_names"):
        validate_naming_policy({"schema_version": 1})


@pytest.mark.parametrize(
    ("study_name", "suffix"),
    [
        (None, ""),
        ("", ""),
        ("hpo_distilbert_test_v3", "_hpo_distilbert_test_v3"),
        ("my study/v2", "_mystudy-v2"),
        ("v4.3", "_v4.3"),
        ("étude:x", "_tudex"),
    ],
)
def test_semantic_suffix(study_name: str | None, suffix: str) -> None:
    assert sanitize_semantic_suffix(study_name) == suffix


def test_long_semantic_suffixes_stay_distinct() -> None:
    a = sanitize_semantic_suffix("a_very_long_study_name_for_ablation_one")
    b = sanitize_semantic_suffix("a_very_long_study_name_for_ablation_two")
    assert a != b and len(a) == len(b) == 31
    assert sanitize_semantic_suffix("v4.3") != sanitize_semantic_suffix("v43")


def test_run_keys_templates_and_counter_key(reference_config_dir: Path) -> None:
    sweep = hpo("hpo_sweep")
    assert build_mlflow_run_key(sweep) == f"hpo:distilbert:study_{S}"
    # Trial, fold and refit keys come from the study key hash and trial number, not from the trial_id label.
    trial = hpo("hpo_trial", trial_number=3, trial_id="trial_3_abc")
    assert build_mlflow_run_key(trial) == f"hpo:distilbert:study_{S}:trial_3"
    fold = hpo("hpo_trial_fold", trial_number=3, trial_id="trial_3_abc", fold_idx=2)
    assert build_mlflow_run_key(fold) == f"hpo:distilbert:study_{S}:trial_3:fold2"
    refit = create_naming_context(
        "hpo_refit",
        "Distil-BERT",
        environment="local",
        study_key_hash=S,
        trial_key_hash=T,
        trial_number=3,
        trial_id="trial_3",
    )
    assert build_mlflow_run_key(refit) == f"hpo_refit:Distil-BERT:study_{S}:trial_3"
    final = create_naming_context("final_training", "m", SPEC, EXEC, environment="local", variant=2)
    assert build_mlflow_run_key(final) == f"final_training:m:spec_{SPEC}:exec_{EXEC}:v2"
    pid = f"spec_{SPEC}_exec_{EXEC}/v1"
    conv = create_naming_context("conversion", "m", environment="local", conv_fp=CONV, parent_training_id=pid)
    assert build_mlflow_run_key(conv) == f"conversion:m:{pid}:conv_{CONV}"
    bench = create_naming_context(
        "benchmarking", "m", environment="local", study_key_hash=S, trial_key_hash=T, trial_id="trial_1"
    )
    assert build_mlflow_run_key(bench) == "benchmark:m:trial_1"
    bench_no_id = create_naming_context(
        "benchmarking", "m", environment="local", study_key_hash=S, trial_key_hash=T
    )
    with pytest.raises(NamingError, match="trial_id"):
        build_mlflow_run_key(bench_no_id)
    import hashlib

    run_key = f"hpo:distilbert:study_{S}:trial_3"
    key_hash = hashlib.sha256(run_key.encode()).hexdigest()
    assert build_mlflow_run_key_hash(run_key) == key_hash
    assert build_counter_key("resume-ner", "hpo", key_hash, "local") == f"resume-ner:hpo:{key_hash}:local"
    colab_trial = hpo(
        "hpo_trial", trial_number=3, trial_id="trial_3_abc", environment="colab", storage_env="local"
    )
    assert build_run_name_counter_key(colab_trial, reference_config_dir) == f"resume-ner:hpo:{key_hash}:local"
    with pytest.raises(NamingError, match="project_name"):
        build_counter_key("", "hpo", key_hash, "local")
