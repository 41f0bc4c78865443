"""Property tests: a run name either raises NamingError or passes validate_run_name."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrig.naming import (
    NamingError,
    build_mlflow_run_name,
    create_naming_context,
    load_naming_policy,
    validate_run_name,
)

HEX = st.text(alphabet="0123456789abcdef", min_size=8, max_size=64)
ENVS = st.sampled_from(["local", "colab", "kaggle", "azure", "azureml"])
# A config dir without naming files: the packaged defaults apply.
CONFIG_DIR = Path(__file__).resolve().parent / "no-config-here"


@settings(max_examples=150, deadline=None)
@given(
    model=st.text(min_size=0, max_size=300),
    stage=st.sampled_from(["hpo_sweep", "hpo_trial", "hpo_trial_fold"]),
    env=ENVS,
    study=HEX,
    trial_number=st.integers(min_value=0, max_value=10**6),
    fold=st.integers(min_value=0, max_value=50),
    study_name=st.none() | st.text(max_size=80),
    version=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_hpo_names_are_valid_or_raise(
    model: str,
    stage: str,
    env: str,
    study: str,
    trial_number: int,
    fold: int,
    study_name: str | None,
    version: int | None,
) -> None:
    try:
        context = create_naming_context(
            "hpo",
            model,
            environment=env,
            stage=stage,
            study_key_hash=study,
            trial_number=None if stage == "hpo_sweep" else trial_number,
            fold_idx=fold if stage == "hpo_trial_fold" else None,
            study_name=study_name,
        )
        name = build_mlflow_run_name(context, CONFIG_DIR, version=version)
    except NamingError:
        return
    validate_run_name(name, load_naming_policy(CONFIG_DIR))
    assert study[:8] in name


@settings(max_examples=80, deadline=None)
@given(
    model=st.text(min_size=1, max_size=120),
    spec=HEX,
    exec_=HEX,
    conv=HEX,
    variant=st.integers(min_value=1, max_value=10**4),
)
def test_training_and_conversion_names_are_valid_or_raise(
    model: str, spec: str, exec_: str, conv: str, variant: int
) -> None:
    try:
        final = create_naming_context(
            "final_training", model, spec, exec_, environment="local", variant=variant
        )
        conversion = create_naming_context(
            "conversion",
            model,
            environment="local",
            conv_fp=conv,
            parent_training_id=f"spec_{spec}_exec_{exec_}/v{variant}",
        )
        names = [build_mlflow_run_name(final, CONFIG_DIR), build_mlflow_run_name(conversion, CONFIG_DIR)]
    except NamingError:
        return
    policy = load_naming_policy(CONFIG_DIR)
    for name in names:
        validate_run_name(name, policy)
    assert names[1].endswith(f"_v{variant}_conv-{conv[:8]}")
