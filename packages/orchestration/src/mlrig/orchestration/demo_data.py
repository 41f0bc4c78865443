"""The demo's deterministic synthetic dataset and how predictions on it are scored.

``make_dataset(data_config)`` returns the *training pool*: the rows that ``TrainRequest.train_indices`` and
``eval_indices`` (and the K-fold splits) index into. ``make_test_set(data_config)`` returns the held-out rows
the benchmark scores on; they never appear in the training pool.

Each class is a mixture of two gaussian blobs in a low-dimensional latent space, mixed into ``n_features``
observed features together with a few nonlinear transforms and pure-noise columns. Classes overlap, and a
class whose two blobs sit on opposite sides of another class is not linearly separable, so the MLP backbone
beats softmax regression by a few points.

Data config keys (``defaults/data/demo.yaml``): ``seed``, ``n_rows``, ``n_features``, ``n_classes`` (equal to
the size of ``label_mapping`` when that is given), ``noise``, ``splitting.train_test_ratio`` and
``splitting.random_seed``. The study key (``mlrig.naming``) binds only ``name``/``version``/``schema``/
``label_mapping``/``split_seed``, so bump ``version`` when you change the generator settings.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlrig.orchestration.errors import OrchestrationError

logger = logging.getLogger(__name__)

_LATENT_DIMS = 4
_N_NONLINEAR = 4
_MODES = 3


@dataclass(frozen=True)
class _DataSpec:
    seed: int
    n_rows: int
    n_features: int
    n_classes: int
    noise: float
    train_ratio: float
    split_seed: int


def _int(config: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OrchestrationError(f"data config: key {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _float(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise OrchestrationError(
            f"data config: key {key!r} must be a number in [{low}, {high}], got {value!r}"
        )
    return float(value)


def _spec(data_config: Mapping[str, Any]) -> _DataSpec:
    n_classes = _int(data_config, "n_classes", 4, 2)
    labels = data_config.get("label_mapping")
    if labels and len(labels) != n_classes:
        raise OrchestrationError(
            f"data config: label_mapping has {len(labels)} labels but n_classes is {n_classes}"
        )
    splitting = data_config.get("splitting") or {}
    if not isinstance(splitting, Mapping):
        raise OrchestrationError(f"data config: key 'splitting' must be a mapping, got {splitting!r}")
    return _DataSpec(
        seed=_int(data_config, "seed", 0, 0),
        n_rows=_int(data_config, "n_rows", 1500, 10 * n_classes),
        n_features=_int(data_config, "n_features", 16, _LATENT_DIMS + _N_NONLINEAR),
        n_classes=n_classes,
        noise=_float(data_config, "noise", 0.6, 0.0, 100.0),
        train_ratio=_float(splitting, "train_test_ratio", 0.8, 0.05, 0.95),
        split_seed=_int(splitting, "random_seed", 42, 0),
    )


def _readonly(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=8)
def _generate(
    spec: _DataSpec,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """All rows, their labels, and the sorted train/test row indices (stratified split)."""
    rng = np.random.default_rng(spec.seed)
    # Mildly imbalanced classes, so macro-F1 and accuracy differ.
    weights = 1.0 / (1.0 + 0.35 * np.arange(spec.n_classes))
    y = rng.choice(spec.n_classes, size=spec.n_rows, p=weights / weights.sum()).astype(np.int64)
    centers = rng.uniform(-2.2, 2.2, size=(spec.n_classes, _MODES, _LATENT_DIMS))
    mode = rng.integers(0, _MODES, size=spec.n_rows)
    latent = centers[y, mode] + rng.normal(0.0, spec.noise, size=(spec.n_rows, _LATENT_DIMS))
    nonlinear = np.column_stack(
        [
            np.sin(1.5 * latent[:, 0]),
            latent[:, 1] * latent[:, 2] / 2.0,
            np.abs(latent[:, 3]) - 1.0,
            np.tanh(latent[:, 0] - latent[:, 1]),
        ]
    )
    informative = np.concatenate([latent, nonlinear], axis=1)
    mixing = rng.normal(0.0, 1.0, size=(informative.shape[1], informative.shape[1]))
    n_noise = spec.n_features - informative.shape[1]
    features = [informative @ mixing, rng.normal(0.0, 1.0, size=(spec.n_rows, n_noise))]
    scales = rng.uniform(0.5, 3.0, size=spec.n_features)
    offsets = rng.normal(0.0, 2.0, size=spec.n_features)
    x = (np.concatenate(features, axis=1) * scales + offsets).astype(np.float32)

    split_rng = np.random.default_rng(spec.split_seed)
    train_parts: list[NDArray[np.int64]] = []
    test_parts: list[NDArray[np.int64]] = []
    for label in range(spec.n_classes):
        rows = np.flatnonzero(y == label).astype(np.int64)
        split_rng.shuffle(rows)
        n_train = round(spec.train_ratio * len(rows))
        train_parts.append(rows[:n_train])
        test_parts.append(rows[n_train:])
    train_idx = np.sort(np.concatenate(train_parts))
    test_idx = np.sort(np.concatenate(test_parts))
    logger.debug("demo dataset %s: %d train rows, %d test rows", spec, len(train_idx), len(test_idx))
    return _readonly(x), _readonly(y), _readonly(train_idx), _readonly(test_idx)


def make_dataset(data_config: Mapping[str, Any]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The training pool ``(X, y)`` for ``data_config`` (read-only arrays, cached per config)."""
    x, y, train_idx, _ = _generate(_spec(data_config))
    return _readonly(x[train_idx]), _readonly(y[train_idx])


def make_test_set(data_config: Mapping[str, Any]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The held-out rows ``(X, y)`` for ``data_config``, disjoint from :func:`make_dataset`'s."""
    x, y, _, test_idx = _generate(_spec(data_config))
    return _readonly(x[test_idx]), _readonly(y[test_idx])


def macro_f1(y_true: NDArray[np.integer[Any]], y_pred: NDArray[np.integer[Any]], n_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    Same as scikit-learn's ``f1_score(average="macro")`` with its default labels (a class absent from both
    carries no information and is left out; a class predicted but never right scores 0).
    """
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape:
        raise OrchestrationError(f"macro_f1: y_true has shape {true.shape}, y_pred {pred.shape}")
    if true.size == 0:
        return 0.0
    tp = np.bincount(true[true == pred], minlength=n_classes)
    true_count = np.bincount(true, minlength=n_classes)
    pred_count = np.bincount(pred, minlength=n_classes)
    present = (true_count + pred_count) > 0
    f1 = 2.0 * tp[present] / (true_count[present] + pred_count[present])
    return float(f1.mean())


def score_probabilities(
    probs: NDArray[np.floating[Any]], y_true: NDArray[np.integer[Any]], n_classes: int
) -> dict[str, float]:
    """``macro-f1``, ``accuracy`` and mean cross-entropy ``loss`` of class probabilities ``probs`` (rows x
    classes) against ``y_true``."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = probs.argmax(axis=1)
    loss = float(-np.log(np.maximum(probs[np.arange(len(true)), true], 1e-12)).mean())
    return {
        "macro-f1": macro_f1(true, pred, n_classes),
        "loss": loss,
        "accuracy": float((pred == true).mean()),
    }
