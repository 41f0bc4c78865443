"""How a sweep trains: the setup one invocation shares, the call of the user's training function, one trial's
training (a grandchild run per CV fold, pruning) and the refit of the best trial. (Internal to
:mod:`mlrig.orchestration.sweep`, whose ``_Sweep`` adds the study's steps; not exported.)"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from mlrig.naming import (
    NamingContext,
    build_mlflow_experiment_name,
    build_output_path,
    compute_study_key_hash_v2,
    create_naming_context,
    load_naming_config,
)
from mlrig.orchestration.configs import ExperimentConfig, resolve_seed
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import TrainFn, TrainRequest, TrialPruned
from mlrig.orchestration.resume import run_exists, trial_run_id
from mlrig.orchestration.runs import retire_namesakes
from mlrig.orchestration.state import ProjectState
from mlrig.orchestration.study import study_dir_for
from mlrig.paths import atomic_write_json, load_paths_config
from mlrig.storage import DriveBackupStore
from mlrig.tracking import (
    MLflowSweepTracker,
    StepLogger,
    TrackedRun,
    objective_of,
    train_key,
    train_set_metrics,
)

if TYPE_CHECKING:
    from mlrig.orchestration.sweep import ProgressFn, SweepResult


class SweepTraining:
    """One invocation of a sweep: what its steps share, and the training of its trials and of the refit."""

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
        """Retrain the best trial on all data in a refit run, unless the study records it was done and its run
        ended FINISHED in the store (a store restored from an older snapshot may hold it unfinished)."""
        best = study.best_trial
        done = study.user_attrs.get("refit")
        if (
            isinstance(done, dict)
            and done.get("trial_number") == best.number
            and run_exists(self.tracker, done.get("run_id"), finished=True)
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
