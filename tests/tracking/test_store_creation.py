"""Crash-safe, exclusive creation of the embedded SQLite store (``ensure_tracking_store``): SIGKILL during
creation/migration never leaves a half-migrated ``mlflow.db``, and concurrent creators all succeed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlrig.tracking.setup import ensure_tracking_store, tracking_client

CREATE = textwrap.dedent(
    """
    import sys
    from mlrig.tracking.setup import tracking_client
    print("go", flush=True)
    tracking_client(sys.argv[1])
    print("done", flush=True)
    """
)

USE = textwrap.dedent(
    """
    import sys
    from mlrig.tracking.setup import get_or_create_experiment, tracking_client
    for uri in sys.argv[1:]:
        client = tracking_client(uri)
        experiment = get_or_create_experiment("after-kill", tracking_uri=uri, client=client)
        run = client.create_run(experiment, run_name="r")
        client.log_metric(run.info.run_id, "m", 1.0)
        client.set_terminated(run.info.run_id)
        print(run.info.run_id, flush=True)
    """
)


def _uri(db: Path) -> str:
    return f"sqlite:///{db}"


def _wait_for_temp(db: Path, proc: subprocess.Popen[str], limit: float = 120.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if list(db.parent.glob("mlflow.db.tmp-*")):
            return True
        time.sleep(0.005)
    return False


@pytest.mark.slow
def test_sigkill_during_creation_then_creating_again_works(tmp_path: Path) -> None:
    offsets = [0.0, 0.3, 1.0, 3.0]  # seconds after the temp store appeared
    dbs: list[Path] = []
    mid_creation = 0
    for i, offset in enumerate(offsets):
        db = tmp_path / f"root{i}" / "mlruns" / "mlflow.db"
        dbs.append(db)
        proc = subprocess.Popen(
            [sys.executable, "-c", CREATE, _uri(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "go"
        if _wait_for_temp(db, proc):
            time.sleep(offset)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == -signal.SIGKILL and not db.exists():
            mid_creation += 1
            assert list(db.parent.glob("mlflow.db.tmp-*")), "killed mid-creation: only the temp file exists"
        # whatever the moment, the final path holds nothing or a complete store
        assert not db.exists() or MlflowClient(_uri(db)).get_experiment("0") is not None
    assert mid_creation >= 2, f"only {mid_creation} of {len(offsets)} kills landed during creation"
    rerun = subprocess.run(
        [sys.executable, "-c", USE, *map(_uri, dbs)], capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for db in dbs:
        assert not list(db.parent.glob("mlflow.db.tmp-*")), "the leftover temp file was removed"
        runs = MlflowClient(_uri(db)).search_runs(
            [MlflowClient(_uri(db)).get_experiment_by_name("after-kill").experiment_id]
        )
        assert [r.data.metrics for r in runs] == [{"m": 1.0}]


@pytest.mark.slow
def test_three_processes_creating_the_store_at_once_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "root" / "mlruns" / "mlflow.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", USE, _uri(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1500:] for _, err in results]
    assert not any("Traceback" in err for _, err in results)
    client = MlflowClient(_uri(db))
    experiment = client.get_experiment_by_name("after-kill")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 3


def test_existing_store_is_used_as_is_and_remote_uris_are_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    client = tracking_client(_uri(db))
    experiment = client.create_experiment("kept")
    before = db.stat()
    ensure_tracking_store(_uri(db))
    assert db.stat().st_ino == before.st_ino
    assert tracking_client(_uri(db)).get_experiment(experiment).name == "kept"
    assert not list(db.parent.glob("mlflow.db.tmp-*"))
    ensure_tracking_store("http://127.0.0.1:1")  # nothing to create for a server
    ensure_tracking_store("sqlite:///:memory:")


def test_new_store_default_experiment_keeps_artifacts_beside_the_store(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "mlflow.db"
    ensure_tracking_store(_uri(db))
    default = MlflowClient(_uri(db)).get_experiment("0")
    assert default.artifact_location == (db.parent / "artifacts" / "0").resolve().as_uri()


def test_an_empty_file_is_replaced_by_a_new_store(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    db.write_bytes(b"")
    client = tracking_client(_uri(db))
    assert db.stat().st_size > 0 and client.get_experiment("0") is not None
