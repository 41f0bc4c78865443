"""``mlrig demo``: the whole pipeline on embedded defaults with a small numpy model.

sweep (CV + refit) for each backbone → champion per backbone → benchmark of each champion's refit checkpoint →
best model (metric and benchmarked latency) → final training → int8 conversion. Local SQLite MLflow store
under ``<root>/mlruns``, Optuna studies under ``<root>/outputs``, and a local folder (``<root>/backup``)
standing in for the Google Drive mount. Running it again resumes and reuses.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrig.orchestration import demo_data, demo_model, demo_pyfunc
from mlrig.orchestration.candidates import benchmark_latencies
from mlrig.orchestration.configs import (
    DEFAULT_CONFIG_DIR,
    ExperimentConfig,
    apply_overrides,
    load_experiment_config,
    resolved_config,
)
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import BenchmarkFn, ConvertFn, TrainFn, TrainRequest
from mlrig.orchestration.selection import Champion, select_best_model, select_champion
from mlrig.orchestration.stages import StageResult, run_benchmarking, run_conversion, run_final_training
from mlrig.orchestration.state import ROOT_WAIT_S, ProjectState, project_session
from mlrig.orchestration.sweep import ProgressFn, SweepResult, run_local_hpo_sweep
from mlrig.paths import atomic_write_text, get_outputs_dir, infer_config_dir
from mlrig.storage import BackupResult, DriveBackupStore
from mlrig.tracking import MLflowSweepTracker, log_artifact_safe, resolve_tracking_uri

logger = logging.getLogger(__name__)

DEMO_EXPERIMENT = "demo"
RESOLVED_CONFIG = "resolved_config.yaml"

StepFn = Callable[[str], None]
LabelsFn = Callable[[Mapping[str, Any]], Sequence[int]]


@dataclass
class DemoSummary:
    """Everything the demo did, for the summary table and the tests."""

    root_dir: Path
    config_dir: Path
    tracking_uri: str
    backup_root: Path
    sweeps: list[SweepResult] = field(default_factory=list)
    champions: list[Champion] = field(default_factory=list)
    benchmarks: list[StageResult] = field(default_factory=list)  # one per champion, before selection
    latencies_ms: dict[str, float] = field(default_factory=dict)  # what select_best_model was given
    best: Champion | None = None
    final_training: StageResult | None = None
    conversion: StageResult | None = None
    benchmark: StageResult | None = None  # the best model's benchmark (one of ``benchmarks``)
    timings: dict[str, float] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def mlflow_ui_command(self) -> str:
        """The command that opens the MLflow UI on this store, runnable as printed with this interpreter
        (the UI needs the full ``mlflow``: ``pip install 'mlrig-orchestration[ui]'``)."""
        import shlex

        return (
            f"{shlex.quote(sys.executable)} -m mlflow ui --backend-store-uri {shlex.quote(self.tracking_uri)}"
        )


class _TimedStore(DriveBackupStore):
    """The backup store, timing every backup for the demo's split."""

    seconds: float = 0.0

    def backup(self, local_path: Path | str, expect: Any = "any") -> BackupResult:
        t0 = time.perf_counter()
        try:
            return super().backup(local_path, expect)
        finally:
            self.seconds += time.perf_counter() - t0


def prepare_demo_config(root_dir: Path) -> Path:
    """``<root>/config`` with the demo's experiment, data, HPO and stage configs (existing files are kept)."""
    config_dir = infer_config_dir(root_dir=root_dir)
    for src in sorted(DEFAULT_CONFIG_DIR.rglob("*.yaml")):
        dst = config_dir / src.relative_to(DEFAULT_CONFIG_DIR)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    return config_dir


def run_demo(
    root_dir: Path | str,
    *,
    config_dir: Path | str | None = None,
    tracking_uri: str | None = None,
    backup_root: Path | str | None = None,
    max_trials: int | None = None,
    progress: ProgressFn | None = None,
    wait_for_root: float | None = ROOT_WAIT_S,
    overrides: Sequence[str] = (),
    on_step: StepFn | None = None,
) -> DemoSummary:
    """Run the demo pipeline under ``root_dir`` and return what it did (see the module docstring): the
    pipeline of :func:`run_pipeline` with the demo's model, data and configs (``<root>/config``, written
    from the packaged defaults when missing)."""
    root = Path(root_dir).absolute()
    if config_dir is None:
        root.mkdir(parents=True, exist_ok=True)
    cfg = Path(config_dir).absolute() if config_dir is not None else prepare_demo_config(root)
    return run_pipeline(
        root, DEMO_EXPERIMENT, demo_model.train, convert=demo_model.convert, benchmark=demo_model.benchmark,
        labels=demo_labels, config_dir=cfg, tracking_uri=tracking_uri,
        backup_root=backup_root if backup_root is not None else root / "backup", max_trials=max_trials,
        overrides=overrides, progress=progress, on_step=on_step, wait_for_root=wait_for_root,
    )  # fmt: skip


