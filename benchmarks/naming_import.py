"""Import cost of ``mlrig.naming`` and its sibling ``mlrig.storage``, each against a bare interpreter
(target: <= +60 ms each, mlflow/optuna not imported).

Same measurement as ``benchmarks/paths_import.py`` (fresh processes, interleaved with the bare anchor,
bytecode compiled first); each figure includes ``mlrig.paths``, which both packages import.
Run: ``uv run --frozen python benchmarks/naming_import.py``.
"""

from __future__ import annotations

from paths_import import measure

if __name__ == "__main__":
    raise SystemExit(measure(["mlrig.naming", "mlrig.storage"]))
