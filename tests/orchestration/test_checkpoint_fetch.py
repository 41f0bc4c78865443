"""The refit checkpoint goes through the artifact store: a champion whose local refit folder is gone (the
refit ran on another machine) gets it back from the refit run's artifact, and final training starts from
it -- real sweep, real SQLite MLflow store, real artifact files."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlrig.orchestration import (
    TrainRequest,
    load_experiment_config,
    run_final_training,
    run_local_hpo_sweep,
    select_champion,
)
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR
from mlrig.tracking import MLflowSweepTracker, TrackingError, fetch_checkpoint_archive


def _train(request: TrainRequest) -> dict[str, float]:
    """Writes a checkpoint naming its parameters and what it started from."""
    start = None
    if request.init_checkpoint is not None:
        start = json.loads((request.init_checkpoint / "model.json").read_text())
    ckpt = request.output_dir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "model.json").write_text(json.dumps({"params": dict(request.params), "from": start}))
    (ckpt / "weights").mkdir(exist_ok=True)
    (ckpt / "weights" / "w.bin").write_bytes(bytes(range(256)))
    return {"macro-f1": float(request.params["learning_rate"])}


def test_a_champion_without_its_local_refit_folder_fetches_it(
    tmp_path: Path, sqlite_tracking_uri: str
) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, cfg)
    exp = load_experiment_config(cfg, "demo")
    hpo = {
        **exp.hpo,
        "sampling": {"algorithm": "random", "max_trials": 2},
        "k_fold": {"enabled": False},
        "early_termination": {"policy": "none"},
        "mlflow": {"log_best_checkpoint": True},
    }
    exp = dataclasses.replace(exp, hpo=hpo)
    kw: dict[str, Any] = {"root_dir": tmp_path, "config_dir": cfg}
    sweep = run_local_hpo_sweep(
        _train, exp, "tiny", tracking_uri=sqlite_tracking_uri, labels=[0, 1] * 5, **kw
    )
    assert sweep.refit_dir is not None and sweep.refit_run_id is not None
    local = sweep.refit_dir / "checkpoint"
    original = (local / "model.json").read_text()
    tracker = MLflowSweepTracker(sweep.experiment_name, tracking_uri=sqlite_tracking_uri, config_dir=cfg)
    objective = exp.hpo["objective"]
    assert select_champion(tracker, "tiny", {}, hpo_objective=objective).checkpoint_dir == local

    shutil.rmtree(local)  # this machine never had it
    champion = select_champion(tracker, "tiny", {}, hpo_objective=objective)
    assert champion.refit_run_id == sweep.refit_run_id and champion.checkpoint_dir == local
    assert (local / "model.json").read_text() == original
    assert (local / "weights" / "w.bin").read_bytes() == bytes(range(256))
    assert [p.name for p in local.parent.iterdir() if p.name.startswith(".")] == []  # no staging left

    final = run_final_training(_train, exp, champion, tracking_uri=sqlite_tracking_uri, **kw)
    started = json.loads((final.output_dir / "checkpoint" / "model.json").read_text())["from"]
    assert started == json.loads(original)  # final training started from the fetched refit checkpoint

    with pytest.raises(TrackingError, match="best_trial_checkpoint"):  # a run without the artifact
        fetch_checkpoint_archive(tracker.client, champion.trial_run_id, tmp_path / "nowhere" / "checkpoint")
    assert not (tmp_path / "nowhere" / "checkpoint").exists()
