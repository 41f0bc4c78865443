"""Import cost of ``mlrig.naming`` on top of ``mlrig.paths`` in fresh interpreters (target <= +30 ms).

Each sample is a new ``python`` process that imports ``mlrig.paths`` and then ``mlrig.naming``, timing both,
and asserts that ``mlflow`` was not imported. The anchor is the ``mlrig.paths`` import measured in the same
processes. Run: ``uv run --frozen python benchmarks/naming_import.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

TARGET_MS = 30.0
SAMPLES = 15
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import mlrig.paths
t1 = time.perf_counter()
import mlrig.naming
t2 = time.perf_counter()
assert "mlflow" not in sys.modules, "mlrig.naming imported mlflow"
assert "optuna" not in sys.modules, "mlrig.naming imported optuna"
print(json.dumps({"paths": (t1 - t0) * 1e3, "naming": (t2 - t1) * 1e3}))
"""


def main() -> int:
    paths_ms: list[float] = []
    naming_ms: list[float] = []
    for _ in range(SAMPLES):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
        sample = json.loads(out.stdout)
        paths_ms.append(sample["paths"])
        naming_ms.append(sample["naming"])
    extra = statistics.median(naming_ms)
    anchor = statistics.median(paths_ms)
    print(
        f"import mlrig.naming after mlrig.paths: median {extra:.1f} ms "
        f"(min {min(naming_ms):.1f}) over {SAMPLES} runs"
    )
    print(f"anchor import mlrig.paths: median {anchor:.1f} ms")
    print(f"ratio naming/paths: {extra / anchor:.2f}x")
    print("mlflow/optuna not in sys.modules after import: OK")
    print(f"target: <= +{TARGET_MS:.0f} ms -> {'OK' if extra <= TARGET_MS else 'MISSED'}")
    return 0 if extra <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
