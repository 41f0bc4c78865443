"""``mlrig demo`` end to end on a real SQLite MLflow store, real Optuna studies and real files."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import build_mlflow_run_name, create_naming_context, is_run_name_versioned
from mlrig.orchestration import run_demo

TRIALS = 3


def all_runs(uri: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    runs = []
    for exp in client.search_experiments():
        runs.extend(client.search_runs([exp.experiment_id], max_results=5000))
    return runs


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    root = tmp_path_factory.mktemp("demo")
    first = run_demo(root, max_trials=TRIALS)
    second = run_demo(root, max_trials=TRIALS)
    return root, first, second


def test_run_tree_names_and_tags(demo_run: tuple[Path, Any, Any]) -> None:
    _, first, _ = demo_run
    client = MlflowClient(tracking_uri=first.tracking_uri)
    for sweep in first.sweeps:
        parent = client.get_run(sweep.parent_run_id)
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["code.stage"] == "hpo_sweep"
        assert parent.data.tags["code.study_key_hash"] == sweep.study_key_hash
        exp_id = parent.info.experiment_id
        children = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'")
        trials = [c for c in children if c.data.tags.get("code.stage") == "hpo_trial"]
        refits = [c for c in children if c.data.tags.get("code.stage") == "hpo_refit"]
        assert len(trials) == TRIALS and len(refits) == 1
        for trial in trials:
            number = int(trial.data.tags["code.hpo.trial_number"])
            ctx = create_naming_context(
                "hpo",
                sweep.backbone,
                stage="hpo_trial",
                environment="local",
                storage_env="local",
                study_key_hash=sweep.study_key_hash,
                trial_key_hash=trial.data.tags["code.trial_key_hash"],
                trial_number=number,
                trial_id=f"trial_{number}",
            )
            # Trial names carry the version reserved through the run-name counter when auto-increment is on.
            version = 1 if is_run_name_versioned(ctx, first.config_dir) else None
            assert trial.info.run_name == build_mlflow_run_name(ctx, first.config_dir, version=version)
            folds = client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{trial.info.run_id}'")
            assert sorted(int(f.data.tags["fold_idx"]) for f in folds) == [0, 1, 2]
            assert "macro-f1" in trial.data.metrics and "cv_std" in trial.data.metrics
        refit = refits[0]
        assert refit.data.tags["code.refit.of_trial_run_id"] in {t.info.run_id for t in trials}
        assert refit.info.run_id == sweep.refit_run_id


def test_output_layout_and_backup(demo_run: tuple[Path, Any, Any]) -> None:
    root, first, _ = demo_run
    for sweep in first.sweeps:
        study_dir = sweep.study_dir
        assert (
            study_dir
            == root / "outputs" / "hpo" / "local" / sweep.backbone / f"study-{sweep.study_key_hash[:8]}"
        )
        assert (study_dir / "study.db").is_file() and (study_dir / "fold_splits.json").is_file()
        trial_dirs = sorted(study_dir.glob("trial-*"))
        assert len(trial_dirs) == TRIALS
        for trial_dir in trial_dirs:
            assert (trial_dir / "trial_meta.json").is_file() and (trial_dir / "metrics.json").is_file()
            assert sorted(p.name for p in (trial_dir / "cv").iterdir()) == ["fold0", "fold1", "fold2"]
        assert sweep.refit_dir is not None and (sweep.refit_dir / "checkpoint" / "model.npz").is_file()
        backed_up = first.backup_root / study_dir.relative_to(root) / "study.db"
        with sqlite3.connect(backed_up) as db:
            (n,) = db.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()
        assert n >= 1
    assert first.final_training is not None and first.conversion is not None and first.benchmark is not None
    for stage in (first.final_training, first.conversion, first.benchmark):
        assert stage.output_dir.is_relative_to(root / "outputs")
        assert (first.backup_root / stage.output_dir.relative_to(root)).is_dir()
    assert "latency_batch_1_ms" in first.benchmark.metrics
    assert (
        first.mlflow_ui_command == f"{sys.executable} -m mlflow ui --backend-store-uri {first.tracking_uri}"
    )


def test_best_model_is_chosen_with_the_benchmarked_latencies(demo_run: tuple[Path, Any, Any]) -> None:
    root, first, second = demo_run
    backbones = {s.backbone for s in first.sweeps}
    # Each champion's refit checkpoint is benchmarked before selection; its latency feeds select_best_model.
    assert len(first.benchmarks) == len(backbones) and set(first.latencies_ms) == backbones
    assert first.best is not None and first.benchmark is not None and first.benchmark in first.benchmarks
    assert first.latencies_ms[first.best.backbone] == first.benchmark.metrics["latency_batch_1_ms"]
    assert set(first.best.scores) == backbones
    cache = json.loads(
        (root / "outputs/cache/best_model_selection/latest_best_model_selection_cache.json").read_text()
    )
    assert cache["selection_criteria"]["rule"] == "composite"  # the latency-weighted branch
    assert all(b.reused for b in second.benchmarks) and second.latencies_ms == first.latencies_ms


def test_second_run_resumes_and_reuses(demo_run: tuple[Path, Any, Any]) -> None:
    _, first, second = demo_run
    assert all(s.resumed and not s.trials for s in second.sweeps)
    assert [s.parent_run_id for s in second.sweeps] == [s.parent_run_id for s in first.sweeps]
    assert second.final_training is not None and second.final_training.reused
    assert second.conversion is not None and second.conversion.reused
    assert second.benchmark is not None and second.benchmark.reused
    runs = all_runs(first.tracking_uri)
    names = Counter(r.info.run_name for r in runs)
    assert [n for n, k in names.items() if k > 1] == []
    assert not [r for r in runs if r.info.status == "RUNNING"]


@pytest.mark.slow
def test_lost_machine_restores_from_backup(tmp_path: Path) -> None:
    """A Colab disconnect: local outputs vanish, the backup folder and the tracking store survive."""
    root = tmp_path / "vm"
    backup = tmp_path / "drive"
    first = run_demo(root, max_trials=TRIALS, backup_root=backup)
    shutil.rmtree(root / "outputs")
    again = run_demo(root, max_trials=TRIALS, backup_root=backup)
    assert all(s.restored_from_backup for s in again.sweeps)
    assert all(not s.trials for s in again.sweeps)
    assert [s.best_value for s in again.sweeps] == [s.best_value for s in first.sweeps]
    bigger = run_demo(root, max_trials=TRIALS + 1, backup_root=backup)
    assert all(len(s.trials) == 1 and s.trials[0].number >= TRIALS for s in bigger.sweeps)


@pytest.mark.slow
def test_demo_against_real_mlflow_server(tmp_path: Path, mlflow_server_uri: str) -> None:
    """The same pipeline through the REST client of a real ``mlflow server``."""
    summary = run_demo(tmp_path, max_trials=TRIALS, tracking_uri=mlflow_server_uri)
    assert summary.tracking_uri == mlflow_server_uri
    client = MlflowClient(tracking_uri=mlflow_server_uri)
    for sweep in summary.sweeps:
        parent = client.get_run(sweep.parent_run_id)
        assert parent.info.status == "FINISHED"
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{sweep.parent_run_id}'"
        )
        assert sum(c.data.tags.get("code.stage") == "hpo_trial" for c in children) == TRIALS
        assert not [c for c in children if c.info.status == "RUNNING"]
    assert summary.best is not None and summary.benchmark is not None
    assert client.get_run(summary.best.refit_run_id).data.tags["code.stage"] == "hpo_refit"
