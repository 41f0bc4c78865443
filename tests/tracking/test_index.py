"""Run index: format, LRU, config, corruption, persistent lock, and 8 real processes updating it at once."""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlrig.tracking import TrackingError, find_in_mlflow_index, get_mlflow_index_path, update_mlflow_index

URI = "sqlite:///somewhere/mlflow.db"


def _h(i: int) -> str:
    return f"{i:064x}"


def _entries(root: Path, config_dir: Path | None = None) -> dict[str, Any]:
    return json.loads(get_mlflow_index_path(root, config_dir).read_text())  # type: ignore[no-any-return]


def test_round_trip_and_reference_layout(tmp_path: Path) -> None:
    path = update_mlflow_index(
        tmp_path, _h(1), "run1", "7", URI, experiment_name="exp-hpo-bert", run_name="local_bert_hpo_1"
    )
    assert path == tmp_path / "outputs" / "cache" / "mlflow_index.json"
    entry = _entries(tmp_path)[_h(1)]
    assert {k: entry[k] for k in ("run_id", "experiment_id", "tracking_uri")} == {
        "run_id": "run1",
        "experiment_id": "7",
        "tracking_uri": URI,
    }
    assert entry["updated_at"].endswith("+00:00")
    assert find_in_mlflow_index(tmp_path, _h(1)) == {
        "run_id": "run1",
        "experiment_id": "7",
        "tracking_uri": URI,
        "experiment_name": "exp-hpo-bert",
        "run_name": "local_bert_hpo_1",
    }
    assert find_in_mlflow_index(tmp_path, _h(1), tracking_uri=URI + "/")["run_id"] == "run1"  # type: ignore[index]
    assert find_in_mlflow_index(tmp_path, _h(1), tracking_uri="http://other:5000") is None
    assert find_in_mlflow_index(tmp_path, _h(2)) is None
    assert find_in_mlflow_index(tmp_path, "") is None
    update_mlflow_index(tmp_path, _h(1), "run1b", "7", URI)
    assert find_in_mlflow_index(tmp_path, _h(1))["run_id"] == "run1b"  # type: ignore[index]


def test_missing_index_creates_nothing(tmp_path: Path) -> None:
    assert find_in_mlflow_index(tmp_path, _h(1)) is None
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("field", ["run_key_hash", "run_id", "experiment_id", "tracking_uri"])
def test_empty_arguments_are_refused(tmp_path: Path, field: str) -> None:
    args = {"run_key_hash": _h(1), "run_id": "r", "experiment_id": "1", "tracking_uri": URI}
    args[field] = ""
    with pytest.raises(TrackingError, match=field):
        update_mlflow_index(tmp_path, **args)


def test_lru_eviction_keeps_the_most_recent(tmp_path: Path) -> None:
    for i in range(5):
        update_mlflow_index(tmp_path, _h(i), f"r{i}", "1", URI, max_entries=3)
    assert list(_entries(tmp_path)) == [_h(2), _h(3), _h(4)]
    with pytest.raises(TrackingError, match="max_entries"):
        update_mlflow_index(tmp_path, _h(9), "r9", "1", URI, max_entries=0)


def test_reads_refresh_recency(tmp_path: Path) -> None:
    for i in range(3):
        update_mlflow_index(tmp_path, _h(i), f"r{i}", "1", URI, max_entries=3)
    path = get_mlflow_index_path(tmp_path)
    data = json.loads(path.read_text())
    for i, key in enumerate(data):  # all three written long ago, h0 the oldest
        data[key]["updated_at"] = data[key]["last_used_at"] = f"2020-01-0{i + 1}T00:00:00+00:00"
    path.write_text(json.dumps(data))
    assert find_in_mlflow_index(tmp_path, _h(0)) is not None  # a read of a stale entry refreshes it
    update_mlflow_index(tmp_path, _h(3), "r3", "1", URI, max_entries=3)
    assert set(_entries(tmp_path)) == {_h(0), _h(2), _h(3)}


def test_config_file_name_max_entries_and_disabled(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "mlflow.yaml").write_text("index:\n  max_entries: 2\n  file_name: runs_idx.json\n")
    for i in range(3):
        update_mlflow_index(tmp_path, _h(i), f"r{i}", "1", URI)
    path = tmp_path / "outputs" / "cache" / "runs_idx.json"
    assert get_mlflow_index_path(tmp_path) == path
    assert list(json.loads(path.read_text())) == [_h(1), _h(2)]
    disabled = tmp_path / "config-disabled"
    disabled.mkdir()
    (disabled / "mlflow.yaml").write_text("index:\n  enabled: false\n")
    assert update_mlflow_index(tmp_path, _h(7), "r7", "1", URI, config_dir=disabled) == path.with_name(
        "mlflow_index.json"
    )
    assert find_in_mlflow_index(tmp_path, _h(1), config_dir=disabled) is None
    assert not path.with_name("mlflow_index.json").exists()


