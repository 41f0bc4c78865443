"""Stage runners after selection: final training, conversion and benchmarking.

Each runner builds its naming context and hands it to one skeleton (:func:`_run_stage`): output dir →
reuse check → tracked run → the user's callable → metrics on disk → backup. Re-running with the same
fingerprints reuses finished outputs; a new final-training variant is created only when asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrig.naming import (
    NamingContext,
    build_parent_training_id,
    compute_benchmark_config_hash,
    compute_conv_fp,
    compute_exec_fp,
    compute_spec_fp,
    detect_git_sha,
)
from mlrig.orchestration.configs import ExperimentConfig, resolve_seed
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import (
    BenchmarkFn,
    BenchmarkRequest,
    ConvertFn,
    ConvertRequest,
    TrainFn,
    TrainRequest,
)
from mlrig.orchestration.runs import retire_namesakes
from mlrig.orchestration.selection import Champion
from mlrig.orchestration.stage_support import (
    RESULT_FILE,
    StageTracker,
    Where,
    finished_result,
    log_stage_config,
    pick_variant,
    run_mode,
)
from mlrig.orchestration.state import ProjectState, session_for
from mlrig.orchestration.study import backup_or_warn
from mlrig.paths import atomic_write_json
from mlrig.storage import DriveBackupStore
from mlrig.tracking import (
    MLflowBenchmarkTracker,
    MLflowConversionTracker,
    MLflowTrainingTracker,
    RunHandle,
    StepLogger,
    log_pyfunc_model,
    train_key,
    train_set_metrics,
)

logger = logging.getLogger(__name__)

#: The alias of the registered model version that is the champion's final model.
CHAMPION_ALIAS = "champion"


@dataclass(frozen=True)
class StageResult:
    """Where a stage wrote its outputs, what it measured, and whether it reused an earlier result."""

    stage: str
    output_dir: Path
    run_id: str | None
    run_name: str | None
    metrics: Mapping[str, Any]
    reused: bool
    spec_fp: str | None = None
    exec_fp: str | None = None
    variant: int | None = None


def _run_stage(
    where: Where,
    stage: str,
    ctx: NamingContext,
    tracker: tuple[type[StageTracker], str],
    start: Callable[[StageTracker, Path], AbstractContextManager[RunHandle | None]],
    work: Callable[[StageTracker, Path], Mapping[str, Any]],
    reuse: bool = True,
    **fingerprints: Any,
) -> StageResult:
    """The one stage skeleton: output dir → reuse check → tracked run of ``work`` → result on disk → backup.

    ``tracker`` is the tracker class and its experiment suffix; ``start`` opens the stage's run and ``work``
    calls the user's function inside it, logs to the run and returns the stage's metrics. ``reuse=False``
    (``run.mode: force_new``) runs the stage again even when it finished before.
    """
    out = where.output_dir(ctx)
    done = finished_result(out) if reuse else None
    if done is not None:
        logger.info("%s: reusing finished outputs in %s", stage, out)
        return StageResult(
            stage,
            out,
            done.get("run_id"),
            done.get("run_name"),
            done.get("metrics", {}),
            True,
            **fingerprints,
        )
    with session_for(
        where.state,
        where.store,
        root_dir=where.root_dir,
        config_dir=where.config_dir,
        tracking_uri=where.tracking_uri,
    ) as state:
        out.mkdir(parents=True, exist_ok=True)
        stage_tracker = where.tracker(*tracker)
        with start(stage_tracker, out) as handle:
            if handle is not None and handle.run_id:
                # a run of this stage left by a killed process: ended KILLED, its name left to this one
                retire_namesakes(stage_tracker.client, handle.run_id, tags=where.naming_config.tags)
            metrics = work(stage_tracker, out)
        result = _record(where, stage, out, handle, metrics, fingerprints)
        if state is not None:
            state.snapshot()
            state.flush()
    return result


def _record(
    where: Where,
    stage: str,
    out: Path,
    handle: RunHandle | None,
    metrics: Mapping[str, Any],
    fingerprints: Mapping[str, Any],
) -> StageResult:
    """Write the stage's result file (last: it marks the stage finished) and back the stage folder up."""
    run_id = handle.run_id if handle else None
    run_name = handle.run_name if handle else None
    # Written last: its presence means the stage finished (the reuse check reads only this file).
    atomic_write_json(
        out / RESULT_FILE, {"stage": stage, "run_id": run_id, "run_name": run_name, "metrics": dict(metrics)}
    )
    backup_or_warn(where.store, out, expect="dir")
    return StageResult(stage, out, run_id, run_name, metrics, False, **fingerprints)


