"""Shared fixtures for the mlrig.naming tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import REFERENCE_CONFIG_DIR

REFERENCE_CONFIG = REFERENCE_CONFIG_DIR


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    assert REFERENCE_CONFIG.is_dir(), f"reference configs not found at {REFERENCE_CONFIG}"
    return REFERENCE_CONFIG


@pytest.fixture(scope="session")
def load_ref(reference_dir: Path) -> Callable[[str], Any]:
    """Load a reference config file with PyYAML's safe_load (YAML 1.1 scalars, as the reference did)."""

    def load(name: str) -> Any:
        with (reference_dir / name).open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)

    return load


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An empty project config directory (naming falls back to its packaged defaults)."""
    path = tmp_path / "config"
    path.mkdir()
    return path


@pytest.fixture
def reference_config_dir(tmp_path: Path, reference_dir: Path) -> Path:
    """A config dir holding copies of the reference naming.yaml, tags.yaml, mlflow.yaml and paths.yaml."""
    path = tmp_path / "refconfig"
    path.mkdir()
    for name in ("naming.yaml", "tags.yaml", "mlflow.yaml", "paths.yaml"):
        (path / name).write_bytes((reference_dir / name).read_bytes())
    return path
