"""Run-name version counter: protocol, corruption, lock timeout, and 8 real processes reserving at once."""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlrig.naming import build_counter_key
from mlrig.tracking import (
    TrackingError,
    cleanup_stale_reservations,
    commit_run_name_version,
    get_run_name_counter_path,
    reserve_run_name_version,
)
from mlrig.tracking.counter import COMMITTED_HISTORY

KEY = build_counter_key("resume-ner", "hpo", "a" * 64, "local")
OTHER = build_counter_key("resume-ner", "benchmarking", "b" * 64, "local")


def _data(root: Path) -> dict[str, Any]:
    return json.loads(get_run_name_counter_path(root).read_text())  # type: ignore[no-any-return]


def _backdate(root: Path) -> None:
    path = get_run_name_counter_path(root)
    data = json.loads(path.read_text())
    for slot in data["counters"].values():
        for alloc in slot["allocations"]:
            alloc["reserved_at"] = "2000-01-01T00:00:00+00:00"
    path.write_text(json.dumps(data))


def test_counter_file_lives_in_outputs_cache(tmp_path: Path) -> None:
    assert get_run_name_counter_path(tmp_path) == tmp_path / "outputs" / "cache" / "run_name_counter.json"
    assert not (tmp_path / "outputs").exists()


def test_reference_sequence(tmp_path: Path) -> None:
    assert reserve_run_name_version(KEY, "pending_1", tmp_path) == 1
    assert reserve_run_name_version(KEY, "pending_1", tmp_path) == 1  # idempotent while reserved
    assert reserve_run_name_version(KEY, "pending_2", tmp_path) == 2
    assert reserve_run_name_version(OTHER, "pending_x", tmp_path) == 1  # keys are independent
    assert commit_run_name_version(KEY, "runA", 1, tmp_path) is True
    assert commit_run_name_version(KEY, "runA", 1, tmp_path) is True  # retry-safe
    assert commit_run_name_version(KEY, "runB", 1, tmp_path) is False  # committed to another run
    assert commit_run_name_version(KEY, "runB", 99, tmp_path) is False  # never reserved
    assert reserve_run_name_version(KEY, "pending_3", tmp_path) == 3
    _backdate(tmp_path)
    assert cleanup_stale_reservations(tmp_path) == 3  # KEY v2, v3 and OTHER v1
    assert cleanup_stale_reservations(tmp_path) == 0
    statuses = {a["version"]: a["status"] for a in _data(tmp_path)["counters"][KEY]["allocations"]}
    assert statuses == {1: "committed", 2: "expired", 3: "expired"}
    assert commit_run_name_version(KEY, "runB", 2, tmp_path) is True  # late commit still lands
    assert reserve_run_name_version(KEY, "pending_3", tmp_path) == 4  # expired versions are never reused
    runs = {a["version"]: a["run_id"] for a in _data(tmp_path)["counters"][KEY]["allocations"]}
    assert runs[1] == "runA" and runs[2] == "runB"


def test_reservations_without_run_id_are_always_fresh(tmp_path: Path) -> None:
    assert [reserve_run_name_version(KEY, None, tmp_path) for _ in range(3)] == [1, 2, 3]


def test_fresh_reservation_is_not_expired_and_bad_args_raise(tmp_path: Path) -> None:
    reserve_run_name_version(KEY, None, tmp_path)
    assert cleanup_stale_reservations(tmp_path, stale_minutes=30) == 0
    assert cleanup_stale_reservations(tmp_path, stale_minutes=0) == 1
    with pytest.raises(TrackingError, match="counter_key"):
        reserve_run_name_version("", None, tmp_path)
    with pytest.raises(TrackingError, match="run_id"):
        commit_run_name_version(KEY, "", 1, tmp_path)
    with pytest.raises(TrackingError, match="stale_minutes"):
        cleanup_stale_reservations(tmp_path, stale_minutes=-1)


def test_threads_of_one_process_get_unique_versions(tmp_path: Path) -> None:
    versions: list[int] = []

    def work() -> None:
        versions.extend(reserve_run_name_version(KEY, None, tmp_path) for _ in range(25))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 101))


def test_cleanup_without_file_creates_nothing(tmp_path: Path) -> None:
    assert cleanup_stale_reservations(tmp_path) == 0
    assert not (tmp_path / "outputs").exists()


def test_retention_prunes_history_but_keeps_the_high_water_mark(tmp_path: Path) -> None:
    for i in range(5):
        version = reserve_run_name_version(KEY, None, tmp_path)
        assert commit_run_name_version(KEY, f"run{i}", version, tmp_path)
    path = get_run_name_counter_path(tmp_path)
    data = json.loads(path.read_text())
    for alloc in data["counters"][KEY]["allocations"]:
        alloc["committed_at"] = "2001-01-01T00:00:00+00:00"
    path.write_text(json.dumps(data))
    assert cleanup_stale_reservations(tmp_path, retention_days=30) == 0
    slot = _data(tmp_path)["counters"][KEY]
    assert slot == {"last_version": 5, "allocations": []}
    assert reserve_run_name_version(KEY, None, tmp_path) == 6


