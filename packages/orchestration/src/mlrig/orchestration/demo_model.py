"""The demo's "user code": a numpy model with two backbones, int8 conversion and a benchmark.

- ``tiny``: softmax regression; ``small``: one hidden layer of 128 ReLU units with dropout.
- :func:`train` (a ``TrainFn``) trains with mini-batch AdamW for ``train_config["training"]["epochs"]``
  epochs; ``request.params`` (``learning_rate``, ``batch_size``, ``weight_decay``, ``dropout``) override
  ``train_config["training"]``. It writes ``<output_dir>/checkpoint/model.npz`` and
  ``<output_dir>/metrics.json``.
- :func:`convert` (a ``ConvertFn``) quantises the weight matrices to int8 (symmetric, one scale per tensor).
- :func:`benchmark` (a ``BenchmarkFn``) measures latency per batch size and scores the held-out test rows.
- ``demo_pyfunc.write_pyfunc_model`` writes the MLflow pyfunc model (class probabilities) of a checkpoint,
  which the final-training stage logs as the run's MLflow model.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlrig.orchestration.demo_data import make_dataset, make_test_set, score_probabilities
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import BenchmarkRequest, ConvertRequest, TrainRequest, TrialPruned
from mlrig.paths import atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

#: Hidden units per backbone (0 = softmax regression).
BACKBONES: Mapping[str, int] = {"tiny": 0, "small": 128}

CHECKPOINT_FILE = "model.npz"

Array = NDArray[np.float32]

# Rows per matmul: keeps OpenBLAS single-threaded (it spawns threads above ~256k multiply-adds), which on a
# busy 2-core machine is several times faster for matrices this small.
_CHUNK = 64

# benchmark.json's timing entry -> the suffix of the metric it is returned as (latency_batch_<b>_<suffix>)
_LATENCY_METRICS = {"mean_ms": "ms", "median_ms": "p50_ms", "p95_ms": "p95_ms", "p99_ms": "p99_ms"}


@dataclass(frozen=True)
class _Model:
    backbone: str
    n_classes: int
    mean: Array
    std: Array
    layers: tuple[tuple[Array, Array], ...]  # (weights, bias) per layer

    def logits(self, x: NDArray[np.float32]) -> Array:
        if len(x) > _CHUNK:
            return np.concatenate([self.logits(x[i : i + _CHUNK]) for i in range(0, len(x), _CHUNK)])
        h = (x - self.mean) / self.std
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h


def _hidden_units(backbone: str) -> int:
    if backbone not in BACKBONES:
        raise OrchestrationError(f"demo model: unknown backbone {backbone!r} (known: {sorted(BACKBONES)})")
    return BACKBONES[backbone]


def _hyper(request: TrainRequest, key: str, default: float) -> float:
    training = request.train_config.get("training") or {}
    value = request.params.get(key, training.get(key, default))
    try:
        # PyYAML reads ``2e-5`` (no dot) as a string, as in the reference train.yaml.
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number >= 0:
        raise OrchestrationError(f"demo model: {key!r} must be a non-negative number, got {value!r}")
    return number


def _rows(indices: Sequence[int] | None, n: int, what: str) -> NDArray[np.int64]:
    if indices is None:
        return np.arange(n, dtype=np.int64)
    rows = np.asarray(indices, dtype=np.int64)
    if rows.ndim != 1 or rows.size == 0 or rows.min() < 0 or rows.max() >= n:
        raise OrchestrationError(f"demo model: {what} must be a non-empty list of row indices in [0, {n})")
    return rows


def _softmax(logits: Array) -> Array:
    z: Array = np.exp(logits - logits.max(axis=1, keepdims=True))
    z /= z.sum(axis=1, keepdims=True)
    return z


def _evaluate(model: _Model, x: NDArray[np.float32], y: NDArray[np.int64]) -> dict[str, float]:
    return score_probabilities(_softmax(model.logits(x)), y, model.n_classes)


def _fit_epoch(
    model: _Model, x: Array, y: NDArray[np.int64], opt: dict[str, Any], rng: np.random.Generator
) -> None:
    """One epoch of mini-batch AdamW, updating ``model.layers`` in place."""
    lr, wd, dropout, batch = opt["lr"], opt["wd"], opt["dropout"], opt["batch"]
    order = rng.permutation(len(y))
    onehot = np.eye(model.n_classes, dtype=np.float32)
    last = len(model.layers) - 1
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        acts: list[Array] = [x[idx]]
        masks: list[Array] = []
        for i, (w, b) in enumerate(model.layers):
            h = acts[-1] @ w + b
            if i < last:
                mask = (h > 0).astype(np.float32)
                if dropout > 0:
                    mask *= (rng.random(h.shape, dtype=np.float32) >= dropout) / np.float32(1.0 - dropout)
                masks.append(mask)
                h = h * mask
            acts.append(h)
        grad = (_softmax(acts[-1]) - onehot[y[idx]]) / np.float32(len(idx))
        opt["t"] += 1
        t = opt["t"]
        for i in range(last, -1, -1):
            w, b = model.layers[i]
            grads = (acts[i].T @ grad, grad.sum(axis=0))
            if i > 0:
                grad = (grad @ w.T) * masks[i - 1]
            for j, (param, g) in enumerate(zip((w, b), grads, strict=True)):
                m, v = opt["m"][i][j], opt["v"][i][j]
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                step = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
                if j == 0 and wd > 0:
                    param *= np.float32(1.0 - lr * wd)  # decoupled decay, weights only
                param -= np.float32(lr) * step


def _new_model(backbone: str, x: Array, n_classes: int, rng: np.random.Generator) -> _Model:
    hidden = _hidden_units(backbone)
    sizes = [x.shape[1], *([hidden] if hidden else []), n_classes]
    layers = tuple(
        (
            (rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))).astype(np.float32),
            np.zeros(fan_out, dtype=np.float32),
        )
        for fan_in, fan_out in itertools.pairwise(sizes)
    )
    mean = x.mean(axis=0).astype(np.float32)
    std = np.maximum(x.std(axis=0), 1e-6).astype(np.float32)
    return _Model(backbone=backbone, n_classes=n_classes, mean=mean, std=std, layers=layers)


def _save_npz(path: Path, arrays: Mapping[str, NDArray[Any]]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _model_arrays(model: _Model, fmt: str = "float32") -> dict[str, NDArray[Any]]:
    """The ``.npz`` entries: one JSON ``meta`` entry (few entries keep the zip overhead small), feature
    normalisation stats and ``w<i>``/``b<i>`` per layer; ``int8`` stores each ``w<i>`` as int8 with its scale
    in ``meta``."""
    meta: dict[str, Any] = {"format": fmt, "backbone": model.backbone, "n_classes": model.n_classes}
    arrays: dict[str, NDArray[Any]] = {"feature_mean": model.mean, "feature_std": model.std}
    for i, (w, b) in enumerate(model.layers):
        if fmt == "int8":
            peak = float(np.abs(w).max())
            scale = float(np.float32(peak / 127.0 if peak > 0 else 1.0))
            arrays[f"w{i}"] = np.clip(np.rint(w / np.float32(scale)), -127, 127).astype(np.int8)
            meta[f"w{i}_scale"] = scale
        else:
            arrays[f"w{i}"] = w
        arrays[f"b{i}"] = b
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return arrays


def _load_model(path: Path) -> _Model:
    """A float32 or int8 ``.npz`` model (int8 weights are dequantised once, at load)."""
    if not path.is_file():
        raise OrchestrationError(f"demo model: model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            fmt = meta["format"]
            if fmt not in ("float32", "int8"):
                raise OrchestrationError(f"demo model: {path}: unknown format {fmt!r}")
            layers = []
            for i in range(sum(1 for k in data.files if k.startswith("w"))):
                w = data[f"w{i}"].astype(np.float32)
                if fmt == "int8":
                    w *= np.float32(meta[f"w{i}_scale"])
                layers.append((w, data[f"b{i}"].astype(np.float32)))
            mean, std = data["feature_mean"], data["feature_std"]
    except (KeyError, ValueError, OSError) as exc:
        raise OrchestrationError(f"demo model: {path} is not a demo model file: {exc}") from exc
    return _Model(str(meta["backbone"]), int(meta["n_classes"]), mean, std, tuple(layers))


def _warm_start(source: Path, request: TrainRequest, n_features: int, n_classes: int) -> _Model:
    """The model in ``source`` (a checkpoint dir or file), with writable weights."""
    path = _resolve_model_file(source)
    model = _load_model(path)
    if (model.backbone, model.n_classes, len(model.mean)) != (request.backbone, n_classes, n_features):
        raise OrchestrationError(
            f"demo model: init_checkpoint {path} holds backbone {model.backbone!r} with {model.n_classes} "
            f"classes and {len(model.mean)} features; the request needs {request.backbone!r}, {n_classes}, "
            f"{n_features}"
        )
    logger.info("warm-starting %s from %s", request.backbone, path)
    layers = tuple((w.copy(), b.copy()) for w, b in model.layers)
    return _Model(model.backbone, model.n_classes, model.mean.copy(), model.std.copy(), layers)


def train(request: TrainRequest) -> dict[str, float]:
    """Train ``request.backbone`` on ``train_indices`` and score it on ``eval_indices``.

    With ``init_checkpoint`` training continues from that model (same backbone; its feature normalisation
    is kept). Without ``eval_indices`` (refit / final training) the scores are on the training rows and the
    result carries ``evaluated_on_train=1.0``. Calls ``request.report(epoch, macro_f1)`` after each epoch
    (epochs count from 1) and raises :class:`TrialPruned` when it returns True.
    """
    x_all, y_all = make_dataset(request.data_config)
    n_classes = int(request.data_config.get("n_classes", int(y_all.max()) + 1))
    train_rows = _rows(request.train_indices, len(y_all), "train_indices")
    eval_rows = (
        train_rows
        if request.eval_indices is None
        else _rows(request.eval_indices, len(y_all), "eval_indices")
    )
    training = request.train_config.get("training") or {}
    # None: final_training.yaml's "unset"
    epochs = 6 if training.get("epochs") is None else training["epochs"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise OrchestrationError(
            f"demo model: train_config training.epochs must be an int >= 1, got {epochs!r}"
        )
    batch = int(_hyper(request, "batch_size", 64))
    if batch < 1:
        raise OrchestrationError(f"demo model: batch_size must be >= 1, got {batch}")
    dropout = _hyper(request, "dropout", 0.0) if _hidden_units(request.backbone) else 0.0
    if dropout >= 1.0:
        raise OrchestrationError(f"demo model: dropout must be < 1, got {dropout}")

    rng = np.random.default_rng(request.seed)
    x_train, y_train = x_all[train_rows], y_all[train_rows]
    if request.init_checkpoint is None:
        model = _new_model(request.backbone, x_train, n_classes, rng)
    else:
        model = _warm_start(request.init_checkpoint, request, x_train.shape[1], n_classes)
    x_norm = (x_train - model.mean) / model.std
    opt: dict[str, Any] = {
        "lr": _hyper(request, "learning_rate", 0.01),
        "wd": _hyper(request, "weight_decay", 0.0),
        "dropout": dropout,
        "batch": batch,
        "t": 0,
        "m": [(np.zeros_like(w), np.zeros_like(b)) for w, b in model.layers],
        "v": [(np.zeros_like(w), np.zeros_like(b)) for w, b in model.layers],
    }
    x_eval, y_eval = x_all[eval_rows], y_all[eval_rows]
    metrics: dict[str, float] = {}
    for epoch in range(1, epochs + 1):
        _fit_epoch(model, x_norm, y_train, opt, rng)
        metrics = _evaluate(model, x_eval, y_eval)
        logger.debug("%s epoch %d: %s", request.backbone, epoch, metrics)
        if request.report(epoch, metrics["macro-f1"]):
            raise TrialPruned(f"pruned at epoch {epoch} (macro-f1={metrics['macro-f1']:.4f})")
    if request.eval_indices is None:
        metrics["evaluated_on_train"] = 1.0
    _save_npz(request.output_dir / "checkpoint" / CHECKPOINT_FILE, _model_arrays(model))
    atomic_write_json(request.output_dir / "metrics.json", metrics)
    return metrics


def convert(request: ConvertRequest) -> dict[str, Any]:
    """Quantise ``checkpoint_dir/model.npz`` to int8 into ``output_dir`` (``quantization: none`` copies it).

    Returns ``model_path``, ``size_bytes``, ``original_size_bytes``, ``compression_ratio`` and
    ``smoke_test_passed`` (the converted model agrees with the original on >= 95% of 256 random inputs).
    """
    cfg = request.conversion_config
    fmt = str((cfg.get("target") or {}).get("format", "npz"))
    if fmt != "npz":
        raise OrchestrationError(f"demo model: conversion target.format must be 'npz', got {fmt!r}")
    quantization = str((cfg.get(fmt) or {}).get("quantization", "int8"))
    if quantization not in ("int8", "none"):
        raise OrchestrationError(
            f"demo model: conversion npz.quantization must be int8|none, got {quantization!r}"
        )
    source = request.checkpoint_dir / CHECKPOINT_FILE
    model = _load_model(source)
    pattern = str((cfg.get("output") or {}).get("filename_pattern", "model_{quantization}.npz"))
    target = request.output_dir / pattern.format(quantization=quantization)
    arrays = _model_arrays(model, "int8" if quantization == "int8" else "float32")
    _save_npz(target, arrays)
    float_bytes = sum(w.nbytes for w, _ in model.layers)
    stored_bytes = sum(arrays[f"w{i}"].nbytes for i in range(len(model.layers)))
    converted = _load_model(target)
    probe = np.random.default_rng(0).normal(size=(256, len(model.mean))).astype(np.float32)
    probe = probe * model.std + model.mean
    agreement = float((converted.logits(probe).argmax(1) == model.logits(probe).argmax(1)).mean())
    size, original = target.stat().st_size, source.stat().st_size
    logger.info("converted %s -> %s (%d -> %d bytes)", source, target, original, size)
    return {
        "model_path": str(target),
        "size_bytes": size,
        "original_size_bytes": original,
        "compression_ratio": original / size,
        # The file ratio is below the weights' because biases, feature stats and the zip container keep
        # their size (a few KB, which these tiny models do not dwarf).
        "weights_compression_ratio": float_bytes / stored_bytes,
        "quantization": quantization,
        "smoke_test_agreement": agreement,
        "smoke_test_passed": agreement >= 0.95,
    }


def _resolve_model_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("model_int8.npz", "model_none.npz", CHECKPOINT_FILE):
            if (path / name).is_file():
                return path / name
        raise OrchestrationError(f"demo model: no model_int8.npz / model.npz in directory {path}")
    return path


def _timings(model: _Model, x: Array, iterations: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        model.logits(x)
    samples = np.empty(iterations, dtype=np.float64)
    for k in range(iterations):
        start = time.perf_counter_ns()
        model.logits(x).argmax(axis=1)
        samples[k] = (time.perf_counter_ns() - start) / 1e6
    mean, (p50, p95, p99) = float(samples.mean()), np.percentile(samples, [50, 95, 99]).tolist()
    throughput = len(x) * 1000.0 / mean if mean > 0 else 0.0
    return {
        "mean_ms": mean,
        "median_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "throughput_docs_per_sec": throughput,
    }


def benchmark(request: BenchmarkRequest) -> dict[str, float]:
    """Latency per batch size and test-split scores of the model at ``model_path``.

    ``benchmark.json`` holds the reference ``batch_<b>`` entries (mean/median/p95/p99 ms, throughput) that
    ``MLflowBenchmarkTracker.log_benchmark_results`` reads; the returned metrics use the names it logs
    (``latency_batch_<b>_ms`` is the mean, ``..._p50_ms`` the median) plus ``accuracy``, ``macro-f1``,
    ``loss`` and ``model_size_bytes``.
    """
    cfg = request.benchmark_config.get("benchmarking") or {}
    batch_sizes = sorted({1, *(int(b) for b in cfg.get("batch_sizes") or [1])})
    iterations = int(cfg.get("iterations", 50))
    warmup = int(cfg.get("warmup_iterations", 5))
    if iterations < 1 or warmup < 0 or batch_sizes[0] < 1:
        raise OrchestrationError(
            f"demo model: benchmarking needs iterations >= 1, warmup_iterations >= 0, batch sizes >= 1 "
            f"(got {iterations}, {warmup}, {batch_sizes})"
        )
    path = _resolve_model_file(request.model_path)
    model = _load_model(path)
    x_test, y_test = make_test_set(request.data_config)
    entries = {
        f"batch_{b}": _timings(model, np.resize(x_test, (b, x_test.shape[1])), iterations, warmup)
        for b in batch_sizes
    }
    metrics: dict[str, float] = {}
    for b in batch_sizes:
        for source, suffix in _LATENCY_METRICS.items():
            metrics[f"latency_batch_{b}_{suffix}"] = entries[f"batch_{b}"][source]
    metrics["throughput_samples_per_sec"] = entries[f"batch_{batch_sizes[-1]}"]["throughput_docs_per_sec"]
    metrics.update(_evaluate(model, x_test, y_test))
    metrics["model_size_bytes"] = float(path.stat().st_size)
    report: dict[str, Any] = {
        "backbone": request.backbone,
        "model_path": str(path),
        "batch_sizes": batch_sizes,
    }
    report.update(iterations=iterations, warmup_iterations=warmup, device="cpu", test_rows=len(y_test))
    report.update(entries, metrics=metrics)
    filename = str((request.benchmark_config.get("output") or {}).get("filename", "benchmark.json"))
    atomic_write_json(request.output_dir / filename, report)
    return metrics
