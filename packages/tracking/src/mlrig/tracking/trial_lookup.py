"""Find a trial's run by its ``code.trial_id`` tag, in one experiment or in every active experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlrig.naming import load_tags_registry
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.finder import NEWEST_FIRST, RunLookupReport
from mlrig.tracking.queries import build_tag_filter, search_runs_all

_EXPERIMENT_CHUNK: Final = 100
_LOOKUP_ERRORS: Final = (MlflowException, OSError, TrackingError)


def _experiment_ids(client: MlflowClient) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    while True:
        page = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def find_run_by_trial_id(
    trial_id: str,
    experiment_name: str | None = None,
    config_dir: Path | str | None = None,
    *,
    client: MlflowClient | None = None,
    tracking_uri: str | None = None,
) -> RunLookupReport:
    """The newest run tagged ``code.trial_id = trial_id`` that is not tagged ``code.interrupted = true``.

    Searches ``experiment_name``, or every active experiment (all pages) when it is None.
    """
    strategy = "trial_id_tag_search"
    if not trial_id:
        return RunLookupReport(found=False, strategies_attempted=[strategy], error="trial_id is empty")
    client = client or MlflowClient(tracking_uri=tracking_uri)
    registry = load_tags_registry(config_dir)
    interrupted_key = registry.key("training", "interrupted")
    tag_filter = build_tag_filter({registry.key("legacy", "trial_id"): trial_id})
    try:
        if experiment_name is not None:
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                return RunLookupReport(
                    found=False,
                    strategies_attempted=[strategy],
                    error=f"experiment {experiment_name!r} not found",
                )
            experiment_ids = [experiment.experiment_id]
        else:
            experiment_ids = _experiment_ids(client)
        best: Run | None = None
        for start in range(0, len(experiment_ids), _EXPERIMENT_CHUNK):
            chunk = experiment_ids[start : start + _EXPERIMENT_CHUNK]
            for run in search_runs_all(
                client, chunk, tag_filter.filter_string, order_by=NEWEST_FIRST, page_size=50
            ):
                if tag_filter.matches(run) and run.data.tags.get(interrupted_key, "").lower() != "true":
                    if best is None or (run.info.start_time or 0) > (best.info.start_time or 0):
                        best = run
                    break
    except _LOOKUP_ERRORS as exc:
        return RunLookupReport(
            found=False, strategies_attempted=[strategy], error=f"trial id search failed: {exc}"
        )
    if best is None:
        return RunLookupReport(
            found=False, strategies_attempted=[strategy], error=f"no run found with trial_id={trial_id!r}"
        )
    return RunLookupReport(
        found=True, run_id=best.info.run_id, strategy_used=strategy, strategies_attempted=[strategy], run=best
    )
