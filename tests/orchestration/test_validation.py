"""Every config key is honoured or refused: declared schemas, one error format, warnings or strict errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from mlrig.orchestration import ConfigValidationError, load_experiment_config, validate_configs
from mlrig.orchestration.configs import DEFAULT_CONFIG_DIR
from tests.fixtures import REFERENCE_CONFIG_DIR

# Keys of the reference configs that mlrig deliberately does not implement (each warned about by name).
REFERENCE_UNIMPLEMENTED = {
    "base.notebooks",
    "base.tests",
    "base.mlruns",
    "files",
    "repository_root.cache",
    "model_config",
    "env_config",
    "checkpoint.storage_path",
    "checkpoint.save_only_best",
    "cleanup",
    "stages.training.backbones",
    "naming.include_backbone_in_experiment",
    "source",
    "seed",
}


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "config"
    shutil.copytree(src, dst)
    return dst


def _replace(path: Path, old: str, new: str) -> int:
    """Replace the first line starting with ``old``; return its 1-based line number."""
    lines = path.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if line.lstrip().startswith(old))
    lines[n] = lines[n].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")
    return n + 1


def test_demo_configs_have_no_unknown_or_unimplemented_key() -> None:
    report = validate_configs(DEFAULT_CONFIG_DIR, "demo")
    assert report.issues == ()
    assert {p.name for p in report.files} >= {"demo.yaml", "train.yaml", "final_training.yaml"}


def test_reference_configs_warn_only_about_keys_mlrig_does_not_implement(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mlrig.orchestration.validation"):
        report = validate_configs(REFERENCE_CONFIG_DIR, "resume_ner_baseline")
    assert report.errors == []
    assert all("not implemented by mlrig" in i.problem for i in report.warnings), report.warnings
    assert {i.key for i in report.warnings} >= REFERENCE_UNIMPLEMENTED
    # Keys mlrig implements are never warned about.
    implemented = {
        "run.mode",
        "champion_selection.require_artifact_available",
        "benchmark.required_metrics",
        "selection.accuracy_threshold",
        "selection.use_relative_threshold",
        "selection.min_accuracy_gain",
    }
    assert not implemented & {i.key for i in report.warnings}
    # Logged once each, in the one format.
    issue = next(i for i in report.warnings if i.key == "checkpoint.storage_path")
    assert f"{issue.file}:{issue.line}: checkpoint.storage_path: not implemented" in caplog.text


def test_a_typo_is_a_warning_naming_file_key_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _copy(DEFAULT_CONFIG_DIR, tmp_path)
    line = _replace(cfg / "hpo" / "demo.yaml", "max_trials:", "max_trails:")
    with caplog.at_level(logging.WARNING, logger="mlrig.orchestration.validation"):
        experiment = load_experiment_config(cfg, "demo")
    assert experiment.name == "mlrig_demo"
    assert f"{cfg / 'hpo' / 'demo.yaml'}:{line}: sampling.max_trails: unknown key" in caplog.text


def test_strict_makes_unknown_keys_errors(tmp_path: Path) -> None:
    cfg = _copy(DEFAULT_CONFIG_DIR, tmp_path)
    typo = _replace(cfg / "best_model_selection.yaml", "scoring:", "scorign:")
    with pytest.raises(
        ConfigValidationError, match=rf"best_model_selection.yaml:{typo}: scorign: unknown key"
    ):
        validate_configs(cfg, "demo", strict=True)
    # The experiment file can ask for it too.
    exp = cfg / "experiment" / "demo.yaml"
    exp.write_text(exp.read_text() + "strict_config: true\n")
    with pytest.raises(ConfigValidationError, match=r"\(strict\)"):
        load_experiment_config(cfg, "demo")


def test_a_bad_value_is_an_error_before_anything_is_created(tmp_path: Path) -> None:
    cfg = _copy(DEFAULT_CONFIG_DIR, tmp_path)
    line = _replace(cfg / "hpo" / "demo.yaml", 'direction: "maximize"', 'direction: "maximise"')
    before = set(tmp_path.rglob("*"))
    with pytest.raises(
        ConfigValidationError, match=rf"demo.yaml:{line}: objective.direction: 'maximise' is not one"
    ):
        load_experiment_config(cfg, "demo")
    assert set(tmp_path.rglob("*")) == before


def test_naming_yaml_is_held_to_its_own_loader(tmp_path: Path) -> None:
    cfg = _copy(REFERENCE_CONFIG_DIR, tmp_path)
    line = _replace(cfg / "naming.yaml", "separators:", "seperators:")
    report = validate_configs(cfg, "resume_ner_baseline", raise_on_error=False)
    (error,) = report.errors
    assert error.file == cfg / "naming.yaml" and error.key == "seperators" and error.line == line


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    cfg = _copy(DEFAULT_CONFIG_DIR, tmp_path)
    (cfg / "benchmark.yaml").write_text("run:\n  mode: [unclosed\n")
    (error,) = validate_configs(cfg, "demo", raise_on_error=False).errors
    assert (
        error.file.name == "benchmark.yaml" and error.line is not None and "not valid YAML" in error.problem
    )
