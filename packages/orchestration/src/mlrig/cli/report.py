"""The demo's closing summary table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlrig.orchestration import DemoSummary


def demo_json(summary: DemoSummary) -> dict[str, Any]:
    """What ``--json`` prints for a pipeline run: sweeps, champions, the chosen model, stages, timings."""

    def stage(result: Any) -> dict[str, Any] | None:
        if result is None:
            return None
        return {
            "stage": result.stage,
            "run_id": result.run_id,
            "run_name": result.run_name,
            "output_dir": str(result.output_dir),
            "reused": result.reused,
            "metrics": dict(result.metrics),
        }

    return {
        "root": str(summary.root_dir),
        "tracking_uri": summary.tracking_uri,
        "backup_root": str(summary.backup_root),
        "sweeps": [
            {
                "backbone": s.backbone,
                "study_name": s.study_name,
                "study_dir": str(s.study_dir),
                "experiment": s.experiment_name,
                "parent_run_id": s.parent_run_id,
                "resumed": s.resumed,
                "trials_run": len(s.trials),
                "best_value": s.best_value,
                "best_trial": s.best_trial_number,
                "best_params": s.best_params,
            }
            for s in summary.sweeps
        ],
        "champions": [
            {
                "backbone": c.backbone,
                "metric": c.metric,
                "value": c.value,
                "trial": c.trial_number,
                "refit_run_id": c.refit_run_id,
            }
            for c in summary.champions
        ],
        "best": summary.best.backbone if summary.best is not None else None,
        "final_training": stage(summary.final_training),
        "conversion": stage(summary.conversion),
        "benchmark": stage(summary.benchmark),
        "timings": summary.timings,
        "mlflow_ui_command": summary.mlflow_ui_command,
    }


def demo_table(summary: DemoSummary) -> str:
    """A plain-text table of the demo: sweeps, champions, the chosen model, stage outputs and timings."""
    lines = ["", "HPO sweeps"]
    lines.append(f"  {'backbone':<10}{'trials run':>11}{'best':>9}  {'study folder'}")
    for sweep in summary.sweeps:
        best = "-" if sweep.best_value is None else f"{sweep.best_value:.4f}"
        state = " (resumed)" if sweep.resumed else ""
        lines.append(f"  {sweep.backbone:<10}{len(sweep.trials):>11}{best:>9}  {sweep.study_dir}{state}")
    if summary.champions:
        lines.append("")
        lines.append("Champions")
    for champ in summary.champions:
        mark = "*" if summary.best is not None and champ.backbone == summary.best.backbone else " "
        lines.append(
            f" {mark}{champ.backbone:<10}{champ.metric}={champ.value:.4f}  trial {champ.trial_number}  "
            f"refit run {champ.refit_run_id}"
        )
    lines.append("")
    lines.append("Stages" if summary.final_training is not None else "Stages: not run (mlrig sweep)")
    for stage in (summary.final_training, summary.conversion, summary.benchmark):
        if stage is None:
            continue
        reused = " (reused)" if stage.reused else ""
        lines.append(f"  {stage.stage:<15}{stage.run_name or '-'}{reused}")
        lines.append(f"  {'':<15}{stage.output_dir}")
        shown = {k: v for k, v in stage.metrics.items() if isinstance(v, int | float)}
        if shown:
            lines.append(f"  {'':<15}" + ", ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())))
    lines.append("")
    lines.append("Timings: " + ", ".join(f"{k}={v:.1f}" for k, v in summary.timings.items()))
    lines.append(f"Backup folder: {summary.backup_root}")
    lines.append(f"Browse the runs: {summary.mlflow_ui_command}")
    from importlib.util import find_spec

    if find_spec("flask") is None:  # mlflow-skinny has no UI server
        lines.append("  (the UI needs the full mlflow first: pip install 'mlrig-orchestration[ui]')")
    return "\n".join(lines)
