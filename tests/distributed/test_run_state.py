"""The run-name counter and run index in PostgreSQL (distributed mode), shared by real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlrig.tracking import PostgresRunState, TrackingError
from tests.distributed.conftest import REPO

_RESERVE = """
import json, sys
from mlrig.tracking.pg_state import PostgresRunState
state = PostgresRunState(sys.argv[1])
print(json.dumps([state.reserve_run_name_version("hpo:tiny", None) for _ in range(50)]))
"""


@pytest.mark.slow
def test_eight_processes_reserve_400_distinct_versions_without_gaps(fresh_db: str) -> None:
    """8 processes x 50 reservations at once on an empty database (its tables created under a lock)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RESERVE, fresh_db], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    versions: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0
        got = json.loads(out)
        assert got == sorted(got)  # increasing within each process
        versions += got
    assert sorted(versions) == list(range(1, 401))  # 0 duplicates, 0 lost


def test_reserve_commit_and_index_round_trip(fresh_db: str) -> None:
    state = PostgresRunState(fresh_db)
    first = state.reserve_run_name_version("k", "run-a")
    assert state.reserve_run_name_version("k", "run-a") == first  # an open reservation is handed back
    second = state.reserve_run_name_version("k", None)
    assert second == first + 1
    assert state.commit_run_name_version("k", "run-b", second)
    assert state.commit_run_name_version("k", "run-b", second)  # again: a no-op
    assert not state.commit_run_name_version("k", "run-c", second)  # another run's version
    assert not state.commit_run_name_version("k", "run-c", 99)  # never reserved
    assert state.cleanup_stale_reservations(0) == 1  # run-a's reservation
    assert state.reserve_run_name_version("k", "run-a") == second + 1  # expired: a fresh version
    assert state.find_in_mlflow_index("h1") is None
    state.update_mlflow_index("h1", "r1", "1", "http://x", experiment_name="e", run_name="n")
    state.update_mlflow_index("h1", "r2", "1", "http://x")
    entry = state.find_in_mlflow_index("h1", "http://x/")
    assert entry == {"run_id": "r2", "experiment_id": "1", "tracking_uri": "http://x", "experiment_name": "e",
                     "run_name": "n"}  # fmt: skip
    assert state.find_in_mlflow_index("h1", "http://other") is None
    with pytest.raises(TrackingError):
        PostgresRunState("sqlite:///x.db")
