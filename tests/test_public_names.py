"""Each package's public names live in exactly one list: the literal ``__all__`` of the module defining them.

A package ``__init__`` has one shape everywhere (docstring; ``from mlrig.X import a, b``;
``from mlrig.X._version import __version__ as __version__``, the file hatchling reads the version from;
``from mlrig.X.a import *`` per module; ``__all__ = [*a.__all__, *b.__all__]``) and names no exported name in
a string. The package's ``__all__`` is the concatenation of its modules'
lists, every name resolves, and each exported function or class is defined in the module listing it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Package -> (its directory, the distribution whose version it reports, or None).
PACKAGES = {
    "paths": (ROOT / "packages/paths/src/mlrig/paths", "mlrig-paths"),
    "naming": (ROOT / "packages/naming/src/mlrig/naming", "mlrig-naming"),
    "storage": (ROOT / "packages/storage/src/mlrig/storage", "mlrig-storage"),
    "tracking": (ROOT / "packages/tracking/src/mlrig/tracking", "mlrig-tracking"),
    "orchestration": (ROOT / "packages/orchestration/src/mlrig/orchestration", "mlrig-orchestration"),
    "cli": (ROOT / "packages/orchestration/src/mlrig/cli", None),
}


def _init_tree(package: str) -> ast.Module:
    directory, _ = PACKAGES[package]
    return ast.parse((directory / "__init__.py").read_text(encoding="utf-8"))


def _star_modules(package: str) -> list[str]:
    """The modules the ``__init__`` star-imports, in order."""
    return [
        stmt.module.rpartition(".")[2]
        for stmt in _init_tree(package).body
        if isinstance(stmt, ast.ImportFrom) and stmt.module and [a.name for a in stmt.names] == ["*"]
    ]


def _spliced_all(modules: list[str]) -> str:
    return "__all__ = [" + ", ".join(f"*{module}.__all__" for module in modules) + "]"


@pytest.mark.parametrize("package", PACKAGES)
def test_init_has_the_one_shape(package: str) -> None:
    _, distribution = PACKAGES[package]
    body = _init_tree(package).body
    modules = _star_modules(package)
    assert modules, f"mlrig.{package} star-imports no module"
    expected = [f"from mlrig.{package} import {', '.join(modules)}"]
    if distribution is not None:
        expected.append(f"from mlrig.{package}._version import __version__ as __version__")
    expected += [f"from mlrig.{package}.{module} import *" for module in modules]
    expected.append(_spliced_all(modules))
    docstring, *rest = body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant), "no docstring"
    assert [ast.unparse(stmt) for stmt in rest] == expected


@pytest.mark.parametrize("package", PACKAGES)
def test_init_names_no_exported_name_in_a_string(package: str) -> None:
    exported = set(importlib.import_module(f"mlrig.{package}").__all__)
    strings = {
        node.value
        for node in ast.walk(_init_tree(package))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert not strings & exported


@pytest.mark.parametrize("package", PACKAGES)
def test_only_star_imported_modules_have_an_all_and_it_is_a_literal(package: str) -> None:
    directory, _ = PACKAGES[package]
    star = set(_star_modules(package))
    with_all: set[str] = set()
    for path in sorted(directory.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for stmt in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(stmt, ast.Assign) and "__all__" in [ast.unparse(t) for t in stmt.targets]:
                with_all.add(path.stem)
                assert isinstance(stmt.value, ast.List), f"{path}: __all__ is not a literal list"
                assert all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in stmt.value.elts
                ), f"{path}: __all__ holds something other than strings"
    # A module the package does not star-import exports nothing: an __all__ there would list internal names.
    assert with_all == star, f"modules with __all__ {sorted(with_all)} != star-imported {sorted(star)}"


def _modules(package: str) -> list[ModuleType]:
    return [importlib.import_module(f"mlrig.{package}.{module}") for module in _star_modules(package)]


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_the_concatenation_of_the_modules_lists(package: str) -> None:
    pkg = importlib.import_module(f"mlrig.{package}")
    concatenated = [name for module in _modules(package) for name in module.__all__]
    assert pkg.__all__ == concatenated
    assert len(set(pkg.__all__)) == len(pkg.__all__), "a name is exported twice"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_resolves_to_its_home(package: str) -> None:
    pkg = importlib.import_module(f"mlrig.{package}")
    for module in _modules(package):
        for name in module.__all__:
            value = getattr(pkg, name)
            assert value is getattr(module, name), name
            if inspect.isfunction(value) or inspect.isclass(value):
                assert value.__module__ == module.__name__, f"{name} is defined in {value.__module__}"


@pytest.mark.parametrize("package", [package for package, (_, dist) in PACKAGES.items() if dist])
def test_version_is_available_but_not_exported(package: str) -> None:
    pkg = importlib.import_module(f"mlrig.{package}")
    _, distribution = PACKAGES[package]
    assert pkg.__version__ == version(str(distribution)), "the installed metadata and _version.py disagree"
    assert "__version__" not in pkg.__all__
    with pytest.raises(AttributeError, match=rf"module 'mlrig\.{package}' has no attribute 'no_such_name'"):
        _ = pkg.no_such_name


def test_plumbing_is_not_exported() -> None:
    paths = importlib.import_module("mlrig.paths")
    assert not {"lazy_exports", "get_logger"} & set(paths.__all__)
    assert importlib.util.find_spec("mlrig.paths.lazy") is None
