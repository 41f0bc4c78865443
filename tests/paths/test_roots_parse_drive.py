from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from mlrig.paths import (
    PathScopeError,
    PathsError,
    build_study_dir,
    detect_repo_root,
    find_study_by_hash,
    find_trial_by_hash,
    get_drive_backup_base,
    get_drive_backup_path,
    infer_config_dir,
    is_drive_path,
    is_v2_path,
    load_paths_config,
    map_to_backup,
    parse_hpo_path,
    resolve_project_paths,
)


def make_project(base: Path, reference_dir: Path) -> Path:
    (base / "config").mkdir(parents=True)
    (base / "src").mkdir()
    (base / ".git").mkdir()
    shutil.copy(reference_dir / "paths.yaml", base / "config" / "paths.yaml")
    return base


def test_detect_repo_root_strategies(tmp_path: Path, reference_dir: Path) -> None:
    root = make_project(tmp_path / "a", reference_dir)
    deep = root / "src" / "pkg" / "mod.py"
    deep.parent.mkdir(parents=True)
    deep.write_text("")
    assert detect_repo_root(config_dir=root / "config") == root
    assert detect_repo_root(start_path=deep) == root
    # outputs/ need not exist yet for output_dir detection.
    assert detect_repo_root(output_dir=root / "outputs" / "hpo" / "local") == root
    assert infer_config_dir(path=deep) == root / "config"
    assert infer_config_dir(root_dir=root) == root / "config"
    assert infer_config_dir(config_dir="x") == Path("x")


def test_second_project_in_same_process_gets_its_own_root(tmp_path: Path, reference_dir: Path) -> None:
    a = make_project(tmp_path / "a", reference_dir)
    b = make_project(tmp_path / "b", reference_dir)
    assert detect_repo_root(config_dir=a / "config") == a
    assert detect_repo_root(config_dir=b / "config") == b
    assert detect_repo_root(start_path=b / "src") == b


def test_extra_markers_are_optional_and_logged(
    tmp_path: Path, reference_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Reference behaviour: extra_markers (.git, pyproject.toml, setup.cfg) never fail validation.
    root = make_project(tmp_path / "a", reference_dir)
    shutil.rmtree(root / ".git")
    with caplog.at_level(logging.INFO, logger="mlrig.paths.roots"):
        assert detect_repo_root(start_path=root / "src") == root
    assert "none of the extra markers" in caplog.text and ".git" in caplog.text


def test_required_markers_are_required(tmp_path: Path, reference_dir: Path) -> None:
    root = make_project(tmp_path / "a", reference_dir)
    inner = root / "config"
    shutil.rmtree(root / "src")  # a required marker (base.src) missing: not a root
    monkey_cwd = tmp_path / "elsewhere"
    monkey_cwd.mkdir()
    old = Path.cwd()
    os.chdir(monkey_cwd)
    try:
        assert detect_repo_root(start_path=inner) == monkey_cwd  # cwd fallback
    finally:
        os.chdir(old)


def test_resolve_project_paths_reference_signature(tmp_path: Path, reference_dir: Path) -> None:
    root = make_project(tmp_path / "proj", reference_dir)
    assert resolve_project_paths(output_dir=root / "outputs" / "hpo") == (root, root / "config")
    assert resolve_project_paths(start_path=root / "src") == (root, root / "config")
    given = root / "config"
    assert resolve_project_paths(config_dir=given) == (root, given)


def test_fallback_disabled_raises(tmp_path: Path, reference_dir: Path) -> None:
    cfg = tmp_path / "lonely" / "config"
    cfg.mkdir(parents=True)
    text = (
        (reference_dir / "paths.yaml").read_text().replace("fallback_to_cwd: true", "fallback_to_cwd: false")
    )
    (cfg / "paths.yaml").write_text(text)
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(PathsError, match="fallback_to_cwd is false"):
            detect_repo_root(config_dir=cfg)
    finally:
        os.chdir(old)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/r/outputs/hpo/local/distilbert/study-350a79aa/trial-0123abcd/refit/checkpoint",
            {"storage_env": "local", "model": "distilbert", "study8": "350a79aa", "trial8": "0123abcd"},
        ),
        (
            "outputs\\benchmarking\\colab\\m\\study-350A79AA\\trial-0123abcd\\bench-beef0001",
            {
                "storage_env": "colab",
                "model": "m",
                "study8": "350a79aa",
                "trial8": "0123abcd",
                "bench8": "beef0001",
            },
        ),
        ("study-350a79aa/trial-0123abcd", None),
        ("/r/local/m/study-350a79aa1/trial-0123abcd", None),
        ("/r/local/m/study-350a79aa/other/trial-0123abcd", None),
    ],
)
def test_parse_and_is_v2_agree(path: str, expected: dict[str, str] | None) -> None:
    assert parse_hpo_path(path) == expected
    assert is_v2_path(path) is (expected is not None)


