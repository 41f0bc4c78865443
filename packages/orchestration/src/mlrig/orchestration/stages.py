"""Stage runners after selection: final training, conversion and benchmarking.

Each runner follows the same order: naming context → output dir → reuse check → tracked run → the user's
callable → metrics on disk → backup. Re-running with the same fingerprints reuses finished outputs; a new
final-training variant is created only when asked for.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlrig.naming import (
    build_mlflow_experiment_name,
    build_output_path,
    build_parent_training_id,
    compute_benchmark_config_hash,
    compute_conv_fp,
    compute_exec_fp,
    compute_spec_fp,
    create_naming_context,
)
from mlrig.orchestration.configs import ExperimentConfig
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import (
    BenchmarkFn,
    BenchmarkRequest,
    ConvertFn,
    ConvertRequest,
    TrainFn,
    TrainRequest,
)
from mlrig.orchestration.selection import Champion
from mlrig.paths import atomic_write_json
from mlrig.storage import DriveBackupStore
from mlrig.tracking import MLflowBenchmarkTracker, MLflowConversionTracker, MLflowTrainingTracker, RunHandle

__all__ = ["StageResult", "run_benchmarking", "run_conversion", "run_final_training"]

logger = logging.getLogger(__name__)

RESULT_FILE = "stage_result.json"

_T = TypeVar("_T", MLflowTrainingTracker, MLflowConversionTracker, MLflowBenchmarkTracker)


def _tracker(
    cls: type[_T],
    experiment: ExperimentConfig,
    stage: str,
    tracking_uri: str | None,
    config_dir: Path,
    root_dir: Path,
) -> _T:
    """The stage's tracker, on the experiment ``<experiment>-<stage>`` named by mlrig.naming."""
    return cls(
        build_mlflow_experiment_name(experiment.name, stage),
        tracking_uri=tracking_uri,
        config_dir=config_dir,
        root_dir=root_dir,
    )


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


