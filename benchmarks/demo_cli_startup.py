"""Start-up time of ``mlrig --help`` against ``python -c pass`` (target: <= 0.3 s; mlflow, optuna,
``mlrig.tracking`` and ``mlrig.orchestration`` not imported).

Run: ``uv run --frozen python benchmarks/demo_cli_startup.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
SAMPLES = 11
HELP = (
    "import sys\n"
    "from mlrig.cli import main\n"
    "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    "heavy = [m for m in sys.modules if m.startswith(('mlflow', 'optuna', 'mlrig.tracking', 'mlrig.orch'))]\n"
    "assert not heavy, heavy\n"
)


def _wall(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> int:
    _wall(HELP)
    bare = statistics.median(_wall("pass") for _ in range(SAMPLES))
    cli = statistics.median(_wall(HELP) for _ in range(SAMPLES))
    print(f"mlrig --help: median {cli * 1e3:.0f} ms over {SAMPLES} runs (no mlflow, optuna, tracking, orch.)")
    print(f"anchor python -c pass: median {bare * 1e3:.0f} ms")
    print(f"ratio: {cli / bare:.1f}x; extra {1e3 * (cli - bare):.0f} ms")
    print(f"target: <= {TARGET_S:.1f} s -> {'OK' if cli <= TARGET_S else 'MISSED'}")
    return 0 if cli <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
