"""Import cost of ``mlrig.paths`` against a bare interpreter (target: <= +30 ms).

Each sample is fresh ``python`` processes timed from outside: a bare one (``-c pass``, the anchor) and one per
probe. The target applies to ``import mlrig.paths``; the package loads its names on first use, so the cost of
the first real use is printed beside it: ``from mlrig.paths import resolve_output_path`` (the layout modules)
and every public name, with the standard-library modules that first use needs as its floor.

Bytecode is compiled first (``compileall``), as Python does on a package's first import -- this machine sets
``PYTHONDONTWRITEBYTECODE=1``, which would otherwise make every sample compile mlrig's sources again.
Run: ``uv run --frozen python benchmarks/paths_import.py``.
"""

from __future__ import annotations

import compileall
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 30.0
SAMPLES = 21
GUARD = "assert 'mlflow' not in sys.modules and 'optuna' not in sys.modules, 'heavy import'\n"
PROBES = {
    "import mlrig.paths": "import sys, mlrig.paths\n" + GUARD,
    "first use: from mlrig.paths import resolve_output_path": (
        "import sys\nfrom mlrig.paths import resolve_output_path\n" + GUARD
    ),
    "every public name: from mlrig.paths import *": "import sys\nfrom mlrig.paths import *\n" + GUARD,
    # What the layout modules need from the standard library (Path values, dataclass value objects, locks).
    "stdlib floor of that first use: import pathlib, dataclasses, threading": (
        "import pathlib, dataclasses, threading"
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


def main() -> int:
    _compile_mlrig()
    for code in PROBES.values():
        _wall_ms(code)  # warm the OS file cache
    # Interleaved, so a load change on the machine hits every probe and the anchor alike.
    samples: dict[str, list[float]] = {"pass": [], **{label: [] for label in PROBES}}
    for _ in range(SAMPLES):
        samples["pass"].append(_wall_ms("pass"))
        for label, code in PROBES.items():
            samples[label].append(_wall_ms(code))
    anchor = statistics.median(samples["pass"])
    print(f"anchor bare interpreter (python -c pass): median {anchor:.1f} ms over {SAMPLES} runs")
    extra = {}
    for label in PROBES:
        measured = statistics.median(samples[label])
        extra[label] = measured - anchor
        print(f"{label}: median {measured:.1f} ms, +{extra[label]:.1f} ms; ratio {measured / anchor:.2f}x")
    ok = extra["import mlrig.paths"] <= TARGET_MS
    print(f"target: import mlrig.paths <= +{TARGET_MS:.0f} ms -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