def run_final_training(
    train_fn: TrainFn,
    experiment: ExperimentConfig,
    champion: Champion,
    *,
    root_dir: Path,
    config_dir: Path,
    storage_env: str = "local",
    store: DriveBackupStore | None = None,
    tracking_uri: str | None = None,
    state: ProjectState | None = None,
    new_variant: bool = False,
    git_sha: str | None = None,
    python_model: Any | None = None,
) -> StageResult:
    """Train ``champion``'s configuration on all data into ``final_training/.../spec-…_exec-…/v<n>``.

    The newest finished variant is reused unless ``new_variant`` or ``final_training.yaml``'s
    ``run.mode: force_new``; the champion's refit checkpoint is handed to the training function as
    ``init_checkpoint``. ``exec_fp`` records ``git_sha`` (default: the commit checked out in ``root_dir``).

    The run: the scores on the training rows as ``train_<metric>`` (the objective's curve step by step
    from ``request.report``), the checkpoint, ``metrics.json`` and ``resolved_config.json``, lineage to the
    champion's refit and trial runs; with ``python_model`` (an ``mlflow.pyfunc.PythonModel`` reading its
    ``checkpoint`` artifact) the model is logged as an MLflow model and registered as a version of the
    model named after the experiment, aliased ``champion``.
    """
    new_variant = new_variant or run_mode(experiment.final_training) == "force_new"
    where = Where(experiment, root_dir, config_dir, storage_env, store, tracking_uri, state)
    seed = resolve_seed(experiment)
    model_config = {"backbone": champion.backbone, "params": dict(champion.params)}
    spec_fp = compute_spec_fp(model_config, experiment.data, experiment.train, seed)
    exec_fp = compute_exec_fp(git_sha or detect_git_sha(root_dir), {"storage_env": storage_env})

    def context(variant: int) -> NamingContext:
        return where.context(
            "final_training", champion.backbone, spec_fp=spec_fp, exec_fp=exec_fp, variant=variant
        )

    variant = pick_variant(where.output_dir(context(1)).parent, new_variant)
    ctx = context(variant)

    def start(tracker: MLflowTrainingTracker, out: Path) -> AbstractContextManager[RunHandle | None]:
        lineage = {"hpo_refit_run_id": champion.refit_run_id, "hpo_trial_run_id": champion.trial_run_id}
        return tracker.start_training_run(
            None, champion.backbone, "final", context=ctx, output_dir=out, lineage=lineage
        )

    def work(tracker: MLflowTrainingTracker, out: Path) -> Mapping[str, Any]:
        curve = StepLogger(tracker, train_key(champion.metric))  # trained and scored on all rows
        request = TrainRequest(
            backbone=champion.backbone,
            params=champion.params,
            output_dir=out,
            seed=seed,
            data_config=experiment.data,
            train_config=experiment.train,
            init_checkpoint=champion.checkpoint_dir,
            report=curve,
        )
        metrics = train_fn(request)
        tracker.log_params({**champion.params, "source_refit_run_id": champion.refit_run_id})
        curve.log_final(train_set_metrics(metrics))
        tracker.log_training_artifacts(out / "checkpoint", out / "metrics.json")
        config = {"backbone": champion.backbone, "params": dict(champion.params), "seed": seed}
        log_stage_config(tracker, out, {**config, "data": experiment.data, "train": experiment.train})
        run = tracker.run
        if python_model is not None and run is not None and run.run_id:
            tracker.flush()  # the params first: the logged model records the run's params
            log_pyfunc_model(
                tracker.client,
                run.experiment_id,
                run.run_id,
                python_model,
                artifacts={"checkpoint": str(out / "checkpoint")},
                pip_requirements=["numpy"],
                register_as=experiment.name,
                alias=CHAMPION_ALIAS,
            )
        return metrics

    return _run_stage(
        where,
        "final_training",
        ctx,
        (MLflowTrainingTracker, "training"),
        start,
        work,
        spec_fp=spec_fp,
        exec_fp=exec_fp,
        variant=variant,
    )


