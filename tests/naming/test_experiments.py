"""Experiment names, stage configs and backbone short names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlrig.naming import (
    NamingError,
    build_aml_experiment_name,
    build_mlflow_experiment_name,
    extract_short_backbone_name,
    get_stage_config,
)


def test_mlflow_experiment_name_joins_with_dashes() -> None:
    assert (
        build_mlflow_experiment_name("resume_ner_baseline", "hpo", "distilbert")
        == "resume_ner_baseline-hpo-distilbert"
    )
    assert (
        build_mlflow_experiment_name("resume_ner_baseline", "benchmark", None)
        == "resume_ner_baseline-benchmark"
    )
    assert build_mlflow_experiment_name("exp", "training", "") == "exp-training"


@pytest.mark.parametrize("bad", ["", "  ", " x", None, 3])
def test_experiment_name_parts_are_validated(bad: object) -> None:
    with pytest.raises(NamingError, match="experiment_name"):
        build_mlflow_experiment_name(bad, "hpo", "m")  # type: ignore[arg-type]
    with pytest.raises(NamingError, match="stage"):
        build_mlflow_experiment_name("e", bad, "m")  # type: ignore[arg-type]


def test_aml_experiment_name_rules() -> None:
    assert build_aml_experiment_name("exp_1", "hpo", "distilbert") == "exp_1-hpo-distilbert"
    with pytest.raises(NamingError, match="Azure ML"):
        build_aml_experiment_name("exp", "hpo", "microsoft/deberta")
    with pytest.raises(NamingError, match="Azure ML"):
        build_aml_experiment_name("x" * 250, "hpo", "distilbert")


def test_get_stage_config_from_mapping_and_attribute() -> None:
    cfg = {"stages": {"hpo": {"hpo_config": "smoke"}}}
    assert get_stage_config(cfg, "hpo") == {"hpo_config": "smoke"}
    assert get_stage_config(cfg, "training") == {}
    assert get_stage_config(SimpleNamespace(stages={"hpo": {"a": 1}}), "hpo") == {"a": 1}
    assert get_stage_config({}, "hpo") == {}
    with pytest.raises(NamingError, match=r"stages\.hpo"):
        get_stage_config({"stages": {"hpo": ["x"]}}, "hpo")


@pytest.mark.parametrize(
    ("backbone", "short"),
    [
        ("distilbert-base-uncased", "distilbert"),
        ("distilbert", "distilbert"),
        ("distilroberta-base", "distilroberta"),
        ("bert-base-uncased", "bert"),
        ("bert-large-uncased", "bert-large"),
        ("xlm-roberta-base", "xlm-roberta"),
        ("microsoft/deberta-v3-base", "deberta-v3"),
        ("roberta-large", "roberta-large"),
    ],
)
def test_extract_short_backbone_name(backbone: str, short: str) -> None:
    assert extract_short_backbone_name(backbone) == short


def test_short_names_of_distinct_sizes_do_not_collide() -> None:
    assert extract_short_backbone_name("bert-base") != extract_short_backbone_name("bert-large")
    with pytest.raises(NamingError):
        extract_short_backbone_name("")
