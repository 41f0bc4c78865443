"""The demo's training function with faults injected, for tests (the shipped demo model has no test hooks).

:func:`faulty` wraps a ``TrainFn`` (the demo's :func:`~mlrig.orchestration.demo_model.train` by default) and
is passed to the sweep or the stage runners exactly like the demo passes its own function.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

from mlrig.orchestration import demo_model
from mlrig.orchestration.requests import TrainFn, TrainRequest


def faulty(
    train_fn: TrainFn = demo_model.train,
    *,
    fail_always: bool = False,
    fail_trials: Collection[int] = (),
    hang_at: tuple[int, int | None] | None = None,
    hang_marker: Path | None = None,
) -> TrainFn:
    """``train_fn`` failing every call (``fail_always``) or the calls of ``fail_trials``, and hanging (after
    writing ``hang_marker``) in the call of ``hang_at = (trial_number, fold_idx)`` so a test can kill it."""

    def train(request: TrainRequest) -> dict[str, float]:
        if fail_always:
            raise RuntimeError("faulty model: simulated failure of every call")
        if request.trial_number is not None and request.trial_number in fail_trials:
            raise RuntimeError(f"faulty model: simulated failure of trial {request.trial_number}")
        if hang_at is not None and (request.trial_number, request.fold_idx) == hang_at:
            if hang_marker is not None:
                hang_marker.write_text("hanging", encoding="utf-8")
            time.sleep(600)
        return dict(train_fn(request))

    return train