def test_reference_file_is_converted(tmp_path: Path) -> None:
    path = get_run_name_counter_path(tmp_path)
    path.parent.mkdir(parents=True)
    allocations = [
        {
            "counter_key": KEY,
            "version": 1,
            "run_id": "r1",
            "status": "committed",
            "reserved_at": "2025-01-01T10:00:00",
        },
        {
            "counter_key": KEY,
            "version": 4,
            "run_id": "p",
            "status": "expired",
            "reserved_at": "2025-01-01T10:00:00",
        },
        {
            "counter_key": OTHER,
            "version": 2,
            "run_id": "p2",
            "status": "reserved",
            "reserved_at": "2025-01-01T10:00:00",
        },
    ]
    path.write_text(json.dumps({"allocations": allocations}, indent=2))
    assert reserve_run_name_version(KEY, None, tmp_path) == 5
    assert cleanup_stale_reservations(tmp_path) == 1  # OTHER v2, naive local timestamp from 2025
    assert _data(tmp_path)["schema_version"] == 2


def test_truncated_file_is_rebuilt_without_reusing_versions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(7):
        reserve_run_name_version(KEY, None, tmp_path)
    path = get_run_name_counter_path(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with caplog.at_level(logging.WARNING, logger="mlrig.tracking"):
        assert reserve_run_name_version(KEY, None, tmp_path) == 8
    assert "corrupt" in caplog.text
    assert len(list(path.parent.glob("run_name_counter.json.corrupt-*"))) == 1
    assert _data(tmp_path)["counters"][KEY]["last_version"] == 8


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "{not json",
        "[1, 2]",
        '{"counters": {"k": 3}}',
        '{"counters": {"k": {"last_version": 2, "allocations": [{}]}}}',
    ],
)
def test_garbage_file_is_quarantined_and_rebuilt(tmp_path: Path, garbage: str) -> None:
    path = get_run_name_counter_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(garbage)
    assert reserve_run_name_version(KEY, None, tmp_path) == 1
    assert _data(tmp_path)["counters"][KEY]["last_version"] == 1
    assert [p.name.split(".corrupt-")[0] for p in path.parent.glob("*.corrupt-*")] == [
        "run_name_counter.json"
    ]


def test_lock_timeout_raises_and_writes_nothing(tmp_path: Path) -> None:
    reserve_run_name_version(KEY, None, tmp_path)
    path = get_run_name_counter_path(tmp_path)
    before = path.read_bytes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True); time.sleep(60)",
            str(path.with_suffix(".lock")),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(TrackingError, match="could not lock"):
            reserve_run_name_version(KEY, None, tmp_path, lock_timeout=0.3)
        with pytest.raises(TrackingError, match="could not lock"):
            commit_run_name_version(KEY, "r", 1, tmp_path, lock_timeout=0.3)
        assert path.read_bytes() == before
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert reserve_run_name_version(KEY, None, tmp_path) == 2
    assert path.with_suffix(".lock").exists()  # the lock file is persistent


def _reserve_worker(
    base: Path, worker: int, rounds: int, per_round: int, barrier: Any, results: Any
) -> None:  # pragma: no cover - runs in forked child processes
    for r in range(rounds):
        root = base / f"round{r}"
        barrier.wait(timeout=120)
        out = []
        for i in range(per_round):
            run_id = f"run-{worker}-{r}-{i}"
            version = reserve_run_name_version(KEY, None, root, lock_timeout=120)
            out.append(
                (version, run_id, commit_run_name_version(KEY, run_id, version, root, lock_timeout=120))
            )
        results.put({"round": r, "worker": worker, "allocations": out})


def _run_workers(base: Path, workers: int, rounds: int, per_round: int) -> list[dict[str, Any]]:
    """``workers`` forked processes (mlflow already imported: no 8x import cost), rounds started together."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=_reserve_worker, args=(base, w, rounds, per_round, barrier, results))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    collected = [results.get(timeout=600) for _ in range(workers * rounds)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return collected


@pytest.fixture
def shm_path(tmp_path: Path) -> Iterator[Path]:
    """A private directory on tmpfs when available: the locking is identical, fsync costs nothing."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="mlrig-counter-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_eight_processes_reserve_unique_versions_and_lose_no_commit(shm_path: Path) -> None:
    tmp_path = shm_path
    workers, rounds, per_round = 8, 20, 100
    results = _run_workers(tmp_path, workers, rounds, per_round)
    assert len(results) == workers * rounds
    for r in range(rounds):
        root = tmp_path / f"round{r}"
        mine = [res for res in results if res["round"] == r]
        versions = [v for res in mine for v, _, _ in res["allocations"]]
        assert sorted(versions) == list(range(1, workers * per_round + 1)), (
            f"round {r}: duplicate or lost version"
        )
        for res in mine:
            own = [v for v, _, _ in res["allocations"]]
            assert own == sorted(own) and len(set(own)) == len(own)
            assert all(ok for _, _, ok in res["allocations"]), f"round {r}: a commit was refused"
        slot = json.loads(get_run_name_counter_path(root).read_text())["counters"][KEY]  # valid JSON
        assert slot["last_version"] == workers * per_round
        assert [a for a in slot["allocations"] if a["status"] != "committed"] == [], (
            f"round {r}: a commit was lost"
        )
        committed = {a["version"]: a["run_id"] for a in slot["allocations"]}
        expected = {v: run_id for res in mine for v, run_id, _ in res["allocations"]}
        assert sorted(committed) == list(
            range(workers * per_round - COMMITTED_HISTORY + 1, workers * per_round + 1)
        )
        assert all(expected[v] == run_id for v, run_id in committed.items())
        leftovers = [p.name for p in (root / "outputs" / "cache").iterdir() if p.name.endswith(".tmp")]
        assert leftovers == []
