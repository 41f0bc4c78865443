"""Tracking-URI precedence, the embedded store, setup_mlflow and process-safe experiment creation."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from mlrig.tracking import (
    TrackingError,
    default_artifact_location,
    embedded_tracking_uri,
    get_or_create_experiment,
    resolve_tracking_uri,
    setup_mlflow,
)


def test_import_changes_nothing_global_in_mlflow() -> None:
    code = textwrap.dedent(
        """
        import json, os, threading, mlflow
        from mlflow.tracking import MlflowClient
        from mlflow.tracking._tracking_service import utils
        before = (mlflow.start_run, MlflowClient.create_run, mlflow.log_artifact, dict(os.environ))
        threads = threading.active_count()
        import mlrig.tracking
        after = (mlflow.start_run, MlflowClient.create_run, mlflow.log_artifact, dict(os.environ))
        print(json.dumps({
            "same_functions": all(a is b for a, b in zip(before[:3], after[:3])),
            "same_env": before[3] == after[3],
            "uri_set": utils.is_tracking_uri_set(),
            "active_run": mlflow.active_run() is not None,
            "new_threads": threading.active_count() - threads,
        }))
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "same_functions": True,
        "same_env": True,
        "uri_set": False,
        "active_run": False,
        "new_threads": 0,
    }


def test_embedded_default_uri_and_artifact_root(tmp_path: Path) -> None:
    uri = resolve_tracking_uri(root_dir=tmp_path, config_dir=tmp_path / "config")
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert uri == embedded_tracking_uri(tmp_path)
    assert default_artifact_location(uri) == (tmp_path.resolve() / "mlruns" / "artifacts").as_uri()
    assert default_artifact_location("http://127.0.0.1:5000") is None


def test_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = f"sqlite:///{tmp_path}/explicit.db"
    env_uri = f"sqlite:///{tmp_path}/env.db"
    set_uri = f"sqlite:///{tmp_path}/set.db"
    cfg = tmp_path / "config"
    assert resolve_tracking_uri(root_dir=tmp_path, config_dir=cfg).endswith("/mlruns/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    assert resolve_tracking_uri(root_dir=tmp_path, config_dir=cfg) == env_uri
    mlflow.set_tracking_uri(set_uri)
    assert resolve_tracking_uri(root_dir=tmp_path, config_dir=cfg) == set_uri
    assert resolve_tracking_uri(explicit, root_dir=tmp_path, config_dir=cfg) == explicit


def test_setup_mlflow_embedded_store_and_artifacts(tmp_path: Path) -> None:
    uri = setup_mlflow("exp-embedded", root_dir=tmp_path, config_dir=tmp_path / "config")
    assert uri == embedded_tracking_uri(tmp_path)
    assert mlflow.get_tracking_uri() == uri
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    note = tmp_path / "note.txt"
    note.write_text("hi")
    with mlflow.start_run(run_name="fluent") as run:
        mlflow.log_artifact(str(note))
    stored = tmp_path / "mlruns" / "artifacts" / run.info.run_id / "artifacts" / "note.txt"
    assert stored.read_text() == "hi"
    assert MlflowClient(uri).get_experiment_by_name("exp-embedded") is not None


def test_setup_mlflow_keeps_a_user_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_uri = f"sqlite:///{tmp_path}/user.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user_uri)
    assert setup_mlflow("e", root_dir=tmp_path / "elsewhere", config_dir=tmp_path) == user_uri
    assert not (tmp_path / "elsewhere").exists()
    assert MlflowClient(user_uri).get_experiment_by_name("e") is not None


def test_setup_mlflow_needs_an_experiment_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TrackingError, match="experiment_name"):
        setup_mlflow(tracking_uri=f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    uri = setup_mlflow(tracking_uri=f"sqlite:///{tmp_path}/x.db")
    assert MlflowClient(uri).get_experiment_by_name("from-env") is not None


def test_azure_enabled_without_extra_falls_back_or_raises(
    tmp_path: Path, reference_config_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The reference mlflow.yaml has azure_ml.enabled: true; azureml-mlflow is not installed here.
    with caplog.at_level(logging.WARNING, logger="mlrig.tracking.setup"):
        uri = resolve_tracking_uri(root_dir=tmp_path, config_dir=reference_config_dir)
    assert uri == embedded_tracking_uri(tmp_path)
    assert "azure_ml.enabled=true" in caplog.text and "azureml-mlflow" in caplog.text
    with pytest.raises(TrackingError, match=r"azure_ml\.enabled"):
        resolve_tracking_uri(root_dir=tmp_path, config_dir=reference_config_dir, fallback_to_local=False)
    azure = "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/g/workspaces/w"
    assert resolve_tracking_uri(azure, root_dir=tmp_path, config_dir=tmp_path) == embedded_tracking_uri(
        tmp_path
    )
    with pytest.raises(TrackingError, match="azureml-mlflow"):
        resolve_tracking_uri(azure, root_dir=tmp_path, config_dir=tmp_path, fallback_to_local=False)


def test_get_or_create_is_idempotent_and_uses_store_artifact_root(sqlite_tracking_uri: str) -> None:
    first = get_or_create_experiment("same", tracking_uri=sqlite_tracking_uri)
    second = get_or_create_experiment("same", tracking_uri=sqlite_tracking_uri)
    assert first == second
    exp = MlflowClient(sqlite_tracking_uri).get_experiment(first)
    assert exp.artifact_location == default_artifact_location(sqlite_tracking_uri)


def test_get_or_create_refuses_deleted_and_empty_names(sqlite_tracking_uri: str) -> None:
    client = MlflowClient(sqlite_tracking_uri)
    exp_id = get_or_create_experiment("gone", tracking_uri=sqlite_tracking_uri)
    client.delete_experiment(exp_id)
    with pytest.raises(TrackingError, match=r"'gone'.*deleted"):
        get_or_create_experiment("gone", tracking_uri=sqlite_tracking_uri)
    with pytest.raises(TrackingError, match="non-empty"):
        get_or_create_experiment("  ", tracking_uri=sqlite_tracking_uri)


def test_get_or_create_unreachable_server_raises_tracking_error(
    monkeypatch: pytest.MonkeyPatch, unreachable_uri: str
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(TrackingError, match=r"could not get or create experiment 'x' at http://127\.0\.0\.1"):
        get_or_create_experiment("x", tracking_uri=unreachable_uri, max_retries=1, base_delay=0.01)


_CREATE_SCRIPT = """
import sys
from mlrig.tracking import get_or_create_experiment
print(get_or_create_experiment("race", tracking_uri=sys.argv[1]))
"""


@pytest.mark.slow
def test_concurrent_processes_create_one_experiment_on_a_new_sqlite_file(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/fresh/mlflow.db"  # the file (and its folder) do not exist yet
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE_SCRIPT, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err.decode()[-800:] for _, err in results]
    ids = {out.decode().strip().splitlines()[-1] for out, _ in results}
    assert len(ids) == 1
    names = [e.name for e in MlflowClient(uri).search_experiments()]
    assert names.count("race") == 1


@pytest.mark.slow
def test_concurrent_get_or_create_against_server(mlflow_server_uri: str) -> None:
    name = "server-race"
    with ThreadPoolExecutor(8) as pool:
        ids = set(
            pool.map(lambda _: get_or_create_experiment(name, tracking_uri=mlflow_server_uri), range(16))
        )
    assert len(ids) == 1
