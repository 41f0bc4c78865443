"""Stage trackers: training, benchmark and conversion (the sweep tracker lives in ``sweep.py``).

Every tracker:

* resolves its tracking URI with :func:`~mlrig.tracking.setup.resolve_tracking_uri` and talks to MLflow
  through its own ``MlflowClient`` -- it never changes MLflow's global URI, experiment or active run;
* honours ``mlflow.yaml`` ``tracking.<stage>.enabled`` (disabled → the ``start_*`` block yields ``None``
  and no run is created) and the stage's artifact toggles;
* retries tracking failures, then logs them and appends them to :attr:`BaseTracker.failures` -- they never
  stop the caller's code. An exception from the caller's own code propagates unchanged and the run ends
  FAILED (KILLED on ``KeyboardInterrupt``). No run is left RUNNING.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlrig.naming import NamingContext
from mlrig.tracking.runs import RunHandle
from mlrig.tracking.tracker_base import BaseTracker

logger = logging.getLogger(__name__)


class MLflowTrainingTracker(BaseTracker):
    """Final (or continued) training runs; ``tracking.training`` in ``mlflow.yaml``."""

    stage = "training"

    @contextmanager
    def start_training_run(
        self,
        run_name: str | None,
        backbone: str | None = None,
        training_type: str = "final",
        context: NamingContext | None = None,
        output_dir: Path | str | None = None,
        parent_run_id: str | None = None,
        group_id: str | None = None,
        *,
        lineage: Mapping[str, str | None] | None = None,
    ) -> Iterator[RunHandle | None]:
        """A training run (nested under ``parent_run_id`` when given); yields its handle, ``None`` when
        disabled or when the run could not be created. ``lineage`` maps names of the tags registry's
        ``lineage`` section (``hpo_refit_run_id``, ...) to the upstream run ids (see ``_lineage``).
        ``backbone`` is not tagged again: the context's ``code.model`` is the one key for it."""
        if not self.enabled:
            yield None
            return
        name, tags, run_key, run_key_hash = self._identity(
            run_name, context, output_dir, parent_run_id, group_id
        )
        tags.update(self._run_type("training"))
        tags["training_type"] = training_type
        tags.update(self._lineage(lineage))
        tracked = self._track(
            name, tags, parent_run_id=parent_run_id, run_key=run_key, run_key_hash=run_key_hash
        )
        with self._open_run(tracked) as h:
            yield h

    def log_training_parameters(
        self,
        config: Mapping[str, Any],
        data_config: Mapping[str, Any] | None = None,
        source_checkpoint: str | None = None,
        data_strategy: str | None = None,
        random_seed: int | None = None,
    ) -> None:
        """Reference params: training hyperparameters, backbone, data version/path, training type, seed."""
        training = config.get("training", {}) or {}
        params: dict[str, object] = {
            key: training[key]
            for key in ("learning_rate", "batch_size", "dropout", "weight_decay", "epochs")
            if key in training
        }
        model = config.get("model")
        if isinstance(model, Mapping) and model.get("backbone"):
            params["backbone"] = model["backbone"]
        elif isinstance(model, str):
            params["backbone"] = model
        if data_config:
            if "version" in data_config:
                params["data_version"] = data_config["version"]
            if "local_path" in data_config:
                params["dataset_path"] = data_config["local_path"]
        params["training_type"] = "continued" if source_checkpoint else "final"
        for key, value in (
            ("source_checkpoint", source_checkpoint),
            ("data_strategy", data_strategy),
            ("random_seed", random_seed),
        ):
            if value is not None:
                params[key] = value
        self.log_params(params)

    def log_training_metrics(
        self,
        metrics: Mapping[str, float],
        per_entity_metrics: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """Metrics as given, per-entity metrics as ``<entity>_<metric>``."""
        flat = dict(metrics)
        for entity, values in (per_entity_metrics or {}).items():
            for metric, value in values.items():
                flat[f"{entity}_{metric}"] = value
        self.log_metrics(flat)

    def log_training_artifacts(
        self, checkpoint_dir: Path | str | None, metrics_json_path: Path | str | None = None
    ) -> dict[str, bool]:
        """``checkpoint.tar.gz`` (+ ``checkpoint_manifest.json``) and ``metrics.json``, per the
        ``log_checkpoint`` / ``log_metrics_json`` toggles."""
        result = {"checkpoint": False, "metrics_json": False}
        if checkpoint_dir is not None and self._flag("log_checkpoint"):
            result["checkpoint"] = self._upload_checkpoint(checkpoint_dir, "checkpoint.tar.gz", None)
        if metrics_json_path is not None and self._flag("log_metrics_json"):
            result["metrics_json"] = self._upload(metrics_json_path, "metrics.json")
        return result


class MLflowBenchmarkTracker(BaseTracker):
    """Inference benchmark runs with lineage tags; ``tracking.benchmark`` in ``mlflow.yaml``."""

    stage = "benchmark"

    @contextmanager
    def start_benchmark_run(
        self,
        run_name: str | None,
        backbone: str | None = None,
        benchmark_source: str = "final_training",
        context: NamingContext | None = None,
        output_dir: Path | str | None = None,
        parent_run_id: str | None = None,
        group_id: str | None = None,
        study_key_hash: str | None = None,
        trial_key_hash: str | None = None,
        hpo_trial_run_id: str | None = None,
        hpo_refit_run_id: str | None = None,
        hpo_sweep_run_id: str | None = None,
        benchmark_key: str | None = None,
        *,
        lineage: Mapping[str, str | None] | None = None,
    ) -> Iterator[RunHandle | None]:
        """A benchmark run tagged with its lineage (``code.lineage.*``; parent kind trial > refit > sweep);
        ``lineage`` adds further upstream runs (``final_training_run_id``, ``conversion_run_id``)."""
        if not self.enabled:
            yield None
            return
        hashes = {"study_key_hash": study_key_hash, "trial_key_hash": trial_key_hash}
        name, tags, run_key, run_key_hash = self._identity(
            run_name, context, output_dir, parent_run_id, group_id, **hashes
        )
        upstream = {
            "hpo_trial_run_id": hpo_trial_run_id,
            "hpo_refit_run_id": hpo_refit_run_id,
            "hpo_sweep_run_id": hpo_sweep_run_id,
            **(lineage or {}),
        }
        lineage_tags = self._lineage(upstream)
        for kind in ("trial", "refit", "sweep"):  # the training run benchmarked: trial > refit > sweep
            run_id = lineage_tags.get(self._tag_key("lineage", f"hpo_{kind}_run_id"))
            if run_id:
                lineage_tags[self._tag_key("lineage", "parent_training_run_id")] = run_id
                lineage_tags[self._tag_key("lineage", "parent_kind")] = kind
                break
        tags.update(lineage_tags)
        tags["benchmark_source"] = benchmark_source
        tags.update(self._run_type("benchmark"))
        if benchmark_key:
            tags["benchmark_key"] = benchmark_key
        tracked = self._track(
            name, tags, parent_run_id=parent_run_id, run_key=run_key, run_key_hash=run_key_hash
        )
        with self._open_run(tracked) as h:
            yield h

    def log_benchmark_results(
        self,
        batch_sizes: list[int],
        iterations: int,
        warmup_iterations: int,
        max_length: int,
        device: str | None,
        benchmark_json_path: Path | str | None,
        benchmark_data: Mapping[str, Any],
    ) -> None:
        """Reference params and ``latency_batch_<b>_{ms,p50_ms,p95_ms,p99_ms}`` / throughput metrics, plus the
        ``benchmark_results.json`` artifact when ``tracking.benchmark.log_artifacts`` is on."""
        self.log_params(
            {
                "benchmark_batch_sizes": str(list(batch_sizes)),
                "benchmark_iterations": iterations,
                "benchmark_warmup_iterations": warmup_iterations,
                "benchmark_max_length": max_length,
                "benchmark_device": device or "auto",
            }
        )
        metrics: dict[str, float] = {}
        largest: Mapping[str, Any] | None = None
        for size in batch_sizes:
            entry = benchmark_data.get(f"batch_{size}")
            if not isinstance(entry, Mapping):
                continue
            largest = entry
            for source, suffix in (
                ("mean_ms", "ms"),
                ("median_ms", "p50_ms"),
                ("p95_ms", "p95_ms"),
                ("p99_ms", "p99_ms"),
            ):
                if source in entry:
                    metrics[f"latency_batch_{size}_{suffix}"] = float(entry[source])
        if largest is not None and "throughput_docs_per_sec" in largest:
            metrics["throughput_samples_per_sec"] = float(largest["throughput_docs_per_sec"])
        self.log_metrics(metrics)
        if benchmark_json_path is not None and self._flag("log_artifacts"):
            self._upload(benchmark_json_path, "benchmark_results.json")


class MLflowConversionTracker(BaseTracker):
    """Model conversion (ONNX) runs; ``tracking.conversion`` in ``mlflow.yaml``."""

    stage = "conversion"

    @contextmanager
    def start_conversion_run(
        self,
        run_name: str | None,
        conversion_type: str,
        source_training_run: str | None = None,
        context: NamingContext | None = None,
        output_dir: Path | str | None = None,
        parent_run_id: str | None = None,
        group_id: str | None = None,
        *,
        lineage: Mapping[str, str | None] | None = None,
    ) -> Iterator[RunHandle | None]:
        """A conversion run. Its source is one fact, one key: ``source_training_run`` is tagged
        ``code.lineage.final_training_run_id`` (with a link in the run's description), not also
        ``code.parent_run_id``/``source_training_run``; ``lineage`` adds further upstream runs."""
        if not self.enabled:
            yield None
            return
        name, tags, run_key, run_key_hash = self._identity(
            run_name, context, output_dir, parent_run_id, group_id
        )
        tags["conversion_type"] = conversion_type
        tags.update(self._run_type("conversion"))
        tags.update(self._lineage({"final_training_run_id": source_training_run, **(lineage or {})}))
        tracked = self._track(
            name, tags, parent_run_id=parent_run_id, run_key=run_key, run_key_hash=run_key_hash
        )
        with self._open_run(tracked) as h:
            yield h

    def log_conversion_parameters(
        self,
        checkpoint_path: Path | str,
        conversion_target: str,
        quantization: str | None,
        opset_version: int,
        backbone: str,
    ) -> None:
        """Reference params ``conversion_source``, ``conversion_target``, ``quantization``,
        ``onnx_opset_version``, ``conversion_backbone``."""
        self.log_params(
            {
                "conversion_source": str(checkpoint_path),
                "conversion_target": conversion_target,
                "quantization": quantization or "none",
                "onnx_opset_version": opset_version,
                "conversion_backbone": backbone,
            }
        )

    def log_conversion_results(
        self,
        conversion_success: bool,
        onnx_model_path: Path | str | None,
        original_checkpoint_size: float | None = None,
        smoke_test_passed: bool | None = None,
        conversion_log_path: Path | str | None = None,
    ) -> None:
        """Metrics (success, ONNX size in MB, compression ratio vs ``original_checkpoint_size`` in MB, smoke
        test) and artifacts ``onnx_model/<file>`` and ``conversion_log<suffix>`` per the toggles."""
        metrics: dict[str, float] = {"conversion_success": 1.0 if conversion_success else 0.0}
        onnx = Path(onnx_model_path) if onnx_model_path is not None else None
        if onnx is not None and onnx.is_file():
            size_mb = onnx.stat().st_size / (1024 * 1024)
            metrics["onnx_model_size_mb"] = size_mb
            if original_checkpoint_size and size_mb > 0:
                metrics["compression_ratio"] = float(original_checkpoint_size) / size_mb
        if smoke_test_passed is not None:
            metrics["smoke_test_passed"] = 1.0 if smoke_test_passed else 0.0
        self.log_metrics(metrics)
        if onnx is not None and onnx.is_file() and self._flag("log_onnx_model"):
            self._upload(onnx, "onnx_model")
        if conversion_log_path is not None and self._flag("log_conversion_log"):
            log_path = Path(conversion_log_path)
            if log_path.is_file():
                self._upload(
                    log_path, f"conversion_log{log_path.suffix}" if log_path.suffix else "conversion_log"
                )
