"""``run_worker``: join a distributed sweep (an Optuna study in PostgreSQL, an MLflow server) and work on it
until its budget is reached; safe to start K times on K machines, to kill and to restart at any moment."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mlrig.naming import NamingContext
from mlrig.orchestration.configs import ExperimentConfig
from mlrig.orchestration.distributed import (
    DONE,
    AdvisoryLocks,
    DistributedConfig,
    ask_ticket,
    claim_parent_run,
    distributed_config,
    finalise_once,
    heartbeat,
    open_shared_storage,
    quiet_optuna,
    study_fold_splits,
)
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import TrainFn
from mlrig.orchestration.runs import descendants, end_interrupted_run, sigterm_as_interrupt
from mlrig.orchestration.search_space import build_pruner, build_sampler
from mlrig.orchestration.study import study_name_for
from mlrig.orchestration.sweep import ProgressFn, SweepResult, TrialOutcome, _Sweep
from mlrig.tracking import PostgresRunState, SharedSweepTracker

logger = logging.getLogger(__name__)


@dataclass
class WorkerResult:
    """What one worker did on a distributed sweep."""

    worker_id: str
    study_name: str
    parent_run_id: str | None
    trials: list[TrialOutcome] = field(default_factory=list)
    finalised: bool = False
    sweep: SweepResult | None = None  # best trial / refit, on the worker that finalised


@dataclass(frozen=True)
class StaleTrial:
    """A RUNNING trial whose heartbeat is older than the grace period (its worker is presumed dead)."""

    study_name: str
    number: int
    run_id: str | None  # its MLflow trial run, when it got that far


class _EndStaleRuns:
    """Optuna's stale-trial callback: end the dead worker's trial run (and its folds) KILLED +
    ``code.interrupted=true``, then let Optuna's retry callback enqueue the trial again."""

    def __init__(self) -> None:
        self.tracker: SharedSweepTracker | None = None
        self.count = 0
        with quiet_optuna():
            self._retry = optuna.storages.RetryHeartbeatStaleTrialCallback()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.count += 1
        run_id = trial.user_attrs.get("mlflow_run_id")
        tracker = self.tracker
        if isinstance(run_id, str) and tracker is not None:
            try:
                runs = [r.info.run_id for r in descendants(tracker, run_id) if r.info.status == "RUNNING"]
            except Exception as exc:  # the run is still ended below
                logger.warning("listing the runs below %s failed: %s", run_id, exc)
                runs = []
            for rid in [*runs, run_id]:
                end_interrupted_run(tracker.client, rid, tags=tracker.naming_config.tags)
        logger.warning(
            "trial %d of a dead worker (stale heartbeat) marked FAIL and queued again", trial.number
        )
        self._retry(study, trial)


def _open_study(
    sweep: _Sweep, dist: DistributedConfig, locks: AdvisoryLocks, callback: _EndStaleRuns
) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    storage = open_shared_storage(dist, locks, callback)
    # One database holds the studies of every experiment and config: the study key keeps them apart (locally
    # each study.db sits in its own study-<key> folder instead).
    name = f"{study_name_for(sweep.hpo, sweep.backbone)}_{sweep.study_key_hash[:8]}"
    if sweep.direction not in ("maximize", "minimize"):
        raise OrchestrationError(f"objective.direction must be maximize or minimize, got {sweep.direction!r}")
    with locks.hold(f"mlrig:create:{name}"):
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction=StudyDirection.MAXIMIZE if sweep.direction == "maximize" else StudyDirection.MINIMIZE,
            sampler=build_sampler(sweep.hpo, dist.worker_seed(sweep.seed)),
            pruner=build_pruner(sweep.hpo),
            load_if_exists=True,
        )
    return study, storage


