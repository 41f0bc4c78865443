"""Stage trackers on a real SQLite store: tags, params, artifacts, config toggles, error semantics."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

from mlrig.naming import build_mlflow_run_name, build_mlflow_tags, create_naming_context
from mlrig.tracking import (
    BaseTracker,
    MLflowBenchmarkTracker,
    MLflowConversionTracker,
    MLflowSweepTracker,
    MLflowTrainingTracker,
    RetryPolicy,
    RunHandle,
)

FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02, deadline=5)
SPEC, EXEC = "aa8cab58" * 2, "2379e282" * 2
STUDY, TRIAL = "c3659fea" * 8, "9492cb65" * 8


def _final_ctx() -> Any:
    return create_naming_context(
        "final_training", "distilbert", spec_fp=SPEC, exec_fp=EXEC, environment="local"
    )


def _runs(uri: str, experiment: str) -> list[Any]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def _config_dir(tmp_path: Path, tracking_yaml: str) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir(exist_ok=True)
    (cfg / "mlflow.yaml").write_text("azure_ml:\n  enabled: false\ntracking:\n" + tracking_yaml)
    return cfg


def test_training_run_tags_params_artifacts(
    tmp_path: Path,
    sqlite_tracking_uri: str,
    reference_config_dir: Path,
    artifact_files: Callable[..., set[str]],
) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"w" * 64)
    metrics_json = tmp_path / "metrics.json"
    metrics_json.write_text('{"f1": 0.9}')
    ctx = _final_ctx()
    tracker = MLflowTrainingTracker(
        "exp-train", tracking_uri=sqlite_tracking_uri, config_dir=reference_config_dir
    )
    with tracker.start_training_run(None, "distilbert", context=ctx, output_dir=tmp_path) as handle:
        assert isinstance(handle, RunHandle)
        tracker.log_training_parameters(
            {"training": {"learning_rate": 2e-5, "epochs": 3}, "model": {"backbone": "distilbert"}},
            {"version": "v2", "local_path": "data/x"},
            random_seed=42,
        )
        tracker.log_training_metrics({"f1": 0.9}, {"PER": {"f1": 0.8}})
        uploaded = tracker.log_training_artifacts(ckpt, metrics_json)
    assert uploaded == {"checkpoint": True, "metrics_json": True}
    assert not is_tracking_uri_set()  # the tracker used its own client
    client = MlflowClient(sqlite_tracking_uri)
    run = client.get_run(handle.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == build_mlflow_run_name(ctx, reference_config_dir)
    expected_tags = build_mlflow_tags(ctx, output_dir=tmp_path, config_dir=reference_config_dir)
    assert expected_tags.items() <= run.data.tags.items()
    assert run.data.tags["code.run_type"] == "training" and run.data.tags["training_type"] == "final"
    assert "mlflow.runType" not in run.data.tags and "backbone" not in run.data.tags  # code.model says it
    assert handle.run_key_hash == expected_tags["code.run_key_hash"]
    assert run.data.params == {
        "learning_rate": "2e-05",
        "epochs": "3",
        "backbone": "distilbert",
        "data_version": "v2",
        "dataset_path": "data/x",
        "training_type": "final",
        "random_seed": "42",
    }
    assert run.data.metrics == {"f1": 0.9, "PER_f1": 0.8}
    assert artifact_files(client, handle.run_id) == {
        "checkpoint.tar.gz",
        "checkpoint_manifest.json",
        "metrics.json",
    }
    assert tracker.failures == []


def test_disabled_stage_creates_no_run(tmp_path: Path, sqlite_tracking_uri: str) -> None:
    cfg = _config_dir(tmp_path, "  training:\n    enabled: false\n")
    tracker = MLflowTrainingTracker("exp-off", tracking_uri=sqlite_tracking_uri, config_dir=cfg)
    ran = False
    with tracker.start_training_run("r", "distilbert") as handle:
        ran = True
        tracker.log_training_metrics({"f1": 1.0})  # no-op, no error
    assert ran and handle is None
    assert _runs(sqlite_tracking_uri, "exp-off") == []


def test_artifact_toggles(
    tmp_path: Path, sqlite_tracking_uri: str, artifact_files: Callable[..., set[str]]
) -> None:
    cfg = _config_dir(
        tmp_path,
        "  training:\n    log_checkpoint: false\n  benchmark:\n    log_artifacts: false\n"
        "  conversion:\n    log_onnx_model: false\n",
    )
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "w.bin").write_bytes(b"1")
    metrics_json = tmp_path / "metrics.json"
    metrics_json.write_text("{}")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"o" * 2048)
    log = tmp_path / "convert.log"
    log.write_text("ok")
    client = MlflowClient(sqlite_tracking_uri)
    training = MLflowTrainingTracker("e", tracking_uri=sqlite_tracking_uri, config_dir=cfg)
    with training.start_training_run("t", "m") as t:
        assert training.log_training_artifacts(ckpt, metrics_json) == {
            "checkpoint": False,
            "metrics_json": True,
        }
    bench = MLflowBenchmarkTracker("e", tracking_uri=sqlite_tracking_uri, config_dir=cfg)
    with bench.start_benchmark_run("b", "m") as b:
        bench.log_benchmark_results([1], 10, 2, 128, None, metrics_json, {"batch_1": {"mean_ms": 5.0}})
    conv = MLflowConversionTracker("e", tracking_uri=sqlite_tracking_uri, config_dir=cfg)
    with conv.start_conversion_run("c", "onnx") as c:
        conv.log_conversion_results(True, onnx, original_checkpoint_size=0.01, conversion_log_path=log)
    assert t is not None and b is not None and c is not None
    assert artifact_files(client, t.run_id) == {"metrics.json"}
    assert artifact_files(client, b.run_id) == set()
    assert artifact_files(client, c.run_id) == {"conversion_log.log"}
    assert client.get_run(b.run_id).data.metrics == {"latency_batch_1_ms": 5.0}


def test_benchmark_lineage_tags_and_metrics(tmp_path: Path, sqlite_tracking_uri: str) -> None:
    ctx = create_naming_context(
        "benchmarking",
        "distilbert",
        environment="local",
        study_key_hash=STUDY,
        trial_key_hash=TRIAL,
        trial_id="trial-9492cb65",
        benchmark_config_hash="fcfe0227" * 8,
    )
    trial_run, sweep_run = "a" * 32, "12345678-1234-1234-1234-123456789abc"
    bench_json = tmp_path / "benchmark.json"
    bench_json.write_text("{}")
    tracker = MLflowBenchmarkTracker("exp-bench", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    data = {
        "batch_1": {
            "mean_ms": 4.0,
            "median_ms": 3.5,
            "p95_ms": 6.0,
            "p99_ms": 7.0,
            "throughput_docs_per_sec": 250,
        },
        "batch_8": {"mean_ms": 20.0, "throughput_docs_per_sec": 400},
    }
    with tracker.start_benchmark_run(
        None,
        "distilbert",
        context=ctx,
        hpo_trial_run_id=trial_run,
        hpo_refit_run_id="not-a-run-id",
        hpo_sweep_run_id=sweep_run,
        benchmark_key="k1",
    ) as handle:
        tracker.log_benchmark_results([1, 8], 100, 10, 256, "cpu", bench_json, data)
    assert handle is not None
    run = MlflowClient(sqlite_tracking_uri).get_run(handle.run_id)
    tags = run.data.tags
    assert tags["code.lineage.hpo_trial_run_id"] == trial_run  # 32-hex ids are kept (reference dropped them)
    assert tags["code.lineage.hpo_sweep_run_id"] == sweep_run
    assert "code.lineage.hpo_refit_run_id" not in tags
    assert (
        tags["code.lineage.parent_training_run_id"] == trial_run
        and tags["code.lineage.parent_kind"] == "trial"
    )
    assert tags["code.run_type"] == "benchmark" and tags["benchmark_key"] == "k1"
    assert not any(k.startswith("azureml.") or k == "mlflow.runType" for k in tags)  # a local store
    assert tags["code.stage"] == "benchmarking" and tags["code.trial_key_hash"] == TRIAL
    assert any("not-a-run-id" in f for f in tracker.failures)
    assert run.data.metrics == {
        "latency_batch_1_ms": 4.0,
        "latency_batch_1_p50_ms": 3.5,
        "latency_batch_1_p95_ms": 6.0,
        "latency_batch_1_p99_ms": 7.0,
        "latency_batch_8_ms": 20.0,
        "throughput_samples_per_sec": 400.0,
    }
    assert (
        run.data.params["benchmark_batch_sizes"] == "[1, 8]" and run.data.params["benchmark_device"] == "cpu"
    )


def test_conversion_artifacts_and_metrics(
    tmp_path: Path, sqlite_tracking_uri: str, artifact_files: Callable[..., set[str]]
) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"x" * (1024 * 1024))
    log = tmp_path / "conv.txt"
    log.write_text("done")
    tracker = MLflowConversionTracker("exp-conv", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    with tracker.start_conversion_run("conv", "onnx", source_training_run="b" * 32) as handle:
        tracker.log_conversion_parameters(tmp_path / "ckpt", "onnx", None, 17, "distilbert")
        tracker.log_conversion_results(
            True, onnx, original_checkpoint_size=4.0, smoke_test_passed=True, conversion_log_path=log
        )
    assert handle is not None
    client = MlflowClient(sqlite_tracking_uri)
    run = client.get_run(handle.run_id)
    assert run.data.metrics == {
        "conversion_success": 1.0,
        "onnx_model_size_mb": 1.0,
        "compression_ratio": 4.0,
        "smoke_test_passed": 1.0,
    }
    assert run.data.params["onnx_opset_version"] == "17" and run.data.params["quantization"] == "none"
    # one key for the source training run (a link to it in the description the UI shows)
    assert run.data.tags["code.lineage.final_training_run_id"] == "b" * 32
    assert "source_training_run" not in run.data.tags and "code.parent_run_id" not in run.data.tags
    assert f"#/runs/{'b' * 32}" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["conversion_type"] == "onnx"
    assert artifact_files(client, handle.run_id) == {"onnx_model/model.onnx", "conversion_log.txt"}


def _open(tracker: BaseTracker) -> AbstractContextManager[Any]:
    if isinstance(tracker, MLflowSweepTracker):
        return tracker.start_sweep_run("sweep", {"objective": {"metric": "f1"}}, "m", "s", None, None, False)
    if isinstance(tracker, MLflowTrainingTracker):
        return tracker.start_training_run("train", "m")
    if isinstance(tracker, MLflowBenchmarkTracker):
        return tracker.start_benchmark_run("bench", "m")
    assert isinstance(tracker, MLflowConversionTracker)
    return tracker.start_conversion_run("conv", "onnx")


TRACKERS: list[Callable[..., BaseTracker]] = [
    MLflowSweepTracker,
    MLflowTrainingTracker,
    MLflowBenchmarkTracker,
    MLflowConversionTracker,
]


class UserCodeError(Exception):
    pass


@pytest.mark.parametrize("factory", TRACKERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("raised", "status"), [(UserCodeError("x"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_user_exceptions_propagate_unchanged(
    factory: Callable[..., BaseTracker],
    raised: BaseException,
    status: str,
    sqlite_tracking_uri: str,
    tmp_path: Path,
) -> None:
    tracker = factory("exp-errors", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    with pytest.raises(type(raised)) as info, _open(tracker) as handle:
        raise raised
    assert info.value is raised  # not wrapped, not replaced ("generator didn't stop after throw()")
    assert info.value.__context__ is None
    assert MlflowClient(sqlite_tracking_uri).get_run(handle.run_id).info.status == status


@pytest.mark.parametrize("factory", TRACKERS, ids=lambda f: f.__name__)
def test_unreachable_tracking_never_stops_training(
    factory: Callable[..., BaseTracker], unreachable_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    tracker = factory("exp-down", tracking_uri=unreachable_uri, config_dir=tmp_path, retry=FAST)
    steps = 0
    with _open(tracker) as handle:
        for _ in range(5):
            steps += 1
            tracker.log_metrics({"loss": 1.0 / steps})
    assert steps == 5 and handle is None
    assert tracker.failures and any("could not get or create experiment" in f for f in tracker.failures)


def test_sweep_tree_on_sqlite(sqlite_tracking_uri: str, tmp_path: Path) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracker = MLflowSweepTracker("exp-sweep", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    hpo = {"objective": {"metric": "macro-f1", "goal": "maximize"}, "sampling": {"max_trials": 2}}
    with tracker.start_sweep_run("sweep", hpo, "distilbert", "s", {"enabled": False}, None, False) as sweep:
        for _ in range(2):
            trial = study.ask()
            x = trial.suggest_float("x", 0, 1)
            with tracker.start_trial_run(trial.number, params=trial.params) as run:
                for k in range(2):
                    with tracker.start_fold_run(run, k, trial_number=trial.number) as fold:
                        fold.log_metric("macro-f1", x)
                run.log_metric("macro-f1", x)
            study.tell(trial, x)
        best = study.best_trial.number
        with tracker.start_refit_run(tracker.trial_run_ids[best]) as refit:
            refit.log_metric("macro-f1", 0.99)
        tracker.log_final_metrics(study, "macro-f1", hpo_config={"refit": {"enabled": True}})
    assert sweep is not None
    runs = {r.info.run_name: r for r in _runs(sqlite_tracking_uri, "exp-sweep")}
    assert set(runs) == {
        "sweep",
        "trial_0",
        "trial_1",
        "trial_0_fold0",
        "trial_0_fold1",
        "trial_1_fold0",
        "trial_1_fold1",
        "refit",
    }
    assert all(r.info.status == "FINISHED" for r in runs.values())
    parent = lambda name: runs[name].data.tags.get("mlflow.parentRunId")  # noqa: E731
    assert parent("trial_0") == parent("trial_1") == parent("refit") == sweep.run_id
    assert parent("trial_1_fold1") == runs["trial_1"].info.run_id
    assert runs["refit"].data.tags["code.refit.of_trial_run_id"] == runs[f"trial_{best}"].info.run_id
    sweep_run = runs["sweep"]
    assert (
        sweep_run.data.metrics["n_trials"] == 2
        and sweep_run.data.metrics["best_macro-f1"] == study.best_value
    )
    assert sweep_run.data.tags["best_trial_run_id"] == runs[f"trial_{best}"].info.run_id
    assert sweep_run.data.tags["code.refit_planned"] == "true"
    assert (
        sweep_run.data.params["max_trials"] == "2"
        and sweep_run.data.params["primary_metric"] == "macro-f1"
        and sweep_run.data.params["objective_goal"] == "maximize"
    )


def test_auto_increment_versions_and_run_index(
    tmp_path: Path, sqlite_tracking_uri: str, reference_config_dir: Path
) -> None:
    from mlrig.naming import build_mlflow_run_key, build_mlflow_run_key_hash, build_run_name_counter_key
    from mlrig.tracking import find_in_mlflow_index, reserve_run_name_version

    def ctx(**kw: Any) -> Any:
        return create_naming_context("hpo", "distilbert", environment="local", study_key_hash=STUDY, **kw)

    sweep_ctx = ctx(stage="hpo_sweep", study_name="s")
    trial_ctx = ctx(stage="hpo_trial", trial_number=0, trial_id="trial-0")
    names, trial_ids = [], []
    for _ in range(2):  # the same study run twice: versions 1 and 2
        tracker = MLflowSweepTracker(
            "exp-v", tracking_uri=sqlite_tracking_uri, config_dir=reference_config_dir, root_dir=tmp_path
        )
        with tracker.start_sweep_run(
            None, {}, "distilbert", "s", None, None, False, context=sweep_ctx
        ) as sweep:
            with tracker.start_trial_run(0, context=trial_ctx) as trial:
                trial_ids.append(trial.run_id)
            names += [trial.run_name]
        assert sweep is not None and tracker.failures == []
        names.append(MlflowClient(sqlite_tracking_uri).get_run(sweep.run_id).info.run_name)
    assert names == [
        "local_distilbert_hpo_trial_study-c3659fea_t00_1",
        "local_distilbert_hpo_study-c3659fea_s_1",
        "local_distilbert_hpo_trial_study-c3659fea_t00_2",
        "local_distilbert_hpo_study-c3659fea_s_2",
    ]
    key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(trial_ctx))
    entry = find_in_mlflow_index(tmp_path, key_hash, config_dir=reference_config_dir)
    assert entry is not None and entry["run_id"] == trial_ids[-1]
    counter_key = build_run_name_counter_key(trial_ctx, reference_config_dir)
    assert reserve_run_name_version(counter_key, None, tmp_path, reference_config_dir) == 3


def test_interrupt_inside_a_trial_ends_the_whole_tree(sqlite_tracking_uri: str, tmp_path: Path) -> None:
    tracker = MLflowSweepTracker("exp-interrupt", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    with (
        pytest.raises(KeyboardInterrupt),
        tracker.start_sweep_run("sweep", {}, "m", "s", None, None, False),
        tracker.start_trial_run(0) as trial,
    ):
        with pytest.raises(ValueError, match="bad fold"), tracker.start_fold_run(trial, 0, trial_number=0):
            raise ValueError("bad fold")
        raise KeyboardInterrupt
    statuses = {r.info.run_name: r.info.status for r in _runs(sqlite_tracking_uri, "exp-interrupt")}
    assert statuses == {"sweep": "KILLED", "trial_0": "KILLED", "trial_0_fold0": "FAILED"}


def test_resumed_sweep_reopens_its_parent_run(sqlite_tracking_uri: str, tmp_path: Path) -> None:
    hpo = {"sampling": {"max_trials": 2}}
    first = MLflowSweepTracker("exp-resume", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    with first.start_sweep_run("sweep", hpo, "m", "s", None, None, False) as sweep, first.start_trial_run(0):
        pass
    assert sweep is not None
    again = MLflowSweepTracker("exp-resume", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path)
    more = {"sampling": {"max_trials": 4}}
    with (
        again.start_sweep_run(
            "sweep", more, "m", "s", None, None, True, resume_run_id=sweep.run_id
        ) as resumed,
        again.start_trial_run(1),
    ):
        pass
    assert resumed is not None and resumed.run_id == sweep.run_id
    runs = _runs(sqlite_tracking_uri, "exp-resume")
    assert sorted(r.info.run_name for r in runs) == ["sweep", "trial_0", "trial_1"]
    parent = next(r for r in runs if r.info.run_name == "sweep")
    assert parent.info.status == "FINISHED"
    assert parent.data.params["max_trials"] == "2"  # params are immutable; the new value is kept as a tag
    assert parent.data.tags["param_update.max_trials"] == "4" and parent.data.tags["code.resumed"] == "true"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs if r.info.run_name != "sweep"} == {sweep.run_id}
    assert again.failures == []


def test_bad_artifact_paths_are_recorded_not_raised(
    tmp_path: Path, sqlite_tracking_uri: str, artifact_files: Callable[..., set[str]]
) -> None:
    tracker = MLflowTrainingTracker(
        "exp-bad-artifacts", tracking_uri=sqlite_tracking_uri, config_dir=tmp_path
    )
    with tracker.start_training_run("t", "m") as handle:
        result = tracker.log_training_artifacts(tmp_path / "no-checkpoint", tmp_path / "no-metrics.json")
        tracker.log_training_metrics({"f1": 0.5})
    assert handle is not None and result == {"checkpoint": False, "metrics_json": False}
    assert len(tracker.failures) == 2 and "no-metrics.json" in tracker.failures[1]
    run = MlflowClient(sqlite_tracking_uri).get_run(handle.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics == {"f1": 0.5}
    assert run.data.tags["code.tracking_failures"] == "2"
    assert artifact_files(MlflowClient(sqlite_tracking_uri), handle.run_id) == set()
