"""A lost machine loses nothing: VM resets, SIGKILLs, concurrent runs and corrupt files on a real root.

Every test drives real ``mlrig`` processes (the CLI or a small driver) on a real SQLite MLflow store and real
Optuna studies, with ``<root>/backup`` standing in for the Drive.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mlrig.storage import check_sqlite

ROOT = Path(__file__).resolve().parents[2]
MLRIG = [sys.executable, "-c", "from mlrig.cli import main; main()"]
TRIALS = 3

# A pipeline run through run_demo with one call hanging (after writing <root>/hanging) so a test can kill it.
HANG_DRIVER = r"""
import sys, time
from pathlib import Path
from mlrig.orchestration import demo_model, run_demo

root, where = Path(sys.argv[1]), sys.argv[2]
train, convert, benchmark = demo_model.train, demo_model.convert, demo_model.benchmark

def hang():
    (root / "hanging").write_text(where)
    time.sleep(600)

def hanging_train(request):
    refit = request.trial_number is not None and request.fold_idx is None  # trials run per CV fold
    if (where == "refit" and refit and request.backbone == "small") or (
        where == "final_training" and request.trial_number is None
    ):
        hang()
    return train(request)

def hanging_convert(request):
    if where == "conversion":
        hang()
    return convert(request)

def hanging_benchmark(request):
    if where == "benchmark":
        hang()
    return benchmark(request)

demo_model.train, demo_model.convert, demo_model.benchmark = hanging_train, hanging_convert, hanging_benchmark
run_demo(root, max_trials=int(sys.argv[3]), wait_for_root=60)
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def mlrig(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLRIG, *args], env=_env(), capture_output=True, text=True, timeout=timeout)


def demo(root: Path, trials: int = TRIALS) -> subprocess.CompletedProcess[str]:
    return mlrig("demo", "--root", str(root), "--max-trials", str(trials))


def all_runs(root: Path) -> list[Any]:
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db")
    runs: list[Any] = []
    for exp in client.search_experiments():
        runs.extend(client.search_runs([exp.experiment_id], max_results=5000))
    return runs


def assert_consistent(root: Path, trials: int) -> list[Any]:
    """Target trials per study, one sweep parent per study, nothing RUNNING, no duplicate names."""
    runs = all_runs(root)
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    names = Counter(r.info.run_name for r in runs)
    assert [n for n, k in names.items() if k > 1] == []
    studies = sorted(root.glob("outputs/hpo/local/*/study-*/study.db"))
    assert len(studies) == 2
    parents = Counter(
        r.data.tags.get("code.model") for r in runs if r.data.tags.get("code.stage") == "hpo_sweep"
    )
    assert sorted(parents.values()) == [1, 1], parents
    for db in studies:
        study = optuna.load_study(study_name=None, storage=f"sqlite:///{db}")
        done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
        assert len(done) == trials
    return runs


def champion_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if "refit run" in line]


