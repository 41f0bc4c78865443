"""The HPO sweep of one backbone: a resumable Optuna study, CV trials tracked in MLflow, refit, backups."""

from __future__ import annotations

import logging
import statistics
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
    NamingContext,
    build_hpo_trial_key,
    build_hpo_trial_key_hash,
    build_mlflow_experiment_name,
    build_output_path,
    compute_study_key_hash_v2,
    create_naming_context,
    load_naming_config,
)
from mlrig.orchestration.configs import ExperimentConfig, resolve_seed
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.folds import load_or_create_fold_splits
from mlrig.orchestration.requests import TrainFn, TrainRequest, TrialPruned
from mlrig.orchestration.resume import (
    rerecord_missing_trials,
    retire_unknown_trials,
    run_exists,
    trial_run_id,
)
from mlrig.orchestration.runs import (
    mark_interrupted_children,
    retire_namesakes,
    sigterm_as_interrupt,
    sweep_parent_run_id,
)
from mlrig.orchestration.state import ProjectState, session_for
from mlrig.orchestration.study import StudySetup, backup_or_warn, open_study, study_dir_for
from mlrig.paths import atomic_write_json, load_paths_config
from mlrig.storage import DriveBackupStore
from mlrig.tracking import (
    MLflowSweepTracker,
    StepLogger,
    TrackedRun,
    log_trials_table,
    objective_of,
    train_key,
    train_set_metrics,
)

__all__ = ["SweepResult", "TrialOutcome", "run_local_hpo_sweep"]

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


