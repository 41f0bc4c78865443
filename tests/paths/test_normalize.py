from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrig.paths import NormalizePolicy, load_paths_config, normalize_component
from tests.fixtures import REFERENCE_CONFIG_DIR

REFERENCE_POLICY = load_paths_config(REFERENCE_CONFIG_DIR).normalize


def assert_single_safe_component(out: str, limit: int) -> None:
    assert out
    assert out not in (".", "..")
    assert out.strip(".")
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert len(out.encode("utf-8")) <= limit
    assert Path(out).name == out
    assert len(Path(out).parts) == 1


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_string_becomes_one_safe_component_reference_policy(value: str) -> None:
    assert_single_safe_component(normalize_component(value, REFERENCE_POLICY), 255)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=12), st.booleans())
def test_any_string_any_policy(value: str, limit: int, lower: bool) -> None:
    policy = NormalizePolicy(replace=(("x", "."),), lowercase=lower, max_component_length=limit)
    out = normalize_component(value, policy)
    assert_single_safe_component(out, limit)
    if lower:
        assert out == out.lower()


def test_reference_replacements() -> None:
    assert normalize_component("distil-bert base", REFERENCE_POLICY) == "distil_bert_base"
    assert normalize_component('a/b\\c:d*e?f"g<h>i|j', REFERENCE_POLICY) == "a_b_c_d_e_f_g_h_i_j"
    assert normalize_component(None, REFERENCE_POLICY) == "_"
    assert normalize_component("..", REFERENCE_POLICY) == "__"
    assert normalize_component(".", None) == "_"
    assert normalize_component("a\x00b", None) == "a_b"
    assert normalize_component("v1.0", None) == "v1.0"


def test_truncation_respects_utf8_bytes() -> None:
    out = normalize_component("é" * 200, NormalizePolicy(max_component_length=255))
    assert len(out.encode("utf-8")) <= 255
    assert out == "é" * 127


def test_is_within_compares_whole_components() -> None:
    from mlrig.paths import is_within

    assert is_within("/data/x", "/data")
    assert is_within("/data", "/data")
    assert not is_within("/data", "/data", strict=True)
    assert is_within("/data/x", "/data/", strict=True)
    assert not is_within("/data2/x", "/data")
    assert not is_within("/dat", "/data")
    assert is_within("/anything", "/")


def _stepwise(text: str, policy: NormalizePolicy) -> str:
    # The rule as the reference notes state it, one step after the other.
    for old, new in policy.replace:
        if old:
            text = text.replace(old, new)
    for char in policy.forbidden_chars:
        text = text.replace(char, "_")
    if policy.lowercase:
        text = text.lower()
    text = "".join("_" if c in "/\\" or ord(c) < 0x20 or c == "\x7f" else c for c in text)
    limit = max(1, policy.max_component_length)
    text = text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    if text.strip(".") == "":
        text = "_" * max(1, min(len(text), policy.max_component_length))
    return text


# A small alphabet, so that replacements, forbidden characters, case and separators meet each other.
_CHARS = st.sampled_from("aAbB_-./\\\x00 é")


@settings(max_examples=600, deadline=None)
@given(
    st.text(_CHARS, max_size=12),
    st.dictionaries(st.text(_CHARS, min_size=1, max_size=2), st.text(_CHARS, max_size=2), max_size=4),
    st.text(_CHARS, max_size=3),
    st.booleans(),
    st.integers(min_value=0, max_value=8),
)
def test_one_pass_normalisation_equals_the_stepwise_rule(
    value: str, replace: dict[str, str], forbidden: str, lower: bool, limit: int
) -> None:
    # Policies whose steps can be applied as one translation table take a fast path; any policy must give
    # the same component as applying each step in turn.
    policy = NormalizePolicy(
        replace=tuple(replace.items()), forbidden_chars=forbidden, lowercase=lower, max_component_length=limit
    )
    assert normalize_component(value, policy) == _stepwise(value, policy)


def test_reference_policy_equals_the_stepwise_rule_on_names_and_hashes() -> None:
    for value in ("distilbert", "DeBERTa-v3 base", "350a79aa", "a:b*c", "trial_1", "x" * 300, "...", ""):
        assert normalize_component(value, REFERENCE_POLICY) == _stepwise(value, REFERENCE_POLICY)
