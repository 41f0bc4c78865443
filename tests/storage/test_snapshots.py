"""CoalescingSnapshotter: one backup in flight, requests coalesce, every snapshot of a live db is sound."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from mlrig.storage import BackupError, BackupResult
from mlrig.storage.snapshots import CoalescingSnapshotter
from mlrig.storage.sqlite_check import check_sqlite


def _db(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (v INTEGER, pad TEXT)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("journal", ["DELETE", "WAL"])
def test_live_sqlite_snapshots_are_sound_and_latest_state_wins(project, journal, rows):
    db = _db(project.outputs / "mlruns" / "mlflow.db")
    copy = project.mirror(db)
    checks: list[str] = []

    def on_result(result: BackupResult) -> None:
        if result.stats.copied:  # checked before the next snapshot can replace it
            check = check_sqlite(copy, read_only=True)
            checks.append(check.reason or "ok")

    stop = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(db, timeout=30)
        conn.execute(f"PRAGMA journal_mode={journal}")
        i = 0
        while not stop.is_set():
            conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 200)] * 20)
            conn.commit()
            i += 1
        conn.close()

    snapshotter = CoalescingSnapshotter(project.store(), on_result=on_result, interval=0)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            snapshotter.request(db, expect="file")
            time.sleep(0.002)
    finally:
        stop.set()
        thread.join()
    snapshotter.request(db, expect="file")  # after the last write: the backup must end at the final state
    results = snapshotter.close()
    assert results and all(r.ok for r in results)
    assert len(checks) >= 2 and set(checks) == {"ok"}, checks
    assert snapshotter.runs < snapshotter.requests == 201  # coalesced
    assert rows(copy) == rows(db) > 0
    assert not list(copy.parent.glob("mlflow.db-*")), "no sidecar on the backup side"


def test_requests_during_a_run_coalesce_into_one_more_run(project, writer):
    f = writer(project.outputs / "state.json", "v0")
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def on_result(result: BackupResult) -> None:
        seen.append(project.mirror(f).read_text())
        started.set()
        release.wait(10)

    snapshotter = CoalescingSnapshotter(project.store(), on_result=on_result, interval=0)
    snapshotter.request(f)
    assert started.wait(10)
    for i in range(1, 11):  # while the first run is in flight
        f.write_text(f"v{i}")
        snapshotter.request(f)
    assert not snapshotter.idle
    release.set()
    snapshotter.close()
    assert seen == ["v0", "v10"] and snapshotter.runs == 2 and snapshotter.requests == 11


def test_directory_tree_through_the_same_worker(project, writer, snapshot_tree):
    artifacts = project.outputs / "mlruns" / "artifacts"
    db = _db(project.outputs / "mlruns" / "mlflow.db")
    with CoalescingSnapshotter(project.store()) as snapshotter:
        for i in range(5):
            writer(artifacts / f"run{i}" / "metrics.json", str(i))
            snapshotter.request(artifacts, expect="dir")
            snapshotter.request(db, expect="file")
        results = snapshotter.flush()
        assert {r.src for r in results} == {artifacts, db}
        assert snapshot_tree(project.mirror(artifacts)) == snapshot_tree(artifacts)
        writer(artifacts / "run0" / "metrics.json", "changed")
        snapshotter.request(artifacts, expect="dir")
        (again,) = snapshotter.flush()
        assert again.stats.copied == ("run0/metrics.json",)


def test_failures_are_reported_by_flush_and_close(project, writer, tmp_path):
    ok = writer(project.outputs / "ok.txt", "fine")
    outside = writer(tmp_path / "elsewhere" / "x.txt", "out of scope")
    snapshotter = CoalescingSnapshotter(project.store())
    snapshotter.request(ok)
    snapshotter.request(outside)
    with pytest.raises(BackupError, match=r"1 of 2 snapshot\(s\) failed: .*x\.txt: Out of scope"):
        snapshotter.flush()
    assert snapshotter.flush() == []  # reported once
    snapshotter.request(project.outputs / "missing.db")
    with pytest.raises(BackupError, match=r"missing\.db: Local path does not exist"):
        snapshotter.close()
    with pytest.raises(BackupError, match="closed"):
        snapshotter.request(ok)


def test_flush_timeout_names_what_is_still_running(project, writer):
    f = writer(project.outputs / "slow.txt", "x")
    release = threading.Event()
    snapshotter = CoalescingSnapshotter(project.store(), on_result=lambda _r: release.wait(10))
    snapshotter.request(f)
    with pytest.raises(BackupError, match=r"still running after 0\.2s: .*slow\.txt"):
        snapshotter.flush(timeout=0.2)
    release.set()
    snapshotter.close()


def test_pacing_waits_after_a_snapshot_but_flush_does_not(project):
    db = _db(project.outputs / "mlruns" / "mlflow.db")
    snapshotter = CoalescingSnapshotter(project.store(), pace=10_000.0, interval=0)
    snapshotter.request(db, expect="file")
    snapshotter.flush()
    assert snapshotter.runs == 1
    snapshotter.request(db, expect="file")
    time.sleep(0.5)  # the first snapshot took a few ms: the next one waits 10,000 times that
    assert snapshotter.runs == 1 and not snapshotter.idle
    start = time.monotonic()
    snapshotter.close()
    assert snapshotter.runs == 2 and time.monotonic() - start < 5
    with pytest.raises(ValueError, match="pace"):
        CoalescingSnapshotter(project.store(), pace=-1)


def test_a_snapshot_starts_at_most_once_per_interval_but_flush_does_not_wait(project):
    db = _db(project.outputs / "mlruns" / "mlflow.db")
    snapshotter = CoalescingSnapshotter(project.store(), interval=3600.0)
    for _ in range(5):
        snapshotter.request(db, expect="file")
    time.sleep(0.5)  # the first snapshot too waits an interval after the snapshotter was made
    assert snapshotter.runs == 0 and not snapshotter.idle
    start = time.monotonic()
    (result,) = snapshotter.flush()
    assert result.ok and result.stats.copied and snapshotter.runs == 1
    snapshotter.request(db, expect="file")
    time.sleep(0.5)
    assert snapshotter.runs == 1  # and the next one an interval after it started
    snapshotter.close()
    assert snapshotter.runs == 2 and time.monotonic() - start < 5
    assert check_sqlite(project.mirror(db), read_only=True).ok
    with pytest.raises(ValueError, match="interval"):
        CoalescingSnapshotter(project.store(), interval=-1)
