"""One embedded PostgreSQL + one ``mlflow server`` on it per session (per xdist worker), started by
``mlrig.orchestration.services`` (so that code is tested too), stopped by PID; a fresh database per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlrig.orchestration.services import Services, create_database, services_down, services_up

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("services")
    running = services_up(root, durable=False)
    try:
        yield running
    finally:
        services_down(root)


@pytest.fixture
def fresh_db(pg_services: Services) -> str:
    """A new, empty PostgreSQL database for this test's Optuna studies (and tables)."""
    return create_database(pg_services.postgres_url, f"t_{uuid.uuid4().hex[:12]}")


@dataclass
class Worker:
    proc: subprocess.Popen[str]

    def result(self, timeout: float = 600) -> dict[str, object]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err[-3000:]
        data: dict[str, object] = json.loads(out.strip().splitlines()[-1])
        return data


def start_worker(root: Path, storage: str, tracking: str, name: str, mode: str, *args: str) -> Worker:
    """``tests/distributed/worker_main.py MODE`` in its own process (the locked interpreter)."""
    cmd = [sys.executable, "-m", "tests.distributed.worker_main", mode]
    cmd += ["--root", str(root), "--storage", storage, "--tracking", tracking, "--name", name, *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Worker(proc)


def wait_for(path: Path, timeout: float = 400, *, writer: Worker | None = None) -> None:
    """Wait until ``path`` exists; fail at once, with its stderr, when ``writer`` (who writes it) exits."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if writer is not None and writer.proc.poll() is not None:
            _, err = writer.proc.communicate()
            raise AssertionError(
                f"{path} never written: its writer exited {writer.proc.returncode}: {err[-3000:]}"
            )
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.1)
