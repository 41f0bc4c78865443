from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlrig.paths import (
    PathsConfigError,
    PathScopeError,
    PathsError,
    get_outputs_dir,
    load_paths_config,
    render_output_path,
    resolve_output_path,
    validate_output_path,
)

STUDY, TRIAL, BENCH = "350a79aa" + "0" * 56, "0123abcd" + "1" * 56, "beef0001" + "2" * 56
SPEC, EXEC, CONV = "abcdef12" + "3" * 56, "12345678" + "4" * 56, "c0ffee99" + "5" * 56
TOKENS = {
    "model": "distil-bert base",
    "study8": STUDY[:8],
    "trial8": TRIAL[:8],
    "bench8": BENCH[:8],
    "spec8": SPEC[:8],
    "exec8": EXEC[:8],
    "conv8": CONV[:8],
    "variant": "3",
}
BASES = {
    "local": None,
    "colab": "/content/drive/MyDrive/resume-ner-azureml/outputs",
    "kaggle": "/kaggle/working/outputs",
    "azureml": "/mnt/outputs",
}
# Expected layout written out from the reference notes (§2.2), with "distil-bert base" normalised.
EXPECTED = {
    "hpo": "hpo/{env}/distil_bert_base/study-350a79aa/trial-0123abcd",
    "hpo_refit": "hpo/{env}/distil_bert_base/study-350a79aa/trial-0123abcd/refit",
    "benchmarking": "benchmarking/{env}/distil_bert_base/study-350a79aa/trial-0123abcd/bench-beef0001",
    "final_training": "final_training/{env}/distil_bert_base/spec-abcdef12_exec-12345678/v3",
    "conversion": "conversion/{env}/distil_bert_base/spec-abcdef12_exec-12345678/v3/conv-c0ffee99",
    "best_configurations": "cache/best_configurations/distil_bert_base/spec-abcdef12",
}


@pytest.mark.parametrize("env", sorted(BASES))
@pytest.mark.parametrize("process_type", sorted(EXPECTED))
def test_reference_layout_every_process_and_env(
    project: Path, reference_dir: Path, env: str, process_type: str
) -> None:
    config = load_paths_config(reference_dir, env)
    got = render_output_path(project, process_type, TOKENS, storage_env=env, config=config)
    base = Path(BASES[env]) if BASES[env] else project / "outputs"
    assert got == base / EXPECTED[process_type].format(env=env)
    assert not got.exists()


def test_benchmarking_without_bench_hash_has_no_bench_level(project: Path, reference_dir: Path) -> None:
    config = load_paths_config(reference_dir, "local")
    got = render_output_path(
        project, "benchmarking", {**TOKENS, "bench8": ""}, storage_env="local", config=config
    )
    assert got.name == "trial-0123abcd"
    assert "bench-" not in str(got)


@pytest.mark.parametrize(
    ("process_type", "missing"),
    [
        ("conversion", "spec8"),
        ("conversion", "exec8"),
        ("hpo", "study8"),
        ("final_training", "variant"),
        ("hpo_refit", "trial8"),
        ("best_configurations", "model"),
    ],
)
def test_missing_tokens_raise_instead_of_empty_components(
    project: Path, reference_dir: Path, process_type: str, missing: str
) -> None:
    config = load_paths_config(reference_dir, "local")
    tokens = {**TOKENS, missing: ""}
    with pytest.raises(PathsError, match=repr(missing)):
        render_output_path(project, process_type, tokens, storage_env="local", config=config)


def test_traversal_tokens_stay_inside(project: Path, reference_dir: Path) -> None:
    config = load_paths_config(reference_dir, "local")
    got = render_output_path(project, "hpo", {**TOKENS, "model": ".."}, storage_env="local", config=config)
    assert got.parent.parent.name == "__"
    assert got.parent.parent.parent.name == "local"
    assert got.is_relative_to(project / "outputs" / "hpo" / "local")


def test_config_for_other_env_is_refused(project: Path, reference_dir: Path) -> None:
    config = load_paths_config(reference_dir, "colab")
    with pytest.raises(PathsError, match="colab"):
        render_output_path(project, "hpo", TOKENS, storage_env="local", config=config)


def test_unknown_process_type(project: Path, reference_dir: Path) -> None:
    with pytest.raises(PathsError, match="'training'"):
        render_output_path(
            project, "training", TOKENS, storage_env="local", config=load_paths_config(reference_dir)
        )


