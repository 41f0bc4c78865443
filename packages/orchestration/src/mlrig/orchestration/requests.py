"""What mlrig hands the user's code at each stage, and what it expects back.

The user's functions are plain callables: ``train(TrainRequest) -> metrics``,
``convert(ConvertRequest) -> info``, ``benchmark(BenchmarkRequest) -> metrics``. mlrig owns the output
directories, tracking and backup around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrig.orchestration.errors import OrchestrationError


class TrialPruned(Exception):  # noqa: N818 - mirrors optuna.TrialPruned, which users already know
    """Raised by user code (or by ``TrainRequest.report``'s caller) to stop an unpromising trial."""


def _never_prune(step: int, value: float) -> bool:
    return False


@dataclass(frozen=True)
class TrainRequest:
    """One training job: an HPO fold, a refit on all data, or a final training.

    ``train_indices``/``eval_indices`` are row indices into the dataset described by ``data_config``
    (``eval_indices`` is None when training on all data). Write checkpoints under ``output_dir``
    (``output_dir / "checkpoint"`` by convention). Call ``report(step, value)`` with the objective metric as
    training goes; when it returns True, raise :class:`TrialPruned`. ``init_checkpoint`` is the checkpoint
    selection chose (final training may warm-start from it).
    """

    backbone: str
    params: Mapping[str, Any]
    output_dir: Path
    seed: int
    data_config: Mapping[str, Any]
    train_config: Mapping[str, Any]
    train_indices: Sequence[int] | None = None
    eval_indices: Sequence[int] | None = None
    fold_idx: int | None = None
    trial_number: int | None = None
    init_checkpoint: Path | None = None
    report: Callable[[int, float], bool] = field(default=_never_prune)


@dataclass(frozen=True)
class ConvertRequest:
    """Convert the checkpoint in ``checkpoint_dir`` into ``output_dir`` (e.g. quantise it)."""

    backbone: str
    checkpoint_dir: Path
    output_dir: Path
    conversion_config: Mapping[str, Any]


@dataclass(frozen=True)
class BenchmarkRequest:
    """Measure the model at ``model_path``; write any report into ``output_dir``."""

    backbone: str
    model_path: Path
    output_dir: Path
    data_config: Mapping[str, Any]
    benchmark_config: Mapping[str, Any]


TrainFn = Callable[[TrainRequest], Mapping[str, float]]
ConvertFn = Callable[[ConvertRequest], Mapping[str, Any]]
BenchmarkFn = Callable[[BenchmarkRequest], Mapping[str, float]]


def load_callable(spec: str) -> Callable[..., Any]:
    """The function named ``module:function`` (``package.module:object.attr`` works too), imported now.

    Raises :class:`OrchestrationError` in one line when the module cannot be imported or has no such name.
    """
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise OrchestrationError(f"{spec!r} is not module:function")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise OrchestrationError(f"cannot import {module_name!r} for {spec!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise OrchestrationError(f"{spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise OrchestrationError(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]
