"""The HPO sweep of one backbone: a resumable Optuna study, CV trials tracked in MLflow, refit, backups."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mlrig.naming import (
    build_hpo_trial_key,
    build_hpo_trial_key_hash,
    build_output_path,
    compute_study_key_hash_v2,
)
from mlrig.orchestration.configs import ExperimentConfig
from mlrig.orchestration.folds import load_or_create_fold_splits
from mlrig.orchestration.requests import TrainFn, TrialPruned
from mlrig.orchestration.resume import rerecord_missing_trials, retire_unknown_trials
from mlrig.orchestration.runs import (
    mark_interrupted_children,
    sigterm_as_interrupt,
    sweep_parent_run_id,
)
from mlrig.orchestration.state import ProjectState, session_for
from mlrig.orchestration.study import StudySetup, backup_or_warn, open_study, study_dir_for
from mlrig.orchestration.sweep_training import SweepTraining
from mlrig.paths import atomic_write_json
from mlrig.storage import DriveBackupStore
from mlrig.tracking import log_trials_table

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


@dataclass
class TrialOutcome:
    """What happened to one trial of this invocation."""

    number: int
    state: str
    value: float | None
    run_id: str | None
    trial_dir: Path


@dataclass
class SweepResult:
    """The outcome of :func:`run_local_hpo_sweep` for one backbone."""

    backbone: str
    study_name: str
    study_key_hash: str
    study_dir: Path
    experiment_name: str
    parent_run_id: str | None
    resumed: bool
    restored_from_backup: bool
    trials: list[TrialOutcome] = field(default_factory=list)
    best_trial_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    refit_run_id: str | None = None
    refit_dir: Path | None = None
    tracking_failures: list[str] = field(default_factory=list)


class _Sweep(SweepTraining):
    """One invocation of a sweep: its steps, from opening the study to the final backup; one trial's run and
    the outcome told to the study (the training itself is :class:`SweepTraining`'s)."""

    def run_trial(self, study: optuna.Study, trial: optuna.Trial, folds: Any) -> TrialOutcome:
        """Run one trial in its child run and tell the study how it ended (a failure does not raise)."""
        from mlrig.orchestration.search_space import suggest_params

        params = suggest_params(trial, self.hpo.get("search_space") or {})
        trial_key_hash = build_hpo_trial_key_hash(build_hpo_trial_key(self.study_key_hash, params))
        number = trial.number
        ctx = self.context("hpo_trial", trial_key_hash=trial_key_hash, trial_number=number)
        trial_dir = build_output_path(self.root, ctx, self.cfg, paths_config=self.paths_config)
        trial_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "study_key_hash": self.study_key_hash,
            "trial_key_hash": trial_key_hash,
            "trial_number": number,
            "study_name": study.study_name,
            "params": params,
            "created_at": datetime.now(UTC).isoformat(),
        }
        atomic_write_json(trial_dir / "trial_meta.json", meta)
        trial.set_user_attr("trial_key_hash", trial_key_hash)
        run_id: str | None = None
        step = 0

        def report(epoch: int, value: float) -> bool:
            nonlocal step
            step += 1
            trial.report(value, step)
            return trial.should_prune()

        value: float | None = None
        try:
            with self.tracker.start_trial_run(
                number, context=ctx, params=params, output_dir=trial_dir
            ) as run:
                run_id = run.run_id
                if run_id:
                    trial.set_user_attr("mlflow_run_id", run_id)
                try:
                    value = self._folds(params, trial_dir, folds, number, trial_key_hash, run, report)
                except TrialPruned:
                    # A pruned trial is a normal outcome: its run ends FINISHED, marked as pruned.
                    run.set_tags({self.naming_config.tags.key("hpo", "trial_state"): "PRUNED"})
                # (the objective is logged by _folds: the CV mean, or the curve and final scores without CV)
        except (KeyboardInterrupt, SystemExit):
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:
            logger.error("trial %d failed (%s: %s); the sweep goes on", number, type(exc).__name__, exc)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            study.tell(trial, state=TrialState.FAIL)
            return TrialOutcome(number, "FAIL", None, run_id, trial_dir)
        if value is None:
            study.tell(trial, state=TrialState.PRUNED)
            return TrialOutcome(number, "PRUNED", None, run_id, trial_dir)
        study.tell(trial, value)
        return TrialOutcome(number, "COMPLETE", value, run_id, trial_dir)

    def open_or_restore_study(self) -> StudySetup:
        """Open the study (restored from the backup first when missing locally). A force_new variant n > 1
        gets its own study key hash (runs, run keys, trial folders), recorded in the study's attributes."""
        setup = open_study(self.study_dir, self.hpo, self.backbone, seed=self.seed, store=self.store)
        if setup.variant > 1:
            self.study_key_hash = compute_study_key_hash_v2(
                self.exp.data, self.hpo, self.exp.train, self.backbone, variant=setup.variant
            )
        if setup.study.user_attrs.get("study_key_hash") != self.study_key_hash:
            setup.study.set_user_attr("study_key_hash", self.study_key_hash)
        return setup

    def fold_splits(self) -> Any:
        """The CV fold splits saved beside the study (created once), or None without ``k_fold``."""
        k_fold = self.hpo.get("k_fold") or {}
        return (
            load_or_create_fold_splits(self.study_dir, self.labels, k_fold) if k_fold.get("enabled") else None
        )

    @contextmanager
    def parent_run(self, setup: StudySetup) -> Iterator[str | None]:
        """The sweep's parent run (the same one on every resume), with SIGTERM handled like Ctrl-C."""
        sweep_ctx = self.context("hpo_sweep", study_name=setup.study_name)
        existing = (
            None
            if setup.fresh
            else sweep_parent_run_id(self.tracker, sweep_ctx, root_dir=self.root, config_dir=self.cfg)
        )
        with (
            sigterm_as_interrupt(),
            self.tracker.start_sweep_run(
                None,
                self.hpo,
                self.backbone,
                setup.study_name,
                self.hpo.get("checkpoint"),
                setup.storage_path,
                setup.resumed,
                context=sweep_ctx,
                output_dir=self.study_dir,
                data_config=self.exp.data,
                train_config=self.exp.train,
                config_dir=self.cfg,
                resume_run_id=existing,
            ) as parent,
        ):
            parent_run_id = parent.run_id if parent is not None else None
            if parent_run_id and existing:
                killed = mark_interrupted_children(self.tracker, parent_run_id)
                if killed:
                    logger.warning("marked %d run(s) left RUNNING by an interrupted sweep as KILLED", killed)
            if parent_run_id and existing:
                retire_unknown_trials(self.tracker, parent_run_id, setup.study)
            if parent_run_id and setup.resumed:
                rerecord_missing_trials(self, setup.study)
            yield parent_run_id

    def trial_budget(self, max_trials: int | None) -> tuple[int, float | None]:
        """How many trials must be done, and the monotonic deadline set by ``timeout_minutes`` (or None)."""
        sampling = self.hpo.get("sampling") or {}
        target = int(max_trials if max_trials is not None else sampling.get("max_trials", 1))
        timeout = sampling.get("timeout_minutes")
        return target, (time.monotonic() + float(timeout) * 60 if timeout else None)

    def run_trials(
        self, setup: StudySetup, folds: Any, budget: tuple[int, float | None], result: SweepResult
    ) -> None:
        """Run trials until the budget is used up, backing up ``study.db`` after each one."""
        target, deadline = budget
        while setup.done_trials < target:
            if deadline is not None and time.monotonic() > deadline:
                timeout = (self.hpo.get("sampling") or {}).get("timeout_minutes")
                logger.warning("sweep of %s stopped by timeout_minutes=%s", self.backbone, timeout)
                break
            trial = setup.study.ask()
            result.trials.append(self.run_trial(setup.study, trial, folds))
            if self.state is not None:  # coalesced, in the background: the store, artifacts and study.db
                self.state.snapshot([setup.storage_path])
            else:
                backup_or_warn(self.store, setup.storage_path, expect="file")
            if self.progress is not None:
                self.progress(self.backbone, setup.done_trials, target)

    def conclude(self, study: optuna.Study, result: SweepResult) -> None:
        """Log the sweep's final metrics, record the best trial and refit it (once) when refit is enabled."""
        self.tracker.log_final_metrics(study, self.metric)
        sweep_run = self.tracker.sweep_run
        log_trials_table(study, self.study_dir / "trials.csv", sweep_run.run_id if sweep_run else None,
                         client=self.tracker.client)  # fmt: skip
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return
        best = study.best_trial
        result.best_trial_number = best.number
        result.best_value = best.value
        result.best_params = dict(best.params)
        if (self.hpo.get("refit") or {}).get("enabled", True):
            self.refit(study, result)

    def finish(self, result: SweepResult) -> SweepResult:
        """Back up the whole study folder and report the tracking failures met on the way."""
        if self.state is not None:
            self.state.flush()  # study.db's snapshot first: the folder's copy below then skips it
            self.state.snapshot()
        backup_or_warn(self.store, self.study_dir, expect="dir")
        variant_dir = study_dir_for(self.root, self.cfg, self.backbone, self.study_key_hash, self.storage_env)
        if variant_dir != self.study_dir and variant_dir.is_dir():  # a force_new variant's trial folders
            backup_or_warn(self.store, variant_dir, expect="dir")
        if self.state is not None:
            self.state.flush()
        result.tracking_failures = list(self.tracker.failures)
        return result


