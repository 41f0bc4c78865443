"""Running workers from the command line: resolving the two URLs and the training function, and
``mlrig demo --workers N`` (N local worker processes on the root's services)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlrig.orchestration.distributed import STORAGE_ENV
from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.requests import TrainFn, load_callable
from mlrig.orchestration.services import services_status, services_up

logger = logging.getLogger(__name__)

TRACKING_ENV = "MLFLOW_TRACKING_URI"


def resolve_distributed_uris(
    root: Path, storage_url: str | None, tracking_uri: str | None
) -> tuple[str, str]:
    """``(optuna storage URL, tracking URI)``: the arguments, else ``$MLRIG_OPTUNA_STORAGE`` /
    ``$MLFLOW_TRACKING_URI``, else the services of ``root`` when they are up (``mlrig services up``)."""
    storage = storage_url or os.environ.get(STORAGE_ENV)
    tracking = tracking_uri or os.environ.get(TRACKING_ENV)
    if not (storage and tracking):
        running = services_status(root)
        if running is not None:
            storage, tracking = storage or running.optuna_storage, tracking or running.tracking_uri
    if not storage or not tracking:
        raise OrchestrationError(
            f"distributed mode needs an Optuna storage URL (--optuna-storage or ${STORAGE_ENV}) and an "
            f"http(s) tracking URI (--tracking-uri or ${TRACKING_ENV}), or `mlrig services up --root {root}`"
        )
    if not tracking.startswith(("http://", "https://")):
        raise OrchestrationError(f"workers on many machines need an http(s) MLflow server, got {tracking!r}")
    return storage, tracking


def load_train_fn(spec: str | None) -> TrainFn:
    """``module:function`` (a :data:`TrainFn`), or the demo model's training when ``spec`` is None."""
    if spec is None:
        from mlrig.orchestration import demo_model

        return demo_model.train
    train: TrainFn = load_callable(spec)
    return train


@dataclass
class DemoWorkersResult:
    """What ``mlrig demo --workers N`` did: the URLs used and each worker process's exit status."""

    tracking_uri: str
    optuna_storage: str
    exit_codes: list[int]


def run_demo_workers(
    root: Path, workers: int, *, config_dir: Path | None = None, max_trials: int | None = None,
    extra_args: Sequence[str] = (),
) -> DemoWorkersResult:  # fmt: skip
    """Run the demo's sweeps with ``workers`` ``mlrig worker`` processes on the root's services (started
    when they are not up); returns when every worker has exited."""
    running = services_up(root)
    cmd = [sys.executable, "-m", "mlrig.cli", "worker", "--root", str(Path(root).absolute())]
    cmd += ["--optuna-storage", running.optuna_storage, "--tracking-uri", running.tracking_uri]
    if config_dir is not None:
        cmd += ["--config-dir", str(config_dir)]
    if max_trials is not None:
        cmd += ["--max-trials", str(max_trials)]
    procs = [subprocess.Popen([*cmd, *extra_args]) for _ in range(workers)]
    codes = [p.wait() for p in procs]
    return DemoWorkersResult(running.tracking_uri, running.optuna_storage, codes)