def test_reference_config_dir(tmp_path: Path, reference_config_dir: Path) -> None:
    path = update_mlflow_index(tmp_path, _h(1), "r1", "1", URI, config_dir=reference_config_dir)
    assert path.name == "mlflow_index.json" and path.is_relative_to(tmp_path)
    assert find_in_mlflow_index(tmp_path, _h(1), config_dir=reference_config_dir) is not None


@pytest.mark.parametrize("garbage", ["{truncated", "[]", '{"k": "not an entry"}', "\x00\xff"])
def test_corrupt_index_is_ignored_then_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, garbage: str
) -> None:
    update_mlflow_index(tmp_path, _h(1), "r1", "1", URI)
    path = get_mlflow_index_path(tmp_path)
    path.write_text(garbage, errors="surrogateescape")
    with caplog.at_level(logging.WARNING, logger="mlrig.tracking"):
        assert find_in_mlflow_index(tmp_path, _h(1)) is None
        update_mlflow_index(tmp_path, _h(2), "r2", "1", URI)
    assert caplog.records, "corruption must be reported"
    assert list(_entries(tmp_path)) == [_h(2)]
    assert find_in_mlflow_index(tmp_path, _h(2))["run_id"] == "r2"  # type: ignore[index]
    if garbage != '{"k": "not an entry"}':  # a malformed entry is dropped, a broken file is moved aside
        assert len(list(path.parent.glob("mlflow_index.json.corrupt-*"))) == 1


def test_lock_file_persists_and_no_temp_files_remain(tmp_path: Path) -> None:
    for i in range(3):
        update_mlflow_index(tmp_path, _h(i), f"r{i}", "1", URI)
    names = sorted(p.name for p in (tmp_path / "outputs" / "cache").iterdir())
    assert names == ["mlflow_index.json", "mlflow_index.lock"]


def test_lock_timeout_raises_and_writes_nothing(tmp_path: Path) -> None:
    update_mlflow_index(tmp_path, _h(1), "r1", "1", URI)
    path = get_mlflow_index_path(tmp_path)
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
            update_mlflow_index(tmp_path, _h(2), "r2", "1", URI, lock_timeout=0.3)
        assert path.read_bytes() == before
        assert find_in_mlflow_index(tmp_path, _h(1)) is not None  # readers never wait for the lock
    finally:
        holder.kill()
        holder.wait(timeout=10)


def _index_worker(
    root: Path, worker: int, count: int, max_entries: int, barrier: Any
) -> None:  # pragma: no cover
    barrier.wait(timeout=120)
    for i in range(count):
        update_mlflow_index(
            root,
            f"{worker:032x}{i:032x}",
            f"run-{worker}-{i}",
            "1",
            URI,
            max_entries=max_entries,
            lock_timeout=120,
        )


@pytest.fixture
def shm_root(tmp_path: Path) -> Iterator[Path]:
    """A private directory on tmpfs when available: the locking is identical, fsync costs nothing."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="mlrig-index-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(("count", "max_entries"), [(40, 1000), (40, 100)])
def test_eight_processes_update_concurrently(shm_root: Path, count: int, max_entries: int) -> None:
    workers = 8
    ctx = multiprocessing.get_context("fork")  # mlflow is already imported: no 8x import cost
    barrier = ctx.Barrier(workers)
    procs = [
        ctx.Process(target=_index_worker, args=(shm_root, w, count, max_entries, barrier))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=600)
        assert proc.exitcode == 0
    entries = json.loads(get_mlflow_index_path(shm_root).read_text())
    written = {f"{w:032x}{i:032x}": f"run-{w}-{i}" for w in range(workers) for i in range(count)}
    assert len(entries) == min(len(written), max_entries)
    assert all(written[key] == entry["run_id"] for key, entry in entries.items())
    if max_entries >= len(written):
        assert set(entries) == set(written)
    else:  # LRU by write time: what survives of each worker's sequence is a suffix of it
        for w in range(workers):
            kept = [i for i in range(count) if f"{w:032x}{i:032x}" in entries]
            assert kept == list(range(count - len(kept), count)), (w, kept)
