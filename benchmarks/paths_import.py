"""Import cost of ``mlrig.paths`` against a bare interpreter (target: an eager import <= +60 ms).

Each sample is fresh ``python`` processes timed from outside: a bare one (``-c pass``, the anchor) and one per
probe. The target applies to the eager import -- every public name loaded, ``from mlrig.paths import *``
(what ``import mlrig.paths`` costs once the package imports its modules up front). Printed beside it: the
package alone, the standard-library modules it needs by themselves, and a first ``load_paths_config``
(which imports PyYAML and reads the packaged defaults).

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

TARGET_MS = 60.0
SAMPLES = 21
GUARD = "assert 'mlflow' not in sys.modules and 'optuna' not in sys.modules, 'heavy import'\n"
EAGER = "eager: from mlrig.paths import *"
PROBES = {
    EAGER: "import sys\nfrom mlrig.paths import *\n" + GUARD,
    "import mlrig.paths": "import sys, mlrig.paths\n" + GUARD,
    # The standard-library modules the package imports, by themselves: the floor under the eager figure.
    "stdlib floor: import dataclasses, logging, pathlib, re, string, typing": (
        "import dataclasses, logging, pathlib, re, string, typing"
    ),
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
    ok = extra[EAGER] <= TARGET_MS
    print(f"target: {EAGER} <= +{TARGET_MS:.0f} ms -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
