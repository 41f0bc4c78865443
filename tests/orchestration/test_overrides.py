"""Hydra-style overrides on an experiment config: values parsed as YAML, unknown keys refused by name,
``+`` adds, overridden sections held to their schemas; the resolved config holds it all."""

from __future__ import annotations

import pytest

from mlrig.orchestration import (
    OrchestrationError,
    apply_overrides,
    load_experiment_config,
    resolved_config,
)
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR


@pytest.fixture(scope="module")
def demo():  # type: ignore[no-untyped-def]
    return load_experiment_config(DEFAULT_CONFIG_DIR, "demo")


def test_values_are_parsed_as_yaml_and_the_original_is_untouched(demo) -> None:  # type: ignore[no-untyped-def]
    out = apply_overrides(
        demo,
        ["hpo.sampling.max_trials=4", "train.training.learning_rate=0.5", "hpo.k_fold.enabled=false",
         "hpo.search_space.backbone.values=[tiny]", "data.name=other", "+train.training.warmup=10"],
    )  # fmt: skip
    assert out.hpo["sampling"]["max_trials"] == 4 and out.train["training"]["learning_rate"] == 0.5
    assert out.hpo["k_fold"]["enabled"] is False and out.backbones == ["tiny"]
    assert out.data["name"] == "other" and out.train["training"]["warmup"] == 10
    assert demo.hpo["sampling"]["max_trials"] == 6 and "warmup" not in demo.train["training"]
    resolved = resolved_config(out, ["hpo.sampling.max_trials=4"])
    assert resolved["hpo"]["sampling"]["max_trials"] == 4 and resolved["overrides"] == [
        "hpo.sampling.max_trials=4"
    ]
    assert resolved["experiment_name"] == demo.name


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "hpo.sampling.max_trails=3",
            "unknown key hpo.sampling.max_trails (known there: algorithm, max_trials",
        ),
        ("model.depth=3", "unknown section 'model'"),
        ("hpo.sampling.max_trials", "is not <section>.<key>=<value>"),
        ("hpo=3", "name a key inside 'hpo'"),
        ("hpo.sampling.max_trials=six", "override hpo.sampling.max_trials: must be an integer (got 'six')"),
        (
            "hpo.search_space.learning_rate.min=0",
            "search_space.learning_rate.min: must be > 0 on a log scale",
        ),
        ("hpo.sampling.max_trials.x=1", "hpo.sampling.max_trials is not a mapping"),
    ],
)
def test_bad_overrides_are_refused_in_one_line(demo, override: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OrchestrationError) as info:
        apply_overrides(demo, [override])
    assert message in str(info.value) and "\n" not in str(info.value)
