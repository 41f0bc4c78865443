"""A tracker names and tags every run with the one NamingConfig it holds (real SQLite MLflow store)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlflow.tracking import MlflowClient

from mlrig.naming import NamingContext, create_naming_context, load_naming_config
from mlrig.tracking import MLflowSweepTracker, MLflowTrainingTracker, RetryPolicy
from tests.fixtures import REFERENCE_CONFIG_DIR

FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02, deadline=5)
STUDY = "c3659fea" * 8


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config"
    cfg.mkdir()
    for name in ("naming.yaml", "tags.yaml", "mlflow.yaml", "paths.yaml"):
        shutil.copy(REFERENCE_CONFIG_DIR / name, cfg / name)
    return cfg


def _edit(cfg: Path) -> None:
    """Change the trial pattern and the study-hash tag key on disk."""
    naming = (cfg / "naming.yaml").read_text(encoding="utf-8")
    (cfg / "naming.yaml").write_text(naming.replace("_hpo_trial_study-", "_edited_study-", 1))
    tags = (cfg / "tags.yaml").read_text(encoding="utf-8")
    (cfg / "tags.yaml").write_text(tags.replace('"code.study_key_hash"', '"code.edited.study_key_hash"', 1))


def _ctx(stage: str, **kw: object) -> NamingContext:
    return create_naming_context(
        "hpo", "distilbert", environment="local", stage=stage, study_key_hash=STUDY, **kw
    )


def _trial_run(tracker: MLflowSweepTracker) -> tuple[str, dict[str, str]]:
    sweep_ctx, trial_ctx = _ctx("hpo_sweep", study_name="s"), _ctx("hpo_trial", trial_number=0)
    with (
        tracker.start_sweep_run(None, {}, "distilbert", "s", None, None, False, context=sweep_ctx),
        tracker.start_trial_run(0, context=trial_ctx) as trial,
    ):
        run_id = trial.run_id
    assert run_id is not None and tracker.failures == []
    run = MlflowClient(tracker.tracking_uri).get_run(run_id)
    return str(run.info.run_name), dict(run.data.tags)


def test_sweep_tracker_uses_the_config_it_was_given(tmp_path: Path, sqlite_tracking_uri: str) -> None:
    cfg = _config(tmp_path)
    naming = load_naming_config(cfg)
    tracker = MLflowSweepTracker(
        "exp", tracking_uri=sqlite_tracking_uri, config_dir=cfg, root_dir=tmp_path, retry=FAST,
        naming_config=naming,
    )  # fmt: skip
    assert tracker.naming_config is naming
    _edit(cfg)
    name, tags = _trial_run(tracker)
    assert name == "local_distilbert_hpo_trial_study-c3659fea_t00_1"
    assert tags["code.study_key_hash"] == STUDY and "code.edited.study_key_hash" not in tags

    # A tracker made after the edit, without a config object, loads the files as they are now.
    fresh = MLflowSweepTracker(
        "exp", tracking_uri=sqlite_tracking_uri, config_dir=cfg, root_dir=tmp_path, retry=FAST
    )
    name, tags = _trial_run(fresh)
    assert name.startswith("local_distilbert_edited_study-c3659fea_t00")
    assert tags["code.edited.study_key_hash"] == STUDY and "code.study_key_hash" not in tags


def test_stage_toggles_come_from_the_given_config(tmp_path: Path, sqlite_tracking_uri: str) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "mlflow.yaml").write_text("tracking:\n  training: {enabled: false}\n", encoding="utf-8")
    naming = load_naming_config(cfg)
    (cfg / "mlflow.yaml").write_text("tracking:\n  training: {enabled: true}\n", encoding="utf-8")
    given = MLflowTrainingTracker("t", tracking_uri=sqlite_tracking_uri, config_dir=cfg, naming_config=naming)
    assert given.enabled is False
    assert MLflowTrainingTracker("t", tracking_uri=sqlite_tracking_uri, config_dir=cfg).enabled is True


def test_sweep_tracker_made_without_config_dir_loads_the_sweeps(
    tmp_path: Path, sqlite_tracking_uri: str
) -> None:
    cfg = _config(tmp_path)
    _edit(cfg)
    tracker = MLflowSweepTracker("exp", tracking_uri=sqlite_tracking_uri, root_dir=tmp_path, retry=FAST)
    sweep_ctx, trial_ctx = _ctx("hpo_sweep", study_name="s"), _ctx("hpo_trial", trial_number=0)
    with (
        tracker.start_sweep_run(
            None, {}, "distilbert", "s", None, None, False, config_dir=cfg, context=sweep_ctx
        ),
        tracker.start_trial_run(0, context=trial_ctx) as trial,
    ):
        pass
    assert trial.run_name.startswith("local_distilbert_edited_study-c3659fea_t00")
