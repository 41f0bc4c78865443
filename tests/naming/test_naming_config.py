"""The run's NamingConfig: loaded once, used as is when passed; calls without it read the files now."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mlrig.naming import (
    NamingConfig,
    NamingConfigError,
    NamingContext,
    NamingError,
    build_mlflow_run_name,
    build_mlflow_tags,
    build_output_path,
    build_run_name_counter_key,
    create_naming_context,
    format_run_name,
    get_index_config,
    get_tracking_config,
    is_run_name_versioned,
    load_naming_config,
    sanitize_tag_value,
)
from mlrig.paths import load_paths_config

S = "c3659fea" * 8
T = "9492cb65" * 8
FILES = ("naming.yaml", "tags.yaml", "mlflow.yaml", "paths.yaml")


def trial() -> NamingContext:
    return create_naming_context(
        "hpo",
        "distilbert",
        environment="local",
        stage="hpo_trial",
        study_key_hash=S,
        trial_key_hash=T,
        trial_number=3,
    )


def snapshot(root: Path, cfg: Path | None, naming: NamingConfig | None) -> dict[str, object]:
    """Everything a trial asks naming for, from ``naming`` when given, else from the files in ``cfg``."""
    ctx = trial()
    return {
        "name": build_mlflow_run_name(ctx, cfg, version=2, naming_config=naming),
        "base": format_run_name("hpo_trial", ctx, config_dir=cfg, naming_config=naming),
        "versioned": is_run_name_versioned(ctx, cfg, naming_config=naming),
        "counter": build_run_name_counter_key(ctx, cfg, naming_config=naming),
        "tags": build_mlflow_tags(ctx, output_dir="/o", config_dir=cfg, naming_config=naming),
        "dir": build_output_path(root, ctx, cfg, naming_config=naming),
        "tracking": get_tracking_config(cfg, "training", naming_config=naming),
        "index": get_index_config(cfg, naming_config=naming),
        "short": sanitize_tag_value("x" * 300, None, cfg, naming_config=naming),
    }


def edit(cfg: Path, name: str, old: str, new: str) -> None:
    path = cfg / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_passed_config_is_used_as_is_after_the_files_change(
    tmp_path: Path, reference_config_dir: Path
) -> None:
    cfg = reference_config_dir
    naming = load_naming_config(cfg, "local")
    before = snapshot(tmp_path, cfg, naming)
    assert before == snapshot(tmp_path, cfg, None)  # freshly loaded: same as reading the files
    assert before["name"] == f"local_distilbert_hpo_trial_study-{S[:8]}_t03_2"
    assert before["versioned"] is True

    edit(cfg, "naming.yaml", "_hpo_trial_study-", "_trial_of_study-")
    edit(cfg, "tags.yaml", '"code.study_key_hash"', '"code.edited.study_key_hash"')
    edit(cfg, "mlflow.yaml", "hpo: true", "hpo: false")
    edit(cfg, "mlflow.yaml", "max_length: 250", "max_length: 20")
    edit(cfg, "mlflow.yaml", 'file_name: "mlflow_index.json"', "file_name: edited.json")
    edit(cfg, "paths.yaml", 'outputs: "outputs"', 'outputs: "moved"')

    # The run's object: nothing read, the old result.
    assert snapshot(tmp_path, cfg, naming) == before
    # A call without it sees every edit at once.
    after = snapshot(tmp_path, cfg, None)
    assert after["name"] == f"local_distilbert_trial_of_study-{S[:8]}_t03"  # pattern edited, not versioned
    assert after["base"] == after["name"]
    assert after["versioned"] is False
    tags = after["tags"]
    assert isinstance(tags, dict) and tags["code.edited.study_key_hash"] == S
    assert "code.study_key_hash" not in tags
    assert after["dir"] == tmp_path / "moved" / Path(str(before["dir"])).relative_to(tmp_path / "outputs")
    assert after["index"] == {**before["index"], "file_name": "edited.json"}  # type: ignore[dict-item]
    assert after["short"] == "x" * 17 + "..."
    assert after["counter"] == before["counter"]  # project name and run key unchanged


def test_passed_config_survives_deleted_and_broken_files(tmp_path: Path, reference_config_dir: Path) -> None:
    cfg = reference_config_dir
    naming = load_naming_config(cfg, "local")
    before = snapshot(tmp_path, cfg, naming)
    for name in FILES:
        (cfg / name).unlink()
    assert snapshot(tmp_path, cfg, naming) == before
    # Without it the files are gone now: the packaged defaults (project "mlrig", not the reference's).
    assert snapshot(tmp_path, cfg, None)["tags"]["code.project"] == "mlrig"  # type: ignore[index]
    assert before["tags"]["code.project"] == "resume-ner"  # type: ignore[index]
    (cfg / "naming.yaml").write_text("run_names: [broken\n", encoding="utf-8")
    assert build_mlflow_run_name(trial(), cfg, version=2, naming_config=naming) == before["name"]
    with pytest.raises(NamingConfigError, match=r"naming\.yaml"):
        build_mlflow_run_name(trial(), cfg, version=2)


def test_config_dir_is_not_read_when_the_config_is_given(tmp_path: Path, reference_config_dir: Path) -> None:
    naming = load_naming_config(reference_config_dir, "local")
    other = tmp_path / "other"
    other.mkdir()
    (other / "naming.yaml").write_text("run_names: [broken\n", encoding="utf-8")
    name = build_mlflow_run_name(trial(), other, version=2, naming_config=naming)
    assert name == build_mlflow_run_name(trial(), reference_config_dir, version=2)


def test_load_reads_every_file_and_is_immutable(tmp_path: Path, reference_config_dir: Path) -> None:
    naming = load_naming_config(reference_config_dir, "local")
    assert naming.config_dir == reference_config_dir
    assert naming.policy.source == reference_config_dir / "naming.yaml"
    assert naming.mlflow.source == reference_config_dir / "mlflow.yaml"
    assert naming.mlflow.project_name == "resume-ner"
    assert naming.paths.storage_env == "local"
    assert naming.tags.key("grouping", "run_key_hash") == "code.run_key_hash"
    with pytest.raises(dataclasses.FrozenInstanceError):
        naming.policy = naming.policy  # type: ignore[misc]
    # Shared by every call of the run, so nothing in it can be changed in place.
    for mapping in (naming.mlflow.tracking, naming.mlflow.auto_increment_processes, naming.policy.run_names):
        with pytest.raises(TypeError):
            mapping["x"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        naming.policy.run_names["hpo_trial"].components["x"] = None  # type: ignore[index]


def test_invalid_file_fails_at_load(config_dir: Path) -> None:
    (config_dir / "mlflow.yaml").write_text("index: {max_entries: 0}\n", encoding="utf-8")
    with pytest.raises(NamingConfigError, match=r"index\.max_entries"):
        load_naming_config(config_dir)


def test_packaged_defaults_when_the_dir_is_empty(config_dir: Path) -> None:
    naming = load_naming_config(config_dir)
    assert naming.policy.source is not None and naming.policy.source.parent.name == "defaults"
    assert naming.mlflow.project_name == "mlrig"
    assert naming.paths.storage_env is None


def test_the_runs_paths_config_is_reused(tmp_path: Path, reference_config_dir: Path) -> None:
    paths = load_paths_config(reference_config_dir, "local")
    naming = load_naming_config(reference_config_dir, paths_config=paths)
    assert naming.paths is paths
    assert load_naming_config(reference_config_dir, "local", paths_config=paths).paths is paths
    with pytest.raises(NamingError, match="loaded for storage_env 'local', not 'colab'"):
        load_naming_config(reference_config_dir, "colab", paths_config=paths)
    # An explicit paths_config still wins over the one in the naming config.
    colab = load_naming_config(reference_config_dir, "colab")
    assert build_output_path(tmp_path, trial(), naming_config=colab, paths_config=paths) == build_output_path(
        tmp_path, trial(), reference_config_dir
    )
