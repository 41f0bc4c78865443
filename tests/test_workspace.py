"""The workspace skeleton: five namespace portions, each importable, no shared ``mlrig/__init__.py``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("paths", "naming", "storage", "tracking", "orchestration")


@pytest.mark.parametrize("name", PACKAGES)
def test_package_is_a_namespace_portion(name: str) -> None:
    src = ROOT / "packages" / name / "src"
    assert not (src / "mlrig" / "__init__.py").exists(), "mlrig must stay a PEP 420 namespace"
    assert (src / "mlrig" / name / "py.typed").is_file()
    assert (ROOT / "packages" / name / "README.md").is_file()
    module = importlib.import_module(f"mlrig.{name}")
    assert module.__version__ == "0.1.0"
    assert Path(module.__file__ or "").resolve().is_relative_to(src.resolve())