def _create_parent(sweep: _Sweep, tracker: SharedSweepTracker, study: optuna.Study) -> str | None:
    """Create the study's sweep parent run (left RUNNING; not published: see :func:`claim_parent_run`)."""
    context: NamingContext = sweep.context("hpo_sweep", study_name=study.study_name)
    return tracker.create_shared_sweep_run(
        None, sweep.hpo, sweep.backbone, study.study_name, sweep.hpo.get("checkpoint"), None, False,
        context=context, output_dir=sweep.study_dir, data_config=sweep.exp.data,
        train_config=sweep.exp.train, config_dir=sweep.cfg,
    )  # fmt: skip


def _parent(
    sweep: _Sweep, tracker: SharedSweepTracker, study: optuna.Study, locks: AdvisoryLocks
) -> str | None:
    context: NamingContext = sweep.context("hpo_sweep", study_name=study.study_name)

    def create() -> str | None:
        return _create_parent(sweep, tracker, study)

    def usable(run_id: str) -> bool:
        try:
            return tracker.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:
            return False

    return claim_parent_run(study, locks, create, usable, lambda: tracker.find_shared_sweep_run(context))


def _finalise(
    sweep: _Sweep, tracker: SharedSweepTracker, study: optuna.Study, parent: str | None
) -> SweepResult:
    result = SweepResult(
        backbone=sweep.backbone, study_name=study.study_name, study_key_hash=sweep.study_key_hash,
        study_dir=sweep.study_dir, experiment_name=sweep.experiment_name, parent_run_id=parent,
        resumed=False, restored_from_backup=False,
    )  # fmt: skip
    # Trials of every worker: the best one's run id comes from the study, not this tracker's memory.
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if isinstance(run_id, str):
            tracker.trial_run_ids.setdefault(trial.number, run_id)
    sweep.conclude(study, result)
    if parent:
        if tracker.sweep_run is not None:  # the final metrics are buffered on the joined parent
            tracker.sweep_run.flush()
        tracker.end_shared_sweep_run(parent)
    return result


def run_worker(
    train_fn: TrainFn,
    experiment: ExperimentConfig,
    backbone: str,
    *,
    root_dir: Path | str,
    config_dir: Path | str,
    labels: Sequence[int],
    storage_url: str | None = None,
    tracking_uri: str | None = None,
    storage_env: str = "local",
    max_trials: int | None = None,
    worker_id: str | None = None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    progress: ProgressFn | None = None,
) -> WorkerResult:
    """Work on the distributed sweep of ``backbone`` until ``max_trials`` trials are COMPLETE or PRUNED, then
    drain; the worker that finds the budget reached first refits the best trial and ends the parent run.

    The study is in PostgreSQL (``storage_url``, ``hpo.distributed.storage`` or ``$MLRIG_OPTUNA_STORAGE``);
    runs go to ``tracking_uri`` (an MLflow server). A trial is asked only while
    COMPLETE+PRUNED+RUNNING+WAITING is under the budget; a worker killed mid-trial stops beating, and after
    ``grace_period`` another worker marks its trial FAIL, ends its runs KILLED and runs the trial again.
    ``root_dir`` holds this machine's trial folders only.
    """
    root, cfg = Path(root_dir).absolute(), Path(config_dir).absolute()
    dist = distributed_config(experiment.hpo, storage_url)
    if dist is None:
        raise OrchestrationError(
            f"no Optuna storage URL: pass storage_url or set $MLRIG_OPTUNA_STORAGE ({backbone})"
        )
    if heartbeat_interval is not None or grace_period is not None or worker_id is not None:
        dist = DistributedConfig(
            dist.storage_url,
            heartbeat_interval=heartbeat_interval or dist.heartbeat_interval,
            grace_period=grace_period or (None if heartbeat_interval else dist.grace_period),
            worker_id=worker_id,
        )
    sweep = _Sweep(
        train_fn, experiment, backbone, root_dir=root, config_dir=cfg, labels=labels, store=None,
        state=None, storage_env=storage_env, tracking_uri=tracking_uri, progress=progress,
    )  # fmt: skip
    tracker = SharedSweepTracker(
        sweep.experiment_name, tracking_uri=tracking_uri, config_dir=cfg, root_dir=root,
        naming_config=sweep.naming_config, run_state=PostgresRunState(dist.storage_url),
    )  # fmt: skip
    sweep.tracker = tracker
    callback = _EndStaleRuns()
    callback.tracker = tracker
    locks = AdvisoryLocks(dist.storage_url)
    try:
        study, storage = _open_study(sweep, dist, locks, callback)
        target, deadline = sweep.trial_budget(max_trials)
        folds = study_fold_splits(study, locks, labels, sweep.hpo.get("k_fold") or {})
        parent = _parent(sweep, tracker, study, locks)
        out = WorkerResult(dist.worker_id, study.study_name, parent)
        reached = False
        with sigterm_as_interrupt(), tracker.join_sweep_run(parent or ""):
            while deadline is None or time.monotonic() < deadline:
                trial, reached = ask_ticket(study, storage, target, locks)
                if reached:
                    break
                if trial is None:  # the budget is held by running trials: wait for them (one may die)
                    time.sleep(min(1.0, dist.heartbeat_interval))
                    continue
                with heartbeat(storage, trial._trial_id, dist.heartbeat_interval):
                    out.trials.append(sweep.run_trial(study, trial, folds))
                if progress is not None:
                    progress(backbone, len(study.get_trials(deepcopy=False, states=DONE)), target)
            logger.info(
                "worker %s: budget of %d reached after %d trial(s)", dist.worker_id, target, len(out.trials)
            )

            def finalise() -> None:
                out.sweep = _finalise(sweep, tracker, study, parent)

            if reached:
                out.finalised = finalise_once(study, locks, dist.worker_id, finalise)
        return out
    finally:
        locks.close()


