"""Which trial runs may become champions (``champion_selection`` options), and the latencies the benchmark
stage measured for them (``benchmark`` section of ``best_model_selection.yaml``)."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlrig.naming import TagsRegistry, build_mlflow_experiment_name
from mlrig.orchestration.errors import OrchestrationError
from mlrig.tracking import query_runs_by_tags

if TYPE_CHECKING:
    from mlrig.orchestration.selection import Champion

logger = logging.getLogger(__name__)

# The reference wrote no schema version on trial runs and read a missing one as 2.0.
DEFAULT_SCHEMA_VERSION = "2.0"


def artifact_filter(
    client: MlflowClient, runs: Sequence[Run], cfg: Mapping[str, Any], tags: TagsRegistry
) -> list[Run]:
    """``require_artifact_available``: with ``artifact_check_source: tag`` keep runs whose own or parent's
    ``code.artifact.available`` is true (runs with the tag on neither, as the reference's older runs, are let
    through); with ``disk`` keep runs whose ``code.output_dir`` exists on this machine."""
    if not cfg.get("require_artifact_available", False):
        return list(runs)
    source = str(cfg.get("artifact_check_source", "tag"))
    if source == "disk":
        out_tag = tags.key("paths", "output_dir")
        return [r for r in runs if r.data.tags.get(out_tag) and Path(r.data.tags[out_tag]).exists()]
    if source != "tag":
        raise OrchestrationError(
            f"champion_selection.artifact_check_source must be tag or disk, got {source!r}"
        )
    key, parent_key = tags.key("artifact", "available"), tags.key("mlflow", "parent_run_id")
    parents: dict[str, str | None] = {}
    kept = []
    for run in runs:
        value = run.data.tags.get(key)
        parent = run.data.tags.get(parent_key)
        if value is None and parent:
            if parent not in parents:
                parents[parent] = client.get_run(parent).data.tags.get(key)
            value = parents[parent]
        if value is None or value.lower() == "true":
            kept.append(run)
    return kept


def schema_filter(
    groups: Mapping[str, list[Any]], schema_of: Mapping[str, str], cfg: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """``prefer_schema_version`` (``auto``: 2.0 when any group has it) and ``allow_mixed_schema_groups``:
    groups of the other study-key schema versions are dropped unless mixing is allowed."""
    if cfg.get("allow_mixed_schema_groups", False) or not groups:
        return dict(groups)
    prefer = str(cfg.get("prefer_schema_version", "auto"))
    versions = set(schema_of.values())
    wanted = (
        prefer
        if prefer != "auto"
        else (DEFAULT_SCHEMA_VERSION if DEFAULT_SCHEMA_VERSION in versions else max(versions))
    )
    dropped = [k[:8] for k in groups if schema_of[k] != wanted]
    if dropped:
        logger.info("champion selection: dropping studies %s (key schema is not %s)", dropped, wanted)
    return {k: g for k, g in groups.items() if schema_of[k] == wanted}


def benchmark_latencies(
    client: MlflowClient,
    experiment: str,
    champions: Sequence[Champion],
    selection_config: Mapping[str, Any],
    *,
    tags: TagsRegistry,
) -> dict[str, float]:
    """Each champion's latency (ms) from the FINISHED runs of ``<experiment>-benchmark`` for its study and
    trial: the first of ``benchmark.required_metrics`` (default ``latency_batch_1_ms``) of the runs that carry
    every required metric, aggregated over repeated benchmarks with ``benchmark.latency_aggregation``
    (``latest``, ``median``, ``mean``). Champions without such a run are left out, so
    :func:`select_best_model` then ranks by the metric alone."""
    bench = selection_config.get("benchmark") or {}
    required = [str(m) for m in (bench.get("required_metrics") or ["latency_batch_1_ms"])]
    metric = required[0]
    how = str(bench.get("latency_aggregation", "latest"))
    if how not in ("latest", "median", "mean"):
        raise OrchestrationError(f"benchmark.latency_aggregation must be latest, median or mean, got {how!r}")
    found = client.get_experiment_by_name(build_mlflow_experiment_name(experiment, "benchmark"))
    if found is None:
        return {}
    out: dict[str, float] = {}
    for champ in champions:
        wanted = {
            tags.key("grouping", "study_key_hash"): champ.study_key_hash,
            tags.key("grouping", "trial_key_hash"): champ.trial_key_hash,
        }
        runs = query_runs_by_tags(client, [found.experiment_id], wanted)  # newest first
        values = [float(r.data.metrics[metric]) for r in runs if all(m in r.data.metrics for m in required)]
        if values:
            out[champ.backbone] = (
                values[0]
                if how == "latest"
                else statistics.median(values)
                if how == "median"
                else statistics.fmean(values)
            )
    return out
