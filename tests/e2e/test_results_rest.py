"""MLflow-native results, read back through a real ``mlflow server``'s REST API after one demo pipeline run:
every stage's artifacts, step-wise metric curves, train-set vs CV metric keys, pruned runs not FAILED,
MLflow's system tags (and no custom ``mlflow.``/foreign keys), the lineage champion → final training →
conversion → benchmark, and the final model logged as an MLflow model and registered with an alias."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlrig.naming import detect_git_sha
from mlrig.orchestration import DemoSummary, run_demo
from mlrig.orchestration.demo import prepare_demo_config
from mlrig.tracking import find_best_run_by_metric, query_runs_by_tags

pytestmark = pytest.mark.slow

# The demo under its own experiment name (also the registered model's name): the session's server is shared
# with test_demo.py, whose demo would otherwise resume this one's sweep parents (same study keys).
EXPERIMENT = "mlrig_results_rest"


@pytest.fixture(scope="module")
def demo(
    mlflow_server_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DemoSummary, MlflowClient]:
    root = tmp_path_factory.mktemp("results-rest")
    experiment = prepare_demo_config(root) / "experiment" / "demo.yaml"
    text = experiment.read_text(encoding="utf-8")
    assert 'experiment_name: "mlrig_demo"' in text
    experiment.write_text(text.replace('"mlrig_demo"', f'"{EXPERIMENT}"'), encoding="utf-8")
    summary = run_demo(root, tracking_uri=mlflow_server_uri)  # the default 6 trials: one of them is pruned
    assert summary.tracking_uri == mlflow_server_uri
    return summary, MlflowClient(tracking_uri=mlflow_server_uri)


def _runs(client: MlflowClient) -> list[Run]:
    runs: list[Run] = []
    for exp in client.search_experiments():
        if exp.name.startswith(f"{EXPERIMENT}-"):
            runs.extend(client.search_runs([exp.experiment_id], max_results=1000))
    return runs


def _files(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        out |= _files(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def test_every_stage_logs_its_deliverable(demo: tuple[DemoSummary, MlflowClient], tmp_path: Path) -> None:
    summary, client = demo
    assert summary.final_training and summary.conversion and summary.benchmark
    final, conversion, bench = (
        summary.final_training.run_id,
        summary.conversion.run_id,
        summary.benchmark.run_id,
    )
    assert final and conversion and bench
    assert {"checkpoint.tar.gz", "metrics.json", "resolved_config.json"} <= _files(client, final)
    converted = Path(str(summary.conversion.metrics["model_path"])).name
    assert _files(client, conversion) == {f"converted_model/{converted}", "resolved_config.json"}
    assert _files(client, bench) == {"benchmark.json", "resolved_config.json"}
    config = client.download_artifacts(conversion, "resolved_config.json", str(tmp_path))
    assert '"quantization": "int8"' in Path(config).read_text(encoding="utf-8")
    for sweep in summary.sweeps:
        assert sweep.parent_run_id
        table = client.download_artifacts(sweep.parent_run_id, "trials.csv", str(tmp_path / sweep.backbone))
        with open(table, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [int(r["number"]) for r in rows] == [t.number for t in sweep.trials]
        assert [r["state"] for r in rows] == [t.state for t in sweep.trials]
        assert all(r["run_id"] == (t.run_id or "") for r, t in zip(rows, sweep.trials, strict=True))
        assert {"param_learning_rate", "param_batch_size", "value"} <= set(rows[0])


def test_curves_are_step_wise_and_train_scores_have_their_own_key(
    demo: tuple[DemoSummary, MlflowClient],
) -> None:
    summary, client = demo
    runs = _runs(client)
    epochs = 6  # config/train.yaml of the demo
    assert summary.final_training and summary.final_training.run_id and summary.best
    final = client.get_run(summary.final_training.run_id)
    assert "macro-f1" not in final.data.metrics and "train_macro-f1" in final.data.metrics
    assert _steps(client, final.info.run_id, "train_macro-f1") == list(range(1, epochs + 1))
    refit = client.get_run(summary.best.refit_run_id)
    assert set(refit.data.metrics) == {"train_macro-f1", "train_accuracy", "train_loss"}
    assert _steps(client, refit.info.run_id, "train_macro-f1") == list(range(1, epochs + 1))
    folds = [r for r in runs if r.data.tags.get("code.stage") == "hpo_trial_fold"]
    complete = [f for f in folds if "code.trial_state" not in f.data.tags]
    assert complete and all(
        _steps(client, f.info.run_id, "macro-f1") == list(range(1, epochs + 1)) for f in complete[:3]
    )
    # `mlrig runs best --metric macro-f1` over a sweep's experiment: a CV score wins, never a train-set one
    for sweep in summary.sweeps:
        exp_id = client.get_experiment_by_name(sweep.experiment_name).experiment_id
        best = find_best_run_by_metric(query_runs_by_tags(client, [exp_id], {}), "macro-f1")
        assert best is not None and best.data.tags["code.stage"] != "hpo_refit"
        trials = query_runs_by_tags(client, [exp_id], {"code.stage": "hpo_trial"})
        best_trial = find_best_run_by_metric(trials, "macro-f1")
        assert best_trial is not None and best_trial.data.metrics["macro-f1"] == pytest.approx(
            sweep.best_value
        )


def test_pruned_runs_finish_marked_and_nothing_failed(demo: tuple[DemoSummary, MlflowClient]) -> None:
    summary, client = demo
    runs = _runs(client)
    assert not [r.info.run_name for r in runs if r.info.status != "FINISHED"]
    pruned = {t.run_id for s in summary.sweeps for t in s.trials if t.state == "PRUNED"}
    assert pruned, "the demo's seeded sweep prunes a trial; this test needs one"
    for run_id in pruned:
        trial = client.get_run(str(run_id))
        assert trial.info.status == "FINISHED" and trial.data.tags["code.trial_state"] == "PRUNED"
        folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == run_id]
        pruned_fold = folds[0]  # fold 0 reports to the pruner; the trial stops there
        assert len(folds) == 1 and pruned_fold.data.tags["code.trial_state"] == "PRUNED"
        assert _steps(client, pruned_fold.info.run_id, "macro-f1")  # its curve up to the pruning epoch


def test_system_tags_and_no_foreign_or_duplicate_keys(demo: tuple[DemoSummary, MlflowClient]) -> None:
    _, client = demo
    runs = _runs(client)
    sha = detect_git_sha(Path.cwd())
    for run in runs:
        tags: dict[str, Any] = run.data.tags
        assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]
        assert tags.get("mlflow.source.git.commit") == sha
        assert tags["code.run_type"] in {
            "sweep",
            "trial",
            "fold",
            "refit",
            "training",
            "conversion",
            "benchmark",
        }
        assert not [k for k in tags if k.startswith("azureml.") or k == "mlflow.runType"]
        # one key per fact: the model is code.model only
        assert not {"code.backbone", "backbone", "benchmarked_model", "code.created_by"} & set(tags)


def test_lineage_champion_to_benchmark(demo: tuple[DemoSummary, MlflowClient]) -> None:
    summary, client = demo
    best, final_result, conv_result, bench_result = (
        summary.best,
        summary.final_training,
        summary.conversion,
        summary.benchmark,
    )
    assert best and final_result and conv_result and bench_result
    final = client.get_run(str(final_result.run_id)).data.tags
    conversion = client.get_run(str(conv_result.run_id)).data.tags
    bench = client.get_run(str(bench_result.run_id)).data.tags
    assert final["code.lineage.hpo_refit_run_id"] == best.refit_run_id
    assert final["code.lineage.hpo_trial_run_id"] == best.trial_run_id
    assert conversion["code.lineage.final_training_run_id"] == final_result.run_id
    # the benchmark measures the champion's refit checkpoint before selection (its latency feeds it)
    assert bench["code.lineage.hpo_refit_run_id"] == best.refit_run_id
    # what the UI shows: the run description links to each upstream run
    assert f"(#/runs/{best.refit_run_id})" in final["mlflow.note.content"]
    assert f"(#/runs/{final_result.run_id})" in conversion["mlflow.note.content"]
    assert f"(#/runs/{best.refit_run_id})" in bench["mlflow.note.content"]


def test_final_model_is_logged_and_the_champion_registered(demo: tuple[DemoSummary, MlflowClient]) -> None:
    summary, client = demo
    assert summary.final_training and summary.final_training.run_id
    final = client.get_run(summary.final_training.run_id)
    outputs = final.outputs.model_outputs if final.outputs else []
    assert len(outputs) == 1
    model = client.get_logged_model(outputs[0].model_id)
    assert model.source_run_id == final.info.run_id and str(model.status) == "READY"
    version = client.get_model_version_by_alias(EXPERIMENT, "champion")
    assert version.run_id == final.info.run_id and version.source == model.artifact_location
