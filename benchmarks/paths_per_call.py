"""Per-call cost of ``build_output_path`` and ``resolve_output_path`` with a warm config cache
(target <= 20 us), and how often the YAML file is stat-ed (target: at most once per second).

Two figures for ``build_output_path``: the same context again (a run asking for its existing directory
repeatedly), and a new context on every call in an existing study folder (a sweep: each trial's path is
rendered, normalised and checked afresh). A folder never seen before costs one existence check of its
name on top (so a symlink or a file already in its place is caught at once); that is file-system time
(a kernel lookup of a name not there yet, ~5 us on the development VM), measured by itself in the same
rounds and reported beside the total, and the target applies to the library's own work.
The other anchor, measured in the same run, is one ``os.stat`` of the same paths.yaml -- what a reader
that re-checks its file on every call would pay at minimum.
Run: ``uv run --frozen python benchmarks/paths_per_call.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from mlrig.naming import NamingContext, build_output_path, create_naming_context
from mlrig.paths import resolve_output_path

TARGET_US = 20.0
CALLS = 20_000
BATCH = 250
ROUNDS = 5  # the best of 5, as timeit: this machine's neighbours come and go
# The reference project's paths.yaml, kept in the repository as a test fixture.
REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference_config"


def _per_call_us(fn: object, calls: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


def _trial(number: int) -> NamingContext:
    return create_naming_context(
        "hpo",
        "distilbert",
        environment="local",
        storage_env="local",
        study_key_hash="350a79aa" * 8,
        # The first 8 characters name the folder: each number asks for a new one.
        trial_key_hash=f"{number:08x}" + "0" * 56,
        trial_id=f"trial_{number}",
        trial_number=number,
    )


def _new_folder_us(root: Path, cfg: Path, study: Path) -> tuple[float, float]:
    """A sweep: each trial's context is made, then its (new) folder asked for; returns the best round's
    microseconds per call, and the same round's time for the file-system look at one new name by itself.

    Contexts are made in small untimed batches just before use, as a sweep makes each right before it asks
    (tens of thousands made up front would measure this machine's cache misses instead). Right after each
    batch, as many names that are not there yet are looked up in the study folder the way the library does
    (``os.access`` without following), so that both figures of a round met the same neighbours."""
    best, number = (float("inf"), float("inf")), 1
    for _ in range(ROUNDS):
        spent = probed = 0.0
        for _ in range(CALLS // BATCH):
            batch = [_trial(n) for n in range(number, number + BATCH)]
            missing = [os.path.join(study, f"probe-{n}") for n in range(number, number + BATCH)]
            number += BATCH
            t0 = time.perf_counter()
            for context in batch:
                build_output_path(root, context, cfg)
            t1 = time.perf_counter()
            for name in missing:
                os.access(name, os.F_OK, follow_symlinks=False)
            probed += time.perf_counter() - t1
            spent += t1 - t0
        calls = CALLS // BATCH * BATCH
        best = min(best, (spent / calls * 1e6, probed / calls * 1e6))
    return best


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="mlrig-bench-"))
    try:
        cfg = root / "config"
        cfg.mkdir()
        shutil.copy(REFERENCE / "paths.yaml", cfg / "paths.yaml")
        ctx = _trial(0)
        own = build_output_path(root, ctx, cfg)
        own.mkdir(parents=True)  # the study folder and one trial folder exist
        # What the first call saw (no folders yet) is trusted for up to a second: measure what is on disk now.
        time.sleep(1.1)
        resolve_output_path(root, cfg, "cache", subcategory="best_model_selection")
        yaml_file = str(cfg / "paths.yaml")
        anchor = _per_call_us(lambda: os.stat(yaml_file), CALLS)
        build = _per_call_us(lambda: build_output_path(root, ctx, cfg), CALLS)
        build_new, probe_new = _new_folder_us(root, cfg, own.parent)
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
        own_work = build_new - probe_new
        print(f"build_output_path (hpo, warm config, same context): {build:.1f} us/call")
        print(
            f"build_output_path (hpo, warm config, new trial folder every call): {build_new:.1f} us/call "
            f"= {own_work:.1f} library + {probe_new:.1f} existence check of the new name"
        )
        print(f"resolve_output_path (cache subcategory): {resolve:.1f} us/call")
        print(f"anchor os.stat(paths.yaml): {anchor:.2f} us/call")
        print(
            f"anchor existence check of a new name in the study folder (same rounds): {probe_new:.2f} us/call"
        )
        print(
            f"ratio build/stat: {build / anchor:.1f}x; resolve/stat: {resolve / anchor:.1f}x; "
            f"new folder/existence check: {build_new / probe_new:.1f}x"
        )
        print(f"paths.yaml stat-ed {stats} times in {n} calls over {elapsed:.1f} s ({stats / elapsed:.2f}/s)")
        ok = max(build, own_work, resolve) <= TARGET_US and stats / elapsed <= 1.0 + 1e-9 * n
        verdict = "OK" if ok else "MISSED"
        print(
            f"target: <= {TARGET_US:.0f} us/call of library work and <= 1 stat/s -> {verdict}"
            f" (a new folder including its check: {build_new:.1f} us/call)"
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