def demo_labels(data_config: Mapping[str, Any]) -> list[int]:
    """The class label of every training row of the demo dataset (what stratified CV folds split)."""
    _, labels = demo_data.make_dataset(data_config)
    return [int(v) for v in labels]


def run_pipeline(
    root_dir: Path | str,
    experiment_name: str,
    train: TrainFn,
    *,
    convert: ConvertFn | None = None,
    benchmark: BenchmarkFn | None = None,
    labels: LabelsFn | None = None,
    config_dir: Path | str | None = None,
    tracking_uri: str | None = None,
    backup_root: Path | str | None = None,
    max_trials: int | None = None,
    overrides: Sequence[str] = (),
    stages: bool = True,
    progress: ProgressFn | None = None,
    on_step: StepFn | None = None,
    wait_for_root: float | None = ROOT_WAIT_S,
) -> DemoSummary:
    """Sweep every backbone of ``experiment_name`` with the user's ``train``, then (``stages``) select the
    champion and run final training, ``convert`` and ``benchmark`` (the demo's when None).

    Everything that can be checked is checked before any folder, store or study exists: the config files
    against their schemas, the Hydra-style ``overrides`` (:func:`~mlrig.orchestration.apply_overrides`),
    and that ``max_trials`` leaves selection enough trials per backbone. ``labels(data_config)`` gives the
    rows' classes for the CV folds (default: the demo dataset's). The resolved config (after overrides) is
    written as ``resolved_config.yaml`` beside each sweep's study and each stage's outputs and logged as an
    artifact of the sweep parent run and the stage runs. The process owns the root for the whole run
    (another one waits ``wait_for_root`` seconds, then stops with a ``RootBusyError`` naming the holder);
    the project state is restored from the backup first.
    """
    t_start = time.perf_counter()
    root = Path(root_dir).absolute()
    cfg = Path(config_dir).absolute() if config_dir is not None else infer_config_dir(root_dir=root)
    if not (cfg / "experiment" / f"{experiment_name}.yaml").is_file():
        known = sorted(p.stem for p in cfg.glob("experiment/*.yaml"))
        raise OrchestrationError(
            f"no experiment {experiment_name!r} in {cfg}/experiment (known: {', '.join(known) or 'none'})"
        )
    experiment = apply_overrides(load_experiment_config(cfg, experiment_name), overrides)
    if stages:
        _check_enough_trials(experiment, max_trials)
    rows = (labels or demo_labels)(experiment.data)
    uri = resolve_tracking_uri(tracking_uri, root_dir=root, config_dir=cfg)
    backup = Path(backup_root).absolute() if backup_root is not None else root / "backup"
    root.mkdir(parents=True, exist_ok=True)
    backup.mkdir(parents=True, exist_ok=True)  # the local folder standing in for a mounted drive
    store = _TimedStore(root, backup, outputs_dir=get_outputs_dir(root, cfg, "local"))
    summary = DemoSummary(root_dir=root, config_dir=cfg, tracking_uri=uri, backup_root=backup)
    summary.resolved = resolved_config(experiment, overrides)
    summary.timings["setup_s"] = time.perf_counter() - t_start
    state = ProjectState(root, backup, uri, config_dir=cfg, outputs_store=store)
    step = on_step or (lambda _: None)
    step(f"opening the project state of {root} (restore first, MLflow store)")
    t0 = time.perf_counter()
    # Owning the root, restoring first and creating the SQLite store: measured on their own for the split.
    with project_session(state, wait=wait_for_root):
        summary.timings["store_init_s"] = time.perf_counter() - t0
        fns = _UserFns(train, convert or demo_model.convert, benchmark or demo_model.benchmark, rows)
        _pipeline(summary, experiment, store, state, max_trials, progress, fns, stages, step)
    return _finish_timings(summary, t_start, store)


def _check_enough_trials(experiment: ExperimentConfig, max_trials: int | None) -> None:
    sampling = experiment.hpo.get("sampling") or {}
    planned = max_trials if max_trials is not None else sampling.get("max_trials", 1)
    champion = experiment.selection.get("champion_selection") or {}
    needed = champion.get("min_trials_per_group", 1)
    if isinstance(planned, int) and isinstance(needed, int) and planned < needed:
        raise OrchestrationError(
            f"max_trials={planned} is fewer than champion_selection.min_trials_per_group={needed} of the "
            "selection config: no backbone could have a champion; run more trials, lower "
            "min_trials_per_group, or sweep only (mlrig sweep)"
        )


@dataclass(frozen=True)
class _UserFns:
    train: TrainFn
    convert: ConvertFn
    benchmark: BenchmarkFn
    labels: Sequence[int]


