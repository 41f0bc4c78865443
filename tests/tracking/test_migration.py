"""Migration from the reference project: reference-style calls and reference-tagged runs work unchanged (real
SQLite MLflow store; the reference configs from ``tests/fixtures/reference_config``)."""

from __future__ import annotations

import hashlib

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import build_mlflow_tags, create_naming_context
from mlrig.tracking import create_child_run, find_mlflow_run, terminate_run_safe
from mlrig.tracking.lifecycle import ensure_run_terminated, terminate_run_with_tags
from mlrig.tracking.tree import resolve_experiment_id
from mlrig.tracking.trial_runs import extract_trial_number, query_trial_runs
from tests.fixtures import REFERENCE_CONFIG_DIR

EXP = "resume_ner_baseline-hpo-distilbert"
S = "1234abcd" * 8
S2 = "5678ef01" * 8
T = "feedbeef" * 8


@pytest.fixture
def client(sqlite_tracking_uri: str) -> MlflowClient:
    """A client on a fresh SQLite store that is also MLflow's *current* tracking URI (as in a reference
    notebook after ``mlflow.set_tracking_uri``)."""
    mlflow.set_tracking_uri(sqlite_tracking_uri)
    return MlflowClient(tracking_uri=sqlite_tracking_uri)


@pytest.fixture
def exp_id(client: MlflowClient) -> str:
    return str(client.create_experiment(EXP))


def _status(client: MlflowClient, run_id: str) -> str:
    return str(client.get_run(run_id).info.status)


def test_terminate_run_safe_reference_call_uses_the_current_uri(client: MlflowClient, exp_id: str) -> None:
    run_id = client.create_run(exp_id).info.run_id
    assert terminate_run_safe(run_id, status="FAILED", tags={"reason": "interrupted"}, check_status=True)
    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["reason"]) == ("FAILED", "interrupted")
    # check_status: a terminal run is left as it is
    assert terminate_run_safe(run_id, status="FINISHED", tags={"reason": "late"}, check_status=True)
    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["reason"]) == ("FAILED", "interrupted")


def test_terminate_run_with_tags_and_ensure_run_terminated(client: MlflowClient, exp_id: str) -> None:
    killed = client.create_run(exp_id).info.run_id
    assert terminate_run_with_tags(killed, "KILLED", {"why": "user"})
    assert _status(client, killed) == "KILLED" and client.get_run(killed).data.tags["why"] == "user"
    running = client.create_run(exp_id).info.run_id
    assert ensure_run_terminated(running)
    assert _status(client, running) == "FINISHED"
    assert ensure_run_terminated(killed, expected_status="FINISHED")  # terminal: kept, mismatch logged
    assert _status(client, killed) == "KILLED"
    assert not ensure_run_terminated("0" * 32)  # no such run: False, no exception


def test_resolve_experiment_id_reference_order(client: MlflowClient, exp_id: str) -> None:
    other = str(client.create_experiment("other"))
    parent = client.create_run(other).info.run_id
    assert resolve_experiment_id(experiment_name=EXP) == exp_id
    assert resolve_experiment_id(experiment_name=EXP, parent_run_id=parent) == other  # parent first
    assert resolve_experiment_id(experiment_name="missing", parent_run_id="0" * 32) is None
    active = client.get_run(parent)
    assert resolve_experiment_id(experiment_name="missing", active_run=active) == other
    assert resolve_experiment_id() is None


def test_create_child_run_reference_call_nests_under_the_parent(client: MlflowClient, exp_id: str) -> None:
    parent = client.create_run(exp_id).info.run_id
    with create_child_run(parent, 4, client=client) as child:
        assert child.run_id is not None
    run = client.get_run(child.run_id)
    assert run.info.run_name == "trial_4" and run.info.experiment_id == exp_id
    assert run.data.tags["mlflow.parentRunId"] == parent and run.data.tags["trial_number"] == "4"
    assert run.info.status == "FINISHED" and extract_trial_number(run) == 4


