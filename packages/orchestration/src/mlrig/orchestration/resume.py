"""Resume checks: the study and the tracking store must tell the same story.

A tracking store restored from an older snapshot than ``study.db`` lacks the runs of the last trials (and
perhaps the refit). The study and the trial folders still hold what selection needs, so those trials are
recorded again instead of leaving "0 finished trial runs" behind.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from mlflow.exceptions import MlflowException
from optuna.trial import FrozenTrial, TrialState

from mlrig.naming import build_output_path
from mlrig.orchestration.runs import descendants, retire_run
from mlrig.tracking import MLflowSweepTracker, existing_run_ids

if TYPE_CHECKING:
    from mlrig.orchestration.sweep import _Sweep

logger = logging.getLogger(__name__)

# study user attribute {trial number: run id} of the re-recorded runs (a finished trial's own attributes are
# read-only in Optuna)
_RERECORDED_ATTR = "rerecorded_runs"


def trial_run_id(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """The MLflow run of ``trial``: the one it was re-recorded in, else the one it ran in."""
    moved = study.user_attrs.get(_RERECORDED_ATTR) or {}
    run_id = moved.get(str(trial.number)) or trial.user_attrs.get("mlflow_run_id")
    return str(run_id) if run_id else None


def run_exists(tracker: MLflowSweepTracker, run_id: object, *, finished: bool = False) -> bool:
    """Whether ``run_id`` names a run (not deleted) in the tracker's store; with ``finished``, one that ended
    FINISHED (a store snapshot taken while it ran holds it RUNNING, and resume then ends it KILLED)."""
    if not run_id:
        return False
    try:
        run = tracker.client.get_run(str(run_id))
    except MlflowException:
        return False
    return run.info.lifecycle_stage != "deleted" and (not finished or run.info.status == "FINISHED")


def _metrics(trial: FrozenTrial, trial_dir: Path, metric: str) -> dict[str, float]:
    try:
        data = json.loads((trial_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    out = (
        {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}
        if isinstance(data, dict)
        else {}
    )
    if trial.value is not None:
        out.setdefault(metric, float(trial.value))
    return out


def rerecord_missing_trials(sweep: _Sweep, study: optuna.Study) -> int:
    """Record again every COMPLETE or PRUNED trial whose MLflow run the store no longer has; return how many.

    The new run is a child of the sweep's parent with the trial's params, the metrics of its
    ``metrics.json`` (the objective value from the study when that is gone) and ``code.rerecorded=true``.
    """
    count = 0
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    parent = sweep.tracker.run
    held = (
        existing_run_ids(
            sweep.tracker.client, [parent.experiment_id], (trial_run_id(study, t) for t in trials)
        )
        if parent is not None and parent.experiment_id
        else set()
    )
    for trial in trials:
        old = trial_run_id(study, trial)
        if old in held:
            continue
        number = trial.number
        ctx = sweep.context(
            "hpo_trial",
            trial_key_hash=str(trial.user_attrs.get("trial_key_hash", "")),
            trial_number=number,
            trial_id=f"trial_{number}",
        )
        trial_dir = build_output_path(sweep.root, ctx, sweep.cfg, paths_config=sweep.paths_config)
        logger.warning(
            "study %s says trial %d is %s but its MLflow run %s is not in the store (restored from an older "
            "snapshot?); recording it again from the study and %s",
            study.study_name,
            number,
            trial.state.name,
            old,
            trial_dir,
        )
        registry = sweep.naming_config.tags
        tags: dict[str, Any] = {registry.key("hpo", "rerecorded"): "true"}
        if trial.state == TrialState.PRUNED:
            tags[registry.key("hpo", "trial_state")] = "PRUNED"
        with sweep.tracker.start_trial_run(
            number, context=ctx, params=trial.params, output_dir=trial_dir
        ) as run:
            run.set_tags(tags)
            run.log_metrics(_metrics(trial, trial_dir, sweep.metric))
        if run.run_id:
            # the study's pointer follows the run, so the refit and the next resume find it
            moved = dict(study.user_attrs.get(_RERECORDED_ATTR) or {})
            moved[str(number)] = run.run_id
            study.set_user_attr(_RERECORDED_ATTR, moved)
        count += 1
    return count


def retire_unknown_trials(tracker: MLflowSweepTracker, parent_run_id: str, study: optuna.Study) -> int:
    """Retire the trial and fold runs of trial numbers the study does not know; return how many.

    A store snapshot newer than the study's (they are copied one after the other) can hold the runs of a
    trial asked after the study was copied: the resumed study asks that number again, and its new runs
    would share the old ones' names. The old ones are ended and renamed (:func:`retire_run`).
    """
    known = {t.number for t in study.get_trials(deepcopy=False)}
    registry = tracker.naming_config.tags
    # mlrig writes code.hpo.trial_number; the reference wrote trial_number
    keys = (registry.key("hpo", "trial_number"), registry.key("legacy", "trial_number"))
    count = 0
    for run in descendants(tracker, parent_run_id):
        number = next((run.data.tags[k] for k in keys if k in run.data.tags), "")
        if number.isdigit() and int(number) not in known and ".interrupted-" not in run.info.run_name:
            retire_run(tracker.client, run, tags=tracker.naming_config.tags)
            count += 1
    if count:
        logger.warning("retired %d run(s) of trials study %s does not know", count, study.study_name)
    return count
