"""Champion selection: the best trial per backbone from MLflow, then the best model across backbones."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow.entities import Run

from mlrig.orchestration.candidates import DEFAULT_SCHEMA_VERSION, artifact_filter, schema_filter
from mlrig.orchestration.errors import OrchestrationError
from mlrig.paths import save_cache_with_dual_strategy
from mlrig.tracking import (
    MLflowSweepTracker,
    TrackingError,
    extract_trial_number,
    fetch_checkpoint_archive,
    objective_of,
    query_runs_by_tags,
    query_trial_runs,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """The selected trial of one backbone and the refit run that holds its checkpoint."""

    backbone: str
    experiment_name: str
    metric: str
    direction: str
    value: float
    stable_score: float
    study_key_hash: str
    trial_key_hash: str
    trial_run_id: str
    refit_run_id: str
    trial_number: int
    params: Mapping[str, Any]
    checkpoint_dir: Path | None
    n_trials_considered: int
    scores: Mapping[str, float] = field(default_factory=dict)


def _metric(run: Run, name: str) -> float | None:
    value = run.data.metrics.get(name)
    return float(value) if value is not None and math.isfinite(value) else None


def _params(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in run.data.params.items():
        try:
            out[key] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
        except ValueError:
            out[key] = raw
    return out


def select_champion(
    tracker: MLflowSweepTracker,
    backbone: str,
    selection_config: Mapping[str, Any],
    *,
    hpo_objective: Mapping[str, Any] | None = None,
) -> Champion:
    """The champion of ``backbone`` from the FINISHED trial runs in the tracker's (HPO) experiment.

    Runs (mlrig's ``hpo_trial`` and the reference's ``hpo`` trial runs) are filtered by
    ``require_artifact_available``/``artifact_check_source`` and grouped by ``code.study_key_hash``; groups
    of another study-key schema version are dropped unless ``allow_mixed_schema_groups``
    (``prefer_schema_version`` picks the version); groups with fewer than ``min_trials_per_group`` valid
    runs are skipped; the winning group has the best median of its top-k values; the champion is that
    group's best run (ties: lowest trial number, then run id). Its FINISHED refit run is required.
    """
    objective = {**(hpo_objective or {}), **(selection_config.get("objective") or {})}
    metric, direction = objective_of({"objective": objective})
    tags = tracker.naming_config.tags
    study_tag, trial_tag = tags.key("grouping", "study_key_hash"), tags.key("grouping", "trial_key_hash")
    sign = 1.0 if direction == "maximize" else -1.0
    cfg = selection_config.get("champion_selection") or {}
    min_trials = int(cfg.get("min_trials_per_group", 1))
    top_k = max(1, min(int(cfg.get("top_k_for_stable_score", 1)), max(min_trials, 1)))
    experiment = tracker.client.get_experiment_by_name(tracker.experiment_name)
    if experiment is None:
        raise OrchestrationError(f"no MLflow experiment {tracker.experiment_name!r}: run the sweep first")
    exp_ids = [experiment.experiment_id]
    # mlrig's hpo_trial runs and the reference's code.stage=hpo trial runs alike.
    trials = query_trial_runs(tracker.client, exp_ids, backbone, config_dir=tracker.config_dir)
    trials = artifact_filter(tracker.client, trials, cfg, tags)
    version_tag = tags.key("study", "key_schema_version")
    groups: dict[str, list[tuple[float, int, str, Run]]] = {}
    schema_of: dict[str, str] = {}
    for run in trials:
        value = _metric(run, metric)
        if value is None:
            continue
        found_number = extract_trial_number(run, tracker.config_dir)
        number = -1 if found_number is None else found_number
        key = run.data.tags.get(study_tag, "")
        groups.setdefault(key, []).append((value, number, run.info.run_id, run))
        schema_of.setdefault(key, run.data.tags.get(version_tag) or DEFAULT_SCHEMA_VERSION)
    groups = schema_filter(groups, schema_of, cfg)
    eligible = {k: g for k, g in groups.items() if len(g) >= min_trials}
    if not eligible:
        raise OrchestrationError(
            f"no eligible study for backbone {backbone!r} in {tracker.experiment_name!r}: "
            f"{len(trials)} finished trial runs, groups {[len(g) for g in groups.values()]}, "
            f"need {min_trials} runs with metric {metric!r} per group"
        )

    def stable(group: list[tuple[float, int, str, Run]]) -> float:
        best = sorted((sign * v for v, _, _, _ in group), reverse=True)[:top_k]
        return sign * statistics.median(best)

    study_key = min(eligible, key=lambda k: (-sign * stable(eligible[k]), k))
    group = eligible[study_key]
    value, number, run_id, run = min(group, key=lambda t: (-sign * t[0], t[1], t[2]))
    trial_key = run.data.tags.get(trial_tag, "")
    refits = query_runs_by_tags(
        tracker.client,
        exp_ids,
        {tags.key("process", "stage"): "hpo_refit", study_tag: study_key, trial_tag: trial_key},
    )
    if not refits:
        raise OrchestrationError(
            f"champion trial {number} of {backbone!r} (run {run_id}) has no FINISHED refit run "
            f"(study {study_key[:8]}, trial {trial_key[:8]}); rerun the sweep with refit enabled"
        )
    refit = refits[0]
    out_dir = refit.data.tags.get(tags.key("paths", "output_dir"))
    checkpoint = Path(out_dir) / "checkpoint" if out_dir else None
    if checkpoint is not None and not checkpoint.exists():
        checkpoint = _fetched(tracker, refit.info.run_id, checkpoint)
    return Champion(
        backbone=backbone,
        experiment_name=tracker.experiment_name,
        metric=metric,
        direction=direction,
        value=value,
        stable_score=stable(group),
        study_key_hash=study_key,
        trial_key_hash=trial_key,
        trial_run_id=run_id,
        refit_run_id=refit.info.run_id,
        trial_number=number,
        params=_params(run),
        checkpoint_dir=checkpoint if checkpoint is not None and checkpoint.exists() else None,
        n_trials_considered=len(trials),
    )


def _fetched(tracker: MLflowSweepTracker, refit_run_id: str, checkpoint: Path) -> Path | None:
    """The refit checkpoint brought back from the artifact store (the refit ran on another machine, or its
    folder was deleted); None (final training then starts from scratch) when it cannot be had."""
    try:
        return fetch_checkpoint_archive(tracker.client, refit_run_id, checkpoint)
    except TrackingError as exc:
        logger.warning("refit checkpoint %s is not here and could not be fetched: %s", checkpoint, exc)
        return None


def _normalized(values: Sequence[float]) -> list[float]:
    low, high = min(values), max(values)
    if high == low:
        return [1.0 for _ in values]
    return [(v - low) / (high - low) for v in values]


def _threshold(rule: Mapping[str, Any], key: str) -> float | None:
    value = rule.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or not math.isfinite(value):
        raise OrchestrationError(f"HPO selection.{key} must be a number >= 0 or null, got {value!r}")
    return float(value)


def _accuracy_first(
    champions: Sequence[Champion], latencies: Mapping[str, float], rule: Mapping[str, Any]
) -> Champion | None:
    """The HPO config's ``selection`` rule (accuracy first, speed as the tie-breaker of close models), or
    None when it is off (both thresholds null) or a champion has no latency.

    The most accurate champion wins unless a faster one is close enough: its gap to the best is at most
    ``accuracy_threshold`` (a fraction of the best value when ``use_relative_threshold``, the default; else
    absolute), or the best is less than ``min_accuracy_gain`` (relative) better than it. Either test alone
    makes the faster model win -- the reference required both at once, which its own defaults (1.5% and
    2%) made impossible. Among the close ones the fastest wins (ties: the better metric, then the name).
    """
    threshold, min_gain = _threshold(rule, "accuracy_threshold"), _threshold(rule, "min_accuracy_gain")
    if threshold is None and min_gain is None:
        return None
    if not all(c.backbone in latencies for c in champions):
        logger.info("HPO selection thresholds need every champion's latency: ranking by the metric alone")
        return None
    relative = bool(rule.get("use_relative_threshold", True))
    sign = 1.0 if champions[0].direction == "maximize" else -1.0
    best = min(champions, key=lambda c: (-sign * c.value, c.backbone))

    def close(c: Champion) -> bool:
        gap = sign * (best.value - c.value)  # >= 0: how much better the best is
        if threshold is not None and gap <= (threshold * abs(best.value) if relative else threshold):
            return True
        return min_gain is not None and c.value != 0 and gap / abs(c.value) < min_gain

    return min(
        (c for c in champions if c is best or close(c)),
        key=lambda c: (latencies[c.backbone], -sign * c.value, c.backbone),
    )


def select_best_model(
    champions: Sequence[Champion],
    selection_config: Mapping[str, Any],
    *,
    latencies_ms: Mapping[str, float] | None = None,
    hpo_selection: Mapping[str, Any] | None = None,
    root_dir: Path | None = None,
    config_dir: Path | None = None,
) -> Champion:
    """The best champion across backbones.

    With the HPO config's ``selection`` thresholds (``hpo_selection``: ``accuracy_threshold``,
    ``use_relative_threshold``, ``min_accuracy_gain``; see :func:`_accuracy_first`) and every champion's
    latency: accuracy first, the fastest of the close ones. Otherwise, when every champion has a latency,
    ``f1_weight * norm(metric) + latency_weight * (1 - norm(latency))`` (``scoring``; weights normalised, the
    metric direction honoured); else the objective metric alone. Ties go to the backbone name. Cached with
    the dual strategy when ``root_dir`` is given.
    """
    if not champions:
        raise OrchestrationError("select_best_model: no champions to choose from")
    scoring = selection_config.get("scoring") or {}
    sign = 1.0 if champions[0].direction == "maximize" else -1.0
    metric_norm = _normalized([sign * c.value for c in champions])
    scores = list(metric_norm)
    lat = latencies_ms or {}
    chosen = _accuracy_first(champions, lat, hpo_selection or {})
    rule = "metric"
    if chosen is not None:
        rule = "accuracy_first"
        scores = [1.0 if c is chosen else 0.0 for c in champions]
    elif all(c.backbone in lat for c in champions):
        rule = "composite"
        w_f1 = float(scoring.get("f1_weight", 0.7))
        w_lat = float(scoring.get("latency_weight", 0.3))
        total = w_f1 + w_lat
        if scoring.get("normalize_weights", True) and total > 0:
            w_f1, w_lat = w_f1 / total, w_lat / total
        lat_norm = _normalized([lat[c.backbone] for c in champions])
        scores = [w_f1 * m + w_lat * (1.0 - lt) for m, lt in zip(metric_norm, lat_norm, strict=True)]
    ranked = sorted(zip(scores, champions, strict=True), key=lambda sc: (-sc[0], sc[1].backbone))
    score, best = ranked[0]
    winner = Champion(**{**asdict(best), "scores": {c.backbone: s for s, c in ranked}})
    if root_dir is not None:
        payload = {
            "backbone": winner.backbone,
            "champion": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(winner).items()},
            "selection_criteria": {
                "metric": winner.metric,
                "goal": winner.direction,
                "best_value": winner.value,
                "rule": rule,
                "latencies_ms": dict(lat),
            },
            "score": score,
        }
        save_cache_with_dual_strategy(
            root_dir,
            config_dir,
            "best_model_selection",
            payload,
            winner.backbone,
            f"{winner.study_key_hash[:8]}_{winner.trial_key_hash[:8]}",
            datetime.now().strftime("%Y%m%d_%H%M%S"),
        )
    logger.info(
        "best model (%s): %s (%s=%.4f, score %.3f)", rule, winner.backbone, winner.metric, winner.value, score
    )
    return winner
