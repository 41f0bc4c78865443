"""A distributed-sweep worker process for the tests and the benchmark: ``run_worker`` on the demo's configs
with a "training" that sleeps and scores the parameters (no k-fold, no pruning: one run per trial).

``python -m tests.distributed.worker_main work|claim --root R --storage URL --tracking URI --name N ...``;
prints one JSON line with what it did. ``--hang-file F``: the 2nd trial writes F and sleeps (to be killed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from mlrig.orchestration import TrainRequest, load_experiment_config, run_worker
from mlrig.orchestration.configs import ExperimentConfig
from mlrig.orchestration.demo import prepare_demo_config

BACKBONE = "tiny"


def experiment(root: Path, name: str, max_trials: int, heartbeat: int, grace: int) -> ExperimentConfig:
    """The demo experiment renamed ``name`` (own MLflow experiment and study), without k-fold or pruning."""
    cfg = prepare_demo_config(root)
    exp = load_experiment_config(cfg, "demo")
    hpo: dict[str, Any] = {
        **exp.hpo,
        "k_fold": {"enabled": False},
        "early_termination": {"policy": "none"},
        "sampling": {"algorithm": "random", "max_trials": max_trials},
        "checkpoint": {"study_name": f"{name}_{{backbone}}"},
        "distributed": {"heartbeat_interval": heartbeat, "grace_period": grace},
    }
    return dataclasses.replace(exp, name=name, hpo=hpo)


def make_train(sleep: float, hang_file: str | None) -> Any:
    calls = 0

    def train(request: TrainRequest) -> dict[str, float]:
        nonlocal calls
        calls += 1
        if hang_file and calls == 2:
            Path(hang_file).write_text(str(os.getpid()))
            time.sleep(600)
        time.sleep(sleep)
        ckpt = request.output_dir / "checkpoint"
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt / "model.json").write_text(json.dumps(request.params))
        p = request.params
        return {"macro-f1": float(p["learning_rate"]) * 10 + float(p["dropout"])}

    return train


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["work", "claim"])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--tracking", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--max-trials", type=int, default=40)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--heartbeat", type=int, default=1)
    parser.add_argument("--grace", type=int, default=3)
    parser.add_argument("--hang-file", default=None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    if args.mode == "claim":
        return claim_rounds(args)
    exp = experiment(args.root, args.name, args.max_trials, args.heartbeat, args.grace)
    t0 = time.perf_counter()
    result = run_worker(
        make_train(args.sleep, args.hang_file), exp, BACKBONE, root_dir=args.root,
        config_dir=args.root / "config", labels=[0, 1] * 10, storage_url=args.storage,
        tracking_uri=args.tracking,
    )  # fmt: skip
    print(json.dumps({
        "worker": result.worker_id, "parent": result.parent_run_id, "finalised": result.finalised,
        "trials": [t.number for t in result.trials], "seconds": time.perf_counter() - t0,
    }))  # fmt: skip
    return 0


def claim_rounds(args: argparse.Namespace) -> int:
    """Round r: every process opens study ``<name>_r`` and claims its parent at ``start_at + r`` seconds."""
    from mlrig.orchestration.distributed import AdvisoryLocks, distributed_config
    from mlrig.orchestration.sweep import _Sweep
    from mlrig.orchestration.worker import _EndStaleRuns, _open_study, _parent
    from mlrig.tracking import SharedSweepTracker

    parents = []
    for r in range(args.rounds):
        exp = experiment(args.root, f"{args.name}_{r}", 1, args.heartbeat, args.grace)
        dist = distributed_config(exp.hpo, args.storage)
        assert dist is not None
        sweep = _Sweep(
            make_train(0, None), exp, BACKBONE, root_dir=args.root, config_dir=args.root / "config",
            labels=[], store=None, state=None, storage_env="local", tracking_uri=args.tracking, progress=None,
        )  # fmt: skip
        tracker = SharedSweepTracker(sweep.experiment_name, tracking_uri=args.tracking, config_dir=sweep.cfg)
        locks = AdvisoryLocks(dist.storage_url)
        study, _ = _open_study(sweep, dist, locks, _EndStaleRuns())
        tracker._experiment()  # created before the start line: the race under test is the parent's
        time.sleep(max(0.0, args.start_at + r * 1.5 - time.time()))
        parents.append(_parent(sweep, tracker, study, locks))
        locks.close()
    print(json.dumps({"parents": parents}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
