"""Import cost of ``mlrig.paths`` against a bare interpreter (target: <= +60 ms, mlflow/optuna not imported).

Each sample is fresh ``python`` processes timed from outside: a bare one (``-c pass``, the anchor) and one per
probe, interleaved so a load change on the machine hits every probe and the anchor alike. The package loads
a module on the first use of one of its names (``lazy_loader.attach_stub`` over ``__init__.pyi``), so the
verdict covers the bare ``import``; the modules' cost moves to the first use. Printed beside it, without a
verdict: the standard-library modules the package needs by themselves (the floor under the figure), a first
use of a name, every module at import (``EAGER_IMPORT=1``, the cost before lazy loading) and a first
``load_paths_config`` (which imports PyYAML and reads the packaged defaults).

Bytecode is compiled first (``compileall``), as Python does on a package's first import -- this machine sets
``PYTHONDONTWRITEBYTECODE=1``, which would otherwise make every sample compile mlrig's sources again.
Run: ``uv run --frozen python benchmarks/paths_import.py``. ``benchmarks/naming_import.py`` measures the
packages above it with :func:`measure`.
"""

from __future__ import annotations

import compileall
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 60.0
SAMPLES = 21
GUARD = "assert 'mlflow' not in sys.modules and 'optuna' not in sys.modules, 'heavy import'\n"
# lazy_loader reads EAGER_IMPORT when the package is imported, so setting it in the probe itself is enough.
EAGER = "import os\nos.environ['EAGER_IMPORT'] = '1'\n"
PATHS_NOTES = {
    "stdlib floor: import dataclasses, logging, pathlib, re, string, typing": (
        "import dataclasses, logging, pathlib, re, string, typing"
    ),
    "first use: from mlrig.paths import render_output_path": (
        "import sys\nfrom mlrig.paths import render_output_path\n" + GUARD
    ),
    "every module: EAGER_IMPORT=1 import mlrig.paths": EAGER + "import sys, mlrig.paths\n" + GUARD,
    "first config load: load_paths_config(None)": (
        "import sys\nfrom mlrig.paths import load_paths_config\nload_paths_config(None)\n" + GUARD
    ),
}


def _wall_ms(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - t0) * 1e3


def _compile_mlrig() -> None:
    spec = importlib.util.find_spec("mlrig")
    for location in spec.submodule_search_locations or [] if spec else []:
        compileall.compile_dir(Path(location), quiet=1)


def measure(packages: list[str], notes: dict[str, str] | None = None) -> int:
    """Print each ``import <package>``'s median cost over a bare interpreter (and, without a verdict, that of
    each ``notes`` probe); 0 when every package is within target."""
    probes = {package: f"import sys, {package}\n{GUARD}" for package in packages}
    notes = notes or {}
    _compile_mlrig()
    every = {**probes, **notes}
    for code in every.values():
        _wall_ms(code)  # warm the OS file cache
    samples: dict[str, list[float]] = {"pass": [], **{label: [] for label in every}}
    for _ in range(SAMPLES):
        samples["pass"].append(_wall_ms("pass"))
        for label, code in every.items():
            samples[label].append(_wall_ms(code))
    anchor = statistics.median(samples["pass"])
    print(f"anchor bare interpreter (python -c pass): median {anchor:.1f} ms over {SAMPLES} runs")
    ok = True
    for package in probes:
        extra = statistics.median(samples[package]) - anchor
        within = extra <= TARGET_MS
        ok = ok and within
        print(
            f"import {package}: +{extra:.1f} ms (min +{min(samples[package]) - anchor:.1f}); "
            f"target <= +{TARGET_MS:.0f} ms -> {'OK' if within else 'MISSED'}"
        )
    for label in notes:
        print(f"{label}: +{statistics.median(samples[label]) - anchor:.1f} ms")
    print("mlflow/optuna not in sys.modules after import: OK")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(measure(["mlrig.paths"], PATHS_NOTES))
