"""The demo model as an MLflow pyfunc model: the "models from code" file the final-training stage logs.
(Part of the demo's user code; not exported by the package.)"""

from __future__ import annotations

from pathlib import Path

from mlrig.paths import atomic_write_bytes

# MLflow "models from code" (no pickled object): the file is stored with the model and run when it is loaded.
_PYFUNC_CODE = '''"""The mlrig demo model as an MLflow pyfunc model (written by mlrig's demo_model)."""

from pathlib import Path

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel

from mlrig.orchestration import demo_model


class DemoModel(PythonModel):
    def load_context(self, context):
        path = demo_model._resolve_model_file(Path(context.artifacts["checkpoint"]))
        self.model = demo_model._load_model(path)

    def predict(self, context, model_input: list[list[float]], params=None) -> list[list[float]]:
        rows = np.asarray(model_input, dtype=np.float32)
        return demo_model._softmax(self.model.logits(rows)).tolist()


mlflow.models.set_model(DemoModel())
'''


def write_pyfunc_model(directory: Path) -> Path:
    """Write the demo model's MLflow pyfunc definition (models from code: its ``checkpoint`` artifact, a
    checkpoint dir or ``.npz`` file, is loaded once; ``predict`` takes feature rows and returns class
    probabilities) into ``directory``; the path is what ``run_final_training(python_model=...)`` takes."""
    path = directory / "demo_pyfunc_model.py"
    atomic_write_bytes(path, _PYFUNC_CODE.encode("utf-8"))
    return path
