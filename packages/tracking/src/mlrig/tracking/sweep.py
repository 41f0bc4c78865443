"""The HPO sweep tracker: sweep parent → trial children → CV-fold grandchildren; refit is a child of the
sweep.

Each trial (and fold, and refit) costs three REST calls: create with every tag, one batch, terminate. The
sweep parent is ended when its block exits (FINISHED / FAILED / KILLED), never left RUNNING.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag

from mlrig.naming import (
    NamingContext,
    build_hpo_study_family_hash,
    build_hpo_study_family_key,
    build_trial_run_name,
    compute_study_key_hash_v2,
    load_naming_config,
)
from mlrig.tracking.artifacts import ARCHIVE_ARTIFACT, log_checkpoint_safe
from mlrig.tracking.queries import objective_of
from mlrig.tracking.runs import RunHandle, TrackedRun, run_status_for
from mlrig.tracking.tracker_base import BaseTracker

logger = logging.getLogger(__name__)


class MLflowSweepTracker(BaseTracker):
    """Tracks one HPO sweep. Use :meth:`start_sweep_run`, then :meth:`start_trial_run` per trial (and
    :meth:`start_fold_run` per CV fold inside it), :meth:`start_refit_run` for the refit, and
    :meth:`log_final_metrics` before the sweep block ends."""

    stage = "hpo"

    def __init__(self, experiment_name: str, **kwargs: Any) -> None:
        super().__init__(experiment_name, **kwargs)
        self._sweep: TrackedRun | None = None
        self.trial_run_ids: dict[int, str] = {}

    @property
    def sweep_run(self) -> TrackedRun | None:
        """The open sweep parent run."""
        return self._sweep

    @contextmanager
    def start_sweep_run(
        self,
        run_name: str | None,
        hpo_config: Mapping[str, Any],
        backbone: str,
        study_name: str,
        checkpoint_config: Mapping[str, Any] | None,
        storage_path: Path | str | None,
        should_resume: bool,
        context: NamingContext | None = None,
        output_dir: Path | str | None = None,
        group_id: str | None = None,
        data_config: Mapping[str, Any] | None = None,
        benchmark_config: Mapping[str, Any] | None = None,
        train_config: Mapping[str, Any] | None = None,
        config_dir: Path | str | None = None,
        resume_run_id: str | None = None,
    ) -> Iterator[RunHandle | None]:
        """The sweep parent run with grouping hashes, sweep tags and sweep params; ended when the block exits.

        ``study_key_hash`` is the v2 hash of the configs (or the context's); ``study_family_hash`` includes
        ``benchmark_config`` (as the original tracker did). Missing config keys are simply not logged.
        With ``resume_run_id`` the existing parent run is reopened (status RUNNING again, tagged
        ``code.resumed``) instead of creating a new one, so a resumed sweep keeps one parent run.
        """
        if config_dir is not None and self.config_dir is None:
            self.config_dir = Path(config_dir)
            if not self._naming_given:  # loaded at construction without a config dir: load this one's
                self.naming_config = load_naming_config(self.config_dir)
        if not self.enabled:
            yield None
            return
        study_key_hash = context.study_key_hash if context is not None else None
        if (
            study_key_hash is None
            and data_config is not None
            and train_config is not None
            and context is not None
        ):
            study_key_hash = compute_study_key_hash_v2(data_config, hpo_config, train_config, context.model)
        family = None
        if data_config is not None:
            family = build_hpo_study_family_hash(
                build_hpo_study_family_key(data_config, hpo_config, benchmark_config)
            )
        hashes = {"study_key_hash": study_key_hash, "study_family_hash": family}
        name, tags, run_key, run_key_hash = self._identity(
            run_name, context, output_dir, None, group_id, **hashes
        )
        tags.update(self._run_type("sweep"))
        metric, direction = objective_of(hpo_config)
        sampling = hpo_config.get("sampling", {}) or {}
        checkpoint = checkpoint_config or {}
        params: dict[str, object] = {
            "backbone": backbone,
            "study_name": study_name,
            "objective_goal": direction,
            "primary_metric": metric,
            "objective_metric": metric,
            "checkpoint_enabled": bool(checkpoint.get("enabled", False)),
            "checkpoint_path": str(Path(storage_path).resolve()) if storage_path else "None",
            "checkpoint_storage_type": "sqlite" if storage_path else "None",
            "resumed_from_checkpoint": bool(should_resume),
        }
        if "max_trials" in sampling:
            params["max_trials"] = sampling["max_trials"]
        opened = (
            self._reopen(resume_run_id, name, tags, run_key, run_key_hash, params)
            if resume_run_id
            else self._open_run(self._track(name, tags, run_key=run_key, run_key_hash=run_key_hash), params)
        )
        with opened as handle:
            self._sweep = self._run
            if self._sweep is not None:
                # sweep params visible while the sweep runs (one call per sweep, not per trial)
                self._sweep.flush()
            try:
                yield handle
            finally:
                self._sweep = None
                # children end in the background; the parent is ended after all of them
                if not self.wait(self.retry.deadline):
                    self._record("background run endings still pending when the sweep ended")

    @contextmanager
    def _reopen(
        self,
        run_id: str,
        name: str,
        tags: Mapping[str, str],
        run_key: str,
        run_key_hash: str,
        params: Mapping[str, object],
    ) -> Iterator[RunHandle | None]:
        """Reopen an existing sweep run: RUNNING again, new params only (MLflow params are immutable)."""
        run = _ReopenedRun(
            self.client,
            experiment_id=self._experiment() or "",
            run_name=name,
            tags=self._written(tags),
            experiment_name=self.experiment_name,
            run_key=run_key,
            run_key_hash=run_key_hash,
            retry=self.retry,
        )
        try:
            existing = self.retry.call(lambda: self.client.get_run(run_id), f"get run {run_id}")
            self.retry.call(lambda: self.client.update_run(run_id, status="RUNNING"), f"reopen run {run_id}")
            run.run_id = run_id
            run.run_name = existing.info.run_name or name
            run.artifact_uri = existing.info.artifact_uri
            run.existing_params = dict(existing.data.params)
            run.set_tags({self._tag_key("hpo", "resumed"): "true", "resumed_from_checkpoint": "true"})
        except Exception as exc:
            self._record(f"reopen sweep run {run_id}: {type(exc).__name__}: {exc}; creating a new one")
            run.create()
        try:
            with self._activate(run, params) as handle:
                yield handle
        except BaseException as exc:
            run.end(run_status_for(exc))
            raise
        else:
            run.end("FINISHED")
        finally:
            self.failures.extend(run.failures)

    def _child(
        self,
        run_name: str | None,
        context: NamingContext | None,
        output_dir: Path | str | None,
        parent_run_id: str | None,
        extra_tags: Mapping[str, str],
        params: Mapping[str, object] | None,
    ) -> Any:
        """Context manager for a child run of ``parent_run_id`` in the sweep's experiment."""
        name, tags, run_key, run_key_hash = self._identity(run_name, context, output_dir, None, None)
        tags.update(extra_tags)
        tracked = self._track(
            name,
            tags,
            parent_run_id=parent_run_id,
            run_key=run_key,
            run_key_hash=run_key_hash,
            background=self.background,
        )
        return _ChildRun(self, tracked, params)

    def start_trial_run(
        self,
        trial_number: int,
        *,
        context: NamingContext | None = None,
        run_name: str | None = None,
        params: Mapping[str, object] | None = None,
        output_dir: Path | str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Any:
        """Context manager yielding the trial's :class:`TrackedRun` (child of the sweep): 3 REST calls."""
        extra = {
            self._tag_key("hpo", "trial_number"): str(trial_number),
            **self._run_type("trial"),
            **(tags or {}),
        }
        if run_name is None and context is None:
            run_name = build_trial_run_name(trial_number)
        parent = self._sweep.run_id if self._sweep is not None else None
        child = self._child(run_name, context, output_dir, parent, extra, params)
        child.trial_number = trial_number
        return child

    def start_fold_run(
        self,
        trial_run: TrackedRun | str | None,
        fold_idx: int,
        *,
        trial_number: int | None = None,
        context: NamingContext | None = None,
        run_name: str | None = None,
        params: Mapping[str, object] | None = None,
        output_dir: Path | str | None = None,
    ) -> Any:
        """Context manager yielding a CV-fold run, child of ``trial_run`` (a run or run id)."""
        parent = trial_run.run_id if isinstance(trial_run, TrackedRun) else trial_run
        extra = {"fold_idx": str(fold_idx), **self._run_type("fold")}
        if trial_number is not None:
            extra[self._tag_key("hpo", "trial_number")] = str(trial_number)
        if run_name is None and context is None:
            run_name = build_trial_run_name(trial_number, fold_idx)
        return self._child(run_name, context, output_dir, parent, extra, params)

    def start_refit_run(
        self,
        trial_run_id: str | None,
        *,
        context: NamingContext | None = None,
        run_name: str | None = None,
        params: Mapping[str, object] | None = None,
        output_dir: Path | str | None = None,
    ) -> Any:
        """Context manager yielding the refit run: child of the sweep, linked to its trial by
        ``code.refit.of_trial_run_id``."""
        extra = {**self._run_type("refit"), self._tag_key("training", "refit"): "true"}
        if trial_run_id:
            extra[self._tag_key("refit", "of_trial_run_id")] = trial_run_id
        if run_name is None and context is None:
            run_name = "refit"
        parent = self._sweep.run_id if self._sweep is not None else None
        return self._child(run_name, context, output_dir, parent, extra, params)

    def log_final_metrics(
        self,
        study: Any,
        objective_metric: str,
        parent_run_id: str | None = None,
        *,
        hpo_config: Mapping[str, Any] | None = None,
        child_runs_map: Mapping[int, str] | None = None,
        **_ignored: Any,
    ) -> None:
        """``n_trials``, ``n_completed_trials``, ``best_<metric>``, ``best_<param>`` params and the best
        trial's number / run id, on ``parent_run_id`` (default: the open sweep run). ``study`` is an Optuna
        study (used by duck typing: ``trials``, ``best_trial``). A study without a completed trial logs only
        the counts. Trial run ids come from this tracker's trials, then ``child_runs_map``; with
        ``hpo_config.refit.enabled`` the sweep is tagged ``code.refit_planned=true``. The reference's other
        keyword arguments are accepted and ignored (checkpoints: :meth:`log_best_checkpoint`).
        """
        trials = list(getattr(study, "trials", []))
        completed = [t for t in trials if getattr(getattr(t, "state", None), "name", "") == "COMPLETE"]
        metrics = {"n_trials": float(len(trials)), "n_completed_trials": float(len(completed))}
        params: dict[str, object] = {}
        tags: dict[str, str] = {}
        if completed:
            best = study.best_trial
            if best.value is not None:
                metrics[f"best_{objective_metric}"] = float(best.value)
            params.update({f"best_{k}": v for k, v in best.params.items()})
            tags[self._tag_key("hpo", "best_trial_number")] = str(best.number)
            best_run = self.trial_run_ids.get(best.number) or (child_runs_map or {}).get(best.number)
            if best_run:
                tags[self._tag_key("hpo", "best_trial_run_id")] = best_run
        refit = (hpo_config or {}).get("refit") or {}
        if isinstance(refit, Mapping) and refit.get("enabled"):
            tags[self._tag_key("hpo", "refit_planned")] = "true"
        target = self._sweep if parent_run_id in (None, getattr(self._sweep, "run_id", None)) else None
        if target is not None:
            target.log_metrics(metrics)
            target.log_params(params)
            target.set_tags(tags)
            return
        if not parent_run_id:
            logger.debug("log_final_metrics: no sweep run open and no parent_run_id; nothing logged")
            return
        self._log_batch_to(parent_run_id, metrics, params, tags)

    def _log_batch_to(
        self, run_id: str, metrics: Mapping[str, float], params: Mapping[str, object], tags: Mapping[str, str]
    ) -> None:
        now = int(time.time() * 1000)
        batch_metrics = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        batch_params = [Param(k, str(v)) for k, v in params.items()]
        batch_tags = [RunTag(k, v) for k, v in tags.items()]
        try:
            self.retry.call(
                lambda: self.client.log_batch(
                    run_id, metrics=batch_metrics, params=batch_params, tags=batch_tags
                ),
                f"log final metrics to run {run_id}",
            )
        except Exception as exc:
            self._record(f"log final metrics to run {run_id}: {type(exc).__name__}: {exc}")

    def log_best_checkpoint(
        self,
        checkpoint_dir: Path | str,
        *,
        run_id: str | None = None,
        trial_number: int | None = None,
        artifact_path: str = ARCHIVE_ARTIFACT,
    ) -> bool:
        """Upload the best checkpoint to ``run_id`` (default: the open sweep run) and tag
        ``code.artifact.available=true`` there only when the upload succeeded."""
        target = run_id or (self._sweep.run_id if self._sweep is not None else None)
        if not target:
            self._record(f"log_best_checkpoint({checkpoint_dir}): no target run")
            return False
        ok = log_checkpoint_safe(
            checkpoint_dir, artifact_path, trial_number, target, client=self.client, retry=self.retry
        )
        if ok:
            self._log_batch_to(target, {}, {}, {self._tag_key("artifact", "available"): "true"})
        else:
            self._record(f"checkpoint upload of {checkpoint_dir} to run {target} failed")
        return ok


class _ReopenedRun(TrackedRun):
    """A run from an earlier session: params it already has keep their first value (MLflow rejects a
    changed param); the new value is kept as a ``param_update.<key>`` tag instead."""

    existing_params: dict[str, str]

    def log_params(self, params: Mapping[str, object]) -> None:
        known = getattr(self, "existing_params", {})
        fresh = {k: v for k, v in params.items() if k not in known}
        changed = {f"param_update.{k}": v for k, v in params.items() if k in known and known[k] != str(v)}
        super().log_params(fresh)
        if changed:
            self.set_tags(changed)


class _ChildRun:
    """Context manager for a sweep child (trial/fold/refit); records trial run ids on the tracker."""

    def __init__(
        self,
        tracker: MLflowSweepTracker,
        tracked: AbstractContextManager[TrackedRun],
        params: Mapping[str, object] | None,
    ) -> None:
        self.tracker = tracker
        self.trial_number: int | None = None
        self._cm = tracked
        self._params = params
        self._run: TrackedRun | None = None

    def __enter__(self) -> TrackedRun:
        run = self._cm.__enter__()
        self._run = run
        self.tracker._register(run)
        if self._params:
            run.log_params(self._params)
        if self.trial_number is not None and run.run_id is not None:
            self.tracker.trial_run_ids[self.trial_number] = run.run_id
        return run

    def __exit__(self, *exc_info: Any) -> bool | None:
        return self._cm.__exit__(*exc_info)