def run_conversion(
    convert_fn: ConvertFn,
    experiment: ExperimentConfig,
    backbone: str,
    training: StageResult,
    *,
    root_dir: Path,
    config_dir: Path,
    storage_env: str = "local",
    store: DriveBackupStore | None = None,
    tracking_uri: str | None = None,
    state: ProjectState | None = None,
    upstream: Mapping[str, str | None] | None = None,
) -> StageResult:
    """Convert the final-training checkpoint into ``conversion/.../v<n>/conv-<conv8>`` (reused when done).

    The run holds the converted model (``converted_model/<file>``, from the ``model_path`` the convert
    function returns) and ``resolved_config.json``, and links to the final-training run (``training``) and
    ``upstream`` runs (names of the tags registry's ``lineage`` section to run ids)."""
    if not (training.spec_fp and training.exec_fp and training.variant):
        raise OrchestrationError(f"run_conversion: training result {training.output_dir} has no fingerprints")
    where = Where(experiment, root_dir, config_dir, storage_env, store, tracking_uri, state)
    ctx = where.context(
        "conversion",
        backbone,
        spec_fp=training.spec_fp,
        exec_fp=training.exec_fp,
        variant=training.variant,
        parent_training_id=build_parent_training_id(training.spec_fp, training.exec_fp, training.variant),
        conv_fp=compute_conv_fp(training.spec_fp, training.exec_fp, experiment.conversion),
    )
    fmt = str((experiment.conversion.get("target") or {}).get("format", "onnx"))
    quantization = str((experiment.conversion.get(fmt) or {}).get("quantization", "none"))

    def start(tracker: MLflowConversionTracker, out: Path) -> AbstractContextManager[RunHandle | None]:
        return tracker.start_conversion_run(
            None, quantization, training.run_id, context=ctx, output_dir=out, lineage=upstream
        )

    def work(tracker: MLflowConversionTracker, out: Path) -> Mapping[str, Any]:
        request = ConvertRequest(
            backbone=backbone,
            checkpoint_dir=training.output_dir / "checkpoint",
            output_dir=out,
            conversion_config=experiment.conversion,
        )
        info = dict(convert_fn(request))
        tracker.log_params({"quantization": quantization, "source_training_run_id": training.run_id})
        tracker.log_metrics({k: float(v) for k, v in info.items() if isinstance(v, int | float)})
        converted = Path(str(info.get("model_path", "")))
        if info.get("model_path") and converted.exists():  # the deliverable
            tracker.log_artifact(converted, f"converted_model/{converted.name}")
        log_stage_config(tracker, out, {"backbone": backbone, "conversion": experiment.conversion})
        return info

    return _run_stage(where, "conversion", ctx, (MLflowConversionTracker, "conversion"), start, work)


def run_benchmarking(
    benchmark_fn: BenchmarkFn,
    experiment: ExperimentConfig,
    champion: Champion,
    model_path: Path,
    *,
    root_dir: Path,
    config_dir: Path,
    storage_env: str = "local",
    store: DriveBackupStore | None = None,
    tracking_uri: str | None = None,
    state: ProjectState | None = None,
    training: StageResult | None = None,
    conversion: StageResult | None = None,
) -> StageResult:
    """Benchmark ``model_path`` into ``benchmarking/.../study-…/trial-…/bench-<b8>`` (reused when done,
    unless ``benchmark.yaml``'s ``run.mode: force_new``). The metrics must include every
    ``best_model_selection.yaml`` ``benchmark.required_metrics``: a missing one fails the stage.

    The run holds the benchmark report the function wrote (``benchmark.yaml`` ``output.filename``,
    default ``benchmark.json``) and ``resolved_config.json``, and links to the champion's runs and to the
    ``training`` and ``conversion`` stage runs when given."""
    required = list((experiment.selection.get("benchmark") or {}).get("required_metrics") or [])
    where = Where(experiment, root_dir, config_dir, storage_env, store, tracking_uri, state)
    ctx = where.context(
        "benchmarking",
        champion.backbone,
        study_key_hash=champion.study_key_hash,
        trial_key_hash=champion.trial_key_hash,
        trial_number=champion.trial_number,
        benchmark_config_hash=compute_benchmark_config_hash(experiment.benchmark),
    )

    def start(tracker: MLflowBenchmarkTracker, out: Path) -> AbstractContextManager[RunHandle | None]:
        return tracker.start_benchmark_run(
            None,
            champion.backbone,
            context=ctx,
            output_dir=out,
            study_key_hash=champion.study_key_hash,
            trial_key_hash=champion.trial_key_hash,
            hpo_trial_run_id=champion.trial_run_id,
            hpo_refit_run_id=champion.refit_run_id,
            lineage={
                "final_training_run_id": training.run_id if training else None,
                "conversion_run_id": conversion.run_id if conversion else None,
            },
        )

    def work(tracker: MLflowBenchmarkTracker, out: Path) -> Mapping[str, Any]:
        request = BenchmarkRequest(
            backbone=champion.backbone,
            model_path=model_path,
            output_dir=out,
            data_config=experiment.data,
            benchmark_config=experiment.benchmark,
        )
        metrics = dict(benchmark_fn(request))
        tracker.log_metrics({k: float(v) for k, v in metrics.items()})
        report = out / str((experiment.benchmark.get("output") or {}).get("filename", "benchmark.json"))
        if report.is_file():
            tracker.log_artifact(report, report.name)
        log_stage_config(tracker, out, {"backbone": champion.backbone, "benchmark": experiment.benchmark})
        missing = [m for m in required if m not in metrics]
        if missing:
            raise OrchestrationError(
                f"benchmark of {champion.backbone!r} returned {sorted(metrics)}, not {missing}: "
                "best_model_selection.yaml benchmark.required_metrics requires them"
            )
        return metrics

    return _run_stage(
        where,
        "benchmarking",
        ctx,
        (MLflowBenchmarkTracker, "benchmark"),
        start,
        work,
        reuse=run_mode(experiment.benchmark) != "force_new",
    )
