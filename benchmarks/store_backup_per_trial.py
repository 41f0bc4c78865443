"""The cost of backing up the MLflow store after every trial, on a 10,000-run embedded SQLite store.

A no-op trial is mlrig's sweep around a training function that does nothing: ``run_local_hpo_sweep`` with the
demo experiment (3-fold CV, so a trial run and three fold runs), a ``train`` returning a score at once, and a
backup folder, so the study, the trial folders and the caches are backed up as in any sweep. Two projects,
each with its own copy of the same 10,000-run store:

- **with**: the store is the embedded default ``<root>/mlruns/mlflow.db``, part of the root's state: restored
  first, snapshotted (SQLite online backup) after every trial, coalesced, and flushed at the end of the sweep;
- **without** (the anchor): the same store outside the root (``sqlite:///<elsewhere>/mlflow.db``), which is
  not the root's state and never copied -- everything else is the same.

Rounds alternate between the two (each a sweep of ``--trials`` more trials, resumed on the same study, the
order swapped every round); a round's time runs from the call until ``run_local_hpo_sweep`` returns, so the
end-of-sweep snapshot is counted. The figure is the total time of all rounds each way (both ran the same
trials on studies of the same size; a round's cost grows with its study, so a median would pick one round).
Goal (issue 14): the store backup adds <= 10 % to a no-op trial's wall time at 10,000 runs.
Printed beside it, without a verdict: one snapshot of the store alone, and that snapshot against the
tracker's share of a trial only (``MLflowSweepTracker.start_trial_run``: the anchor an earlier version of
this benchmark used, which leaves out the trial's other overhead: Optuna, folds, files, backups).

The store is built in a temp dir: a template sweep of real runs is written through MLflow, then its rows are
copied in SQL (new run ids) until the store holds ``--runs`` runs. Nothing outside the temp dir is read but
the packaged demo config.

    uv run --frozen python benchmarks/store_backup_per_trial.py [--runs 10000] [--trials 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from mlrig.orchestration import ExperimentConfig, TrainRequest, load_experiment_config, run_local_hpo_sweep
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR
from mlrig.storage import DriveBackupStore
from mlrig.tracking import (
    EMBEDDED_DB_PATH,
    MLflowSweepTracker,
    embedded_tracking_uri,
    get_or_create_experiment,
)

GOAL = 0.10
_HPO = {"objective": {"metric": "macro-f1", "goal": "maximize"}, "sampling": {"max_trials": 10**6}}
_LABELS = [0, 1] * 10
_PARAMS = {"learning_rate": 3e-5, "batch_size": 16, "dropout": 0.1, "weight_decay": 0.01, "epochs": 3}


def _template(client: MlflowClient, experiment_id: str, runs: int) -> None:
    """``runs`` trial-like runs with the payload a real trial leaves (tags, params, fold metrics)."""
    parent = client.create_run(experiment_id, run_name="template_sweep")
    for i in range(runs):
        run = client.create_run(
            experiment_id,
            run_name=f"template_trial_{i}",
            tags={
                "mlflow.parentRunId": parent.info.run_id,
                "trial_number": str(i),
                "code.stage": "hpo_trial",
            },
        )
        metrics = {f"fold{k}.macro-f1": 0.5 + k / 100 for k in range(5)} | {"macro-f1": 0.6}
        client.log_batch(
            run.info.run_id,
            metrics=[_metric(k, v) for k, v in metrics.items()],
            params=[_param(k, str(v)) for k, v in _PARAMS.items()],
        )
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)


def _metric(key: str, value: float) -> object:
    from mlflow.entities import Metric

    return Metric(key, value, int(time.time() * 1000), 0)


def _param(key: str, value: str) -> object:
    from mlflow.entities import Param

    return Param(key, value)


def _replicate(db: Path, target: int) -> int:
    """Copy every run (and its rows in each run-keyed table) under new ids until ``target`` runs exist."""
    conn = sqlite3.connect(db)
    try:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if "run_uuid" in [c[1] for c in conn.execute(f"PRAGMA table_info({name})")]
        ]
        while (count := conn.execute("SELECT count(*) FROM runs").fetchone()[0]) < target:
            need = target - count
            conn.execute("DROP TABLE IF EXISTS temp.ids")
            conn.execute(
                "CREATE TEMP TABLE ids AS SELECT run_uuid AS old, lower(hex(randomblob(16))) AS new "
                f"FROM runs LIMIT {need}"
            )
            with conn:
                for table in tables:
                    cols = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
                    select = ", ".join("ids.new" if c == "run_uuid" else f"t.{c}" for c in cols)
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(cols)}) "
                        f"SELECT {select} FROM {table} t JOIN ids ON t.run_uuid = ids.old"
                    )
        return int(count)
    finally:
        conn.close()


def build_store(root: Path, runs: int) -> Path:
    uri = embedded_tracking_uri(root)
    experiment_id = get_or_create_experiment("bench-hpo-tiny", tracking_uri=uri)
    _template(MlflowClient(uri), experiment_id, 50)
    db = root / EMBEDDED_DB_PATH
    _replicate(db, runs)
    return db


def _train(request: TrainRequest) -> dict[str, float]:
    (request.output_dir / "checkpoint").mkdir(parents=True, exist_ok=True)  # where a refit's is looked for
    return {"macro-f1": 0.5}


@dataclass
class Project:
    """A project root with the demo config, its own copy of the store, and a backup folder."""

    root: Path
    config: Path
    experiment: ExperimentConfig
    tracking_uri: str
    store: DriveBackupStore
    trials: int = 0

    def sweep(self, trials: int) -> float:
        """Seconds per trial for a sweep of ``trials`` more no-op trials (resuming the same study)."""
        self.trials += trials
        start = time.perf_counter()
        result = run_local_hpo_sweep(
            _train, self.experiment, "tiny", root_dir=self.root, config_dir=self.config, labels=_LABELS,
            store=self.store, tracking_uri=self.tracking_uri, max_trials=self.trials,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        assert result.trials and all(t.state == "COMPLETE" for t in result.trials), result.trials
        return elapsed / trials


def make_project(tmp: Path, name: str, template: Path, *, store_in_root: bool) -> Project:
    root = tmp / name
    config = root / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    db = root / EMBEDDED_DB_PATH if store_in_root else tmp / f"{name}-elsewhere" / EMBEDDED_DB_PATH.name
    db.parent.mkdir(parents=True)
    shutil.copy2(template, db)
    backup = tmp / f"{name}-backup"  # a local folder standing in for the mounted Drive
    backup.mkdir()
    experiment = load_experiment_config(config, "demo")
    return Project(root, config, experiment, f"sqlite:///{db}", DriveBackupStore(root, backup))


def tracker_trial(template: Path, tmp: Path, trials: int) -> float:
    """Seconds per no-op trial of the tracker alone (trial run, params, a metric) on a copy of the store."""
    root = tmp / "tracker-only"
    (root / EMBEDDED_DB_PATH).parent.mkdir(parents=True)
    shutil.copy2(template, root / EMBEDDED_DB_PATH)
    tracker = MLflowSweepTracker(
        "bench-hpo-tiny", tracking_uri=embedded_tracking_uri(root), root_dir=root, config_dir=root / "config"
    )
    with tracker.start_sweep_run("bench_sweep", _HPO, "tiny", "bench", None, None, False):
        for number in range(5):  # warm-up: engine, caches
            with tracker.start_trial_run(number, params=_PARAMS) as run:
                run.log_metrics({"macro-f1": 0.5})
        tracker.wait()
        start = time.perf_counter()
        for number in range(5, 5 + trials):
            with tracker.start_trial_run(number, params=_PARAMS) as run:
                run.log_metrics({"macro-f1": 0.5})
        tracker.wait()
        per_trial = (time.perf_counter() - start) / trials
    assert not tracker.failures, tracker.failures
    return per_trial


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=60, help="trials per round (one sweep)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each kind (alternating)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mlrig-bench-store-") as name:
        tmp = Path(name)
        t0 = time.perf_counter()
        template = build_store(tmp / "template", args.runs)
        built = time.perf_counter() - t0
        size_mb = template.stat().st_size / 1e6
        # one snapshot of the store alone, into a backup folder of its own (the staging copy made first)
        alone = DriveBackupStore(
            tmp / "template", tmp / "alone", outputs_dir=template.parent, scratch_dir=tmp
        )
        (tmp / "alone").mkdir()
        assert alone.backup(template, expect="file").ok
        snapshots = []
        for version in range(3):
            with sqlite3.connect(template) as conn:  # a commit, so the next backup copies the store again
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.close()
            start = time.perf_counter()
            assert alone.backup(template, expect="file").ok
            snapshots.append(time.perf_counter() - start)
        one_snapshot = statistics.median(snapshots)
        projects = {
            "with": make_project(tmp, "with", template, store_in_root=True),
            "without": make_project(tmp, "without", template, store_in_root=False),
        }
        for project in projects.values():
            project.sweep(5)  # warm-up: study, engine, the first restore-first check of the store
        times: dict[str, list[float]] = {kind: [] for kind in projects}
        for number in range(args.rounds):
            order = ["without", "with"] if number % 2 == 0 else ["with", "without"]
            for kind in order:
                times[kind].append(projects[kind].sweep(args.trials))
        tracker_only = tracker_trial(template, tmp, args.trials)
    base = sum(times["without"]) / len(times["without"])
    cost = sum(times["with"]) / len(times["with"])
    ratio = cost / base - 1.0
    print(f"store: {args.runs} runs, {size_mb:.1f} MB (built in {built:.1f} s)")
    print(f"rounds: {args.rounds} sweeps of {args.trials} no-op trials each way (all rounds' time)")
    for kind, label in (("without", "store outside the root (anchor)"), ("with", "store backed up")):
        print(
            f"no-op trial, {label}: {sum(times[kind]) / len(times[kind]) * 1000:.1f} ms  (rounds: "
            f"{', '.join(f'{t * 1000:.1f}' for t in times[kind])})"
        )
    paired = ", ".join(f"{w / o - 1:+.1%}" for w, o in zip(times["with"], times["without"], strict=True))
    print(f"round by round: {paired}")
    print(
        f"added by backing up the store: {ratio * 100:+.1f} % of a no-op trial (goal <= {GOAL * 100:.0f} %): "
        + ("MET" if ratio <= GOAL else "MISSED")
    )
    share = one_snapshot / (tracker_only * args.trials) * 100
    print(
        f"no verdict: one snapshot of the store alone {one_snapshot * 1000:.0f} ms; against the tracker's "
        f"share of a trial only ({tracker_only * 1000:.1f} ms, no Optuna, folds or files) it is "
        f"{share:.1f} % of a sweep of {args.trials} trials"
    )


if __name__ == "__main__":
    main()
