"""Compatibility suite (notes §2): keys computed from the reference configs equal hand-built strings.

Every expected string below is written out by hand from the byte-level rules (C1: sorted keys, ``,``/``:``
separators, Python float repr; PyYAML loads ``1e-5`` as the *string* "1e-5"), and hashed with plain hashlib
here, so the suite does not trust the code under test to describe itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from mlrig.naming import (
    build_hpo_study_family_hash,
    build_hpo_study_family_key,
    build_hpo_study_key,
    build_hpo_study_key_hash,
    build_hpo_study_key_v2,
    build_hpo_trial_key,
    build_hpo_trial_key_hash,
    compute_benchmark_config_hash,
    compute_data_fingerprint,
    compute_eval_fingerprint,
    compute_refit_protocol_fp,
    compute_study_key_hash_v2,
    compute_trial_key_hash_from_configs,
    derive_eval_config,
)

Loader = Callable[[str], Any]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


SCHEMA = (
    '{"annotation_format":"character_spans","entity_types":["SKILL","EDUCATION","DESIGNATION","EXPERIENCE",'
    '"NAME","EMAIL","PHONE","LOCATION"],"format":"json","stats":{"entity_density":0.35,"mean_sentence_length":20,'
    '"median_sentence_length":19,"p95_sentence_length":40,"suggested_sequence_length":40}}'
)
EARLY = '{"delay_evaluation":2,"evaluation_interval":1,"policy":"bandit","slack_factor":0.2}'
OBJECTIVE = '{"direction":"maximize","metric":"macro-f1"}'
LOGU = '"learning_rate":{"max":"5e-5","min":"1e-5","type":"loguniform"}'  # YAML 1.1: 1e-5 is a str
DROPOUT = '"dropout":{"max":0.3,"min":0.1,"type":"uniform"}'
DECAY = '"weight_decay":{"max":0.1,"min":0.001,"type":"loguniform"}'
CASES = {
    "smoke": {
        "data": "data/resume_tiny.yaml",
        "hpo": "hpo/smoke.yaml",
        "name": "resume-ner-data-tiny-short",
        "version": "v3",
        "local_path": "../dataset_tiny",
        "search_space": '{"backbone":{"type":"choice","values":["distilbert"]},'
        f'"batch_size":{{"type":"choice","values":[4]}},{DROPOUT},{LOGU},{DECAY}}}',
        "k_fold": '{"enabled":true,"n_splits":2,"random_seed":42,"shuffle":true,"stratified":true}',
    },
    "prod": {
        "data": "data/resume_v1.yaml",
        "hpo": "hpo/prod.yaml",
        "name": "resume-ner-data",
        "version": "2",
        "local_path": "../dataset",
        "search_space": '{"backbone":{"type":"choice","values":["distilroberta","deberta"]},'
        f'"batch_size":{{"type":"choice","values":[8,16]}},{DROPOUT},{LOGU},{DECAY}}}',
        "k_fold": '{"enabled":true,"n_splits":5,"random_seed":42,"shuffle":true,"stratified":true}',
    },
}
EVAL_TEXT = (
    '{"evaluator_version":"default","full_eval_config":{"evaluator_version":"default","metric":'
    + OBJECTIVE
    + "},"
    '"metric_spec":' + OBJECTIVE + ',"thresholding":{}}'
)


def data_fp_text(case: dict[str, str]) -> str:
    return (
        f'{{"label_mapping":{{}},"name":"{case["name"]}","schema":{SCHEMA},"split_seed":null,'
        f'"version":"{case["version"]}"}}'
    )


def hpo_v1_text(case: dict[str, str]) -> str:
    return (
        f'{{"early_termination":{EARLY},"k_fold":{case["k_fold"]},"objective":{OBJECTIVE},'
        f'"sampling":{{"algorithm":"random"}},"search_space":{case["search_space"]}}}'
    )


def v2_text(case: dict[str, str], model: str) -> str:
    return (
        f'{{"data":{{"data_fingerprint":"{sha(data_fp_text(case))}","label_mapping":{{}},"name":"{case["name"]}",'
        f'"schema":{SCHEMA},"split_seed":"default","version":"{case["version"]}"}},'
        f'"evaluation":{{"eval_fingerprint":"{sha(EVAL_TEXT)}"}},'
        f'"hpo":{hpo_v1_text(case)},'
        f'"model":"{model}","schema_version":"2.0",'
        '"training":{"max_steps":null,"num_epochs":null,"seed_policy":"default"}}'
    )


def v1_body(case: dict[str, str], benchmark: str = "{}") -> str:
    return (
        f'"benchmark":{benchmark},"data":{{"local_path":"{case["local_path"]}","name":"{case["name"]}",'
        f'"schema":{SCHEMA},"version":"{case["version"]}"}},"hpo":{hpo_v1_text(case)}'
    )


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, load_ref: Loader) -> tuple[dict[str, str], Any, Any, Any]:
    spec = CASES[request.param]
    return spec, load_ref(spec["data"]), load_ref(spec["hpo"]), load_ref("train.yaml")


def test_pyyaml_scalar_semantics_are_what_the_hashes_rely_on(load_ref: Loader) -> None:
    smoke = load_ref("hpo/smoke.yaml")
    assert smoke["search_space"]["learning_rate"]["min"] == "1e-5"
    assert isinstance(smoke["search_space"]["dropout"]["min"], float)


def test_data_fingerprint_semantic_fallback(case: tuple[dict[str, str], Any, Any, Any]) -> None:
    spec, data, _, _ = case
    assert compute_data_fingerprint(data) == sha(data_fp_text(spec))


def test_data_fingerprint_prefers_content_hash_as_raw_string() -> None:
    assert compute_data_fingerprint({"content_hash": "abc123def456", "name": "x"}) == sha("abc123def456")
    assert compute_data_fingerprint({"manifest_hash": "m1"}) == sha("m1")


def test_eval_config_and_fingerprint_from_objective(case: tuple[dict[str, str], Any, Any, Any]) -> None:
    _, _, hpo, train = case
    derived = derive_eval_config(train, hpo)
    assert derived == {
        "evaluator_version": "default",
        "metric": {"metric": "macro-f1", "direction": "maximize"},
    }
    assert compute_eval_fingerprint(derived) == sha(EVAL_TEXT)


def test_study_key_v2_exact_text_and_hash(case: tuple[dict[str, str], Any, Any, Any]) -> None:
    spec, data, hpo, train = case
    key = build_hpo_study_key_v2(
        data,
        hpo,
        train,
        "  DistilBERT ",
        data_fingerprint=compute_data_fingerprint(data),
        eval_fingerprint=compute_eval_fingerprint(derive_eval_config(train, hpo)),
    )
    assert key == v2_text(spec, "distilbert")
    assert build_hpo_study_key_hash(key) == sha(v2_text(spec, "distilbert"))
    assert compute_study_key_hash_v2(data, hpo, train, "distilbert") == sha(v2_text(spec, "distilbert"))


def test_study_key_v1_and_family(case: tuple[dict[str, str], Any, Any, Any], load_ref: Loader) -> None:
    spec, data, hpo, _ = case
    assert (
        build_hpo_study_key(data, hpo, "distilbert")
        == "{" + v1_body(spec) + ',"model":"distilbert","schema_version":"2.0"}'
    )
    bench = load_ref("benchmark.yaml")
    with_bench = v1_body(spec, '{"max_length":512,"metric":"macro-f1"}')
    assert build_hpo_study_key(data, hpo, "distilbert", bench) == (
        "{" + with_bench + ',"model":"distilbert","schema_version":"2.0"}'
    )
    family = build_hpo_study_family_key(data, hpo)
    assert family == "{" + v1_body(spec) + ',"schema_version":"2.0"}'
    assert build_hpo_study_family_hash(family) == sha("{" + v1_body(spec) + ',"schema_version":"2.0"}')


def test_trial_key_exact_text(case: tuple[dict[str, str], Any, Any, Any]) -> None:
    spec, data, hpo, train = case
    study = sha(v2_text(spec, "distilbert"))
    params = {
        "learning_rate": 2.3456789012345678e-05,
        "batch_size": 4,
        "dropout": 0.1 + 0.2,
        "weight_decay": 1 / 3,
        "scheduler": "  Linear ",
        "use_fp16": True,
        "backbone": "distilbert",
        "trial_number": 3,
        "run_id": "abc",
    }
    expected = (
        '{"hyperparameters":{"batch_size":4,"dropout":0.3,"learning_rate":2.345678901235e-05,'
        '"scheduler":"linear","use_fp16":true,"weight_decay":0.3333333333333},'
        f'"schema_version":"2.0","study_key_hash":"{study}"}}'
    )
    kept = {k: v for k, v in params.items() if k not in ("backbone", "trial_number", "run_id")}
    assert build_hpo_trial_key(study, kept) == expected
    assert build_hpo_trial_key_hash(expected) == sha(expected)
    assert compute_trial_key_hash_from_configs(study, params) == sha(expected)
    assert compute_study_key_hash_v2(data, hpo, train, "distilbert") == study


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "1e-05"),
        (3e-05, "3e-05"),
        (0.0001, "0.0001"),
        (1e20, "1e+20"),
        (4.0, "4.0"),
        (-0.0, "0.0"),
        (0.0, "0.0"),
        (2, "2"),
        (False, "false"),
        (None, '"none"'),
        ([1, "A"], "\"[1, 'a']\""),
        ("Éclair", '"\\u00e9clair"'),
    ],
)
def test_trial_key_scalar_forms(value: object, text: str) -> None:
    assert (
        build_hpo_trial_key("s", {"p": value})
        == f'{{"hyperparameters":{{"p":{text}}},"schema_version":"2.0","study_key_hash":"s"}}'
    )


def test_refit_protocol_fp_exact(load_ref: Loader) -> None:
    data, train = load_ref("data/resume_tiny.yaml"), load_ref("train.yaml")
    expected = (
        '{"dataset":{"local_path":"../dataset_tiny","name":"resume-ner-data-tiny-short","version":"v3"},'
        '"eval":{"metric":"macro-f1","postprocess":{}},'
        '"refit_protocol":{"split_strategy":"full_train","use_validation":false},"schema_version":"2.0"}'
    )
    assert compute_refit_protocol_fp(data, train) == sha(expected)
    override = expected.replace('"metric":"macro-f1"', '"metric":"micro-f1"')
    assert compute_refit_protocol_fp(data, train, {"metric": "micro-f1"}) == sha(override)
    with_eval = dict(train, evaluation={"metric": "token-acc", "postprocess": {"merge": True}})
    assert compute_refit_protocol_fp(data, with_eval) == sha(
        expected.replace(
            '"metric":"macro-f1","postprocess":{}', '"metric":"token-acc","postprocess":{"merge":true}'
        )
    )


def test_benchmark_config_hash_exact(load_ref: Loader) -> None:
    expected = (
        '{"benchmarking":{"batch_sizes":[1],"device":null,"iterations":10,"max_length":512,"test_data":null,'
        '"warmup_iterations":10},"output":{"filename":"benchmark.json"},"run":{"mode":"reuse_if_exists"}}'
    )
    assert compute_benchmark_config_hash(load_ref("benchmark.yaml")) == sha(expected)


def test_v2_quirk_training_budget_nested_in_train_yaml_is_not_covered(load_ref: Loader) -> None:
    """Kept on purpose (README): v2 reads top-level max_steps/num_epochs, which train.yaml nests under
    training:.
    """
    data, hpo, train = load_ref("data/resume_tiny.yaml"), load_ref("hpo/smoke.yaml"), load_ref("train.yaml")
    changed = dict(train, training=dict(train["training"], epochs=99))
    assert compute_study_key_hash_v2(data, hpo, train, "distilbert") == compute_study_key_hash_v2(
        data, hpo, changed, "distilbert"
    )
    flat = dict(train, num_epochs=99)
    assert compute_study_key_hash_v2(data, hpo, train, "distilbert") != compute_study_key_hash_v2(
        data, hpo, flat, "distilbert"
    )