def cleanup_stale_trials(storage_url: str, tracking_uri: str, *, grace_period: int | None = None) -> int:
    """``mlrig cleanup-interrupted`` in distributed mode: in every study of ``storage_url``, fail the trials
    whose heartbeat is stale (their runs ended KILLED, their parameters queued again); a live worker's trials
    and runs are never touched. Returns how many trials were failed."""
    dist = DistributedConfig(storage_url, grace_period=grace_period)
    callback = _EndStaleRuns()
    callback.tracker = SharedSweepTracker("mlrig-cleanup", tracking_uri=tracking_uri)
    locks = AdvisoryLocks(dist.storage_url)
    try:
        storage = open_shared_storage(dist, locks, callback)
        for summary in storage.get_all_studies():
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            with locks.hold(f"mlrig:study:{study.study_name}"), quiet_optuna():
                optuna.storages.fail_stale_trials(study)
    finally:
        locks.close()
    return callback.count


def list_stale_trials(storage_url: str, *, grace_period: int | None = None) -> list[StaleTrial]:
    """What :func:`cleanup_stale_trials` would fail now (``mlrig cleanup-interrupted --dry-run``): the
    RUNNING trials of every study of ``storage_url`` whose heartbeat is older than ``grace_period``, judged by
    Optuna's own test (the database clock); nothing is changed."""
    dist = DistributedConfig(storage_url, grace_period=grace_period)
    locks = AdvisoryLocks(dist.storage_url)
    try:
        storage = open_shared_storage(dist, locks)
        out: list[StaleTrial] = []
        for summary in storage.get_all_studies():
            # Optuna has no public "which trials are stale" query: fail_stale_trials uses this one.
            for trial_id in storage._get_stale_trial_ids(summary._study_id):
                trial = storage.get_trial(trial_id)
                run_id = trial.user_attrs.get("mlflow_run_id")
                out.append(
                    StaleTrial(summary.study_name, trial.number, run_id if isinstance(run_id, str) else None)
                )
        return out
    finally:
        locks.close()
