"""Finder strategies against a real SQLite MLflow store (and one pass through a real ``mlflow server``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import NamingContext, build_mlflow_run_key, build_mlflow_run_key_hash, build_mlflow_tags
from mlrig.tracking import (
    find_in_mlflow_index,
    find_mlflow_run,
    find_run_by_trial_id,
    query_runs_by_tags,
    update_mlflow_index,
)

EXP = "resume_ner-training-distilbert"


def _ctx(variant: int = 1, spec: str = "a") -> NamingContext:
    return NamingContext(
        process_type="final_training",
        model="distilbert",
        environment="local",
        spec_fp=spec * 64,
        exec_fp="b" * 64,
        variant=variant,
    )


def _hash(ctx: NamingContext) -> str:
    return build_mlflow_run_key_hash(build_mlflow_run_key(ctx))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "config").mkdir(parents=True)
    return root


@pytest.fixture
def client(sqlite_tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=sqlite_tracking_uri)


@pytest.fixture
def exp_id(client: MlflowClient, sqlite_artifact_root: Path) -> str:
    return client.create_experiment(EXP, artifact_location=sqlite_artifact_root.as_uri())


def _create(client: MlflowClient, exp_id: str, ctx: NamingContext, project: Path, **extra: str) -> str:
    tags = {**build_mlflow_tags(ctx, config_dir=project / "config"), **extra}
    run = client.create_run(exp_id, tags=tags, run_name=extra.get("mlflow.runName"))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_tag_search_then_index_hit(client: MlflowClient, exp_id: str, project: Path) -> None:
    ctx = _ctx()
    _create(client, exp_id, _ctx(variant=2), project)
    run_id = _create(client, exp_id, ctx, project)
    first = find_mlflow_run(EXP, context=ctx, root_dir=project, client=client)
    assert (first.found, first.run_id, first.strategy_used) == (True, run_id, "tag_run_key_hash")
    assert first.strategies_attempted == ["local_index", "tag_run_key_hash"]  # empty index: a miss
    entry = find_in_mlflow_index(project, _hash(ctx), tracking_uri=client.tracking_uri)
    assert entry is not None and entry["run_id"] == run_id and entry["experiment_name"] == EXP
    second = find_mlflow_run(EXP, context=ctx, root_dir=project, client=client)
    assert (second.run_id, second.strategy_used, second.strategies_attempted) == (
        run_id,
        "local_index",
        ["local_index"],
    )
    assert second.run is not None and second.run.info.run_id == run_id and not second.weak


def test_stale_index_entries_fall_back_to_the_tag_search(
    client: MlflowClient, exp_id: str, project: Path
) -> None:
    ctx = _ctx()
    run_id = _create(client, exp_id, ctx, project)
    other_run = _create(client, exp_id, _ctx(variant=3), project)
    deleted = _create(client, exp_id, ctx, project)
    client.delete_run(deleted)
    foreign_exp = client.create_experiment("foreign")
    foreign = client.create_run(foreign_exp, tags={"code.run_key_hash": _hash(ctx)}).info.run_id
    uri = client.tracking_uri
    for stale in (deleted, foreign, other_run, "0" * 32):
        update_mlflow_index(project, _hash(ctx), stale, exp_id, uri)
        report = find_mlflow_run(EXP, context=ctx, root_dir=project, client=client)
        assert (report.run_id, report.strategy_used) == (run_id, "tag_run_key_hash"), stale
        assert report.strategies_attempted == ["local_index", "tag_run_key_hash"]
        assert find_in_mlflow_index(project, _hash(ctx))["run_id"] == run_id  # type: ignore[index]  # healed


def test_index_of_another_backend_is_ignored(client: MlflowClient, exp_id: str, project: Path) -> None:
    ctx = _ctx()
    run_id = _create(client, exp_id, ctx, project)
    update_mlflow_index(project, _hash(ctx), run_id, exp_id, "http://elsewhere:5000")
    report = find_mlflow_run(EXP, run_key_hash=_hash(ctx), root_dir=project, client=client)
    assert (report.run_id, report.strategy_used) == (run_id, "tag_run_key_hash")


def test_strict_mode_never_returns_a_weak_match(
    client: MlflowClient, exp_id: str, project: Path, reference_config_dir: Path
) -> None:
    _create(client, exp_id, _ctx(variant=1), project, **{"mlflow.runName": "lonely"})
    missing = _ctx(variant=9)  # same stage/model/env/spec, other variant: only a weak match exists
    strict = find_mlflow_run(
        EXP,
        context=missing,
        root_dir=project,
        config_dir=reference_config_dir,
        run_name="lonely",
        client=client,
    )
    assert not strict.found and strict.run is None
    assert strict.strategies_attempted == ["local_index", "tag_run_key_hash"]
    assert "strict" in (strict.error or "")
    loose = find_mlflow_run(EXP, context=missing, root_dir=project, strict=False, client=client)
    assert not loose.found  # variant differs, so even the context tags do not match
    assert loose.strategies_attempted == ["local_index", "tag_run_key_hash", "tag_context"]
    by_name = find_mlflow_run(EXP, context=missing, run_name="lonely", strict=False, client=client)
    assert by_name.found and by_name.strategy_used == "run_name_tag" and by_name.weak


def test_config_default_strictness_is_honoured(client: MlflowClient, exp_id: str, project: Path) -> None:
    weak_target = _create(client, exp_id, _ctx(spec="c"), project)
    ctx = NamingContext(
        process_type="final_training",
        model="distilbert",
        environment="local",
        spec_fp="c" * 64,
        exec_fp="d" * 64,
    )
    strict = find_mlflow_run(EXP, context=ctx, root_dir=project, client=client)  # packaged default: strict
    assert not strict.found
    loose_project = project.parent / "loose"
    (loose_project / "config").mkdir(parents=True)
    (loose_project / "config" / "mlflow.yaml").write_text("run_finder:\n  strict_mode_default: false\n")
    report = find_mlflow_run(EXP, context=ctx, root_dir=loose_project, client=client)
    assert (report.run_id, report.strategy_used) == (weak_target, "tag_context")


def test_direct_run_id_and_metadata_json(
    client: MlflowClient, exp_id: str, project: Path, tmp_path: Path
) -> None:
    run_id = _create(client, exp_id, _ctx(), project)
    foreign = client.create_run(client.create_experiment("elsewhere")).info.run_id
    assert find_mlflow_run(EXP, run_id=run_id, client=client).strategy_used == "direct_run_id"
    miss = find_mlflow_run(EXP, run_id=foreign, client=client)
    assert not miss.found and miss.strategies_attempted == ["direct_run_id"]
    for section in ("mlflow", "mlflow_info"):
        out = tmp_path / section
        out.mkdir()
        (out / "metadata.json").write_text(json.dumps({section: {"run_id": run_id}}))
        report = find_mlflow_run(EXP, run_id=foreign, output_dir=out, client=client)
        assert (report.run_id, report.strategy_used) == (run_id, "metadata_json")
        assert report.strategies_attempted == ["direct_run_id", "metadata_json"]


def test_missing_experiment_is_a_report_not_an_exception(client: MlflowClient, project: Path) -> None:
    report = find_mlflow_run("no-such-experiment", context=_ctx(), root_dir=project, client=client)
    assert not report.found and "no-such-experiment" in (report.error or "")


def test_find_run_by_trial_id(client: MlflowClient, exp_id: str) -> None:
    other_exp = client.create_experiment("hpo-other")
    good = client.create_run(exp_id, start_time=1_000, tags={"code.trial_id": "trial_3"}).info.run_id
    client.create_run(exp_id, start_time=2_000, tags={"code.trial_id": "trial_3", "code.interrupted": "true"})
    client.create_run(other_exp, start_time=500, tags={"code.trial_id": "trial_3"})
    odd = client.create_run(other_exp, tags={"code.trial_id": 'it\'s "odd"'}).info.run_id
    report = find_run_by_trial_id("trial_3", EXP, client=client)
    assert (report.found, report.run_id, report.strategies_attempted) == (True, good, ["trial_id_tag_search"])
    assert find_run_by_trial_id("trial_3", client=client).run_id == good  # newest non-interrupted overall
    assert find_run_by_trial_id('it\'s "odd"', client=client).run_id == odd
    assert not find_run_by_trial_id("trial_99", client=client).found
    assert "not found" in (find_run_by_trial_id("trial_3", "nope", client=client).error or "")


def test_finder_and_queries_through_a_real_server(mlflow_server_uri: str, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=mlflow_server_uri)
    exp_id = client.create_experiment(f"finder-{tmp_path.name}")
    ctx = _ctx()
    project = tmp_path / "project"
    run_id = client.create_run(
        exp_id, tags={**build_mlflow_tags(ctx, config_dir=project / "config"), "note": "both ' and \""}
    ).info.run_id
    client.set_terminated(run_id)
    report = find_mlflow_run(f"finder-{tmp_path.name}", context=ctx, root_dir=project, client=client)
    assert (report.run_id, report.strategy_used) == (run_id, "tag_run_key_hash")
    again = find_mlflow_run(f"finder-{tmp_path.name}", context=ctx, root_dir=project, client=client)
    assert again.strategy_used == "local_index"
    runs = query_runs_by_tags(client, [exp_id], {"note": "both ' and \""})
    assert [r.info.run_id for r in runs] == [run_id]