def test_extract_trial_number_reference_order(client: MlflowClient, exp_id: str) -> None:
    cases = [
        ({"trial_number": "2", "code.hpo.trial_number": "9"}, None, 2),
        ({"code.hpo.trial_number": "3"}, None, 3),
        ({"code.trial": "5"}, None, 5),
        ({}, "trial_6_fold1", 6),
        ({}, "local_distilbert_hpo_trial_study-1234abcd_t03_1", None),
    ]
    for tags, name, expected in cases:
        run = client.create_run(exp_id, tags=tags, run_name=name)
        assert extract_trial_number(client.get_run(run.info.run_id), REFERENCE_CONFIG_DIR) == expected, tags


def _reference_hpo_runs(client: MlflowClient, exp_id: str) -> tuple[str, str]:
    """A sweep and one trial as the reference tagged them: ``code.stage=hpo`` on both, no ``code.backbone``,
    the trial's run key built on a timestamped trial id."""
    common = {"code.stage": "hpo", "code.model": "distilbert", "code.study_key_hash": S}
    sweep = client.create_run(exp_id, tags=common, run_name="local_distilbert_hpo_study-1234abcd_1")
    old_key = hashlib.sha256(b"hpo:distilbert:trial_3_20260101_120000").hexdigest()
    trial = client.create_run(
        exp_id,
        run_name="local_distilbert_hpo_trial_study-1234abcd_t03_1",
        tags={
            **common,
            "mlflow.parentRunId": sweep.info.run_id,
            "code.trial_key_hash": T,
            "code.hpo.trial_number": "3",
            "trial_number": "3",
            "code.run_key_hash": old_key,
            "code.trial_id": "trial_3_20260101_120000",
        },
    )
    for run in (sweep, trial):
        client.set_terminated(run.info.run_id)
    return sweep.info.run_id, trial.info.run_id


def test_reference_trial_runs_are_read_by_queries_and_the_finder(client: MlflowClient, exp_id: str) -> None:
    sweep, ref_trial = _reference_hpo_runs(client, exp_id)
    ctx = create_naming_context("hpo", "distilbert", environment="local", study_key_hash=S2, trial_number=3)
    mlrig_trial = client.create_run(
        exp_id, tags={**build_mlflow_tags(ctx, config_dir=REFERENCE_CONFIG_DIR), "mlflow.parentRunId": sweep}
    ).info.run_id
    client.set_terminated(mlrig_trial)
    client.set_terminated(
        client.create_run(exp_id, tags={"code.stage": "hpo_trial", "code.model": "bert"}).info.run_id
    )

    found = query_trial_runs(client, [exp_id], "distilbert", config_dir=REFERENCE_CONFIG_DIR)
    assert {r.info.run_id for r in found} == {ref_trial, mlrig_trial}  # not the sweep, not another model
    only_ref = query_trial_runs(
        client, [exp_id], "distilbert", {"code.study_key_hash": S}, config_dir=REFERENCE_CONFIG_DIR
    )
    assert [r.info.run_id for r in only_ref] == [ref_trial]

    ref_ctx = create_naming_context(
        "hpo", "distilbert", environment="local", study_key_hash=S, trial_number=3
    )
    report = find_mlflow_run(
        EXP, context=ref_ctx, strict=True, config_dir=REFERENCE_CONFIG_DIR, client=client
    )
    assert (report.found, report.run_id, report.strategy_used) == (True, ref_trial, "tag_trial_identity")
    assert not report.weak
    mlrig_report = find_mlflow_run(
        EXP, context=ctx, strict=True, config_dir=REFERENCE_CONFIG_DIR, client=client
    )
    assert (mlrig_report.run_id, mlrig_report.strategy_used) == (mlrig_trial, "tag_run_key_hash")
    other = create_naming_context("hpo", "distilbert", environment="local", study_key_hash=S, trial_number=4)
    assert not find_mlflow_run(
        EXP, context=other, strict=True, config_dir=REFERENCE_CONFIG_DIR, client=client
    ).found
