"""Fixtures shared by the whole suite: MLflow stores and a real `mlflow server` (tracking and e2e tests).

Stable fixture names:

- ``sqlite_tracking_uri``: a fresh, migrated SQLite MLflow store in the test's temp dir
  (``sqlite:///<tmp>/mlflow.db``); its artifact root is ``sqlite_artifact_root``.
- ``mlflow_server_uri``: a real ``mlflow server`` on 127.0.0.1 (free port), one per session (per xdist
  worker), backed by SQLite with served artifacts. It is launched as soon as the session starts when any
  collected test needs it, so its ~20-30 s start overlaps with the fast tests.
- ``loopback_proxy``: factory for a :class:`LoopbackProxy` in front of a URI (request counting and fault
  injection: 5xx or dropped connections for a fraction of requests).
- ``reference_config_dir``: the reference project's configs, kept in ``tests/fixtures/reference_config``.
- ``unreachable_uri``: an ``http://127.0.0.1:<port>`` URI where nothing listens.
- ``artifact_files``: ``artifact_files(client, run_id)`` → the run's artifact file paths (recursive).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures import REFERENCE_CONFIG_DIR

_SERVER_FIXTURE = "mlflow_server_uri"
_SERVER_START_TIMEOUT_S = 180.0
_ENV_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _needs_server(item: pytest.Item) -> bool:
    return _SERVER_FIXTURE in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Note whether the server is needed, and run this directory's server tests last (stable order
    otherwise) so the server's start-up overlaps with the fast tests."""
    here = Path(__file__).parent
    mine = [i for i, item in enumerate(items) if Path(str(item.path)).is_relative_to(here)]
    config.stash[_needs_server_key] = any(_needs_server(items[i]) for i in mine)
    ordered = sorted((items[i] for i in mine), key=_needs_server)
    for i, item in zip(mine, ordered, strict=True):
        items[i] = item


_needs_server_key = pytest.StashKey[bool]()


def _artifact_files(client: Any, run_id: str, path: str | None = None) -> set[str]:
    out: set[str] = set()
    for info in client.list_artifacts(run_id, path):
        out |= _artifact_files(client, run_id, info.path) if info.is_dir else {info.path}
    return out


@pytest.fixture
def artifact_files() -> Callable[..., set[str]]:
    """``artifact_files(client, run_id)`` → every artifact file path of the run (recursive)."""
    return _artifact_files


@pytest.fixture
def unreachable_uri() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def reference_config_dir() -> Path:
    """The reference project's config directory (``mlflow.yaml`` etc.)."""
    assert (REFERENCE_CONFIG_DIR / "mlflow.yaml").is_file(), REFERENCE_CONFIG_DIR
    return REFERENCE_CONFIG_DIR


# --------------------------------------------------------------------------------------------------
# MLflow global state hygiene
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_mlflow_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MLflow env var leaks in, and no active run / global URI leaks out of a test."""
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield
    import mlflow
    from mlflow.tracking import _tracking_service

    while mlflow.active_run() is not None:
        mlflow.end_run()
    # Reset the module-level URI so the next test starts from MLflow's own default.
    _tracking_service.utils._tracking_uri = None


# --------------------------------------------------------------------------------------------------
# SQLite store
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store, created once; each test gets a copy (migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("sqlite-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    client.search_experiments(max_results=1)
    engine_dispose(f"sqlite:///{path}")
    return path


def engine_dispose(uri: str) -> None:
    """Close pooled SQLite connections MLflow keeps for ``uri`` (so the file can be copied or removed)."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with contextlib.suppress(Exception):
        store = tracking_utils._get_store(uri)
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


@pytest.fixture
def sqlite_artifact_root(tmp_path: Path) -> Path:
    """Artifact root that goes with ``sqlite_tracking_uri`` (never the process cwd)."""
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


