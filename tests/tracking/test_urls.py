"""Run URLs for servers, local stores and Azure ML."""

from __future__ import annotations

import mlflow
import pytest

from mlrig.tracking import get_mlflow_run_url


def test_server_uri_links_to_its_ui() -> None:
    assert (
        get_mlflow_run_url("3", "abc", "http://10.0.0.5:5000/")
        == "http://10.0.0.5:5000/#/experiments/3/runs/abc"
    )
    assert get_mlflow_run_url("3", "abc", "https://mlflow.example.com/base") == (
        "https://mlflow.example.com/base/#/experiments/3/runs/abc"
    )


def test_local_store_links_to_a_ui_not_to_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "sqlite:////data/mlruns/mlflow.db"
    assert get_mlflow_run_url("1", "r", uri) == "http://127.0.0.1:5000/#/experiments/1/runs/r"
    assert (
        get_mlflow_run_url("1", "r", uri, ui_url="http://box:8080/")
        == "http://box:8080/#/experiments/1/runs/r"
    )
    monkeypatch.setenv("MLFLOW_UI_URL", "http://ui:9000")
    assert get_mlflow_run_url("1", "r", "file:///x/mlruns") == "http://ui:9000/#/experiments/1/runs/r"


def test_default_uri_is_read_from_mlflow(tmp_path: object) -> None:
    mlflow.set_tracking_uri("http://127.0.0.1:7777")
    assert get_mlflow_run_url("2", "q") == "http://127.0.0.1:7777/#/experiments/2/runs/q"


def test_azure_ml_studio_url() -> None:
    uri = (
        "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/sub-1/resourceGroups/rg-x"
        "/providers/Microsoft.MachineLearningServices/workspaces/ws-y"
    )
    assert get_mlflow_run_url("e1", "r1", uri) == (
        "https://ml.azure.com/experiments/id/e1/runs/r1?wsid=/subscriptions/sub-1/resourcegroups/rg-x/workspaces/ws-y"
    )
    assert (
        get_mlflow_run_url("e1", "r1", "azureml://somewhere")
        == "https://ml.azure.com/experiments/id/e1/runs/r1"
    )


def test_ids_are_url_quoted() -> None:
    assert get_mlflow_run_url("a b", "c/d", "http://h") == "http://h/#/experiments/a%20b/runs/c%2Fd"
