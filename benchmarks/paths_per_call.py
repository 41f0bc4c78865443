"""Per-call cost of ``build_output_path`` and ``resolve_output_path`` with a warm config cache
(target <= 20 us), and how often the YAML file is stat-ed (target: at most once per second).

Two figures for ``build_output_path``: the same context again (a run asking for its directory repeatedly)
and a new context on every call (a sweep: each trial's path is rendered, normalised and checked afresh).
The anchor, measured in the same run, is one ``os.stat`` of the same paths.yaml -- what a reader that
re-checks its file on every call would pay at minimum.
Run: ``uv run --frozen python benchmarks/paths_per_call.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from mlrig.naming import build_output_path, create_naming_context
from mlrig.paths import resolve_output_path

TARGET_US = 20.0
CALLS = 20_000
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "original-config"


def _per_call_us(fn: object, calls: int) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="mlrig-bench-"))
    try:
        cfg = root / "config"
        cfg.mkdir()
        src = REFERENCE / "paths.yaml" if (REFERENCE / "paths.yaml").exists() else None
        if src is not None:
            shutil.copy(src, cfg / "paths.yaml")
        ctx = create_naming_context(
            "hpo",
            "distilbert",
            environment="local",
            storage_env="local",
            study_key_hash="350a79aa" * 8,
            trial_key_hash="0123abcd" * 8,
            trial_id="trial_1",
            trial_number=1,
        )
        fresh = [
            create_naming_context(
                "hpo",
                "distilbert",
                environment="local",
                storage_env="local",
                study_key_hash="350a79aa" * 8,
                trial_key_hash=f"{i:08x}" + "0" * 56,  # the first 8 characters name the folder
                trial_id=f"trial_{i}",
                trial_number=i,
            )
            for i in range(CALLS)
        ]
        build_output_path(root, ctx, cfg)
        resolve_output_path(root, cfg, "cache", subcategory="best_model_selection")
        yaml_file = str(cfg / "paths.yaml")
        anchor = _per_call_us(lambda: os.stat(yaml_file), CALLS)
        build = _per_call_us(lambda: build_output_path(root, ctx, cfg), CALLS)
        t0 = time.perf_counter()
        for other in fresh:
            build_output_path(root, other, cfg)
        build_new = (time.perf_counter() - t0) / len(fresh) * 1e6
        resolve = _per_call_us(
            lambda: resolve_output_path(root, cfg, "cache", subcategory="final_training"), CALLS
        )

        stats = 0
        real_stat = os.stat

        def counting_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
            nonlocal stats
            if str(path) == yaml_file:
                stats += 1
            return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

        os.stat = counting_stat  # type: ignore[assignment]
        try:
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < 2.0:
                build_output_path(root, ctx, cfg)
                n += 1
            elapsed = time.perf_counter() - t0
        finally:
            os.stat = real_stat
        print(f"build_output_path (hpo, warm config, same context): {build:.1f} us/call")
        print(f"build_output_path (hpo, warm config, new context every call): {build_new:.1f} us/call")
        print(f"resolve_output_path (cache subcategory): {resolve:.1f} us/call")
        print(f"anchor os.stat(paths.yaml): {anchor:.2f} us/call")
        print(
            f"ratio build/stat: {build / anchor:.1f}x (new context {build_new / anchor:.1f}x); "
            f"resolve/stat: {resolve / anchor:.1f}x"
        )
        print(f"paths.yaml stat-ed {stats} times in {n} calls over {elapsed:.1f} s ({stats / elapsed:.2f}/s)")
        ok = max(build, build_new, resolve) <= TARGET_US and stats / elapsed <= 1.0 + 1e-9 * n
        print(f"target: <= {TARGET_US:.0f} us/call and <= 1 stat/s -> {'OK' if ok else 'MISSED'}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
