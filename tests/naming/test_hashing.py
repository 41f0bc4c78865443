"""Canonical JSON, hash helpers, key error handling and the 16-hex fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import pytest

from mlrig.naming import (
    HashInputError,
    NamingError,
    build_hpo_study_key,
    build_hpo_study_key_v2,
    build_hpo_trial_key,
    canonical_json,
    compute_bench_fp,
    compute_conv_fp,
    compute_data_fingerprint,
    compute_eval_fingerprint,
    compute_exec_fp,
    compute_hardware_fp,
    compute_hash_16,
    compute_hash_64,
    compute_json_hash,
    compute_spec_fp,
    compute_study_key_hash_v2,
    derive_eval_config,
    fingerprint_json,
)


def test_c1_and_c2_separators_and_order() -> None:
    obj = {"b": [1, 2.5], "a": {"y": None, "x": True}}
    assert canonical_json(obj) == '{"a":{"x":true,"y":null},"b":[1,2.5]}'
    assert fingerprint_json(obj) == '{"a": {"x": true, "y": null}, "b": [1, 2.5]}'


def test_read_only_mappings_and_tuples_serialise_like_dicts_and_lists() -> None:
    frozen = MappingProxyType({"k": (1, MappingProxyType({"z": 2e-05}))})
    assert canonical_json(frozen) == '{"k":[1,{"z":2e-05}]}'


def test_paths_and_dates_serialise_as_str_like_reference_default_str() -> None:
    obj = {"p": PurePosixPath("/a/b"), "d": dt.date(2024, 1, 2), "t": dt.datetime(2024, 1, 2, 3, 4, 5)}
    assert fingerprint_json(obj) == json.dumps(obj, sort_keys=True, default=str)


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def uuid_like() -> Opaque:
    return Opaque()


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"a": {1, 2}}, "cfg.a: value {1, 2} of type set"),
        ({"a": [1, float("nan")]}, "cfg.a[1]: non-finite float nan"),
        ({"a": float("inf")}, "cfg.a: non-finite float inf"),
        ({"a": object}, "of type type"),
        ({"a": uuid_like()}, "of type Opaque"),
        ({(1, 2): "x"}, "mapping key (1, 2)"),
        ({"s": "x", 1: "y"}, "mixed types"),
    ],
)
def test_unserialisable_values_raise_naming_where(obj: Any, fragment: str) -> None:
    with pytest.raises(HashInputError, match="cannot hash") as info:
        canonical_json(obj, what="cfg")
    assert fragment in str(info.value)
    assert isinstance(info.value, NamingError) and isinstance(info.value, ValueError)


def test_circular_reference_is_reported() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(HashInputError, match="circular"):
        canonical_json(loop, what="cfg")


def test_hash_helpers_match_hashlib() -> None:
    text = "hpo:distilbert:trial_3"
    full = hashlib.sha256(text.encode()).hexdigest()
    assert compute_hash_64(text) == full
    assert compute_hash_16(text) == full[:16]
    assert compute_json_hash({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
    assert compute_json_hash({"a": 2}, length=8) == hashlib.sha256(b'{"a":2}').hexdigest()[:8]
    with pytest.raises(HashInputError):
        compute_json_hash({}, length=0)


def test_spec_fp_matches_reference_c2_example() -> None:
    text = (
        '{"data": {"dataset": "resume_ner"}, "model": {"backbone": "distilbert"}, "seed": 42, '
        '"train": {"learning_rate": 2e-05}}'
    )
    fp = compute_spec_fp({"backbone": "distilbert"}, {"dataset": "resume_ner"}, {"learning_rate": 2e-05}, 42)
    assert fp == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_exec_fp_optional_flags_change_payload() -> None:
    base = compute_exec_fp("abc", {"cuda": "12"})
    assert base == hashlib.sha256(b'{"env": {"cuda": "12"}, "git_sha": "abc"}').hexdigest()[:16]
    assert compute_exec_fp(None, {"cuda": "12"}) == compute_exec_fp("unknown", {"cuda": "12"})
    with_flags = compute_exec_fp("abc", {"cuda": "12"}, include_precision=True, include_determinism=False)
    text = b'{"determinism": false, "env": {"cuda": "12"}, "git_sha": "abc", "precision": true}'
    assert with_flags == hashlib.sha256(text).hexdigest()[:16]


def test_conv_bench_hardware_fps() -> None:
    conv = compute_conv_fp("a" * 16, "b" * 16, {"opset": 17, "path": Path("x/y")})
    b16, a16 = "b" * 16, "a" * 16
    text = (
        '{"conversion": {"opset": 17, "path": "x/y"}, '
        f'"parent_exec_fp": "{b16}", "parent_spec_fp": "{a16}"}}'
    )
    assert conv == hashlib.sha256(text.encode()).hexdigest()[:16]
    bench = compute_bench_fp({"m": 1}, {"iterations": 10})
    assert bench == hashlib.sha256(b'{"benchmark": {"iterations": 10}, "model": {"m": 1}}').hexdigest()[:16]
    assert compute_hardware_fp({"gpu": "T4"}) == hashlib.sha256(b'{"gpu": "T4"}').hexdigest()[:16]
    with pytest.raises(HashInputError):
        compute_spec_fp({"m": {1, 2}}, {}, {}, 1)


def test_study_keys_reject_bad_inputs() -> None:
    with pytest.raises(HashInputError, match="model"):
        build_hpo_study_key({}, {}, "  ")
    with pytest.raises(HashInputError, match=r"hpo_config\.sampling"):
        build_hpo_study_key({}, {"sampling": ["random"]}, "m")
    with pytest.raises(HashInputError, match="data_fingerprint"):
        build_hpo_study_key_v2({}, {}, {}, "m", data_fingerprint="", eval_fingerprint="e")
    with pytest.raises(HashInputError, match="data_config"):
        compute_data_fingerprint(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_empty_sections_count_as_empty_and_none_configs_hash() -> None:
    assert build_hpo_study_key({}, {"sampling": None}, "m") == build_hpo_study_key({}, {}, "m")
    assert len(compute_study_key_hash_v2(None, None, None, "m")) == 64


def test_code_version_is_bound_when_requested() -> None:
    base = build_hpo_study_key_v2({}, {}, {}, "m", data_fingerprint="d", eval_fingerprint="e")
    with_code = build_hpo_study_key_v2(
        {},
        {},
        {},
        "m",
        data_fingerprint="d",
        eval_fingerprint="e",
        include_code_version=True,
        code_version="abc",
    )
    assert with_code == '{"code_version":"abc",' + base[1:]  # "code_version" sorts first


def test_trial_key_rejects_non_string_study_hash_and_odd_values() -> None:
    with pytest.raises(HashInputError, match="study_key_hash must be a string"):
        build_hpo_trial_key(123, {})  # type: ignore[arg-type]
    with pytest.raises(HashInputError, match="unsupported type dict"):
        build_hpo_trial_key("s", {"p": {"a": 1}})
    with pytest.raises(HashInputError, match="non-finite"):
        build_hpo_trial_key("s", {"p": float("nan")})


def test_eval_fingerprint_and_derive_priority() -> None:
    assert derive_eval_config({"eval": {"metric": "f1"}}, {"evaluation": {"x": 1}}) == {"metric": "f1"}
    assert derive_eval_config({"eval": {}}, {"evaluation": {"x": 1}}) == {"x": 1}
    assert derive_eval_config(None, None) == {"evaluator_version": "default"}
    assert derive_eval_config({}, {"objective": {"metric": "m"}}) == {
        "evaluator_version": "default",
        "metric": {"metric": "m"},
    }
    text = (
        '{"evaluator_version":"v2","full_eval_config":{"evaluator_version":"v2"},'
        '"metric_spec":{},"thresholding":{}}'
    )
    assert compute_eval_fingerprint({"evaluator_version": "v2"}) == hashlib.sha256(text.encode()).hexdigest()
