from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import yaml

from mlrig.paths import (
    PathsConfigError,
    PathsError,
    detect_platform,
    load_paths_config,
    normalize_storage_env,
    read_yaml_config,
    thaw,
)


def write(cfg: Path, text: str) -> Path:
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "paths.yaml").write_text(textwrap.dedent(text))
    return cfg


def reference_with(tmp_path: Path, reference_dir: Path, edit: object) -> Path:
    data = yaml.safe_load((reference_dir / "paths.yaml").read_text())
    edit(data)  # type: ignore[operator]
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "paths.yaml").write_text(yaml.safe_dump(data))
    return cfg


def test_reference_file_loads_unchanged(reference_dir: Path) -> None:
    config = load_paths_config(reference_dir)
    raw = yaml.safe_load((reference_dir / "paths.yaml").read_text())
    assert config.schema_version == 2
    assert config.project_name == raw["project"]["name"]
    assert dict(config.patterns) == raw["patterns"]
    assert dict(config.outputs) == raw["outputs"]
    assert thaw(config.raw) == raw
    assert config.drive is not None
    assert config.drive.backup_base == Path("/content/drive/MyDrive") / raw["drive"]["backup_base_dir"]
    strategies = thaw(config.cache_strategies)
    assert strategies["final_training"]["index"]["max_entries"] == 20
    assert strategies["final_training"]["index"]["filename"] == "final_training_index.json"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("local", "outputs"),
        ("colab", "/content/drive/MyDrive/resume-ner-azureml/outputs"),
        ("kaggle", "/kaggle/working/outputs"),
        ("azureml", "/mnt/outputs"),
        ("azure", "/mnt/outputs"),
    ],
)
def test_env_overrides(reference_dir: Path, env: str, expected: str) -> None:
    assert load_paths_config(reference_dir, env).base["outputs"] == expected


def test_config_is_immutable_and_shared_safely(reference_dir: Path) -> None:
    config = load_paths_config(reference_dir)
    with pytest.raises(TypeError):
        config.base["outputs"] = "HACKED"  # type: ignore[index]
    with pytest.raises(TypeError):
        config.raw["base"]["outputs"] = "HACKED"
    assert load_paths_config(reference_dir).base["outputs"] == "outputs"


def test_packaged_defaults_when_file_missing(tmp_path: Path) -> None:
    config = load_paths_config(tmp_path / "nowhere")
    assert config.source is None
    assert config.base["outputs"] == "outputs"
    assert config.patterns["hpo_v2"] == "{storage_env}/{model}/study-{study8}/trial-{trial8}"
    assert config.drive is not None and config.drive.backup_base_dir == config.project_name


