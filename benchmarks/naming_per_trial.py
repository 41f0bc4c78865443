"""Per-trial naming cost with the run's config object passed, as a sweep does (target: <= 200 us per trial).

A sweep loads its ``NamingConfig`` once (``load_naming_config``) and passes it down as ``naming_config=``, so
no naming call reads a file. Measured per trial, what mlrig.naming computes for one HPO trial of a sweep and
its tracker: the trial key hash, the context, the run-name version check and counter key, the run name, the
tags and the run key (the scope of the earlier figures, ~80 us with module caches, plus the tracker's counter
key and run key). The verdict compares that raw figure to the target, nothing subtracted. Anchor, measured in
the same run and timed in alternation with it: one ``hashlib.sha256(json.dumps(params, sort_keys=True))`` of
the same hyperparameters; the figure is printed as a ratio to it. Printed beside them, without a verdict
here: the trial's output directory (``build_output_path`` with the same config object: paths' rendering and
one ``lstat`` per existing level, verdict in ``benchmarks/paths_per_call.py``) and the total with it; run
name + tags without the config object (each call reads naming.yaml, mlflow.yaml and tags.yaml). Configs: the
reference project's, copied from the test fixtures.
Run: ``uv run --frozen python benchmarks/naming_per_trial.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from mlrig.naming import (
    NamingConfig,
    NamingContext,
    build_mlflow_run_key,
    build_mlflow_run_name,
    build_mlflow_tags,
    build_output_path,
    build_run_name_counter_key,
    compute_trial_key_hash_from_configs,
    create_naming_context,
    is_run_name_versioned,
    load_naming_config,
)

TARGET_US = 200.0
OUTPUT_DIR = "/tmp/outputs/hpo/local/distilbert/study-1234abcd/trial-5678abcd"
REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference_config"
STUDY = hashlib.sha256(b"study").hexdigest()
PARAMS = {
    "learning_rate": 2.345e-05,
    "batch_size": 8,
    "dropout": 0.21,
    "weight_decay": 0.013,
    "backbone": "distilbert",
}


def make_context(number: int, trial_hash: str) -> NamingContext:
    return create_naming_context(
        "hpo",
        "distilbert",
        environment="local",
        stage="hpo_trial",
        trial_id=f"trial_{number}",
        trial_number=number,
        study_key_hash=STUDY,
        trial_key_hash=trial_hash,
    )


def per_trial(naming: NamingConfig, number: int) -> NamingContext:
    """What mlrig.naming computes for one HPO trial (sweep + tracker), with the run's config object."""
    ctx = make_context(number, compute_trial_key_hash_from_configs(STUDY, PARAMS))
    if is_run_name_versioned(ctx, naming_config=naming):
        build_run_name_counter_key(ctx, naming_config=naming)
    build_mlflow_run_name(ctx, version=number + 1, naming_config=naming)
    build_mlflow_tags(ctx, output_dir=OUTPUT_DIR, naming_config=naming)
    build_mlflow_run_key(ctx)
    return ctx


def with_output_path(root: Path, naming: NamingConfig, number: int) -> None:
    """:func:`per_trial` plus the trial's output directory, as the sweep asks for it."""
    build_output_path(root, per_trial(naming, number), naming_config=naming)


def anchor() -> None:
    hashlib.sha256(json.dumps(PARAMS, sort_keys=True).encode("utf-8")).hexdigest()


def best_us(func: Callable[[], object], repeat: int = 7, number: int = 2000) -> float:
    """Best-of-``repeat`` mean time per call in microseconds."""
    return min(timeit.Timer(func).repeat(repeat=repeat, number=number)) / number * 1e6


def paired_best_us(
    measured: Callable[[], object], anchor_fn: Callable[[], object], rounds: int = 15, number: int = 500
) -> tuple[float, float]:
    """Best-of-``rounds`` microseconds per call of ``measured`` and of ``anchor_fn``, timed in alternation so
    a change of load on this shared machine hits both alike."""
    timers = timeit.Timer(measured), timeit.Timer(anchor_fn)
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.timeit(number) / number * 1e6)
    return best[0], best[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config_dir = root / "config"
        config_dir.mkdir()
        for name in ("naming.yaml", "tags.yaml", "mlflow.yaml", "paths.yaml"):
            shutil.copy(REFERENCE / name, config_dir / name)
        naming = load_naming_config(config_dir, "local")  # once per run, as the sweep does
        counter = itertools.count()
        measured, anchor_us = paired_best_us(lambda: per_trial(naming, next(counter) % 50), anchor)
        total = best_us(lambda: with_output_path(root, naming, next(counter) % 50))
        ctx = make_context(3, compute_trial_key_hash_from_configs(STUDY, PARAMS))
        parts = {
            "trial key hash": best_us(lambda: compute_trial_key_hash_from_configs(STUDY, PARAMS)),
            "context": best_us(lambda: make_context(3, STUDY)),
            "version check + counter key": best_us(
                lambda: (
                    is_run_name_versioned(ctx, naming_config=naming)
                    and build_run_name_counter_key(ctx, naming_config=naming)
                )
            ),
            "run name": best_us(lambda: build_mlflow_run_name(ctx, version=4, naming_config=naming)),
            "tags": best_us(lambda: build_mlflow_tags(ctx, output_dir=OUTPUT_DIR, naming_config=naming)),
            "run key": best_us(lambda: build_mlflow_run_key(ctx)),
        }
        output_path = best_us(lambda: build_output_path(root, ctx, naming_config=naming))
        unloaded = best_us(
            lambda: (
                build_mlflow_run_name(ctx, config_dir, version=4),
                build_mlflow_tags(ctx, output_dir=OUTPUT_DIR, config_dir=config_dir),
            ),
            repeat=3,
            number=50,
        )
    print(f"per-trial naming with naming_config (sweep + tracker, one trial): {measured:.1f} us")
    for name, value in parts.items():
        print(f"  {name}: {value:.1f} us")
    print(f"anchor sha256(json.dumps(params, sort_keys=True)): {anchor_us:.2f} us")
    print(f"ratio measured/anchor: {measured / anchor_us:.1f}x")
    print(f"beside it (no verdict here): build_output_path with naming_config {output_path:.1f} us;")
    print(f"  per-trial naming + output path: {total:.1f} us ({total / anchor_us:.1f}x anchor)")
    print(f"  run name + tags without naming_config (reads 3 files per call): {unloaded:.0f} us")
    verdict = "OK" if measured <= TARGET_US else "MISSED"
    print(f"target: <= {TARGET_US:.0f} us per trial, raw figure -> {verdict}")
    return 0 if measured <= TARGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