@pytest.fixture
def sqlite_tracking_uri(tmp_path: Path, _sqlite_template: Path) -> str:
    """``sqlite:///<tmp>/mlflow.db``: a fresh migrated store private to this test."""
    target = tmp_path / "mlflow.db"
    shutil.copy2(_sqlite_template, target)
    return f"sqlite:///{target}"


# --------------------------------------------------------------------------------------------------
# Real mlflow server
# ----------------------------------------------------------------------------------------------------


class MlflowServer:
    """A ``mlflow server`` subprocess (own process group) with SQLite backend and served artifacts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.db_path = workdir / "server.db"
        self.artifacts = workdir / "server-artifacts"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.db_path}",
                "--artifacts-destination",
                str(self.artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            cwd=workdir,
            env={
                **os.environ,
                # No background job runner (huey) or telemetry: they only cost CPU on a 2-core box.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true",
            },
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._ready = False

    def wait_ready(self, timeout: float = _SERVER_START_TIMEOUT_S) -> str:
        """Poll ``/health`` until it answers 200; raise with the log tail if the server died or timed out."""
        if self._ready:
            return self.uri
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        self._ready = True
                        return self.uri
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"mlflow server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """Stop the server's own process group: SIGTERM, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session", autouse=True)
def _mlflow_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer | None]:
    """Launch the server at session start (only if some collected test needs it) so start-up overlaps."""
    if not request.config.stash.get(_needs_server_key, False):
        yield None
        return
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(
    _mlflow_server: MlflowServer | None, tmp_path_factory: pytest.TempPathFactory
) -> MlflowServer:
    """The ready :class:`MlflowServer` object (URI, log path, artifact dir)."""
    server = _mlflow_server
    if server is None:  # requested dynamically (getfixturevalue): start it now
        server = MlflowServer(tmp_path_factory.mktemp("mlflow-server-late"))
    server.wait_ready()
    return server


@pytest.fixture(scope="session")
def mlflow_server_uri(mlflow_server: MlflowServer) -> str:
    """``http://127.0.0.1:<port>`` of a ready, session-scoped ``mlflow server``."""
    return mlflow_server.uri


# --------------------------------------------------------------------------------------------------
# Loopback proxy: request counting and fault injection
# ----------------------------------------------------------------------------------------------------


class LoopbackProxy:
    """A threading HTTP proxy on 127.0.0.1 in front of ``upstream``.

    Every request is recorded as ``(method, path)`` in :attr:`requests`. While :attr:`fault_rate` > 0, that
    fraction of requests is answered with a 503 (``fault_mode="5xx"``) or has its connection closed without
    a response (``fault_mode="drop"``) instead of being forwarded. ``down=True`` fails every request.
    """

    def __init__(
        self, upstream: str, *, fault_rate: float = 0.0, fault_mode: str = "5xx", seed: int = 0
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.fault_rate = fault_rate
        self.fault_mode = fault_mode
        self.down = False
        self.requests: list[tuple[str, str]] = []
        self.faults = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.requests.append((self.command, self.path))
                    fail = proxy.down or (proxy.fault_rate > 0 and proxy._rng.random() < proxy.fault_rate)
                    if fail:
                        proxy.faults += 1
                if fail:
                    if proxy.fault_mode == "drop":
                        self.close_connection = True
                        with contextlib.suppress(OSError):
                            self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    payload = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected fault"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}
                    }
                    headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for key, value in resp.getheaders():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-proxy", daemon=True)
        self._thread.start()

    def api_calls(self) -> list[tuple[str, str]]:
        """Recorded requests to the MLflow REST / artifact APIs (``/api/...``)."""
        with self._lock:
            return [r for r in self.requests if r[1].startswith("/api/")]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults = 0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def loopback_proxy() -> Iterator[Callable[..., LoopbackProxy]]:
    """Factory: ``loopback_proxy(upstream, fault_rate=0.0, fault_mode="5xx")`` → a running proxy."""
    proxies: list[LoopbackProxy] = []

    def make(upstream: str, **kwargs: Any) -> LoopbackProxy:
        proxy = LoopbackProxy(upstream, **kwargs)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
