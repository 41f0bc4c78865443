"""Two studies of one backbone in one experiment: distinct run keys, distinct index entries, the finder
returns the right trial run for each (real SQLite MLflow store)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from mlrig.naming import (
    NamingContext,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    build_mlflow_run_name,
    build_mlflow_tags,
    compute_study_key_hash_v2,
    create_naming_context,
)
from mlrig.tracking import (
    create_child_run,
    create_run_safe,
    find_in_mlflow_index,
    find_mlflow_run,
    get_mlflow_index_path,
    update_mlflow_index,
)
from tests.fixtures import REFERENCE_CONFIG_DIR

EXP = "resume_ner_baseline-hpo-distilbert"


def _ref(name: str) -> object:
    return yaml.safe_load((REFERENCE_CONFIG_DIR / name).read_text(encoding="utf-8"))


def _study_hashes() -> list[str]:
    data, train = _ref("data/resume_tiny.yaml"), _ref("train.yaml")
    return [
        compute_study_key_hash_v2(data, _ref(f"hpo/{hpo}.yaml"), train, "distilbert")  # type: ignore[arg-type]
        for hpo in ("smoke", "prod")
    ]


def _trial(study: str) -> NamingContext:
    return create_naming_context(
        "hpo", "distilbert", environment="local", study_key_hash=study, trial_number=3
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "config").mkdir(parents=True)
    return root


def test_trial_runs_of_two_studies_keep_their_own_index_entries_and_are_found(
    sqlite_tracking_uri: str, project: Path
) -> None:
    client = MlflowClient(tracking_uri=sqlite_tracking_uri)
    exp_id = client.create_experiment(EXP)
    cfg = project / "config"
    runs: dict[str, str] = {}
    for study in _study_hashes():
        ctx = _trial(study)
        sweep = create_run_safe(exp_id, f"sweep_{study[:8]}", client=client)
        assert sweep is not None
        tags = build_mlflow_tags(ctx, config_dir=cfg)
        with create_child_run(
            sweep,
            3,
            additional_tags=tags,
            run_name=build_mlflow_run_name(ctx, cfg),
            experiment_id=exp_id,
            client=client,
        ) as run:
            assert run.run_id is not None
            runs[study] = run.run_id
        key_hash = tags["code.run_key_hash"]
        update_mlflow_index(
            project, key_hash, run.run_id, exp_id, sqlite_tracking_uri, cfg, experiment_name=EXP
        )
    hashes = {build_mlflow_run_key_hash(build_mlflow_run_key(_trial(s))) for s in runs}
    assert len(hashes) == 2  # the reference's hpo:distilbert:trial_3 gave one hash for both
    for study, run_id in runs.items():
        key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(_trial(study)))
        entry = find_in_mlflow_index(project, key_hash, tracking_uri=sqlite_tracking_uri, config_dir=cfg)
        assert entry is not None and entry["run_id"] == run_id
    for study, run_id in runs.items():
        by_index = find_mlflow_run(
            EXP, context=_trial(study), root_dir=project, config_dir=cfg, client=client
        )
        assert (by_index.run_id, by_index.strategy_used) == (run_id, "local_index")
    # Without the index (another machine): the run-key tag alone still tells the studies apart.
    get_mlflow_index_path(project, cfg).unlink()
    for study, run_id in runs.items():
        by_tag = find_mlflow_run(EXP, context=_trial(study), config_dir=cfg, client=client)
        assert (by_tag.run_id, by_tag.strategy_used) == (run_id, "tag_run_key_hash")
