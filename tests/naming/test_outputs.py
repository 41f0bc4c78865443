"""build_output_path with the run's paths config passed down, or paths.yaml loaded on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrig.naming import NamingContext, build_output_path, create_naming_context
from mlrig.paths import PathsError, load_paths_config

S = "350a79aa" * 8
T = "0123abcd" * 8


def trial(storage_env: str = "local") -> NamingContext:
    return create_naming_context(
        "hpo",
        "distil-bert",
        environment=storage_env,
        storage_env=storage_env,
        study_key_hash=S,
        trial_key_hash=T,
        trial_id="trial_1",
        trial_number=1,
    )


def test_paths_config_is_used_as_given(tmp_path: Path, reference_config_dir: Path) -> None:
    expected = tmp_path / "outputs" / "hpo" / "local" / "distil_bert" / "study-350a79aa" / "trial-0123abcd"
    ctx = trial()
    assert build_output_path(tmp_path, ctx, reference_config_dir) == expected
    paths_config = load_paths_config(reference_config_dir, "local")
    # Once loaded, the run's config is all a call needs: an edit to the file does not reach it ...
    text = (reference_config_dir / "paths.yaml").read_text()
    (reference_config_dir / "paths.yaml").write_text(
        text.replace('outputs: "outputs"', 'outputs: "moved"', 1)
    )
    got = build_output_path(tmp_path, ctx, reference_config_dir, paths_config=paths_config)
    assert got == expected
    # ... while a call without it loads the file as it is now.
    moved = build_output_path(tmp_path, ctx, reference_config_dir)
    assert moved == tmp_path / "moved" / expected.relative_to(tmp_path / "outputs")


def test_paths_config_for_another_env_is_refused(tmp_path: Path, reference_config_dir: Path) -> None:
    colab = load_paths_config(reference_config_dir, "colab")
    with pytest.raises(PathsError, match="loaded for storage_env 'colab', not 'local'"):
        build_output_path(tmp_path, trial("local"), paths_config=colab)
