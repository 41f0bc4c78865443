"""Import cost of ``mlrig.naming`` on top of ``mlrig.paths`` in fresh interpreters (target <= +30 ms).

Each sample is a new ``python`` process that imports ``mlrig.paths`` and then ``mlrig.naming``, timing both,
and asserts that ``mlflow``/``optuna`` were not imported. The package loads its names on first use, so the
same process then times the first real use: the names a sweep calls per trial (context, output path, run
name, tags, trial key), on top of paths' layout modules (``resolve_output_path``). The anchor is the
``mlrig.paths`` import measured in the same processes.

Bytecode is compiled first (``compileall``), as Python does on a package's first import -- this machine sets
``PYTHONDONTWRITEBYTECODE=1``, which would otherwise make every sample compile mlrig's sources again.
Run: ``uv run --frozen python benchmarks/naming_import.py``.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

TARGET_MS = 30.0
SAMPLES = 21
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import mlrig.paths
t1 = time.perf_counter()
import mlrig.naming
t2 = time.perf_counter()
from mlrig.paths import resolve_output_path
t3 = time.perf_counter()
from mlrig.naming import (
    build_hpo_trial_key_hash, build_mlflow_run_name, build_mlflow_tags, build_output_path,
    create_naming_context,
)
t4 = time.perf_counter()
assert "mlflow" not in sys.modules, "mlrig.naming imported mlflow"
assert "optuna" not in sys.modules, "mlrig.naming imported optuna"
print(json.dumps({"paths": t1 - t0, "naming": t2 - t1, "paths_use": t3 - t2, "naming_use": t4 - t3}))
"""


def _compile_mlrig() -> None:
    spec = importlib.util.find_spec("mlrig")
    for location in spec.submodule_search_locations or [] if spec else []:
        compileall.compile_dir(Path(location), quiet=1)


def main() -> int:
    _compile_mlrig()
    samples: dict[str, list[float]] = {"paths": [], "naming": [], "paths_use": [], "naming_use": []}
    for _ in range(SAMPLES):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
        for key, seconds in json.loads(out.stdout).items():
            samples[key].append(seconds * 1e3)
    median = {key: statistics.median(values) for key, values in samples.items()}
    print(f"anchor import mlrig.paths: median {median['paths']:.1f} ms over {SAMPLES} runs")
    print(
        f"import mlrig.naming after mlrig.paths: median +{median['naming']:.1f} ms "
        f"(min {min(samples['naming']):.1f}); ratio naming/paths {median['naming'] / median['paths']:.2f}x"
    )
    print(
        "first use: per-trial names of mlrig.naming after paths' layout modules "
        f"(+{median['paths_use']:.1f} ms): median +{median['naming_use']:.1f} ms "
        f"(min {min(samples['naming_use']):.1f})"
    )
    print("mlflow/optuna not in sys.modules after import: OK")
    ok = median["naming"] <= TARGET_MS
    verdict = "OK" if ok else "MISSED"
    print(f"target: import mlrig.naming <= +{TARGET_MS:.0f} ms over mlrig.paths -> {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
