"""Run identity: one trial id and run key per trial of each study; reference run-key hashes kept as
promised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlrig.naming import (
    NamingError,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    build_mlflow_tags,
    compute_study_key_hash_v2,
    compute_trial_key_hash_from_configs,
    create_naming_context,
)
from mlrig.naming.run_keys import build_trial_id, parse_trial_number
from mlrig.naming.run_names import build_trial_run_name

S = "1234abcd" * 8
SPEC = "5bec5bec5bec5bec"
EXEC = "e8ece8ece8ece8ec"
CONV = "c0c0c0c0c0c0c0c0"
T = "feedbeef" * 8


def _two_studies(load_ref: Callable[[str], Any]) -> tuple[str, str]:
    """Study key hashes of the reference smoke and prod HPO configs for one backbone (same data/train)."""
    data, train = load_ref("data/resume_tiny.yaml"), load_ref("train.yaml")
    smoke = compute_study_key_hash_v2(data, load_ref("hpo/smoke.yaml"), train, "distilbert")
    prod = compute_study_key_hash_v2(data, load_ref("hpo/prod.yaml"), train, "distilbert")
    assert smoke != prod
    return smoke, prod


def test_two_studies_of_one_backbone_get_distinct_trial_identities(
    load_ref: Callable[[str], Any], reference_dir: Path
) -> None:
    studies = _two_studies(load_ref)
    keys: dict[str, set[str]] = {"hpo_trial": set(), "hpo_trial_fold": set(), "hpo_refit": set()}
    for study in studies:
        trial_key = compute_trial_key_hash_from_configs(study, {"learning_rate": 3e-5})
        common = {"environment": "local", "study_key_hash": study, "trial_number": 3}
        trial = create_naming_context("hpo", "distilbert", stage="hpo_trial", **common)
        fold = create_naming_context("hpo", "distilbert", fold_idx=0, **common)
        refit = create_naming_context("hpo_refit", "distilbert", trial_key_hash=trial_key, **common)
        for ctx in (trial, fold, refit):
            assert ctx.trial_id == build_trial_id(study, 3) == f"trial_3_{study[:8]}"
            keys[str(ctx.stage)].add(build_mlflow_run_key_hash(build_mlflow_run_key(ctx)))
            tags = build_mlflow_tags(ctx, config_dir=reference_dir)
            assert tags["code.run_key_hash"] == build_mlflow_run_key_hash(build_mlflow_run_key(ctx))
            assert tags["code.trial_id"] == f"trial_3_{study[:8]}"
    assert all(len(hashes) == 2 for hashes in keys.values()), keys
    assert len(set().union(*keys.values())) == 6


def test_a_reference_style_trial_id_no_longer_merges_two_studies(load_ref: Callable[[str], Any]) -> None:
    # The reference passed trial_id="trial_3" for every study: the label stays, the run key does not use it.
    smoke, prod = _two_studies(load_ref)
    a, b = (
        create_naming_context("hpo", "distilbert", environment="local", study_key_hash=s, trial_number=3,
                              trial_id="trial_3")
        for s in (smoke, prod)
    )  # fmt: skip
    assert a.trial_id == b.trial_id == "trial_3"
    assert build_mlflow_run_key(a) != build_mlflow_run_key(b)


@pytest.mark.parametrize(
    ("context_args", "run_key_hash"),
    [
        (
            {"process_type": "hpo", "stage": "hpo_sweep", "study_key_hash": S},
            "96529db54262aadf0909addc78a2d4ea35f2a9553e694bb1cc988ae90e6153c4",
        ),
        (
            {"process_type": "final_training", "spec_fp": SPEC, "exec_fp": EXEC, "variant": 2},
            "30f1f90f12057912f2635e12c869fe376bacdd387f4e0c21465c152bf39f81e4",
        ),
        (
            {
                "process_type": "conversion",
                "conv_fp": CONV,
                "parent_training_id": f"spec_{SPEC}_exec_{EXEC}/v2",
            },
            "0e959490cacc5393222afffb48b1d7a5a86b09205a3880fa424e5639255615ed",
        ),
        (
            {"process_type": "benchmarking", "study_key_hash": S, "trial_key_hash": T, "trial_id": "trial_3"},
            "5d8ad4955003df82c6a2cf61be3d1aed89ace1237ebcddb01d9294a6a84e550d",
        ),
    ],
    ids=["sweep", "final_training", "conversion", "benchmark"],
)
def test_reference_run_key_hashes_are_byte_identical(context_args: dict[str, Any], run_key_hash: str) -> None:
    # Golden values: sha256 of the reference templates (hpo:{model}:study_{h}, final_training:..., ...).
    args = dict(context_args)
    ctx = create_naming_context(args.pop("process_type"), "distilbert", environment="local", **args)
    assert build_mlflow_run_key_hash(build_mlflow_run_key(ctx)) == run_key_hash


def test_benchmark_context_derives_its_trial_id_from_the_trial_number() -> None:
    ctx = create_naming_context(
        "benchmarking", "distilbert", environment="local", study_key_hash=S, trial_key_hash=T, trial_number=5
    )
    assert build_mlflow_run_key(ctx) == f"benchmark:distilbert:trial_5_{S[:8]}"


def test_trial_id_and_short_run_names_round_trip() -> None:
    assert parse_trial_number(build_trial_id(S, 12)) == 12
    assert build_trial_run_name(4) == "trial_4" and parse_trial_number("trial_4") == 4
    assert build_trial_run_name(4, 1) == "trial_4_fold1" and parse_trial_number("trial_4_fold1") == 4
    assert build_trial_run_name(None, 2) == "fold2" and parse_trial_number("fold2") is None
    assert parse_trial_number("local_distilbert_hpo_trial_study-1234abcd_t03_1") is None
    assert parse_trial_number(None) is None
    with pytest.raises(NamingError, match="trial_number or fold_idx"):
        build_trial_run_name(None)
    with pytest.raises(NamingError, match="trial_number"):
        build_trial_id(S, -1)
    with pytest.raises(NamingError, match="study_key_hash"):
        build_trial_id("abc", 1)


def test_a_force_new_variant_has_its_own_study_key(load_ref: Callable[[str], Any]) -> None:
    data, hpo, train = load_ref("data/resume_tiny.yaml"), load_ref("hpo/prod.yaml"), load_ref("train.yaml")
    first = compute_study_key_hash_v2(data, hpo, train, "distilbert")
    assert compute_study_key_hash_v2(data, hpo, train, "distilbert", variant=1) == first  # reference key
    second = compute_study_key_hash_v2(data, hpo, train, "distilbert", variant=2)
    assert second != first and second == compute_study_key_hash_v2(data, hpo, train, "distilbert", variant=2)
    for bad in (0, True, "2"):
        with pytest.raises(NamingError, match="variant must be an integer"):
            compute_study_key_hash_v2(data, hpo, train, "distilbert", variant=bad)  # type: ignore[arg-type]
