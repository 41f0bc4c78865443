"""Recovery of a distributed sweep's state left half-written by a dead worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import build_mlflow_experiment_name, load_tags_registry
from mlrig.orchestration.distributed import PARENT_ATTR, AdvisoryLocks, distributed_config
from mlrig.orchestration.services import Services
from mlrig.orchestration.sweep import _Sweep
from mlrig.orchestration.worker import _create_parent, _EndStaleRuns, _open_study
from mlrig.tracking import SharedSweepTracker
from tests.distributed.conftest import start_worker
from tests.distributed.worker_main import BACKBONE, experiment, make_train

RUN_TYPE = load_tags_registry().key("process", "run_type")


@pytest.mark.slow
def test_a_worker_adopts_the_parent_its_dead_creator_never_published(
    pg_services: Services, fresh_db: str, tmp_path: Path
) -> None:
    """A worker died between creating the sweep parent and publishing its id in the study: the next worker
    finds it by its run-key-hash tag under the study's lock, publishes and uses it (one parent, ended)."""
    tracking, root = pg_services.tracking_uri, tmp_path / "dead"
    root.mkdir()
    exp = experiment(root, "orphan", 2, 1, 3)
    dist = distributed_config(exp.hpo, fresh_db)
    assert dist is not None
    sweep = _Sweep(
        make_train(0, None), exp, BACKBONE, root_dir=root, config_dir=root / "config", labels=[],
        store=None, state=None, storage_env="local", tracking_uri=tracking, progress=None,
    )  # fmt: skip
    tracker = SharedSweepTracker(sweep.experiment_name, tracking_uri=tracking, config_dir=sweep.cfg)
    locks = AdvisoryLocks(dist.storage_url)
    study, _ = _open_study(sweep, dist, locks, _EndStaleRuns())
    orphan = _create_parent(sweep, tracker, study)  # ... and the worker dies here
    locks.close()
    assert orphan is not None and PARENT_ATTR not in study.user_attrs

    result = start_worker(
        tmp_path / "next", fresh_db, tracking, "orphan", "work", "--max-trials", "2"
    ).result()
    assert result["parent"] == orphan and result["finalised"]
    client = MlflowClient(tracking)
    found = client.get_experiment_by_name(build_mlflow_experiment_name("orphan", "hpo", BACKBONE))
    assert found is not None
    runs = client.search_runs([found.experiment_id], max_results=100)
    assert [r.info.run_id for r in runs if r.data.tags.get(RUN_TYPE) == "sweep"] == [orphan]
    assert {r.data.tags.get("mlflow.parentRunId") for r in runs if r.info.run_id != orphan} == {orphan}
    assert {r.info.status for r in runs} == {"FINISHED"}
