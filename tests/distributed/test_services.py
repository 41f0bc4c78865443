"""``mlrig services``: the session's services come from ``services_up`` (conftest); the CLI reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
from click.testing import CliRunner

from mlrig.cli import main
from mlrig.orchestration.services import Services, services_status, services_up


def test_status_json_names_the_two_uris(pg_services: Services) -> None:
    out = CliRunner().invoke(main, ["services", "status", "--json", "--root", pg_services.root])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["tracking_uri"] == pg_services.tracking_uri.rstrip("/")
    assert data["optuna_storage"].startswith("postgresql+psycopg://")


def test_up_on_a_root_whose_services_run_is_a_no_op(pg_services: Services) -> None:
    again = services_up(pg_services.root)
    assert (again.postgres_pid, again.mlflow_pid) == (pg_services.postgres_pid, pg_services.mlflow_pid)
    out = CliRunner().invoke(main, ["services", "up", "--root", pg_services.root])
    assert out.exit_code == 0 and pg_services.tracking_uri in out.output


def test_postgres_runs_unprivileged_on_loopback_with_data_under_the_root(pg_services: Services) -> None:
    status = Path(f"/proc/{pg_services.postgres_pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0 or os.geteuid() != 0
    assert (Path(pg_services.root) / "services" / "pgdata" / "PG_VERSION").exists()
    with psycopg.connect(pg_services.postgres_url.replace("+psycopg", "")) as conn:
        row = conn.execute("SHOW listen_addresses").fetchone()
    assert row is not None and row[0] == "127.0.0.1"


def test_status_of_a_root_without_services(tmp_path: Path) -> None:
    assert services_status(tmp_path) is None
    out = CliRunner().invoke(main, ["services", "status", "--root", str(tmp_path)])
    assert out.exit_code == 1 and "down" in out.output