def test_schema_1_needs_only_base(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c", "base:\n  outputs: out\n")
    config = load_paths_config(cfg)
    assert config.schema_version == 1
    assert config.base["outputs"] == "out"


def test_missing_required_patterns_names_file_and_keys(tmp_path: Path, reference_dir: Path) -> None:
    cfg = reference_with(tmp_path, reference_dir, lambda d: d["patterns"].pop("conversion_v2"))
    with pytest.raises(PathsConfigError, match="conversion_v2") as info:
        load_paths_config(cfg)
    assert info.value.file == str(cfg / "paths.yaml")
    assert info.value.key == "patterns"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{storage_env}/{model}/study-{nope}", "unknown placeholder '{nope}'"),
        ("{storage_env}/{model}/study-{study_hash}", "run names only"),
        ("{storage_env}/../{model}", r"'\.' or '\.\.'"),
        ("{storage_env}/{model}/study-{study8", "not a valid pattern"),
    ],
)
def test_bad_placeholders(tmp_path: Path, reference_dir: Path, pattern: str, message: str) -> None:
    cfg = reference_with(tmp_path, reference_dir, lambda d: d["patterns"].update(hpo_v2=pattern))
    with pytest.raises(PathsConfigError, match=message) as info:
        load_paths_config(cfg)
    assert info.value.key == "patterns.hpo_v2"
    assert info.value.value == pattern


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d.update(schema_version="two"), "schema_version"),
        (lambda d: d.update(schema_version=9), "schema_version"),
        (lambda d: d["base"].update(outputs=""), "base.outputs"),
        (lambda d: d.update(base=["outputs"]), "base"),
        (lambda d: d["outputs"].update(hpo=3), "outputs.hpo"),
        (
            lambda d: d["normalize_paths"].update(max_component_length=0),
            "normalize_paths.max_component_length",
        ),
        (lambda d: d["normalize_paths"].update(lowercase="yes"), "normalize_paths.lowercase"),
        (
            lambda d: d["repository_root"].update(workspace_candidates="x"),
            "repository_root.workspace_candidates",
        ),
        (lambda d: d["env_overrides"].update(mars={"base": {"outputs": "/m"}}), "env_overrides.mars"),
        (lambda d: d["env_overrides"]["colab"].update(patterns={}), "env_overrides.colab.patterns"),
        (lambda d: d["drive"].update(backup_base_dir="../x"), "drive.backup_base_dir"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, reference_dir: Path, edit: object, key: str) -> None:
    cfg = reference_with(tmp_path, reference_dir, edit)
    with pytest.raises(PathsConfigError) as info:
        load_paths_config(cfg)
    assert info.value.key == key
    assert str(cfg / "paths.yaml") in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_yaml_reports_line_and_column(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c", "base:\n  outputs: out\npatterns: [unclosed\n")
    with pytest.raises(PathsConfigError) as info:
        load_paths_config(cfg)
    assert info.value.line is not None and info.value.line >= 3
    assert f"{cfg / 'paths.yaml'}:{info.value.line}:" in str(info.value)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_top_level_must_be_mapping(tmp_path: Path, text: str) -> None:
    cfg = write(tmp_path / "c", text)
    with pytest.raises(PathsConfigError, match="top level must be a mapping"):
        load_paths_config(cfg)


def test_read_yaml_config_sees_every_change_on_the_next_call(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    assert read_yaml_config(path) is None
    path.write_text("a: 1\n")
    first = read_yaml_config(path)
    assert first is not None and first["a"] == 1
    # Same size and the same mtime: a reader keyed on the file's stat would miss this edit.
    stat = path.stat()
    path.write_text("a: 2\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = read_yaml_config(path)
    assert second is not None and second["a"] == 2
    path.unlink()
    assert read_yaml_config(path) is None


def test_load_paths_config_sees_an_edit_on_the_next_call(tmp_path: Path, reference_dir: Path) -> None:
    cfg = tmp_path / "config"
    cfg.mkdir()
    text = (reference_dir / "paths.yaml").read_text()
    (cfg / "paths.yaml").write_text(text)
    assert load_paths_config(cfg).base["outputs"] == "outputs"
    (cfg / "paths.yaml").write_text(text.replace('outputs: "outputs"', 'outputs: "elsewhere"', 1))
    assert load_paths_config(cfg).base["outputs"] == "elsewhere"
    (cfg / "paths.yaml").unlink()
    assert load_paths_config(cfg).source is None  # the packaged defaults, at once


def test_detect_platform(monkeypatch: pytest.MonkeyPatch, no_platform_env: None) -> None:
    assert detect_platform() == "local"
    monkeypatch.setenv("AZUREML_RUN_ID", "r1")
    assert detect_platform() == "azureml"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert detect_platform() == "kaggle"
    monkeypatch.setenv("COLAB_GPU", "1")
    assert detect_platform() == "colab"


def test_normalize_storage_env(no_platform_env: None) -> None:
    assert normalize_storage_env("azure") == "azureml"
    assert normalize_storage_env("Colab") == "colab"
    assert normalize_storage_env(None) == "local"
    with pytest.raises(PathsError, match="'mars'"):
        normalize_storage_env("mars")


def test_detect_platform_sees_a_changed_marker_on_the_next_call(
    monkeypatch: pytest.MonkeyPatch, no_platform_env: None
) -> None:
    # A marker emptied in place (the environment keeps its size) is seen at once.
    monkeypatch.setenv("COLAB_GPU", "1")
    assert detect_platform() == "colab"
    monkeypatch.setenv("COLAB_GPU", "")
    assert detect_platform() == "local"
