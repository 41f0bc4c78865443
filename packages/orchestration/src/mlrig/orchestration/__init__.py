"""mlrig.orchestration: HPO sweeps that resume, champion selection, stage runners, the demo pipeline and the
``mlrig`` CLI. See the package README.

Names are loaded on first use (``mlrig.paths.lazy_exports``): ``import mlrig.orchestration`` -- and so
``mlrig --help`` -- must not import optuna or mlflow.
"""

from __future__ import annotations

from mlrig.paths import lazy_exports

# Not typing.TYPE_CHECKING: importing typing costs more than this module (type checkers honour the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlrig.orchestration.configs import ExperimentConfig, load_experiment_config
    from mlrig.orchestration.demo import DemoSummary, run_demo
    from mlrig.orchestration.errors import OrchestrationError
    from mlrig.orchestration.requests import (
        BenchmarkFn,
        BenchmarkRequest,
        ConvertFn,
        ConvertRequest,
        TrainFn,
        TrainRequest,
        TrialPruned,
    )
    from mlrig.orchestration.selection import Champion, select_best_model, select_champion
    from mlrig.orchestration.stages import StageResult, run_benchmarking, run_conversion, run_final_training
    from mlrig.orchestration.sweep import SweepResult, TrialOutcome, run_local_hpo_sweep

_EXPORTS = {
    "ExperimentConfig": "configs",
    "load_experiment_config": "configs",
    "DemoSummary": "demo",
    "run_demo": "demo",
    "OrchestrationError": "errors",
    "BenchmarkFn": "requests",
    "BenchmarkRequest": "requests",
    "ConvertFn": "requests",
    "ConvertRequest": "requests",
    "TrainFn": "requests",
    "TrainRequest": "requests",
    "TrialPruned": "requests",
    "Champion": "selection",
    "select_best_model": "selection",
    "select_champion": "selection",
    "StageResult": "stages",
    "run_benchmarking": "stages",
    "run_conversion": "stages",
    "run_final_training": "stages",
    "SweepResult": "sweep",
    "TrialOutcome": "sweep",
    "run_local_hpo_sweep": "sweep",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, distribution="mlrig-orchestration")

__all__ = [
    "BenchmarkFn",
    "BenchmarkRequest",
    "Champion",
    "ConvertFn",
    "ConvertRequest",
    "DemoSummary",
    "ExperimentConfig",
    "OrchestrationError",
    "StageResult",
    "SweepResult",
    "TrainFn",
    "TrainRequest",
    "TrialOutcome",
    "TrialPruned",
    "load_experiment_config",
    "run_benchmarking",
    "run_conversion",
    "run_demo",
    "run_final_training",
    "run_local_hpo_sweep",
    "select_best_model",
    "select_champion",
]
