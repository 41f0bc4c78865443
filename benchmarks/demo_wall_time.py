"""Wall time of ``mlrig demo`` in a fresh temp root (target <= 60 s on 2 cores) and its split.

Runs ``mlrig demo`` as a real process, then reads the split the demo measured itself: MLflow store
initialisation, training (the numpy model), backup, and tracking plus orchestration overhead. The anchor,
measured in the same run, is the training time alone (the work a pipeline without plumbing would do).
A second invocation measures the resume/reuse path.
Run: ``uv run --frozen python benchmarks/demo_wall_time.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60.0
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from mlrig.orchestration import run_demo
imported = time.perf_counter() - t0
summary = run_demo(sys.argv[1])
print(json.dumps({"import_s": imported, **summary.timings}))
"""


def _run(root: Path) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="mlrig-demo-bench-"))
    try:
        wall, split = _run(root)
        wall2, split2 = _run(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"mlrig demo, fresh root: {wall:.1f} s wall")
    for key in ("import_s", "store_init_s", "training_s", "backup_s", "tracking_and_overhead_s", "total_s"):
        print(f"  {key:<24}{split.get(key, float('nan')):7.2f} s")
    anchor = split["training_s"]
    print(f"anchor (training alone, same run): {anchor:.2f} s; ratio wall/training: {wall / anchor:.1f}x")
    print(f"second run (resume + reuse): {wall2:.1f} s wall, {split2['total_s']:.2f} s in the pipeline")
    print(f"target: <= {TARGET_S:.0f} s -> {'OK' if wall <= TARGET_S else 'MISSED'}")
    return 0 if wall <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
