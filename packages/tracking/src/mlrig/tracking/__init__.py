"""mlrig.tracking: MLflow run trees, trackers, run index, version counter, finder, queries and artifacts.

Importing this package changes nothing global in MLflow (no tracking URI, no experiment, no patches).
"""

from importlib.metadata import version as _version

from mlrig.tracking.artifacts import (
    create_checkpoint_archive,
    log_artifact_safe,
    log_artifacts_safe,
    log_checkpoint_safe,
    upload_checkpoint_archive,
)
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.lifecycle import retry_pending_terminations, terminate_run_safe
from mlrig.tracking.retry import DEFAULT_RETRY, RetryPolicy, is_transient_error, retry_with_backoff
from mlrig.tracking.runs import RunHandle, TrackedRun, run_status_for, track_run
from mlrig.tracking.setup import (
    default_artifact_location,
    embedded_tracking_uri,
    get_or_create_experiment,
    resolve_tracking_uri,
    setup_mlflow,
    tracking_client,
)
from mlrig.tracking.sweep import MLflowSweepTracker
from mlrig.tracking.tracker_base import BaseTracker
from mlrig.tracking.trackers import (
    MLflowBenchmarkTracker,
    MLflowConversionTracker,
    MLflowTrainingTracker,
)
from mlrig.tracking.tree import create_child_run, create_run_safe
from mlrig.tracking.urls import get_mlflow_run_url
from mlrig.tracking.writer import wait_for_background

# isort: split
# --- index / counter / finder / queries (engineer B edits only inside this block) ---
from mlrig.tracking.counter import (
    cleanup_stale_reservations,
    commit_run_name_version,
    get_run_name_counter_path,
    reserve_run_name_version,
)
from mlrig.tracking.finder import RunLookupReport, find_mlflow_run
from mlrig.tracking.index import find_in_mlflow_index, get_mlflow_index_path, update_mlflow_index
from mlrig.tracking.queries import (
    TagFilter,
    build_tag_filter,
    find_best_run_by_metric,
    group_runs_by_variant,
    query_runs_by_tags,
    search_runs_all,
)
from mlrig.tracking.trial_lookup import find_run_by_trial_id

# --- end of B block ---

__version__ = _version("mlrig-tracking")

__all__ = [
    "TrackingError",
    "__version__",
    # setup
    "setup_mlflow",
    "resolve_tracking_uri",
    "embedded_tracking_uri",
    "default_artifact_location",
    "get_or_create_experiment",
    "tracking_client",
    # retries
    "retry_with_backoff",
    "is_transient_error",
    "RetryPolicy",
    "DEFAULT_RETRY",
    # run tree
    "RunHandle",
    "TrackedRun",
    "track_run",
    "create_run_safe",
    "create_child_run",
    "terminate_run_safe",
    "retry_pending_terminations",
    "run_status_for",
    "wait_for_background",
    # trackers
    "BaseTracker",
    "MLflowSweepTracker",
    "MLflowTrainingTracker",
    "MLflowBenchmarkTracker",
    "MLflowConversionTracker",
    # artifacts
    "create_checkpoint_archive",
    "log_artifact_safe",
    "log_artifacts_safe",
    "upload_checkpoint_archive",
    "log_checkpoint_safe",
    # urls
    "get_mlflow_run_url",
    # --- index / counter / finder / queries (engineer B edits only inside this block) ---
    "update_mlflow_index",
    "find_in_mlflow_index",
    "get_mlflow_index_path",
    "reserve_run_name_version",
    "commit_run_name_version",
    "cleanup_stale_reservations",
    "get_run_name_counter_path",
    "RunLookupReport",
    "find_mlflow_run",
    "find_run_by_trial_id",
    "query_runs_by_tags",
    "find_best_run_by_metric",
    "group_runs_by_variant",
    "search_runs_all",
    "build_tag_filter",
    "TagFilter",
    # --- end of B block ---
]
