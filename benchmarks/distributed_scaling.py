"""Distributed sweeps: 1, 2 and 4 worker processes on 40 trials of a 1 s sleep "training", on an embedded
PostgreSQL + ``mlflow server`` started by ``mlrig.orchestration.services`` (goal: throughput at 4 workers
>= 3.2x one worker, i.e. >= 0.8 N), and the per-trial overhead of ``run_worker`` against bare Optuna RDB
+ MLflow client calls on the same servers, measured in the same run.

Throughput is trials / (last trial's end - first trial's start), from the study itself: process start-up
(imports) is not a per-trial cost and is left out.

Run: ``uv run --frozen python benchmarks/distributed_scaling.py [--trials 40] [--sleep 1.0]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

GOAL_RATIO = 3.2


def _experiment(root: Path, name: str, trials: int) -> Any:
    from mlrig.orchestration import load_experiment_config
    from mlrig.orchestration.demo import prepare_demo_config

    exp = load_experiment_config(prepare_demo_config(root), "demo")
    hpo = {
        **exp.hpo,
        "k_fold": {"enabled": False},
        "early_termination": {"policy": "none"},
        "sampling": {"algorithm": "random", "max_trials": trials},
        "checkpoint": {"study_name": f"{name}_{{backbone}}"},
        "refit": {"enabled": False},
    }
    return dataclasses.replace(exp, name=name, hpo=hpo)


def _worker(args: argparse.Namespace) -> None:
    from mlrig.orchestration import TrainRequest, run_worker

    def train(request: TrainRequest) -> dict[str, float]:
        time.sleep(args.sleep)
        return {"macro-f1": float(request.params["dropout"])}

    root = Path(args.root)
    run_worker(
        train, _experiment(root, args.name, args.trials), "tiny", root_dir=root, config_dir=root / "config",
        labels=[], storage_url=args.storage, tracking_uri=args.tracking,
    )  # fmt: skip


def _span(storage: str, name: str) -> float:
    import optuna

    (study,) = optuna.get_all_study_names(storage)  # a database per sweep
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return (max(ends) - min(starts)).total_seconds()


def _sweep(n: int, admin: str, tracking: str, root: Path, trials: int, sleep: float) -> float:
    from mlrig.orchestration.services import create_database

    name = f"scale{n}_{uuid.uuid4().hex[:6]}"
    storage = create_database(admin, name)
    cmd = [sys.executable, __file__, "--worker", "--storage", storage, "--tracking", tracking, "--name", name]
    cmd += ["--trials", str(trials), "--sleep", str(sleep)]
    procs = [subprocess.Popen([*cmd, "--root", str(root / f"{name}-{i}")]) for i in range(n)]
    if any(p.wait() for p in procs):
        raise SystemExit(f"a worker of the {n}-worker sweep failed")
    return _span(storage, name)


def _bare(admin: str, tracking: str, trials: int) -> float:
    """Seconds per trial of bare Optuna RDB ask/tell + MLflow client (create child run, log, end)."""
    import optuna
    from mlflow.tracking import MlflowClient

    from mlrig.orchestration.services import create_database

    storage = create_database(admin, f"bare_{uuid.uuid4().hex[:6]}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, direction="maximize")
    client = MlflowClient(tracking)
    experiment = client.create_experiment(f"bare_{uuid.uuid4().hex[:6]}")
    parent = client.create_run(experiment).info.run_id
    with contextlib.redirect_stdout(io.StringIO()):  # mlflow prints a "View run" line per ended run
        return _bare_loop(study, client, experiment, parent, trials)


def _bare_loop(study: Any, client: Any, experiment: str, parent: str, trials: int) -> float:
    from mlflow.entities import Metric

    t0 = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.003, 0.05, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        }
        run = client.create_run(experiment, tags={"mlflow.parentRunId": parent}).info.run_id
        client.log_batch(run, metrics=[Metric("macro-f1", params["dropout"], int(time.time() * 1000), 0)])
        client.set_terminated(run)
        study.tell(trial, params["dropout"])
    return (time.perf_counter() - t0) / trials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--storage")
    parser.add_argument("--tracking")
    parser.add_argument("--name")
    parser.add_argument("--root")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=1.0)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    from mlrig.orchestration.services import services_down, services_up

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        running = services_up(root, durable=False)
        print(f"services up in {time.perf_counter() - t0:.1f} s: {running.tracking_uri}")
        try:
            spans = {n: _sweep(n, running.postgres_url, running.tracking_uri, root, args.trials, args.sleep)
                     for n in (1, 2, 4)}  # fmt: skip
            bare = _bare(running.postgres_url, running.tracking_uri, args.trials)
        finally:
            services_down(root)
    rate = {n: args.trials / span for n, span in spans.items()}
    for n in spans:
        print(f"{n} worker(s): {args.trials} trials in {spans[n]:.1f} s = {rate[n]:.2f} trials/s "
              f"(x{rate[n] / rate[1]:.2f} vs 1 worker)")  # fmt: skip
    overhead = spans[1] / args.trials - args.sleep
    ratio = rate[4] / rate[1]
    print(f"throughput at 4 workers: {ratio:.2f}x one worker (goal >= {GOAL_RATIO}, i.e. 0.8 N): "
          + ("OK" if ratio >= GOAL_RATIO else "BELOW GOAL"))  # fmt: skip
    print(f"per-trial overhead: run_worker {overhead * 1000:.0f} ms vs bare Optuna RDB + MLflow client "
          f"{bare * 1000:.0f} ms = {overhead / bare:.2f}x")  # fmt: skip
    print(json.dumps({"ratio_4": ratio, "overhead_s": overhead, "bare_s": bare, "spans": spans}))


if __name__ == "__main__":
    main()
