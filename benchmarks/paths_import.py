"""Import cost of ``mlrig.paths`` against a bare interpreter (target: <= +30 ms).

Each sample is two fresh ``python`` processes: a bare one (``-c pass``, the anchor) and one that imports
``mlrig.paths``; both wall times are measured from outside.
Run: ``uv run --frozen python benchmarks/paths_import.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

TARGET_MS = 30.0
SAMPLES = 15
PROBE = (
    "import sys, mlrig.paths\n"
    "assert 'mlflow' not in sys.modules and 'optuna' not in sys.modules, 'heavy import from mlrig.paths'\n"
)


def _wall_ms(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - t0) * 1e3


def main() -> int:
    _wall_ms(PROBE)  # warm the OS file cache
    bare = [_wall_ms("pass") for _ in range(SAMPLES)]
    with_paths = [_wall_ms(PROBE) for _ in range(SAMPLES)]
    anchor, measured = statistics.median(bare), statistics.median(with_paths)
    extra = measured - anchor
    print(f"python -c 'import mlrig.paths': median {measured:.1f} ms over {SAMPLES} runs")
    print(f"anchor bare interpreter (python -c pass): median {anchor:.1f} ms")
    print(f"extra import cost: {extra:.1f} ms; ratio {measured / anchor:.2f}x")
    print(f"target: <= +{TARGET_MS:.0f} ms -> {'OK' if extra <= TARGET_MS else 'MISSED'}")
    return 0 if extra <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
