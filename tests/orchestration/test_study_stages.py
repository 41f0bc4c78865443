"""Study opening (resume, auto_resume, force_new), folds, pruners, and the stage runners' config keys -- with
real Optuna studies, a real SQLite MLflow store and real files."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mlrig.naming import (
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    compute_exec_fp,
    create_naming_context,
)
from mlrig.orchestration import (
    BenchmarkRequest,
    Champion,
    ExperimentConfig,
    OrchestrationError,
    TrainRequest,
    load_experiment_config,
    run_benchmarking,
    run_final_training,
    run_local_hpo_sweep,
)
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR
from mlrig.orchestration.folds import load_or_create_fold_splits
from mlrig.orchestration.search_space import build_pruner
from mlrig.orchestration.study import open_study
from mlrig.tracking import find_in_mlflow_index, find_mlflow_run

HPO: dict[str, Any] = {
    "objective": {"metric": "m", "direction": "maximize"},
    "checkpoint": {"study_name": "s"},
}


def _hpo(**changes: Any) -> dict[str, Any]:
    return {**HPO, **changes}


def _finish_one_trial(study: optuna.Study) -> None:
    trial = study.ask()
    study.tell(trial, 1.0)


@pytest.mark.parametrize(
    ("policy", "cls"),
    [
        ({"policy": "bandit", "slack_factor": 0.2}, optuna.pruners.PercentilePruner),
        ({"policy": "median", "delay_evaluation": 2}, optuna.pruners.MedianPruner),
        ({"policy": "none"}, optuna.pruners.NopPruner),
        (None, optuna.pruners.NopPruner),
    ],
)
def test_pruner_mapping(policy: dict[str, Any] | None, cls: type) -> None:
    assert type(build_pruner({"early_termination": policy} if policy else {})) is cls


def test_unknown_pruner_is_refused() -> None:
    with pytest.raises(OrchestrationError, match=r"early_termination\.policy 'asha'"):
        build_pruner({"early_termination": {"policy": "asha"}})


def test_fold_splits_made_for_other_settings_are_refused(tmp_path: Path) -> None:
    labels = [0, 1] * 10
    first = load_or_create_fold_splits(tmp_path, labels, {"n_splits": 2})
    assert load_or_create_fold_splits(tmp_path, labels, {"n_splits": 2}) == first
    with pytest.raises(OrchestrationError, match=r"fold_splits\.json was made with"):
        load_or_create_fold_splits(tmp_path, labels, {"n_splits": 4})
    with pytest.raises(OrchestrationError, match=r"fold_splits\.json was made with"):
        load_or_create_fold_splits(tmp_path, labels, {"n_splits": 2, "random_seed": 7})


def test_auto_resume_false_refuses_a_study_with_trials(tmp_path: Path) -> None:
    setup = open_study(tmp_path, HPO, "tiny", seed=1)
    assert not setup.resumed
    _finish_one_trial(setup.study)
    assert open_study(tmp_path, HPO, "tiny", seed=1).resumed
    with pytest.raises(OrchestrationError, match="auto_resume is false"):
        open_study(tmp_path, _hpo(checkpoint={"study_name": "s", "auto_resume": False}), "tiny", seed=1)


def test_force_new_opens_a_fresh_study_beside_the_old_one(tmp_path: Path) -> None:
    old = open_study(tmp_path, HPO, "tiny", seed=1)
    _finish_one_trial(old.study)
    fresh = open_study(tmp_path, _hpo(run={"mode": "force_new"}), "tiny", seed=1)
    assert (fresh.study_name, fresh.fresh, fresh.resumed, fresh.done_trials) == ("s_2", True, False, 0)
    assert (old.variant, fresh.variant) == (1, 2)
    assert fresh.storage_path == old.storage_path  # beside the old one, in the same study.db
    _finish_one_trial(fresh.study)
    # reuse_if_exists (the default) resumes the newest study; the old one is untouched.
    again = open_study(tmp_path, HPO, "tiny", seed=1)
    assert (again.study_name, again.fresh, again.done_trials, again.variant) == ("s_2", False, 1, 2)
    names = {s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{old.storage_path}")}
    assert names == {"s", "s_2"}
    assert open_study(tmp_path, _hpo(run={"mode": "force_new"}), "tiny", seed=1).study_name == "s_3"
    with pytest.raises(OrchestrationError, match=r"run\.mode must be"):
        open_study(tmp_path, _hpo(run={"mode": "always"}), "tiny", seed=1)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path, ExperimentConfig]:
    cfg = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg)
    exp = load_experiment_config(cfg, "demo")
    hpo = {
        **exp.hpo,
        "sampling": {"algorithm": "random", "max_trials": 1},
        "k_fold": {"enabled": False},
        "mlflow": {"log_best_checkpoint": False},
        "search_space": {"backbone": {"type": "choice", "values": ["tiny"]}},
    }
    return tmp_path, cfg, dataclasses.replace(exp, hpo=hpo)


def _train(request: TrainRequest) -> dict[str, float]:
    return {"macro-f1": 0.5}


def test_force_new_sweep_gets_its_own_parent_run(
    project: tuple[Path, Path, ExperimentConfig], sqlite_tracking_uri: str
) -> None:
    root, cfg, exp = project
    kw: dict[str, Any] = {"root_dir": root, "config_dir": cfg, "labels": [0, 1] * 5}
    first = run_local_hpo_sweep(_train, exp, "tiny", tracking_uri=sqlite_tracking_uri, **kw)
    resumed = run_local_hpo_sweep(_train, exp, "tiny", tracking_uri=sqlite_tracking_uri, max_trials=2, **kw)
    assert resumed.parent_run_id == first.parent_run_id and resumed.study_name == first.study_name
    fresh_exp = dataclasses.replace(exp, hpo={**exp.hpo, "run": {"mode": "force_new"}})
    fresh = run_local_hpo_sweep(_train, fresh_exp, "tiny", tracking_uri=sqlite_tracking_uri, **kw)
    assert fresh.parent_run_id not in (None, first.parent_run_id)
    assert fresh.study_name != first.study_name and fresh.study_dir == first.study_dir
    assert [t.number for t in fresh.trials] == [0] and not fresh.resumed
    # Its own identity: the variant feeds the study key hash, so trial 0 of each study has its own run
    # key, index entry and trial folder, and the finder returns each study's own run.
    assert fresh.study_key_hash not in (first.study_key_hash, "")
    trial_dirs = {first.trials[0].trial_dir, fresh.trials[0].trial_dir}
    assert len(trial_dirs) == 2 and all((d / "trial_meta.json").is_file() for d in trial_dirs)
    client = MlflowClient(tracking_uri=sqlite_tracking_uri)
    keys = set()
    for sweep in (first, fresh):
        ctx = create_naming_context(
            "hpo", "tiny", environment="local", study_key_hash=sweep.study_key_hash, trial_number=0
        )
        key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(ctx))
        keys.add(key_hash)
        entry = find_in_mlflow_index(root, key_hash, tracking_uri=sqlite_tracking_uri, config_dir=cfg)
        assert entry is not None and entry["run_id"] == sweep.trials[0].run_id
        found = find_mlflow_run(
            sweep.experiment_name, context=ctx, root_dir=root, config_dir=cfg, client=client
        )
        assert found.run_id == sweep.trials[0].run_id
    assert len(keys) == 2
    # Resuming (reuse_if_exists) continues the newest study under the same identity and parent run.
    again = run_local_hpo_sweep(_train, exp, "tiny", tracking_uri=sqlite_tracking_uri, max_trials=2, **kw)
    assert (again.study_key_hash, again.parent_run_id) == (fresh.study_key_hash, fresh.parent_run_id)
    assert [t.number for t in again.trials] == [1]


def _champion(study: str = "c" * 64) -> Champion:
    return Champion(
        backbone="tiny",
        experiment_name="mlrig_demo-hpo-tiny",
        metric="macro-f1",
        direction="maximize",
        value=0.5,
        stable_score=0.5,
        study_key_hash=study,
        trial_key_hash="d" * 64,
        trial_run_id="r",
        refit_run_id="f",
        trial_number=3,
        params={"learning_rate": 0.01},
        checkpoint_dir=None,
        n_trials_considered=1,
    )


def test_final_training_new_variant_force_new_and_git_sha(
    project: tuple[Path, Path, ExperimentConfig], sqlite_tracking_uri: str
) -> None:
    root, cfg, exp = project
    kw: dict[str, Any] = {"root_dir": root, "config_dir": cfg, "tracking_uri": sqlite_tracking_uri}
    first = run_final_training(_train, exp, _champion(), **kw)
    again = run_final_training(_train, exp, _champion(), **kw)
    assert (first.variant, again.variant, again.reused) == (1, 1, True)
    new = run_final_training(_train, exp, _champion(), new_variant=True, **kw)
    assert (new.variant, new.reused) == (2, False) and new.output_dir.name == "v2"
    forced = dataclasses.replace(exp, final_training={"run": {"mode": "force_new"}})
    assert run_final_training(_train, forced, _champion(), **kw).variant == 3
    # Not a git checkout: exec_fp says so with git_sha "unknown"; a checkout's HEAD commit changes it.
    assert first.exec_fp == compute_exec_fp(None, {"storage_env": "local"})
    sha = "0123456789abcdef0123456789abcdef01234567"
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "refs" / "heads" / "main").write_text(sha + "\n")
    checkout = run_final_training(_train, exp, _champion(), **kw)
    assert checkout.exec_fp == compute_exec_fp(sha, {"storage_env": "local"}) != first.exec_fp


def test_benchmark_without_a_required_metric_fails_clearly(
    project: tuple[Path, Path, ExperimentConfig], sqlite_tracking_uri: str
) -> None:
    root, cfg, exp = project
    kw: dict[str, Any] = {"root_dir": root, "config_dir": cfg, "tracking_uri": sqlite_tracking_uri}

    def bench(request: BenchmarkRequest) -> dict[str, float]:
        return {"latency_batch_16_ms": 1.0}

    with pytest.raises(OrchestrationError, match=r"not \['latency_batch_1_ms'\].*required_metrics"):
        run_benchmarking(bench, exp, _champion(), root, **kw)
    ok = run_benchmarking(lambda r: {"latency_batch_1_ms": 2.0}, exp, _champion(), root, **kw)
    assert not ok.reused and ok.metrics == {"latency_batch_1_ms": 2.0}
    assert run_benchmarking(lambda r: {"latency_batch_1_ms": 3.0}, exp, _champion(), root, **kw).reused
    forced = dataclasses.replace(exp, benchmark={**exp.benchmark, "run": {"mode": "force_new"}})
    rerun = run_benchmarking(lambda r: {"latency_batch_1_ms": 3.0}, forced, _champion(), root, **kw)
    assert not rerun.reused and rerun.metrics == {"latency_batch_1_ms": 3.0}


def test_a_refit_the_store_holds_unfinished_is_run_again(
    project: tuple[Path, Path, ExperimentConfig], sqlite_tracking_uri: str
) -> None:
    """The study records the refit, but the store (restored from a snapshot taken while the refit ran) holds
    its run unfinished: the rerun refits again instead of trusting the record, so selection finds a FINISHED
    refit run."""
    root, cfg, exp = project
    kw: dict[str, Any] = {"root_dir": root, "config_dir": cfg, "labels": [0, 1] * 5}
    first = run_local_hpo_sweep(_train, exp, "tiny", tracking_uri=sqlite_tracking_uri, **kw)
    assert first.refit_run_id
    client = MlflowClient(tracking_uri=sqlite_tracking_uri)
    client.set_terminated(first.refit_run_id, "KILLED")  # what resume makes of a RUNNING run in the snapshot
    again = run_local_hpo_sweep(_train, exp, "tiny", tracking_uri=sqlite_tracking_uri, **kw)
    assert again.refit_run_id not in (None, first.refit_run_id)
    assert client.get_run(str(again.refit_run_id)).info.status == "FINISHED"
    # and a FINISHED refit is reused, not run a third time
    assert run_local_hpo_sweep(_train, exp, "tiny", tracking_uri=sqlite_tracking_uri, **kw).refit_run_id == (
        again.refit_run_id
    )
