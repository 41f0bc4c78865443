"""NamingContext construction, validation, stage resolution and tokens."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mlrig.naming import (
    PROCESS_TYPES,
    NamingContext,
    NamingError,
    build_parent_training_id,
    build_token_values,
    create_naming_context,
    parse_parent_training_id,
)
from mlrig.paths import detect_platform

S = "1234abcd" * 8
T = "feedbeef" * 8
B = "0badcafe" * 8
SPEC = "5bec5bec5bec5bec"
EXEC = "e8ece8ece8ece8ec"
CONV = "c0c0c0c0c0c0c0c0"

VALID: dict[str, dict[str, Any]] = {
    "hpo": {"stage": "hpo_sweep", "study_key_hash": S},
    "hpo_refit": {"study_key_hash": S, "trial_key_hash": T, "trial_number": 1, "trial_id": "trial_1"},
    "benchmarking": {"study_key_hash": S, "trial_key_hash": T, "trial_id": "trial_1"},
    "final_training": {"spec_fp": SPEC, "exec_fp": EXEC},
    "conversion": {"parent_training_id": f"spec_{SPEC}_exec_{EXEC}/v1", "conv_fp": CONV},
    "best_configurations": {"spec_fp": SPEC},
}


def ctx(process_type: str = "hpo", **kw: Any) -> NamingContext:
    fields = {"environment": "local", **VALID[process_type], **kw}
    return create_naming_context(process_type, "distilbert", **fields)


@pytest.mark.parametrize("process_type", PROCESS_TYPES)
def test_every_process_type_builds_and_is_frozen(process_type: str) -> None:
    context = ctx(process_type)
    assert context.process_type == process_type
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.model = "other"  # type: ignore[misc]


def test_invalid_process_type_names_the_field() -> None:
    with pytest.raises(NamingError, match=r"NamingContext\.process_type.*'hpo_trial'"):
        NamingContext(process_type="hpo_trial", model="m", environment="local")


@pytest.mark.parametrize(
    ("kw", "stage"),
    [
        ({}, "hpo_sweep"),
        ({"stage": None, "trial_id": "trial_0", "trial_number": 0}, "hpo_trial"),
        ({"stage": None, "trial_number": 4}, "hpo_trial"),
        ({"stage": None, "trial_number": 4, "fold_idx": 1}, "hpo_trial_fold"),
        ({"stage": "hpo_trial", "trial_number": 2}, "hpo_trial"),
        ({"stage": "hpo_trial_fold", "trial_number": 2, "fold_idx": 0}, "hpo_trial_fold"),
    ],
)
def test_hpo_stage_resolution(kw: dict[str, Any], stage: str) -> None:
    assert ctx("hpo", **kw).stage == stage


def test_non_hpo_stage_is_the_process_type() -> None:
    assert ctx("final_training").stage == "final_training"
    assert ctx("hpo_refit", stage="hpo_refit").stage == "hpo_refit"


@pytest.mark.parametrize(
    ("process_type", "kw", "field"),
    [
        ("hpo", {"stage": "hpo_refit"}, "stage"),
        ("hpo", {"stage": "bogus"}, "stage"),
        ("final_training", {"stage": "hpo_trial"}, "stage"),
        ("hpo", {"study_key_hash": None}, "study_key_hash"),
        ("hpo", {"stage": "hpo_trial"}, "trial_number"),
        ("hpo", {"stage": "hpo_trial_fold", "trial_number": 1}, "fold_idx"),
        ("hpo", {"stage": "hpo_trial", "trial_number": 1, "fold_idx": 0}, "fold_idx"),
        ("hpo_refit", {"trial_key_hash": None}, "trial_key_hash"),
        ("hpo_refit", {"trial_number": None}, "trial_number"),
        ("benchmarking", {"study_key_hash": None}, "study_key_hash"),
        ("final_training", {"exec_fp": None}, "exec_fp"),
        ("conversion", {"conv_fp": None}, "conv_fp"),
        ("conversion", {"parent_training_id": "spec_unknown_exec_unknown/v3"}, "parent_training_id"),
        ("conversion", {"spec_fp": "deadbeefdeadbeef"}, "spec_fp"),
        ("conversion", {"variant": 3}, "variant"),
        ("best_configurations", {"spec_fp": None}, "spec_fp"),
        ("final_training", {"spec_fp": "unknown"}, "spec_fp"),
        ("final_training", {"spec_fp": "ABCDEF0123"}, "spec_fp"),
        ("final_training", {"variant": 0}, "variant"),
        ("final_training", {"variant": True}, "variant"),
        ("hpo", {"trial_number": -1}, "trial_number"),
        ("hpo", {"environment": "mars"}, "environment"),
        ("hpo", {"storage_env": "gcs"}, "storage_env"),
        ("hpo", {"trial_id": "  "}, "trial_id"),
        ("hpo", {"study_name": ""}, "study_name"),
    ],
)
def test_invalid_combinations_raise_naming_the_field(
    process_type: str, kw: dict[str, Any], field: str
) -> None:
    with pytest.raises(NamingError, match=rf"NamingContext\.{field}\b"):
        ctx(process_type, **kw)


def test_blank_model_is_rejected() -> None:
    with pytest.raises(NamingError, match=r"NamingContext\.model"):
        create_naming_context("final_training", " ", spec_fp=SPEC, exec_fp=EXEC, environment="local")


def test_environments_normalised_and_storage_env_defaults() -> None:
    azure = ctx("hpo", environment="azure")
    assert (azure.environment, azure.storage_env) == ("azureml", "azureml")
    split = ctx("hpo", environment="colab", storage_env="local")
    assert (split.environment, split.storage_env) == ("colab", "local")
    assert ctx("hpo", storage_env="azure").storage_env == "azureml"
    detected = create_naming_context("hpo", "m", study_key_hash=S)
    assert detected.environment == detect_platform() == detected.storage_env


def test_conversion_takes_variant_from_parent() -> None:
    conv = ctx("conversion", parent_training_id=f"spec_{SPEC}_exec_{EXEC}/v3")
    assert conv.variant == 3
    assert conv.tokens()["spec8"] == SPEC[:8] and conv.tokens()["exec8"] == EXEC[:8]
    assert ctx("conversion", parent_training_id=f"spec_{SPEC}_exec_{EXEC}/v3", variant=3).variant == 3


def test_parse_and_build_parent_training_id() -> None:
    pid = build_parent_training_id(SPEC, EXEC, 2)
    assert pid == f"spec_{SPEC}_exec_{EXEC}/v2"
    assert parse_parent_training_id(pid) == {"spec_hash": SPEC[:8], "exec_hash": EXEC[:8], "variant": "2"}
    assert parse_parent_training_id("spec-abcdef12_exec-12345678/v7/conv-x")["variant"] == "7"
    assert parse_parent_training_id("spec_ABCDEF12_exec_12345678") == {
        "spec_hash": "abcdef12",
        "exec_hash": "12345678",
        "variant": "1",
    }
    assert parse_parent_training_id("") == {"spec_hash": "unknown", "exec_hash": "unknown", "variant": "1"}
    assert parse_parent_training_id("garbage")["spec_hash"] == "unknown"
    with pytest.raises(NamingError, match="spec_fp"):
        build_parent_training_id("unknown", EXEC)
    with pytest.raises(NamingError, match="variant"):
        build_parent_training_id(SPEC, EXEC, 0)


def test_tokens_full_and_short_forms() -> None:
    context = ctx(
        "benchmarking",
        benchmark_config_hash=B,
        trial_number=4,
        study_name="My Study",
    )
    tokens = context.tokens()
    assert tokens["storage_env"] == "local" and tokens["model"] == "distilbert"
    assert tokens["study_key_hash"] == S and tokens["study8"] == S[:8] and tokens["study_hash"] == S[:8]
    assert tokens["trial8"] == T[:8] and tokens["bench8"] == B[:8]
    assert tokens["spec_fp"] == "" and tokens["spec8"] == ""
    assert tokens["trial_id"] == "trial_1" and tokens["variant"] == "1"
    assert tokens["trial_number"] == "4" and tokens["study_name"] == "My Study"
    assert "fold_idx" not in tokens
    assert build_token_values(context) == tokens
    assert all(isinstance(v, str) for v in tokens.values())