def test_schema_1_config_cannot_lay_out_v2(project: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c1"
    cfg.mkdir()
    (cfg / "paths.yaml").write_text("base:\n  outputs: outputs\noutputs:\n  hpo: hpo\n")
    config = load_paths_config(cfg, "local")
    with pytest.raises(PathsConfigError, match=r"patterns\.hpo_v2"):
        render_output_path(project, "hpo", TOKENS, storage_env="local", config=config)


def test_resolve_output_path_categories(project: Path, no_platform_env: None) -> None:
    cfg = project / "config"
    assert resolve_output_path(project, cfg, "hpo") == project / "outputs" / "hpo"
    assert resolve_output_path(project, cfg, "cache") == project / "outputs" / "cache"
    assert (
        resolve_output_path(project, cfg, "cache", subcategory="best_model_selection")
        == project / "outputs" / "cache" / "best_model_selection"
    )
    assert resolve_output_path(project, cfg, "final_training", backbone="distil-bert", run_id="r1") == (
        project / "outputs" / "final_training" / "distil_bert" / "r1"
    )


def test_resolve_output_path_applies_env_overrides(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = project / "config"
    assert resolve_output_path(project, cfg, "hpo", storage_env="kaggle") == Path(
        "/kaggle/working/outputs/hpo"
    )
    monkeypatch.setenv("COLAB_GPU", "1")
    assert get_outputs_dir(project, cfg) == Path("/content/drive/MyDrive/resume-ner-azureml/outputs")
    assert resolve_output_path(project, cfg, "hpo") == Path(
        "/content/drive/MyDrive/resume-ner-azureml/outputs/hpo"
    )


def test_resolve_output_path_rejects_unknowns_and_traversal(project: Path, no_platform_env: None) -> None:
    cfg = project / "config"
    with pytest.raises(PathsConfigError, match="'unknown_cat'"):
        resolve_output_path(project, cfg, "unknown_cat")
    with pytest.raises(PathsConfigError, match="'nope'"):
        resolve_output_path(project, cfg, "cache", subcategory="nope")
    evil = resolve_output_path(project, cfg, "hpo", a="../../etc")
    assert evil.parent == project / "outputs" / "hpo"


def test_validate_output_path(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    (root / "a").mkdir(parents=True)
    assert validate_output_path(root / "a" / "b", root=root) == root / "a" / "b"
    with pytest.raises(PathScopeError):
        validate_output_path(root / ".." / "x", root=root)
    with pytest.raises(PathScopeError):
        validate_output_path(root, root=root)
    (root / "file").write_text("x")
    with pytest.raises(PathsError, match="exists as a file"):
        validate_output_path(root / "file", root=root)
    with pytest.raises(PathsError, match="max_path_length=20"):
        validate_output_path(root / "a" / "b", root=root, max_path_length=20)


def test_validate_output_path_follows_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(PathScopeError, match="elsewhere"):
        validate_output_path(root / "link" / "x", root=root)


def test_symlinked_outputs_root_is_accepted(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    os.symlink(volume, tmp_path / "outputs")
    got = validate_output_path(tmp_path / "outputs" / "hpo" / "x", root=tmp_path / "outputs")
    assert got == tmp_path / "outputs" / "hpo" / "x"


def test_checks_see_a_change_on_the_very_next_call(tmp_path: Path) -> None:
    # Every call looks at the file system: a symlink swapped in (or a file put in the way) since the last
    # check is caught at once.
    root = tmp_path / "outputs"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert validate_output_path(root / "a" / "b", root=root) == root / "a" / "b"
    assert validate_output_path(root / "c" / "d", root=root) == root / "c" / "d"
    (root / "a").rmdir()
    os.symlink(outside, root / "a")
    (root / "c").mkdir()
    (root / "c" / "d").write_text("x")
    with pytest.raises(PathScopeError, match="elsewhere"):
        validate_output_path(root / "a" / "b", root=root)
    with pytest.raises(PathsError, match="exists as a file"):
        validate_output_path(root / "c" / "d", root=root)


def test_new_folders_in_a_known_parent_are_checked_at_once(tmp_path: Path) -> None:
    # A sweep asks for many new folders in one parent: each is looked at when asked for.
    root = tmp_path / "outputs"
    (root / "study").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert validate_output_path(root / "study" / "t1", root=root) == root / "study" / "t1"
    os.symlink(outside, root / "study" / "t2")
    (root / "study" / "t3").write_text("x")
    (root / "study" / "t4").mkdir()
    with pytest.raises(PathScopeError, match="elsewhere"):
        validate_output_path(root / "study" / "t2", root=root)
    with pytest.raises(PathsError, match="exists as a file"):
        validate_output_path(root / "study" / "t3", root=root)
    got = validate_output_path(root / "study" / "t4", root=root)
    expected = root / "study" / "t4"
    assert (got, str(got), got.parts, got.name, got.parent) == (
        expected,
        str(expected),
        expected.parts,
        "t4",
        expected.parent,
    )
    assert type(got) is type(expected)
    (got / "inner").write_text("x")
    with pytest.raises(PathsError, match="exists as a file"):
        validate_output_path(root / "study" / "t4" / "inner", root=root)


def test_a_new_folder_is_looked_at_even_when_its_parent_was_missing(tmp_path: Path) -> None:
    # The parent was missing a moment ago; since then it was made and a file put where the next folder goes.
    root = tmp_path / "outputs"
    root.mkdir()
    assert validate_output_path(root / "study" / "t1", root=root) == root / "study" / "t1"
    (root / "study").mkdir()
    (root / "study" / "t2").write_text("x")
    with pytest.raises(PathsError, match="exists as a file"):
        validate_output_path(root / "study" / "t2", root=root)


def test_a_parent_swapped_for_a_symlink_is_caught_on_the_next_call(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    (root / "known").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert validate_output_path(root / "known" / "t1", root=root) == root / "known" / "t1"
    assert validate_output_path(root / "missing" / "t1", root=root) == root / "missing" / "t1"
    (root / "known").rmdir()
    os.symlink(outside, root / "known")
    os.symlink(outside, root / "missing")
    for parent in ("known", "missing"):
        with pytest.raises(PathScopeError, match="elsewhere"):
            validate_output_path(root / parent / "t2", root=root)


def test_checks_belong_to_their_root(tmp_path: Path) -> None:
    # outputs/ is a symlink to a volume outside the project: fine when outputs/ is the root asked about, not
    # when the project is -- whichever was asked first.
    project, volume = tmp_path / "project", tmp_path / "volume"
    project.mkdir()
    (volume / "hpo").mkdir(parents=True)
    os.symlink(volume, project / "outputs")
    for leaf in ("t1", "t2"):
        path = project / "outputs" / "hpo" / leaf
        assert validate_output_path(path, root=project / "outputs") == path
        with pytest.raises(PathScopeError, match="volume"):
            validate_output_path(path, root=project)


def test_a_path_checked_before_still_gets_each_max_path_length(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    long = root / ("x" * 40)
    assert validate_output_path(long, root=root) == long
    with pytest.raises(PathsError, match="max_path_length=30"):
        validate_output_path(long, root=root, max_path_length=30)


def test_equal_but_different_token_values_render_differently(tmp_path: Path) -> None:
    # 1 == True == 1.0 as dictionary keys; each must still render as its own text.
    config = load_paths_config(None, "local")
    names = [
        render_output_path(
            tmp_path, "final_training", {**TOKENS, "variant": value}, storage_env="local", config=config
        ).name
        for value in (1, True, 1.0, "1")
    ]
    assert names == ["v1", "vTrue", "v1.0", "v1"]


def test_a_loaded_config_is_used_as_given(project: Path, no_platform_env: None) -> None:
    # The run's config is passed down: no file is read again, so removing paths.yaml changes nothing.
    cfg = project / "config"
    config = load_paths_config(cfg, "local")
    (cfg / "paths.yaml").unlink()
    assert resolve_output_path(project, cfg, "hpo", config=config) == project / "outputs" / "hpo"
    assert get_outputs_dir(project, cfg, config=config) == project / "outputs"
    assert resolve_output_path(project, cfg, "cache", subcategory="best_model_selection", config=config) == (
        project / "outputs" / "cache" / "best_model_selection"
    )
    # Without it, paths.yaml is loaded on the spot: now the packaged defaults.
    assert resolve_output_path(project, cfg, "cache", subcategory="final_training") == (
        project / "outputs" / "cache" / "final_training"
    )


def test_a_config_loaded_for_another_env_is_refused(project: Path) -> None:
    colab = load_paths_config(project / "config", "colab")
    with pytest.raises(PathsError, match="loaded for storage_env 'colab', not 'local'"):
        resolve_output_path(project, None, "hpo", storage_env="local", config=colab)
    with pytest.raises(PathsError, match="loaded for storage_env 'colab', not 'kaggle'"):
        get_outputs_dir(project, None, "kaggle", config=colab)
    # Its own env is the default when none is asked for.
    assert get_outputs_dir(project, config=colab) == Path(BASES["colab"])
