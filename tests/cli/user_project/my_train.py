"""A user's own training function, outside the mlrig packages: what ``mlrig sweep --train my_train:train``
imports (the e2e tests put this folder on ``--python-path``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def train(request: Any) -> Mapping[str, float]:
    """A made-up score that peaks at learning_rate 0.01; writes a checkpoint and the config it saw."""
    lr = float(request.params.get("learning_rate", 0.01))
    epochs = int(request.train_config.get("training", {}).get("epochs", 1))
    score = 0.9 - 0.1 * abs(math.log10(lr) + 2) + 0.001 * epochs
    ckpt = request.output_dir / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "model.json").write_text(json.dumps({"lr": lr, "epochs": epochs}))
    for step in range(epochs):
        request.report(step, score)
    return {"macro-f1": score}


def labels(data_config: Mapping[str, Any]) -> list[int]:
    """Two classes over 60 rows."""
    return [i % 2 for i in range(60)]


def convert(request: Any) -> Mapping[str, Any]:
    """Copies the checkpoint as the 'converted' model."""
    src = request.checkpoint_dir / "model.json"
    request.output_dir.mkdir(parents=True, exist_ok=True)
    dst = request.output_dir / "model.json"
    dst.write_text(src.read_text())
    return {"model_path": str(dst), "size_bytes": dst.stat().st_size}


def benchmark(request: Any) -> Mapping[str, float]:
    """A fixed latency for the model at ``model_path`` (a champion's refit checkpoint folder)."""
    path = request.model_path
    model = json.loads((path / "model.json" if path.is_dir() else path).read_text())
    return {"latency_batch_1_ms": 1.0 + model["epochs"] / 100}
