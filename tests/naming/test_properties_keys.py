"""Property tests: keys are deterministic and insensitive to dict insertion order."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrig.naming import (
    build_hpo_study_key,
    build_hpo_trial_key,
    canonical_json,
    compute_data_fingerprint,
    compute_spec_fp,
    compute_study_key_hash_v2,
    compute_trial_key_hash_from_configs,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
)
scalars = scalars | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
configs = st.dictionaries(st.text(max_size=8), json_values, max_size=6)
# Sections the study keys read as mappings: always mappings here (a list there is a HashInputError, tested
# elsewhere); every other key is free-form.
SECTIONS = ("sampling", "objective", "evaluation", "eval", "benchmarking")
sections = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
study_configs = st.builds(
    lambda free, known: {**{k: v for k, v in free.items() if k not in SECTIONS}, **known},
    configs,
    st.fixed_dictionaries({}, optional=dict.fromkeys(SECTIONS, sections)),
)
hyper = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    max_size=8,
)


def reorder(value: Any, rng: random.Random) -> Any:
    """The same value with every mapping's insertion order shuffled."""
    if isinstance(value, Mapping):
        items = list(value.items())
        rng.shuffle(items)
        return {k: reorder(v, rng) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rng) for v in value]
    return value


@settings(max_examples=60, deadline=None)
@given(study_configs, study_configs, st.randoms(use_true_random=False))
def test_study_keys_ignore_dict_order(data: dict[str, Any], hpo: dict[str, Any], rng: random.Random) -> None:
    first = compute_study_key_hash_v2(data, hpo, data, "m")
    assert first == compute_study_key_hash_v2(reorder(data, rng), reorder(hpo, rng), reorder(data, rng), "m")
    assert first == compute_study_key_hash_v2(data, hpo, data, "m")
    assert build_hpo_study_key(data, hpo, "m") == build_hpo_study_key(
        reorder(data, rng), reorder(hpo, rng), "m"
    )
    assert compute_data_fingerprint(data) == compute_data_fingerprint(reorder(data, rng))


@settings(max_examples=60, deadline=None)
@given(hyper, st.randoms(use_true_random=False))
def test_trial_keys_ignore_dict_order(params: dict[str, Any], rng: random.Random) -> None:
    key = build_hpo_trial_key("s" * 64, params)
    assert key == build_hpo_trial_key("s" * 64, reorder(params, rng))
    assert compute_trial_key_hash_from_configs("a" * 64, params) == compute_trial_key_hash_from_configs(
        "a" * 64, reorder(params, rng)
    )


@settings(max_examples=60, deadline=None)
@given(json_values, st.randoms(use_true_random=False))
def test_canonical_json_is_order_free_and_fingerprints_stable(value: Any, rng: random.Random) -> None:
    assert canonical_json(value) == canonical_json(reorder(value, rng))
    assert compute_spec_fp({"v": value}, {}, {}, 1) == compute_spec_fp({"v": reorder(value, rng)}, {}, {}, 1)


@settings(max_examples=40, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_trial_float_normalisation_is_idempotent(x: float) -> None:
    once = build_hpo_trial_key("s", {"x": x})
    normalised = float(f"{x:.12e}") if x != 0.0 else 0.0
    assert once == build_hpo_trial_key("s", {"x": normalised})
