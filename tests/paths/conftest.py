from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures import REFERENCE_CONFIG_DIR

REFERENCE = REFERENCE_CONFIG_DIR


@pytest.fixture
def reference_dir() -> Path:
    assert (REFERENCE / "paths.yaml").is_file(), f"reference configs missing at {REFERENCE}"
    return REFERENCE


@pytest.fixture
def project(tmp_path: Path, reference_dir: Path) -> Path:
    """A project root with the reference paths.yaml and the markers it requires."""
    root = tmp_path / "proj"
    (root / "config").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname='p'\n")
    shutil.copy(reference_dir / "paths.yaml", root / "config" / "paths.yaml")
    return root


@pytest.fixture
def no_platform_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "COLAB_GPU",
        "COLAB_TPU",
        "COLAB_RELEASE_TAG",
        "KAGGLE_KERNEL_RUN_TYPE",
        "KAGGLE_URL_BASE",
        "AZUREML_RUN_ID",
        "AZURE_ML_RUN_ID",
        "AZURE_ML_OUTPUT_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