@pytest.mark.slow
def test_vm_reset_after_a_finished_demo_then_cli_backup_restore_verify(tmp_path: Path) -> None:
    """(a) ``rm -rf mlruns outputs`` after a finished demo: the rerun reuses everything, same champion."""
    root = tmp_path / "vm"
    first = demo(root)
    assert first.returncode == 0, first.stderr
    assert (root / "backup" / "mlruns" / "mlflow.db").is_file()
    assert check_sqlite(root / "backup" / "mlruns" / "mlflow.db", read_only=True).ok
    before = {r.info.run_id: r.info.run_name for r in all_runs(root)}
    shutil.rmtree(root / "mlruns")
    shutil.rmtree(root / "outputs")

    again = demo(root)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    after = {r.info.run_id: r.info.run_name for r in assert_consistent(root, TRIALS)}
    assert after == before  # every stage reused: not one run created
    assert champion_of(again.stdout) == champion_of(first.stdout)

    # the whole state through the CLI: verify, a corrupted backup copy, a local-only file, restore --delete
    assert mlrig("verify", "--root", str(root)).returncode == 0
    counter = next((root / "backup" / "outputs" / "cache").rglob("*.json"))
    counter.write_text("{corrupted}")
    result = mlrig("verify", "--root", str(root), "--checksum")
    assert result.returncode == 1 and counter.name in result.stdout
    assert mlrig("backup", "--root", str(root)).returncode == 0
    assert mlrig("verify", "--root", str(root), "--checksum").returncode == 0
    local_only = root / "outputs" / "notes.txt"
    local_only.write_text("mine")
    shutil.rmtree(root / "mlruns")
    restored = mlrig("restore", "--root", str(root))
    assert restored.returncode == 0, restored.stderr
    assert "local-only kept" in restored.stdout and local_only.exists()
    assert check_sqlite(root / "mlruns" / "mlflow.db").ok
    assert mlrig("restore", "--root", str(root), "--delete").returncode == 0
    assert not local_only.exists()
    result = mlrig("verify", "--root", str(root), "--backup-root", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def _integrity(backup: Path) -> None:
    for db in [backup / "mlruns" / "mlflow.db", *backup.glob("outputs/hpo/local/*/study-*/study.db")]:
        if db.exists():
            health = check_sqlite(db, read_only=True)
            assert health.ok, f"{db}: {health.reason}"


@pytest.mark.slow
def test_sigkill_at_random_points_then_vm_resets(tmp_path: Path) -> None:
    """(b) 24 SIGKILLs at random moments (some followed by a VM reset); every rerun ends consistent."""
    root = tmp_path / "vm"
    rng = random.Random(14)
    trials = 4
    t0 = time.monotonic()
    for round_ in range(24):
        proc = subprocess.Popen(
            [*MLRIG, "demo", "--root", str(root), "--max-trials", str(trials)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(1.0, 12.0))  # start-up, store creation, restores, sweeps, stages
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        _integrity(root / "backup")
        if round_ % 3 == 2:  # the VM is reset: only the backup survives
            shutil.rmtree(root / "mlruns", ignore_errors=True)
            shutil.rmtree(root / "outputs", ignore_errors=True)
    final = demo(root, trials)
    assert final.returncode == 0, final.stderr
    assert_consistent(root, trials)
    _integrity(root / "backup")
    print(f"kill rounds + final run: {time.monotonic() - t0:.0f}s")


def test_concurrent_demos_on_one_root(tmp_path: Path) -> None:
    """Three ``mlrig demo`` at once: one runs, the others wait or say in one line who holds the root."""
    root = tmp_path / "vm"
    procs = [
        subprocess.Popen(
            [*MLRIG, "demo", "--root", str(root), "--max-trials", str(TRIALS)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(*p.communicate(timeout=600), p.returncode) for p in procs]
    outcomes = [(rc, out, err) for out, err, rc in outcomes]
    assert sum(rc == 0 for rc, _, _ in outcomes) >= 1, outcomes
    for rc, _, err in outcomes:
        assert "Traceback" not in err, err
        if rc != 0:
            lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
            assert len(lines) == 1 and "RootBusyError" in lines[0] and "is in use by pid" in lines[0], err


@pytest.mark.slow
def test_sigkill_in_each_stage_and_the_refit_then_rerun(tmp_path: Path) -> None:
    """A kill in the refit, benchmark, final training and conversion, then a corrupt study.db: rerun rc 0."""
    root = tmp_path / "vm"
    for where in ("refit", "benchmark", "final_training", "conversion"):  # the pipeline's order
        (root / "hanging").unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", HANG_DRIVER, str(root), where, str(TRIALS)],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 300
        while not (root / "hanging").exists():
            if proc.poll() is not None:
                pytest.fail(
                    f"driver ended before hanging in {where}: {proc.stderr.read() if proc.stderr else ''}"
                )
            assert time.monotonic() < deadline, f"never reached {where}"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)

    study_db = next(root.glob("outputs/hpo/local/tiny/study-*/study.db"))
    study_db.write_bytes(b"garbage, not a SQLite database" * 100)
    final = demo(root)
    assert final.returncode == 0, final.stderr
    runs = assert_consistent(root, TRIALS)
    assert list(study_db.parent.glob("study.db.corrupt-*"))  # set aside, restored from the backup
    killed = [r for r in runs if r.info.status == "KILLED"]
    stages = {r.data.tags.get("code.stage") for r in killed}
    assert {"hpo_refit", "final_training", "conversion", "benchmarking"} <= stages, stages
    assert all(r.data.tags.get("code.interrupted") == "true" for r in killed)
    with sqlite3.connect(study_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow
def test_store_older_than_the_study_is_completed_from_the_study(tmp_path: Path) -> None:
    """Item 4: the backup's store predates the last trial; the rerun records that trial again, not fails."""
    root = tmp_path / "vm"
    assert demo(root).returncode == 0
    old_store = tmp_path / "old-mlflow.db"
    shutil.copy2(root / "backup" / "mlruns" / "mlflow.db", old_store)
    more = demo(root, TRIALS + 1)
    assert more.returncode == 0, more.stderr
    shutil.rmtree(root / "mlruns")
    shutil.rmtree(root / "outputs")
    shutil.copy2(
        old_store, root / "backup" / "mlruns" / "mlflow.db"
    )  # the store snapshot is one trial behind
    os.utime(root / "backup" / "mlruns" / "mlflow.db")

    again = demo(root, TRIALS + 1)
    assert again.returncode == 0, again.stderr
    assert "0 finished trial runs" not in again.stderr
    runs = assert_consistent(root, TRIALS + 1)
    rerecorded = [r for r in runs if r.data.tags.get("code.rerecorded") == "true"]
    assert len(rerecorded) == 2  # the last trial of each backbone
    assert all(r.data.params and r.data.metrics for r in rerecorded)