class _Sweep:
    """One invocation of a sweep; holds what the trial loop shares."""

    def __init__(
        self,
        train_fn: TrainFn,
        experiment: ExperimentConfig,
        backbone: str,
        *,
        root_dir: Path,
        config_dir: Path,
        labels: Sequence[int],
        store: DriveBackupStore | None,
        state: ProjectState | None,
        storage_env: str,
        tracking_uri: str | None,
        progress: ProgressFn | None,
    ) -> None:
        self.train_fn = train_fn
        self.exp = experiment
        self.backbone = backbone
        self.root = root_dir
        self.cfg = config_dir
        self.labels = labels
        self.store = store
        self.state = state
        self.storage_env = storage_env
        # Loaded once for the whole sweep: every trial's folder is laid out by the same paths.yaml.
        self.paths_config = load_paths_config(config_dir, storage_env)
        self.naming_config = load_naming_config(config_dir, paths_config=self.paths_config)  # likewise
        self.progress = progress
        self.hpo = dict(experiment.hpo)
        self.metric, self.direction = objective_of(self.hpo)
        self.seed = resolve_seed(experiment)
        # study.db (every force_new variant's study) lives here; a variant's own hash is set on opening
        self.study_key_hash = compute_study_key_hash_v2(experiment.data, self.hpo, experiment.train, backbone)
        self.study_dir = study_dir_for(root_dir, config_dir, backbone, self.study_key_hash, storage_env)
        self.experiment_name = build_mlflow_experiment_name(experiment.name, "hpo", backbone)
        self.tracker = MLflowSweepTracker(
            self.experiment_name,
            tracking_uri=tracking_uri,
            config_dir=config_dir,
            root_dir=root_dir,
            naming_config=self.naming_config,
        )

    def context(self, stage: str, **kwargs: Any) -> NamingContext:
        """The naming context of one of this sweep's runs (``stage``: hpo_sweep, hpo_trial, ...)."""
        process = "hpo_refit" if stage == "hpo_refit" else "hpo"
        return create_naming_context(
            process,
            self.backbone,
            stage=stage,
            storage_env=self.storage_env,
            environment=self.storage_env,
            study_key_hash=self.study_key_hash,
            **kwargs,
        )

    def train(self, params: dict[str, Any], out: Path, **kwargs: Any) -> dict[str, float]:
        """Call the user's training function; its metrics must include the objective metric."""
        metrics = self.train_fn(
            TrainRequest(
                backbone=self.backbone,
                params=params,
                output_dir=out,
                seed=self.seed,
                data_config=self.exp.data,
                train_config=self.exp.train,
                **kwargs,
            )
        )
        if self.metric not in metrics:
            raise OrchestrationError(
                f"training function returned {sorted(metrics)} without the objective metric {self.metric!r}"
            )
        return {k: float(v) for k, v in metrics.items()}

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

    def _folds(
        self,
        params: dict[str, Any],
        trial_dir: Path,
        folds: Any,
        number: int,
        trial_key_hash: str,
        run: TrackedRun,
        report: Callable[[int, float], bool],
    ) -> float:
        """Train the trial (once, or once per CV fold in a grandchild run); return its objective value."""
        if folds is None:
            curve = StepLogger(run, self.metric, report)  # the objective's curve, step = epoch
            metrics = self.train(params, trial_dir, trial_number=number, report=curve)
            atomic_write_json(trial_dir / "metrics.json", metrics)
            curve.log_final(metrics)
            return metrics[self.metric]
        values: list[float] = []
        for k, (train_idx, eval_idx) in enumerate(folds.folds):
            fold_ctx = self.context(
                "hpo_trial_fold",
                trial_key_hash=trial_key_hash,
                trial_number=number,
                fold_idx=k,
            )
            pruned: TrialPruned | None = None
            with self.tracker.start_fold_run(run, k, trial_number=number, context=fold_ctx) as fold_run:
                curve = StepLogger(fold_run, self.metric, report if k == 0 else None)
                try:
                    fold_metrics = self.train(
                        params,
                        trial_dir / "cv" / f"fold{k}",
                        train_indices=train_idx,
                        eval_indices=eval_idx,
                        fold_idx=k,
                        trial_number=number,
                        report=curve,
                    )
                except TrialPruned as exc:  # a normal outcome: the fold run ends FINISHED, marked pruned
                    fold_run.set_tags({self.naming_config.tags.key("hpo", "trial_state"): "PRUNED"})
                    pruned = exc
                else:
                    curve.log_final(fold_metrics)
            if pruned is not None:
                raise pruned
            values.append(fold_metrics[self.metric])
        mean = statistics.fmean(values)
        std = statistics.pstdev(values)
        summary = {self.metric: mean, "cv_mean": mean, "cv_std": std}
        summary.update({f"fold_{i}_{self.metric}": v for i, v in enumerate(values)})
        atomic_write_json(trial_dir / "metrics.json", summary)
        run.log_metrics(summary)
        return mean

    def refit(self, study: optuna.Study, result: SweepResult) -> None:
        """Retrain the best trial on all data in a refit run, unless the study records it was done."""
        best = study.best_trial
        done = study.user_attrs.get("refit")
        if (
            isinstance(done, dict)
            and done.get("trial_number") == best.number
            and run_exists(self.tracker, done.get("run_id"))
        ):
            result.refit_run_id = str(done["run_id"])
            result.refit_dir = Path(str(done["dir"]))
            return
        trial_key_hash = str(best.user_attrs.get("trial_key_hash", ""))
        ctx = self.context(
            "hpo_refit",
            trial_key_hash=trial_key_hash,
            trial_number=best.number,
        )
        refit_dir = build_output_path(self.root, ctx, self.cfg, paths_config=self.paths_config)
        with self.tracker.start_refit_run(
            trial_run_id(study, best), context=ctx, params=best.params, output_dir=refit_dir
        ) as run:
            if run.run_id:  # a refit killed earlier: ended KILLED, its name left to this one
                retire_namesakes(self.tracker.client, run.run_id, tags=self.naming_config.tags)
            curve = StepLogger(run, train_key(self.metric))  # scored on its training rows: train_<metric>
            metrics = self.train(dict(best.params), refit_dir, trial_number=best.number, report=curve)
            atomic_write_json(refit_dir / "metrics.json", metrics)
            curve.log_final(train_set_metrics(metrics))
            if (self.hpo.get("mlflow") or {}).get("log_best_checkpoint", True) and run.run_id:
                self.tracker.log_best_checkpoint(refit_dir / "checkpoint", run_id=run.run_id)
        result.refit_run_id = run.run_id
        result.refit_dir = refit_dir
        if run.run_id:
            # Recorded in the study so a later invocation with nothing left to do doesn't refit again.
            study.set_user_attr(
                "refit", {"trial_number": best.number, "run_id": run.run_id, "dir": str(refit_dir)}
            )

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