def _save_resolved(summary: DemoSummary, folder: Path, run_id: str | None, store: DriveBackupStore) -> None:
    """``resolved_config.yaml`` in ``folder`` (atomically, backed up) and as an artifact of ``run_id``."""
    import yaml

    path = folder / RESOLVED_CONFIG
    atomic_write_text(path, yaml.safe_dump(summary.resolved, sort_keys=False))
    result = store.backup(path, expect="file")
    if not result.ok:
        logger.warning("backup of %s failed: %s", path, result.reason)
    if run_id is not None:
        log_artifact_safe(path, run_id=run_id, tracking_uri=summary.tracking_uri)


def _pipeline(
    summary: DemoSummary,
    experiment: ExperimentConfig,
    store: _TimedStore,
    state: ProjectState,
    max_trials: int | None,
    progress: ProgressFn | None,
    fns: _UserFns,
    stages: bool,
    step: StepFn,
) -> None:
    """Sweeps, selection and the stages, inside the pipeline's session."""
    root, cfg, uri = summary.root_dir, summary.config_dir, summary.tracking_uri

    train_seconds = 0.0

    def timed_train(request: TrainRequest) -> Mapping[str, float]:
        nonlocal train_seconds
        t0 = time.perf_counter()
        try:
            return fns.train(request)
        finally:
            train_seconds += time.perf_counter() - t0

    t_sweeps = time.perf_counter()
    for backbone in experiment.backbones:
        step(f"sweep {backbone}")
        sweep = run_local_hpo_sweep(
            timed_train, experiment, backbone, root_dir=root, config_dir=cfg, labels=fns.labels,
            store=store, state=state, tracking_uri=uri, max_trials=max_trials, progress=progress,
        )  # fmt: skip
        summary.sweeps.append(sweep)
        _save_resolved(summary, sweep.study_dir, sweep.parent_run_id, store)
    summary.timings["sweeps_s"] = time.perf_counter() - t_sweeps
    summary.timings["training_s"] = train_seconds
    if not stages:
        return
    t_rest = time.perf_counter()
    step("champion selection")
    for sweep in summary.sweeps:
        tracker = MLflowSweepTracker(sweep.experiment_name, tracking_uri=uri, config_dir=cfg, root_dir=root)
        summary.champions.append(
            select_champion(
                tracker, sweep.backbone, experiment.selection, hpo_objective=experiment.hpo.get("objective")
            )
        )
    kw: dict[str, Any] = {
        "root_dir": root, "config_dir": cfg, "store": store, "tracking_uri": uri, "state": state
    }  # fmt: skip
    benchmarks: dict[str, StageResult] = {}
    for champion in summary.champions:
        if champion.checkpoint_dir is not None:  # the refit checkpoint, benchmarked as the reference did
            step(f"benchmark of {champion.backbone}")
            benchmarks[champion.backbone] = run_benchmarking(
                fns.benchmark, experiment, champion, champion.checkpoint_dir, **kw
            )
    summary.benchmarks = list(benchmarks.values())
    # The benchmark stage's latencies (best_model_selection.yaml benchmark.*) feed the selection.
    summary.latencies_ms = benchmark_latencies(
        tracker.client,
        experiment.name,
        summary.champions,
        experiment.selection,
        tags=tracker.naming_config.tags,
    )
    best = select_best_model(
        summary.champions,
        experiment.selection,
        latencies_ms=summary.latencies_ms,
        hpo_selection=experiment.hpo.get("selection"),
        root_dir=root,
        config_dir=cfg,
    )
    summary.best = best
    summary.benchmark = benchmarks.get(best.backbone)
    step(f"final training of {best.backbone}")
    # the MLflow model wraps the demo model's checkpoint; a user's train() has its own format
    demo = fns.train is demo_model.train
    pyfunc = demo_pyfunc.write_pyfunc_model(state.cache_dir) if demo else None
    final = run_final_training(timed_train, experiment, best, python_model=pyfunc, **kw)
    _save_resolved(summary, final.output_dir, final.run_id, store)
    summary.final_training = final
    step("conversion")
    summary.conversion = run_conversion(fns.convert, experiment, best.backbone, final, **kw)
    summary.timings["stages_s"] = time.perf_counter() - t_rest
    summary.timings["training_s"] = train_seconds


def _finish_timings(summary: DemoSummary, t_start: float, store: _TimedStore) -> DemoSummary:
    summary.timings["backup_s"] = store.seconds
    summary.timings["total_s"] = time.perf_counter() - t_start
    summary.timings["tracking_and_overhead_s"] = max(
        0.0,
        summary.timings["total_s"]
        - summary.timings["training_s"]
        - store.seconds
        - summary.timings["setup_s"]
        - summary.timings["store_init_s"],
    )
    return summary
