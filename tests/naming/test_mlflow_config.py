"""mlflow.yaml accessors: defaults, reference values, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrig.naming import (
    NamingConfigError,
    get_auto_increment_config,
    get_index_config,
    get_naming_config,
    get_run_finder_config,
    get_tracking_config,
    load_mlflow_config,
)


def test_packaged_defaults_when_file_is_absent(config_dir: Path) -> None:
    naming = get_naming_config(config_dir)
    assert naming["project_name"] == "mlrig"
    assert naming["tags"] == {"max_length": 250, "sanitize": True}
    assert naming["run_name"]["max_length"] == 100
    assert get_index_config(config_dir) == {
        "enabled": True,
        "max_entries": 1000,
        "file_name": "mlflow_index.json",
    }
    assert get_run_finder_config(config_dir) == {"strict_mode_default": True}
    assert load_mlflow_config(config_dir)["azure_ml"]["enabled"] is False


def test_reference_file_values(reference_config_dir: Path) -> None:
    assert get_naming_config(reference_config_dir)["project_name"] == "resume-ner"
    auto = get_auto_increment_config(reference_config_dir, "hpo")
    assert auto == {
        "enabled": True,
        "processes": {"hpo": True, "benchmarking": True},
        "format": "{base}.{version}",
        "enabled_for_process": True,
    }
    assert get_auto_increment_config(reference_config_dir, "final_training")["enabled_for_process"] is False
    assert "enabled_for_process" not in get_auto_increment_config(reference_config_dir)
    assert get_tracking_config(reference_config_dir, "training") == {
        "enabled": True,
        "log_checkpoint": True,
        "log_metrics_json": True,
    }
    assert set(get_tracking_config(reference_config_dir)) == {"benchmark", "training", "conversion"}


def test_missing_keys_get_defaults_and_stage_defaults(config_dir: Path) -> None:
    (config_dir / "mlflow.yaml").write_text("tracking:\n  benchmark:\n    enabled: false\n")
    assert get_tracking_config(config_dir, "benchmark") == {"enabled": False, "log_artifacts": True}
    assert get_tracking_config(config_dir, "conversion") == {
        "enabled": True,
        "log_onnx_model": True,
        "log_conversion_log": True,
    }
    assert get_auto_increment_config(config_dir, "hpo")["enabled_for_process"] is False
    assert get_naming_config(config_dir)["project_name"] == "mlrig"


def test_preloaded_config_skips_files(config_dir: Path) -> None:
    cfg = {
        "naming": {"run_name": {"auto_increment": {"enabled": True, "processes": {"final_training": True}}}}
    }
    auto = get_auto_increment_config(config_dir, "final_training", config=cfg)
    assert auto["enabled_for_process"] is True and auto["processes"]["hpo"] is True
    assert get_index_config(config=cfg)["enabled"] is True


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("naming:\n  project_name: ''\n", "naming.project_name"),
        ("naming:\n  tags: {max_length: 0}\n", "naming.tags.max_length"),
        ("naming:\n  tags: {max_length: 501}\n", "naming.tags.max_length"),
        ("naming:\n  tags: {max_length: true}\n", "naming.tags.max_length"),
        ("naming:\n  tags: {sanitize: 'yes'}\n", "naming.tags.sanitize"),
        ("naming:\n  run_name: {max_length: -1}\n", "naming.run_name.max_length"),
        ("naming:\n  run_name: {shorten_fingerprints: 1}\n", "naming.run_name.shorten_fingerprints"),
        ("naming:\n  run_name:\n    auto_increment: {enabled: 'on'}\n",
         "naming.run_name.auto_increment.enabled"),
        ("naming:\n  run_name:\n    auto_increment: {format: '{base}'}\n",
         "naming.run_name.auto_increment.format"),
        ("naming:\n  run_name:\n    auto_increment: {processes: {hpo: 1}}\n",
         "naming.run_name.auto_increment.processes"),
        ("index: {file_name: 'a/b.json'}\n", "index.file_name"),
        ("index: {max_entries: 0}\n", "index.max_entries"),
        ("run_finder: {strict_mode_default: null}\n", "run_finder.strict_mode_default"),
        ("tracking:\n  training: {log_checkpoint: 'no'}\n", "tracking.training.log_checkpoint"),
        ("naming: [1, 2]\n", "naming"),
    ],
)  # fmt: skip
def test_invalid_values_raise_naming_file_and_key(config_dir: Path, text: str, key: str) -> None:
    (config_dir / "mlflow.yaml").write_text(text)
    with pytest.raises(NamingConfigError, match=r"mlflow\.yaml") as info:
        get_naming_config(config_dir)
    assert info.value.key == key
    assert info.value.file == config_dir / "mlflow.yaml"
