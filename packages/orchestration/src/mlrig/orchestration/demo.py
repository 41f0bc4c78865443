"""``mlrig demo``: the whole pipeline on embedded defaults with a small numpy model.

sweep (CV + refit) for each backbone → champion per backbone → benchmark of each champion's refit checkpoint →
best model (metric and benchmarked latency) → final training → int8 conversion. Local SQLite MLflow store
under ``<root>/mlruns``, Optuna studies under ``<root>/outputs``, and a local folder (``<root>/backup``)
standing in for the Google Drive mount. Running it again resumes and reuses.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrig.orchestration import demo_data, demo_model, demo_pyfunc
from mlrig.orchestration.candidates import benchmark_latencies
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR, ExperimentConfig, load_experiment_config
from mlrig.orchestration.requests import TrainRequest
from mlrig.orchestration.selection import Champion, select_best_model, select_champion
from mlrig.orchestration.stages import StageResult, run_benchmarking, run_conversion, run_final_training
from mlrig.orchestration.state import ROOT_WAIT_S, ProjectState, project_session
from mlrig.orchestration.sweep import ProgressFn, SweepResult, run_local_hpo_sweep
from mlrig.paths import get_outputs_dir, infer_config_dir
from mlrig.storage import BackupResult, DriveBackupStore
from mlrig.tracking import MLflowSweepTracker, resolve_tracking_uri

__all__ = ["DemoSummary", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_EXPERIMENT = "demo"


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

    @property
    def mlflow_ui_command(self) -> str:
        """The command that opens the MLflow UI on this demo's store."""
        return f"mlflow ui --backend-store-uri {self.tracking_uri}"


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
) -> DemoSummary:
    """Run the demo pipeline under ``root_dir`` and return what it did (see the module docstring).

    The process owns the root for the whole run (another one waits ``wait_for_root`` seconds, then stops
    with a ``RootBusyError`` naming the holder); the project state is restored from the backup first.
    """
    t_start = time.perf_counter()
    root = Path(root_dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    cfg = Path(config_dir).absolute() if config_dir is not None else prepare_demo_config(root)
    experiment = load_experiment_config(cfg, DEMO_EXPERIMENT)
    uri = resolve_tracking_uri(tracking_uri, root_dir=root, config_dir=cfg)
    backup = Path(backup_root).absolute() if backup_root is not None else root / "backup"
    backup.mkdir(parents=True, exist_ok=True)  # the local folder standing in for a mounted drive
    store = _TimedStore(root, backup, outputs_dir=get_outputs_dir(root, cfg, "local"))
    summary = DemoSummary(root_dir=root, config_dir=cfg, tracking_uri=uri, backup_root=backup)
    summary.timings["setup_s"] = time.perf_counter() - t_start
    state = ProjectState(root, backup, uri, config_dir=cfg, outputs_store=store)
    t0 = time.perf_counter()
    # Owning the root, restoring first and creating the SQLite store: measured on their own for the split.
    with project_session(state, wait=wait_for_root):
        summary.timings["store_init_s"] = time.perf_counter() - t0
        _pipeline(summary, experiment, store, state, max_trials, progress)
    return _finish_timings(summary, t_start, store)


def _pipeline(
    summary: DemoSummary,
    experiment: ExperimentConfig,
    store: _TimedStore,
    state: ProjectState,
    max_trials: int | None,
    progress: ProgressFn | None,
) -> None:
    """Sweeps, selection and the stages, inside the demo's session."""
    root, cfg, uri = summary.root_dir, summary.config_dir, summary.tracking_uri

    train_seconds = 0.0

    def timed_train(request: TrainRequest) -> dict[str, float]:
        nonlocal train_seconds
        t0 = time.perf_counter()
        try:
            return demo_model.train(request)
        finally:
            train_seconds += time.perf_counter() - t0

    _, labels = demo_data.make_dataset(experiment.data)
    t_sweeps = time.perf_counter()
    for backbone in experiment.backbones:
        summary.sweeps.append(
            run_local_hpo_sweep(
                timed_train,
                experiment,
                backbone,
                root_dir=root,
                config_dir=cfg,
                labels=[int(v) for v in labels],
                store=store,
                state=state,
                tracking_uri=uri,
                max_trials=max_trials,
                progress=progress,
            )
        )
    summary.timings["sweeps_s"] = time.perf_counter() - t_sweeps
    t_rest = time.perf_counter()
    kw: dict[str, Any] = {
        "root_dir": root, "config_dir": cfg, "store": store, "tracking_uri": uri, "state": state
    }  # fmt: skip
    benchmarks: dict[str, StageResult] = {}
    for sweep in summary.sweeps:
        tracker = MLflowSweepTracker(sweep.experiment_name, tracking_uri=uri, config_dir=cfg, root_dir=root)
        champion = select_champion(
            tracker, sweep.backbone, experiment.selection, hpo_objective=experiment.hpo.get("objective")
        )
        summary.champions.append(champion)
        if champion.checkpoint_dir is not None:  # the refit checkpoint, benchmarked as the reference did
            benchmarks[champion.backbone] = run_benchmarking(
                demo_model.benchmark, experiment, champion, champion.checkpoint_dir, **kw
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
    pyfunc = demo_pyfunc.write_pyfunc_model(root / "outputs" / "cache")
    final = run_final_training(timed_train, experiment, best, python_model=pyfunc, **kw)
    summary.final_training = final
    summary.conversion = run_conversion(demo_model.convert, experiment, best.backbone, final, **kw)
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