def _finished(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record(
    output_dir: Path, stage: str, run_id: str | None, run_name: str | None, metrics: Mapping[str, Any]
) -> None:
    # Written last: its presence means the stage finished (the reuse check reads only this file).
    atomic_write_json(
        output_dir / RESULT_FILE,
        {"stage": stage, "run_id": run_id, "run_name": run_name, "metrics": dict(metrics)},
    )


def _reused(stage: str, output_dir: Path, done: Mapping[str, Any], **extra: Any) -> StageResult:
    logger.info("%s: reusing finished outputs in %s", stage, output_dir)
    return StageResult(
        stage, output_dir, done.get("run_id"), done.get("run_name"), done.get("metrics", {}), True, **extra
    )


def _backup(store: DriveBackupStore | None, path: Path) -> None:
    if store is not None:
        result = store.backup(path, expect="dir")
        if not result.ok:
            logger.warning("backup of %s failed: %s", path, result.reason or result.error)


def _prepare(stage: str, root_dir: Path, ctx: Any, config_dir: Path) -> tuple[Path, StageResult | None]:
    """The stage's output directory, and the earlier result when that directory holds a finished one."""
    out = build_output_path(root_dir, ctx, config_dir)
    done = _finished(out)
    if done is not None:
        return out, _reused(stage, out, done)
    out.mkdir(parents=True, exist_ok=True)
    return out, None


def _close(
    stage: str,
    out: Path,
    handle: RunHandle | None,
    metrics: Mapping[str, Any],
    store: DriveBackupStore | None,
    *fingerprints: Any,
) -> StageResult:
    """Record the finished stage (its marker file is written last), back it up, and describe it."""
    run_id = handle.run_id if handle else None
    run_name = handle.run_name if handle else None
    _record(out, stage, run_id, run_name, metrics)
    _backup(store, out)
    return StageResult(stage, out, run_id, run_name, metrics, False, *fingerprints)


def _variants(parent: Path) -> list[int]:
    if not parent.is_dir():
        return []
    return sorted(int(m.group(1)) for p in parent.iterdir() if (m := re.fullmatch(r"v(\d+)", p.name)))


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
    new_variant: bool = False,
    git_sha: str | None = None,
) -> StageResult:
    """Train ``champion``'s configuration on all data into ``final_training/.../spec-…_exec-…/v<n>``.

    The newest finished variant is reused unless ``new_variant``; the champion's refit checkpoint is handed
    to the training function as ``init_checkpoint``.
    """
    seed = int((experiment.train.get("training") or {}).get("seed", 42))
    model_config = {"backbone": champion.backbone, "params": dict(champion.params)}
    spec_fp = compute_spec_fp(model_config, experiment.data, experiment.train, seed)
    exec_fp = compute_exec_fp(git_sha, {"storage_env": storage_env})

    def context(variant: int) -> Any:
        return create_naming_context(
            "final_training",
            champion.backbone,
            spec_fp=spec_fp,
            exec_fp=exec_fp,
            variant=variant,
            storage_env=storage_env,
            environment=storage_env,
            stage="final_training",
        )

    variant_parent = build_output_path(root_dir, context(1), config_dir).parent
    existing = _variants(variant_parent)
    finished = [v for v in existing if _finished(variant_parent / f"v{v}") is not None]
    if finished and not new_variant:
        out = variant_parent / f"v{finished[-1]}"
        done = _finished(out) or {}
        return _reused("final_training", out, done, spec_fp=spec_fp, exec_fp=exec_fp, variant=finished[-1])
    variant = (max(existing) + 1) if (new_variant and existing) else (existing[-1] if existing else 1)
    ctx = context(variant)
    out = build_output_path(root_dir, ctx, config_dir)
    out.mkdir(parents=True, exist_ok=True)
    tracker = _tracker(MLflowTrainingTracker, experiment, "training", tracking_uri, config_dir, root_dir)
    with tracker.start_training_run(None, champion.backbone, "final", context=ctx, output_dir=out) as handle:
        metrics = train_fn(
            TrainRequest(
                backbone=champion.backbone,
                params=champion.params,
                output_dir=out,
                seed=seed,
                data_config=experiment.data,
                train_config=experiment.train,
                init_checkpoint=champion.checkpoint_dir,
            )
        )
        tracker.log_params({**champion.params, "source_refit_run_id": champion.refit_run_id})
        tracker.log_metrics({k: float(v) for k, v in metrics.items()})
        tracker.log_training_artifacts(out / "checkpoint", out / "metrics.json")
    return _close("final_training", out, handle, metrics, store, spec_fp, exec_fp, variant)


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
) -> StageResult:
    """Convert the final-training checkpoint into ``conversion/.../v<n>/conv-<conv8>`` (reused when done)."""
    if not (training.spec_fp and training.exec_fp and training.variant):
        raise OrchestrationError(f"run_conversion: training result {training.output_dir} has no fingerprints")
    conv_fp = compute_conv_fp(training.spec_fp, training.exec_fp, experiment.conversion)
    ctx = create_naming_context(
        "conversion",
        backbone,
        spec_fp=training.spec_fp,
        exec_fp=training.exec_fp,
        variant=training.variant,
        parent_training_id=build_parent_training_id(training.spec_fp, training.exec_fp, training.variant),
        conv_fp=conv_fp,
        storage_env=storage_env,
        environment=storage_env,
        stage="conversion",
    )
    out, reused = _prepare("conversion", root_dir, ctx, config_dir)
    if reused is not None:
        return reused
    tracker = _tracker(MLflowConversionTracker, experiment, "conversion", tracking_uri, config_dir, root_dir)
    fmt = str((experiment.conversion.get("target") or {}).get("format", "onnx"))
    quantization = str((experiment.conversion.get(fmt) or {}).get("quantization", "none"))
    with tracker.start_conversion_run(
        None, quantization, training.run_id, context=ctx, output_dir=out
    ) as handle:
        info = dict(
            convert_fn(
                ConvertRequest(
                    backbone=backbone,
                    checkpoint_dir=training.output_dir / "checkpoint",
                    output_dir=out,
                    conversion_config=experiment.conversion,
                )
            )
        )
        tracker.log_params({"quantization": quantization, "source_training_run_id": training.run_id})
        tracker.log_metrics({k: float(v) for k, v in info.items() if isinstance(v, int | float)})
    return _close("conversion", out, handle, info, store)


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
) -> StageResult:
    """Benchmark ``model_path`` into ``benchmarking/.../study-…/trial-…/bench-<b8>`` (reused when done)."""
    bench_hash = compute_benchmark_config_hash(experiment.benchmark)
    ctx = create_naming_context(
        "benchmarking",
        champion.backbone,
        study_key_hash=champion.study_key_hash,
        trial_key_hash=champion.trial_key_hash,
        trial_id=f"trial_{champion.trial_number}",
        benchmark_config_hash=bench_hash,
        storage_env=storage_env,
        environment=storage_env,
        stage="benchmarking",
    )
    out, reused = _prepare("benchmarking", root_dir, ctx, config_dir)
    if reused is not None:
        return reused
    tracker = _tracker(MLflowBenchmarkTracker, experiment, "benchmark", tracking_uri, config_dir, root_dir)
    with tracker.start_benchmark_run(
        None,
        champion.backbone,
        context=ctx,
        output_dir=out,
        study_key_hash=champion.study_key_hash,
        trial_key_hash=champion.trial_key_hash,
        hpo_trial_run_id=champion.trial_run_id,
        hpo_refit_run_id=champion.refit_run_id,
    ) as handle:
        metrics = dict(
            benchmark_fn(
                BenchmarkRequest(
                    backbone=champion.backbone,
                    model_path=model_path,
                    output_dir=out,
                    data_config=experiment.data,
                    benchmark_config=experiment.benchmark,
                )
            )
        )
        tracker.log_metrics({k: float(v) for k, v in metrics.items()})
    return _close("benchmarking", out, handle, metrics, store)