def run_local_hpo_sweep(
    train_fn: TrainFn,
    experiment: ExperimentConfig,
    backbone: str,
    *,
    root_dir: Path | str,
    config_dir: Path | str,
    labels: Sequence[int],
    store: DriveBackupStore | None = None,
    storage_env: str = "local",
    tracking_uri: str | None = None,
    max_trials: int | None = None,
    progress: ProgressFn | None = None,
    state: ProjectState | None = None,
) -> SweepResult:
    """Run (or resume) the HPO sweep of ``backbone`` until ``max_trials`` trials are COMPLETE or PRUNED.

    The study lives in ``<local outputs>/hpo/<env>/<model>/study-<s8>/study.db`` and is restored from
    ``store`` first when missing locally. Each trial is an MLflow child run of the sweep's parent run (the
    same parent on every resume) with one grandchild per CV fold; a failing trial is recorded FAIL and the
    sweep goes on; Ctrl-C/SIGTERM end the current runs KILLED and leave the study resumable. After every
    trial ``study.db`` is backed up; at the end the best trial is refit on all data and the study folder is
    backed up. With ``state`` (or a ``store``, from which one is built, owning the root for the call) the
    project state is restored first and the tracking store is snapshotted after every trial (coalesced) and
    flushed at the end. A COMPLETE trial whose run is missing from the store is recorded again.
    """
    root, cfg = Path(root_dir), Path(config_dir)
    with session_for(state, store, root_dir=root, config_dir=cfg, tracking_uri=tracking_uri) as session:
        sweep = _Sweep(
            train_fn, experiment, backbone, root_dir=root, config_dir=cfg, labels=labels, store=store,
            state=session, storage_env=storage_env, tracking_uri=tracking_uri, progress=progress,
        )  # fmt: skip
        setup = sweep.open_or_restore_study()
        result = SweepResult(
            backbone=backbone,
            study_name=setup.study_name,
            study_key_hash=sweep.study_key_hash,
            study_dir=sweep.study_dir,
            experiment_name=sweep.experiment_name,
            parent_run_id=None,
            resumed=setup.resumed,
            restored_from_backup=setup.restored_from_backup
            or (session is not None and session.was_restored(setup.storage_path)),
        )
        with sweep.parent_run(setup) as parent_run_id:
            result.parent_run_id = parent_run_id
            sweep.run_trials(setup, sweep.fold_splits(), sweep.trial_budget(max_trials), result)
            sweep.conclude(setup.study, result)
        return sweep.finish(result)
