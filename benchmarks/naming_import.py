"""Import cost of ``mlrig.naming`` and its sibling ``mlrig.storage``, each against a bare interpreter
(target: <= +60 ms each, mlflow/optuna not imported).

Same measurement as ``benchmarks/paths_import.py`` (fresh processes, interleaved with the bare anchor,
bytecode compiled first). Both packages load a module (and ``mlrig.paths``) on the first use of one of its
names, so the verdict covers the bare ``import``; printed beside it, without a verdict, first uses and every
module at import (``EAGER_IMPORT=1``, the cost before lazy loading), to show where the cost moved.
Run: ``uv run --frozen python benchmarks/naming_import.py``.
"""

from __future__ import annotations

from paths_import import EAGER, GUARD, measure

NOTES = {
    "first use: from mlrig.naming import build_mlflow_run_name": (
        "import sys\nfrom mlrig.naming import build_mlflow_run_name\n" + GUARD
    ),
    "first use: from mlrig.storage import DriveBackupStore": (
        "import sys\nfrom mlrig.storage import DriveBackupStore\n" + GUARD
    ),
    "every module: EAGER_IMPORT=1 import mlrig.naming": EAGER + "import sys, mlrig.naming\n" + GUARD,
    "every module: EAGER_IMPORT=1 import mlrig.storage": EAGER + "import sys, mlrig.storage\n" + GUARD,
}

if __name__ == "__main__":
    raise SystemExit(measure(["mlrig.naming", "mlrig.storage"], NOTES))