def test_find_by_hash_uses_normalised_model_and_writer_base(
    project: Path, monkeypatch: pytest.MonkeyPatch, no_platform_env: None
) -> None:
    study = "350a79aa" + "0" * 56
    trial = "0123abcd" + "0" * 56
    cfg = project / "config"
    assert find_study_by_hash(project, cfg, "distil-bert", study) is None
    folder = project / "outputs" / "hpo" / "local" / "distil_bert" / "study-350a79aa" / "trial-0123abcd"
    folder.mkdir(parents=True)
    assert find_study_by_hash(project, cfg, "distil-bert", study) == folder.parent
    assert find_trial_by_hash(project, cfg, "distil-bert", study, trial) == folder
    assert find_trial_by_hash(project, cfg, "distil-bert", study, "ffffffff") is None
    assert find_study_by_hash(project, cfg, "distil-bert", "abc") is None
    # A Kaggle-overridden base is searched where a Kaggle writer puts studies.
    kaggle_cfg = project / "kcfg"
    kaggle_cfg.mkdir()
    text = (cfg / "paths.yaml").read_text().replace("/kaggle/working/outputs", str(project / "kaggle_out"))
    (kaggle_cfg / "paths.yaml").write_text(text)
    kfolder = project / "kaggle_out" / "hpo" / "kaggle" / "m" / "study-350a79aa"
    kfolder.mkdir(parents=True)
    assert find_study_by_hash(project, kaggle_cfg, "m", study) == kfolder


def test_is_drive_path_compares_components() -> None:
    assert is_drive_path("/content/drive/MyDrive/x")
    assert is_drive_path(Path("/content/drive"))
    assert not is_drive_path("/content/drive2/x")
    assert is_drive_path("/content/../content/drive/x")
    assert not is_drive_path("content/drive/x")
    assert is_drive_path("/mnt/backup/x", mount_point="/mnt/backup/")
    with pytest.raises(TypeError):
        is_drive_path(None)  # type: ignore[arg-type]


def test_map_to_backup(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    outputs = root / "outputs"
    (outputs / "hpo").mkdir(parents=True)
    backup = tmp_path / "drive" / "proj"
    assert (
        map_to_backup(outputs / "hpo" / "a.db", root, backup, outputs) == backup / "outputs" / "hpo" / "a.db"
    )
    assert map_to_backup("outputs/hpo", root, backup, "outputs") == backup / "outputs" / "hpo"
    with pytest.raises(PathScopeError, match="not inside the outputs"):
        map_to_backup(root / "src" / "outputs" / "z", root, backup, outputs)
    with pytest.raises(PathScopeError):
        map_to_backup(outputs / ".." / ".." / "etc", root, backup, outputs)
    with pytest.raises(PathScopeError, match="backup side"):
        map_to_backup(backup / "outputs" / "x", root, backup, outputs)


def test_map_to_backup_with_symlinked_outputs(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    volume = tmp_path / "volume"
    (volume / "hpo").mkdir(parents=True)
    os.symlink(volume, root / "outputs")
    backup = tmp_path / "bk"
    got = map_to_backup(root / "outputs" / "hpo" / "f", root, backup, root / "outputs")
    assert got == backup / "outputs" / "hpo" / "f"
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, volume / "leak")
    with pytest.raises(PathScopeError):
        map_to_backup(root / "outputs" / "leak" / "f", root, backup, root / "outputs")


def test_drive_backup_path_from_config(project: Path, reference_dir: Path) -> None:
    cfg = project / "config"
    base = get_drive_backup_base(cfg)
    assert base == Path("/content/drive/MyDrive/resume-ner-azureml")
    local = project / "outputs" / "hpo" / "colab" / "m" / "study-350a79aa" / "study.db"
    assert get_drive_backup_path(project, cfg, local) == base / "outputs/hpo/colab/m/study-350a79aa/study.db"
    assert get_drive_backup_path(project, cfg, project / "src" / "outputs" / "x") is None
    renamed = project / "cfg2"
    renamed.mkdir()
    (renamed / "paths.yaml").write_text(
        (cfg / "paths.yaml")
        .read_text()
        .replace('name: &project_name "resume-ner-azureml"', 'name: &project_name "other"')
    )
    assert get_drive_backup_base(renamed) == Path("/content/drive/MyDrive/other")
    # The run's loaded config serves both, without reading paths.yaml again.
    config = load_paths_config(renamed, "local")
    (renamed / "paths.yaml").unlink()
    assert get_drive_backup_base(None, config=config) == Path("/content/drive/MyDrive/other")
    assert get_drive_backup_path(project, renamed, local, config=config) == Path(
        "/content/drive/MyDrive/other/outputs/hpo/colab/m/study-350a79aa/study.db"
    )
    with pytest.raises(PathsError, match="loaded for storage_env 'colab'"):
        get_drive_backup_path(project, renamed, local, config=load_paths_config(cfg, "colab"))


def test_study_folder_follows_the_configured_hpo_pattern(tmp_path: Path, reference_dir: Path) -> None:
    root = make_project(tmp_path / "proj", reference_dir)
    paths_yaml = root / "config" / "paths.yaml"
    h = "ABCDEF0123456789" * 4
    default = build_study_dir(
        root, "distil-bert", h, storage_env="local", config=load_paths_config(root / "config")
    )
    assert default == root / "outputs" / "hpo" / "local" / "distil_bert" / "study-abcdef01"
    paths_yaml.write_text(
        paths_yaml.read_text().replace(
            'hpo_v2: "{storage_env}/{model}/study-{study8}/trial-{trial8}"',
            'hpo_v2: "{storage_env}/m-{model}/s{study8}/trial-{trial8}"',
        )
    )
    config = load_paths_config(root / "config")
    study = build_study_dir(root, "x", h, storage_env="local", config=config)
    assert study == root / "outputs" / "hpo" / "local" / "m-x" / "sabcdef01"
    study.mkdir(parents=True)
    # find_study_by_hash reads the same pattern (one home for the study folder).
    assert find_study_by_hash(root, root / "config", "x", h, "local") == study
