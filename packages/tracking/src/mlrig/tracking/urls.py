"""Links to a run in the MLflow UI (local or remote server) or in Azure ML studio."""

from __future__ import annotations

import logging
import os
import re
from typing import Final
from urllib.parse import quote, urlsplit

import mlflow

logger = logging.getLogger(__name__)

DEFAULT_LOCAL_UI_URL: Final = "http://127.0.0.1:5000"
_AZURE_WORKSPACE = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.MachineLearningServices"
    r"/workspaces/(?P<ws>[^/?#]+)",
    re.IGNORECASE,
)


def get_mlflow_run_url(
    experiment_id: str, run_id: str, tracking_uri: str | None = None, *, ui_url: str | None = None
) -> str:
    """URL of run ``run_id`` (experiment ``experiment_id``) in a browser.

    * ``http(s)://`` tracking URI → ``<uri>/#/experiments/<e>/runs/<r>`` (the server's own UI);
    * Azure ML (``azureml://...``) → ``https://ml.azure.com/experiments/id/<e>/runs/<r>?wsid=...``;
    * local stores (``sqlite:``, ``file:``, a path) have no UI of their own → ``ui_url``, else env
      ``MLFLOW_UI_URL``, else ``http://127.0.0.1:5000`` (what ``mlflow ui`` serves) with the same fragment.

    ``tracking_uri`` defaults to ``mlflow.get_tracking_uri()`` (read, never set).
    """
    uri = tracking_uri or mlflow.get_tracking_uri()
    exp = quote(str(experiment_id), safe="")
    run = quote(str(run_id), safe="")
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        return f"{uri.rstrip('/')}/#/experiments/{exp}/runs/{run}"
    if scheme == "azureml" or "azureml" in uri.lower():
        match = _AZURE_WORKSPACE.search(uri)
        if match is not None:
            wsid = f"/subscriptions/{match['sub']}/resourcegroups/{match['rg']}/workspaces/{match['ws']}"
            return f"https://ml.azure.com/experiments/id/{exp}/runs/{run}?wsid={quote(wsid, safe='/')}"
        logger.warning("cannot parse the Azure ML workspace from %s; linking to ml.azure.com", uri)
        return f"https://ml.azure.com/experiments/id/{exp}/runs/{run}"
    base = ui_url or os.environ.get("MLFLOW_UI_URL") or DEFAULT_LOCAL_UI_URL
    return f"{base.rstrip('/')}/#/experiments/{exp}/runs/{run}"
