"""Packages whose names load on first use (``mlrig.paths.lazy_exports``): the lazy table, the names type
checkers see and ``__all__`` agree, every name resolves to its home module, and importing a package (or one
name of it) does not import the rest."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlrig.paths import lazy_exports

ROOT = Path(__file__).resolve().parents[1]
LAZY = ("paths", "naming", "orchestration")


def _type_checking_imports(package: str) -> dict[str, str]:
    """name -> submodule, from the ``if TYPE_CHECKING:`` block of the package's ``__init__``."""
    source = ROOT / "packages" / package / "src" / "mlrig" / package / "__init__.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module, ast.dump(stmt)
                prefix = f"mlrig.{package}."
                assert stmt.module.startswith(prefix), f"{stmt.module} is outside mlrig.{package}"
                found.update({alias.name: stmt.module[len(prefix) :] for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", LAZY)
def test_table_type_checking_view_and_all_agree(package: str) -> None:
    module = importlib.import_module(f"mlrig.{package}")
    table: dict[str, str] = vars(module)["_EXPORTS"]
    assert _type_checking_imports(package) == table
    eager = {"get_logger", "lazy_exports"} if package == "paths" else set()
    assert set(module.__all__) == set(table) | eager
    assert len(module.__all__) == len(set(module.__all__)), "duplicate names in __all__"


@pytest.mark.parametrize("package", LAZY)
def test_every_name_resolves_to_its_home(package: str) -> None:
    module = importlib.import_module(f"mlrig.{package}")
    table: dict[str, str] = vars(module)["_EXPORTS"]
    for name, home in table.items():
        value = getattr(module, name)
        defining = importlib.import_module(f"mlrig.{package}.{home}")
        assert getattr(defining, name) is value, name
        assert vars(module)[name] is value, f"{name} is not kept on the package after first use"
    assert set(table) <= set(dir(module))
    assert module.__version__ == "0.1.0"
    with pytest.raises(AttributeError, match=rf"module 'mlrig\.{package}' has no attribute 'no_such_name'"):
        _ = module.no_such_name


def _loaded_after(code: str) -> list[str]:
    listing = "print(json.dumps(sorted(m for m in sys.modules if m.startswith('mlrig.'))))"
    probe = f"{code}\nimport json, sys\n{listing}"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_importing_a_package_loads_none_of_its_modules() -> None:
    assert _loaded_after("import mlrig.paths") == ["mlrig.paths", "mlrig.paths.lazy"]
    loaded = _loaded_after("import mlrig.naming")
    assert [m for m in loaded if m.startswith("mlrig.naming")] == ["mlrig.naming"]


def test_one_name_loads_only_what_it_needs() -> None:
    loaded = set(_loaded_after("from mlrig.paths import resolve_output_path"))
    assert "mlrig.paths.layout" in loaded
    assert not loaded & {"mlrig.paths.cache", "mlrig.paths.drive", "mlrig.paths.parse", "mlrig.paths.roots"}
    loaded = set(_loaded_after("from mlrig.naming import build_hpo_study_key_hash"))
    assert "mlrig.naming.keys" in loaded
    assert not loaded & {"mlrig.naming.tags", "mlrig.naming.run_names", "mlrig.naming.experiments"}


def test_lazy_exports_on_a_package_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "lazydemo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from mlrig.paths import lazy_exports

            __getattr__, __dir__ = lazy_exports(
                __name__, {"answer": "values", "broken": "missing"}, distribution="mlrig-paths"
            )
            """
        ),
        encoding="utf-8",
    )
    (pkg / "values.py").write_text("answer = 42\nLOADED = True\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("lazydemo")
    try:
        assert "lazydemo.values" not in sys.modules
        assert "answer" in dir(module)
        assert module.answer == 42
        assert "lazydemo.values" in sys.modules
        with pytest.raises(ModuleNotFoundError, match=r"lazydemo\.missing"):
            _ = module.broken
        with pytest.raises(AttributeError, match="no attribute 'other'"):
            _ = module.other
    finally:
        for name in [m for m in sys.modules if m == "lazydemo" or m.startswith("lazydemo.")]:
            del sys.modules[name]


def test_lazy_exports_returns_module_hooks() -> None:
    getattr_hook, dir_hook = lazy_exports("mlrig.paths", {"detect_platform": "platforms"}, distribution="x")
    assert getattr_hook("detect_platform")() in ("local", "colab", "kaggle", "azureml")
    assert "detect_platform" in dir_hook()
