"""Tag keys of ended runs come from the run's own tags registry (a custom tags.yaml); real SQLite store."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from mlrig.naming import load_naming_config
from mlrig.orchestration import end_interrupted_run
from mlrig.orchestration.runs import mark_interrupted_children, retire_namesakes
from mlrig.tracking import MLflowSweepTracker


def test_interrupted_runs_are_tagged_with_the_runs_own_tags_yaml(
    tmp_path: Path, sqlite_tracking_uri: str
) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "tags.yaml").write_text('training:\n  interrupted: "acme.interrupted"\n', encoding="utf-8")
    naming = load_naming_config(cfg, "local")
    tracker = MLflowSweepTracker("exp", tracking_uri=sqlite_tracking_uri, naming_config=naming)
    client = MlflowClient(tracking_uri=sqlite_tracking_uri)
    exp_id = client.create_experiment("exp")
    parent = client.create_run(exp_id).info.run_id
    child = client.create_run(exp_id, tags={"mlflow.parentRunId": parent}).info.run_id
    assert mark_interrupted_children(tracker, parent) == 1
    run = client.get_run(child)
    assert run.info.status == "KILLED" and run.data.tags.get("acme.interrupted") == "true"
    assert "code.interrupted" not in run.data.tags
    # A stage re-run retires its killed namesake with the same registry.
    old = client.create_run(exp_id, run_name="stage_v1").info.run_id
    new = client.create_run(exp_id, run_name="stage_v1").info.run_id
    assert retire_namesakes(client, new, tags=naming.tags) == 1
    retired = client.get_run(old)
    assert retired.data.tags.get("acme.interrupted") == "true" and retired.info.run_name.startswith(
        "stage_v1.interrupted-"
    )
    lone = client.create_run(exp_id).info.run_id
    assert end_interrupted_run(client, lone, tags=naming.tags)
    assert client.get_run(lone).data.tags.get("acme.interrupted") == "true"
