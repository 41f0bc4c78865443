"""Tags registry (tags.yaml) and build_mlflow_tags per stage."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from mlrig.naming import (
    NamingConfigError,
    NamingContext,
    NamingError,
    TagKeyError,
    TagsRegistry,
    build_mlflow_tags,
    build_system_tags,
    create_naming_context,
    load_tags_registry,
    sanitize_tag_value,
    written_tags,
)

S = "1234abcd" * 8
T = "feedbeef" * 8
B = "0badcafe" * 8
F = "fa111111" * 8
SPEC = "5bec5bec5bec5bec"
EXEC = "e8ece8ece8ece8ec"
CONV = "c0c0c0c0c0c0c0c0"


def hpo(stage: str, **kw: Any) -> NamingContext:
    return create_naming_context(
        "hpo", "distilbert", environment="local", stage=stage, study_key_hash=S, **kw
    )


def test_registry_defaults_cover_every_section(config_dir: Path) -> None:
    registry = load_tags_registry(config_dir)
    assert registry.key("grouping", "study_key_hash") == "code.study_key_hash"
    assert registry.key("study", "key_schema_version") == "code.study.key_schema_version"
    assert registry.key("fingerprint", "data") == "code.fingerprint.data"
    assert registry.key("objective", "direction") == "code.objective.direction"
    assert registry.key("artifact", "available") == "code.artifact.available"
    assert registry.key("mlflow", "parent_run_id") == "mlflow.parentRunId"
    assert registry.schema_version == 1
    hash(registry)


def test_reference_tags_yaml_is_compatible(reference_config_dir: Path, reference_dir: Path) -> None:
    import yaml

    reference = yaml.safe_load((reference_dir / "tags.yaml").read_text())
    registry = load_tags_registry(reference_config_dir)
    for section, entries in reference.items():
        if section == "schema_version":
            continue
        for name, key in entries.items():
            assert registry.key(section, name) == key


def test_partial_override_is_honoured_and_unknown_key_raises(config_dir: Path) -> None:
    (config_dir / "tags.yaml").write_text(
        "grouping:\n  study_key_hash: team.study\ncustom:\n  owner: team.owner\n"
    )
    registry = load_tags_registry(config_dir)
    assert registry.key("grouping", "study_key_hash") == "team.study"
    assert registry.key("grouping", "trial_key_hash") == "code.trial_key_hash"
    assert registry.key("custom", "owner") == "team.owner"
    with pytest.raises(TagKeyError, match=r"Missing tag key: grouping\.nope") as info:
        registry.key("grouping", "nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, NamingError)
    with pytest.raises(TagKeyError, match=r"Missing tag key: nosection\.x"):
        registry.key("nosection", "x")
    tags = build_mlflow_tags(hpo("hpo_sweep"), config_dir=config_dir)
    assert tags["team.study"] == S and "code.study_key_hash" not in tags


def test_registry_raw_is_read_only(config_dir: Path) -> None:
    registry = load_tags_registry(config_dir)
    with pytest.raises(TypeError):
        registry.raw["grouping"]["study_key_hash"] = "x"  # type: ignore[index]
    assert TagsRegistry(raw={"a": {"b": 3}}).schema_version == 1
    with pytest.raises(TagKeyError, match="not a string"):
        TagsRegistry(raw={"a": {"b": 3}}).key("a", "b")
    with pytest.raises(TagKeyError, match="not a dictionary"):
        TagsRegistry(raw={"a": "x"}).key("a", "b")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("- a\n- b\n", None),
        ("grouping: [a, b]\n", "grouping"),
        ("grouping:\n  study_key_hash: 3\n", "grouping.study_key_hash"),
        ("grouping:\n  study_key_hash: ''\n", "grouping.study_key_hash"),
        ("schema_version: one\n", "schema_version"),
        ("grouping: {a: [\n", None),
    ],
)
def test_invalid_tags_yaml_is_a_typed_error(config_dir: Path, text: str, key: str | None) -> None:
    (config_dir / "tags.yaml").write_text(text)
    with pytest.raises(NamingConfigError, match=r"tags\.yaml") as info:
        load_tags_registry(config_dir)
    if key is not None:
        assert info.value.key == key


def test_edited_tags_yaml_is_seen_in_process(config_dir: Path) -> None:
    path = config_dir / "tags.yaml"
    path.write_text("grouping:\n  group_id: first.group\n")
    assert load_tags_registry(config_dir).key("grouping", "group_id") == "first.group"
    path.write_text("grouping:\n  group_id: second.group.id\n")
    assert load_tags_registry(config_dir).key("grouping", "group_id") == "second.group.id"


def test_sweep_tags(reference_config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    ctx = hpo("hpo_sweep", study_name="hpo_distilbert_test_v3")
    tags = build_mlflow_tags(
        ctx, output_dir=Path("/o/hpo"), group_id="g1", study_family_hash=F, config_dir=reference_config_dir
    )
    assert tags == {
        "code.stage": "hpo_sweep",
        "code.model": "distilbert",  # one key per fact: no code.backbone, code.execution_platform,
        "code.storage_env": "local",  # code.created_by (mlflow.user: build_system_tags)
        "code.env": "local",
        "code.project": "resume-ner",
        "code.study_name": "hpo_distilbert_test_v3",
        "code.output_dir": "/o/hpo",
        "code.group_id": "g1",
        "code.grouping_schema_version": "1",
        "code.study_key_hash": S,
        "code.study_family_hash": F,
        "code.run_key_hash": hashlib.sha256(f"hpo:distilbert:study_{S}".encode()).hexdigest(),
    }


def test_trial_and_fold_tags_take_hashes_from_context(config_dir: Path) -> None:
    trial = hpo("hpo_trial", trial_number=4, trial_id="trial_4", trial_key_hash=T)
    tags = build_mlflow_tags(trial, config_dir=config_dir, parent_run_id="p1")
    assert tags["code.stage"] == "hpo_trial"
    assert tags["code.study_key_hash"] == S and tags["code.trial_key_hash"] == T
    assert tags["code.hpo.trial_number"] == "4" and "trial_number" not in tags
    assert tags["code.trial_id"] == "trial_4" and tags["code.parent_run_id"] == "p1"
    assert "code.variant" not in tags and "code.run_type" not in tags
    trial_key = f"hpo:distilbert:study_{S}:trial_4"
    assert tags["code.run_key_hash"] == hashlib.sha256(trial_key.encode()).hexdigest()
    fold = hpo("hpo_trial_fold", trial_number=4, fold_idx=1)
    fold_tags = build_mlflow_tags(fold, config_dir=config_dir)
    assert fold_tags["code.stage"] == "hpo_trial_fold"
    assert fold_tags["code.trial_id"] == f"trial_4_{S[:8]}"
    assert fold_tags["code.run_key_hash"] == hashlib.sha256(f"{trial_key}:fold1".encode()).hexdigest()


def test_refit_tags(config_dir: Path) -> None:
    refit = create_naming_context(
        "hpo_refit",
        "distilbert",
        environment="colab",
        study_key_hash=S,
        trial_key_hash=T,
        trial_number=2,
        trial_id="trial_2",
    )
    tags = build_mlflow_tags(refit, config_dir=config_dir, refit_protocol_fp=B)
    assert (tags["code.stage"], tags["code.run_type"]) == ("hpo_refit", "refit")
    assert tags["code.hpo.trial_number"] == "2" and tags["code.refit_protocol_fp"] == B
    assert tags["code.env"] == "colab" and tags["code.trial_key_hash"] == T


def test_final_training_conversion_and_benchmark_tags(config_dir: Path) -> None:
    final = create_naming_context("final_training", "distilbert", SPEC, EXEC, environment="local", variant=3)
    tags = build_mlflow_tags(final, config_dir=config_dir)
    assert tags["code.spec_fp"] == SPEC and tags["code.exec_fp"] == EXEC and tags["code.variant"] == "3"
    assert "code.grouping_schema_version" not in tags
    pid = f"spec_{SPEC}_exec_{EXEC}/v3"
    conv = create_naming_context(
        "conversion", "distilbert", environment="local", conv_fp=CONV, parent_training_id=pid
    )
    conv_tags = build_mlflow_tags(conv, config_dir=config_dir)
    assert conv_tags["code.parent_training_id"] == pid and conv_tags["code.conv_fp"] == CONV
    assert conv_tags["code.variant"] == "3" and conv_tags["code.stage"] == "conversion"
    bench = create_naming_context(
        "benchmarking",
        "distilbert",
        environment="local",
        study_key_hash=S,
        trial_key_hash=T,
        benchmark_config_hash=B,
    )
    bench_tags = build_mlflow_tags(bench, config_dir=config_dir)
    assert bench_tags["code.benchmark_config_hash"] == B and bench_tags["code.stage"] == "benchmarking"
    assert bench_tags["code.study_key_hash"] == S and "code.run_key_hash" not in bench_tags


def test_conflicting_or_malformed_hash_arguments_raise(config_dir: Path) -> None:
    with pytest.raises(NamingError, match="disagrees"):
        build_mlflow_tags(hpo("hpo_sweep"), study_key_hash=T, config_dir=config_dir)
    with pytest.raises(NamingError, match="trial_key_hash"):
        build_mlflow_tags(hpo("hpo_sweep"), trial_key_hash="not-hex", config_dir=config_dir)
    with pytest.raises(NamingError, match="NamingContext"):
        build_mlflow_tags(None, config_dir=config_dir)  # type: ignore[arg-type]


def test_tag_sanitising_follows_mlflow_yaml(config_dir: Path) -> None:
    (config_dir / "mlflow.yaml").write_text(
        "naming:\n  project_name: p\n  tags: {max_length: 12, sanitize: true}\n"
    )
    long_model = "a-very-long-backbone-name"
    ctx = create_naming_context("final_training", long_model, SPEC, EXEC, environment="local")
    out = "/outputs/" + "x" * 300
    tags = build_mlflow_tags(ctx, output_dir=out, config_dir=config_dir)
    assert tags["code.model"] == "a-very-lo..."
    assert tags["code.output_dir"] == out  # identity values are never cut
    assert tags["code.project"] == "p"
    (config_dir / "mlflow.yaml").write_text("naming:\n  tags: {max_length: 12, sanitize: false}\n")
    assert build_mlflow_tags(ctx, config_dir=config_dir, project_name="override")["code.model"] == long_model
    assert (
        build_mlflow_tags(ctx, config_dir=config_dir, project_name="override")["code.project"] == "override"
    )


def test_identity_tags_reject_control_characters_and_huge_values(config_dir: Path) -> None:
    ctx = create_naming_context("final_training", "m", SPEC, EXEC, environment="local")
    with pytest.raises(NamingError, match=r"code\.output_dir"):
        build_mlflow_tags(ctx, output_dir="a\nb", config_dir=config_dir)
    with pytest.raises(NamingError, match=r"code\.group_id"):
        build_mlflow_tags(ctx, group_id="g" * 6000, config_dir=config_dir)


def test_sanitize_tag_value() -> None:
    assert sanitize_tag_value("") == "" and sanitize_tag_value(None) == ""
    assert sanitize_tag_value("  a\tb\n ") == "a b"
    assert sanitize_tag_value("x" * 300) == "x" * 247 + "..."
    assert sanitize_tag_value("abcdef", max_length=5) == "ab..."
    assert sanitize_tag_value("abcdef", max_length=2) == "ab"
    with pytest.raises(NamingError):
        sanitize_tag_value("a", max_length=0)


def test_sanitize_tag_value_reads_max_length_from_config(config_dir: Path) -> None:
    (config_dir / "mlflow.yaml").write_text("naming:\n  tags: {max_length: 8}\n")
    assert sanitize_tag_value("abcdefghijk", max_length=None, config_dir=config_dir) == "abcde..."


def test_written_tags_keep_mlflow_system_keys_and_drop_foreign_namespaces(reference_config_dir: Path) -> None:
    """The reference tags.yaml still loads with its mlflow.runType / azureml.* keys, but a local store gets
    neither: the run type is code.run_type, Azure ML tags only go to an azureml:// store."""
    registry = load_tags_registry(reference_config_dir)
    assert registry.key("mlflow", "run_type") == "mlflow.runType"  # loads unchanged
    local = registry.run_type_tags("sweep", "sqlite:////x/mlflow.db")
    assert local == {"code.run_type": "sweep"}
    azure = registry.run_type_tags("sweep", "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s")
    assert azure == {"code.run_type": "sweep", "azureml.runType": "sweep", "azureml.sweep": "true"}
    tags = {"mlflow.runType": "sweep", "mlflow.parentRunId": "p", "mlflow.user": "u", "code.stage": "s"}
    assert written_tags(tags, "http://127.0.0.1:5000") == {
        "mlflow.parentRunId": "p",
        "mlflow.user": "u",
        "code.stage": "s",
    }


def test_system_tags(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    registry = load_tags_registry(config_dir)
    tags = build_system_tags(registry, git_commit="a" * 40, source_name="train.py")
    assert tags == {
        "mlflow.user": "alice",
        "mlflow.source.name": "train.py",
        "mlflow.source.type": "LOCAL",
        "mlflow.source.git.commit": "a" * 40,
    }
    monkeypatch.delenv("USER")
    monkeypatch.delenv("USERNAME", raising=False)
    without = build_system_tags(registry)
    assert "mlflow.source.git.commit" not in without and without["mlflow.user"]
