"""Against a real ``mlflow server``: the run tree as the REST API shows it, the per-trial call budget, and
fault injection (5xx / dropped connections) through a loopback proxy."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from mlrig.naming import build_mlflow_run_name, create_naming_context
from mlrig.tracking import MLflowSweepTracker, RetryPolicy, retry_pending_terminations

pytestmark = pytest.mark.slow

STUDY = "c3659fea" * 8
TERMINAL = {"FINISHED", "FAILED", "KILLED"}


def _rest(uri: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


def _all_runs(uri: str, experiment_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    token = None
    while True:
        payload: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": 100}
        if token:
            payload["page_token"] = token
        page = _rest(uri, "runs/search", payload)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            return runs


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _ctx(**kw: Any) -> Any:
    return create_naming_context("hpo", "distilbert", environment="local", study_key_hash=STUDY, **kw)


def test_run_tree_through_rest_and_three_calls_per_trial(
    mlflow_server_uri: str, loopback_proxy: Callable[..., Any], tmp_path: Path
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    proxy = loopback_proxy(mlflow_server_uri)
    cfg = tmp_path / "config"  # packaged defaults: no auto-increment, so names are exact
    tracker = MLflowSweepTracker("tree", tracking_uri=proxy.uri, config_dir=cfg)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    hpo = {"objective": {"metric": "macro-f1", "goal": "maximize"}, "sampling": {"max_trials": 3}}
    calls_per_trial: list[list[str]] = []
    with tracker.start_sweep_run(
        None, hpo, "distilbert", "tree", None, None, False, context=_ctx(stage="hpo_sweep")
    ) as sweep:
        assert sweep is not None
        for _ in range(3):
            trial = study.ask()
            x = trial.suggest_float("x", 0.0, 1.0)
            tctx = _ctx(stage="hpo_trial", trial_number=trial.number, trial_id=f"trial-{trial.number}")
            proxy.reset()
            with tracker.start_trial_run(trial.number, context=tctx, params=trial.params) as run:
                trial_calls = len(proxy.api_calls())
                for k in range(2):
                    fctx = _ctx(
                        stage="hpo_trial_fold", trial_number=trial.number, trial_id=tctx.trial_id, fold_idx=k
                    )
                    with tracker.start_fold_run(run, k, context=fctx) as fold:
                        fold.log_metric("macro-f1", x)
                tracker.wait()  # fold endings go through the background writer
                fold_calls = len(proxy.api_calls()) - trial_calls
                run.log_metrics({"macro-f1": x, "cv_std": 0.0})
            tracker.wait()
            calls_per_trial.append([p for _, p in proxy.api_calls()])
            assert fold_calls == 6  # 2 folds x 3 calls
            study.tell(trial, x)
        best = study.best_trial.number
        refit_ctx = create_naming_context(
            "hpo_refit",
            "distilbert",
            environment="local",
            study_key_hash=STUDY,
            trial_key_hash="9492cb65" * 8,
            trial_number=best,
            trial_id=f"trial-{best}",
        )
        with tracker.start_refit_run(tracker.trial_run_ids[best], context=refit_ctx) as refit:
            refit.log_metric("macro-f1", 0.99)
        tracker.log_final_metrics(study, "macro-f1")
    for calls in calls_per_trial:  # trial: create + batch + update; each fold the same
        trial_only = [c for i, c in enumerate(calls) if i in (0, len(calls) - 2, len(calls) - 1)]
        assert len(calls) == 3 + 6
        assert [c.rsplit("/", 1)[-1] for c in trial_only] == ["create", "log-batch", "update"]

    exp_id = sweep.experiment_id
    runs = _all_runs(mlflow_server_uri, exp_id)
    by_id = {r["info"]["run_id"]: r for r in runs}
    assert len(runs) == 1 + 3 + 6 + 1
    assert all(r["info"]["status"] == "FINISHED" for r in runs)
    root = by_id[sweep.run_id]
    assert root["info"]["run_name"] == build_mlflow_run_name(_ctx(stage="hpo_sweep"), cfg)
    assert _tags(root)["code.stage"] == "hpo_sweep" and _tags(root)["code.run_type"] == "sweep"
    children = [r for r in runs if _tags(r).get("mlflow.parentRunId") == sweep.run_id]
    trials = [r for r in children if _tags(r)["code.stage"] == "hpo_trial"]
    refits = [r for r in children if _tags(r)["code.stage"] == "hpo_refit"]
    assert len(trials) == 3 and len(refits) == 1
    for t in trials:
        n = int(_tags(t)["code.hpo.trial_number"])
        assert t["info"]["run_name"] == f"local_distilbert_hpo_trial_study-c3659fea_t{n:02d}"
        assert _tags(t)["code.study_key_hash"] == STUDY
        folds = [r for r in runs if _tags(r).get("mlflow.parentRunId") == t["info"]["run_id"]]
        assert sorted(f["info"]["run_name"] for f in folds) == [
            f"local_distilbert_hpo_trial_study-c3659fea_t{n:02d}_fold{k}" for k in range(2)
        ]
        assert {_tags(f)["code.stage"] for f in folds} == {"hpo_trial_fold"}
    refit_tags = _tags(refits[0])
    assert refit_tags["code.refit.of_trial_run_id"] == tracker.trial_run_ids[best]
    assert refit_tags["code.run_type"] == "refit"
    assert not any(k == "mlflow.runType" or k.startswith("azureml.") for r in runs for k in _tags(r))
    assert _tags(root)["best_trial_run_id"] == tracker.trial_run_ids[best]


@pytest.mark.parametrize(("fault_mode", "fault_rate"), [("5xx", 0.3), ("drop", 0.2)])
def test_faulty_server_training_finishes_and_runs_end_terminal(
    mlflow_server_uri: str,
    loopback_proxy: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault_mode: str,
    fault_rate: float,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # faults reach mlrig's retry layer
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    proxy = loopback_proxy(mlflow_server_uri, fault_rate=fault_rate, fault_mode=fault_mode, seed=7)
    retry = RetryPolicy(max_retries=3, base_delay=0.02, max_delay=0.1, deadline=5)
    name = f"faults-{fault_mode}"
    tracker = MLflowSweepTracker(name, tracking_uri=proxy.uri, config_dir=tmp_path / "config", retry=retry)
    losses = []
    with tracker.start_sweep_run("sweep", {}, "m", "s", None, None, False):
        for n in range(8):
            with tracker.start_trial_run(n, params={"n": n}) as trial:
                for k in range(2):
                    with tracker.start_fold_run(trial, k, trial_number=n) as fold:
                        fold.log_metric("loss", 1.0 / (n + k + 1))
                losses.append(1.0 / (n + 1))  # the "training" result
                trial.log_metric("loss", losses[-1])
    assert len(losses) == 8  # training code was never interrupted
    assert proxy.faults > 0
    proxy.fault_rate = 0.0  # the server is healthy again
    assert retry_pending_terminations(proxy.uri) == 0
    from mlrig.tracking import get_or_create_experiment

    runs = _all_runs(mlflow_server_uri, get_or_create_experiment(name, tracking_uri=mlflow_server_uri))
    statuses = [r["info"]["status"] for r in runs]
    assert runs and set(statuses) <= TERMINAL, statuses
    created = len(runs)
    expected = 1 + 8 + 16
    assert created <= expected
    # every run that could not be created or finished cleanly was logged and recorded, never raised
    assert created == expected or tracker.failures
