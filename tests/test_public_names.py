"""Each package's public names live in exactly one list: its ``__init__.pyi`` stub, read by people, type
checkers, import-linter's custom contracts and, at run time, ``lazy_loader.attach_stub``.

A package ``__init__.py`` has one shape everywhere (docstring; ``import lazy_loader as lazy``;
``from mlrig.X._version import __version__ as __version__``, the file hatchling reads the version from;
``__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)``). The stub holds only
``from .module import Name as Name`` lines (and ``__version__: str``, which lazy_loader skips), each name
once.
No submodule keeps an ``__all__`` of its own, and importing a package loads none of its modules until one of
their names is used.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

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
# The packages whose bare import must stay cheap (benchmarks/paths_import.py, naming_import.py).
LAZY_PROBED = ["paths", "naming", "storage"]
VERSION_DECLARATION = "__version__: str"


def _parse(package: str, filename: str) -> ast.Module:
    directory, _ = PACKAGES[package]
    return ast.parse((directory / filename).read_text(encoding="utf-8"))


def _stub_names(package: str) -> list[tuple[str, str]]:
    """``(module, name)`` for each ``from .module import name as name`` of the stub, in order."""
    return [
        (stmt.module or "", alias.name)
        for stmt in _parse(package, "__init__.pyi").body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_init_has_the_one_shape(package: str) -> None:
    _, distribution = PACKAGES[package]
    expected = ["import lazy_loader as lazy"]
    if distribution is not None:
        expected.append(f"from mlrig.{package}._version import __version__ as __version__")
    expected.append("__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)")
    docstring, *rest = _parse(package, "__init__.py").body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant), "no docstring"
    assert isinstance(docstring.value.value, str) and "__init__.pyi" in docstring.value.value
    assert [ast.unparse(stmt) for stmt in rest] == expected


@pytest.mark.parametrize("package", PACKAGES)
def test_stub_only_reexports_from_its_own_modules_each_name_once(package: str) -> None:
    directory, distribution = PACKAGES[package]
    body = _parse(package, "__init__.pyi").body
    assert body, f"mlrig.{package} has an empty stub"
    others = [ast.unparse(stmt) for stmt in body if not isinstance(stmt, ast.ImportFrom)]
    # lazy_loader skips all but imports: __version__ is declared, not imported, to stay out of __all__.
    assert others == ([VERSION_DECLARATION] if distribution else []), others
    for stmt in body:
        if not isinstance(stmt, ast.ImportFrom):
            continue
        line = ast.unparse(stmt)
        # Relative, one module of this package: attach_stub accepts nothing else.
        assert stmt.level == 1 and stmt.module, line
        assert (directory / f"{stmt.module}.py").is_file(), f"{line}: no module {stmt.module}"
        for alias in stmt.names:
            # ``X as X`` is a re-export under mypy --strict; attach_stub reads the first name only.
            assert alias.asname == alias.name, f"{line}: write '{alias.name} as {alias.name}'"
    names = [name for _, name in _stub_names(package)]
    assert len(set(names)) == len(names), "a name is listed twice"
    assert "__version__" not in names


@pytest.mark.parametrize("package", PACKAGES)
def test_all_and_dir_are_the_stubs_names(package: str) -> None:
    pkg = importlib.import_module(f"mlrig.{package}")
    names = [name for _, name in _stub_names(package)]
    # attach_stub sorts the names: the stub's order is isort's, __all__'s the alphabet's.
    assert pkg.__all__ == sorted(names)
    assert set(names) <= set(dir(pkg))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_resolves_to_its_home(package: str) -> None:
    pkg = importlib.import_module(f"mlrig.{package}")
    for module_name, name in _stub_names(package):
        module = importlib.import_module(f"mlrig.{package}.{module_name}")
        value = getattr(pkg, name)
        assert value is getattr(module, name), name
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == module.__name__, f"{name} is defined in {value.__module__}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_submodule_keeps_an_all(package: str) -> None:
    directory, _ = PACKAGES[package]
    with_all = [
        path.name
        for path in sorted(directory.glob("*.py"))
        if path.name != "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Name) and node.id == "__all__"
    ]
    assert not with_all, f"the stub is the one list, yet {with_all} define __all__"


@pytest.mark.parametrize("package", [package for package, (_, dist) in PACKAGES.items() if dist])
def test_version_is_available_but_not_exported(package: str) -> None:
    pkg = importlib.import_module(f"mlrig.{package}")
    _, distribution = PACKAGES[package]
    assert pkg.__version__ == version(str(distribution)), "the installed metadata and _version.py disagree"
    assert "__version__" not in pkg.__all__
    with pytest.raises(AttributeError, match=rf"mlrig\.{package}\b.*\bno_such_name"):
        _ = pkg.no_such_name


def test_plumbing_is_not_exported() -> None:
    paths = importlib.import_module("mlrig.paths")
    assert not {"lazy_exports", "get_logger"} & set(paths.__all__)
    assert importlib.util.find_spec("mlrig.paths.lazy") is None


def _loaded_submodules(package: str, code: str, **env: str) -> list[str]:
    """The ``mlrig.<package>.*`` modules loaded after running ``code`` in a fresh interpreter."""
    probe = (
        f"{code}\nimport sys\n"
        f"print(*sorted(m for m in sys.modules if m.startswith('mlrig.{package}.')), sep='\\n')"
    )
    clean = {key: value for key, value in os.environ.items() if key != "EAGER_IMPORT"}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={**clean, **env}
    )
    return result.stdout.split()


@pytest.mark.parametrize("package", LAZY_PROBED)
def test_import_loads_no_module_until_a_name_is_used(package: str) -> None:
    assert _loaded_submodules(package, f"import mlrig.{package}") == [f"mlrig.{package}._version"]
    module_name, name = _stub_names(package)[0]
    used = _loaded_submodules(package, f"from mlrig.{package} import {name}")
    assert f"mlrig.{package}.{module_name}" in used


@pytest.mark.parametrize("package", LAZY_PROBED)
def test_eager_import_loads_every_module_of_the_stub(package: str) -> None:
    # EAGER_IMPORT=1 resolves every stub entry at import: a name missing from its module fails here.
    loaded = _loaded_submodules(package, f"import mlrig.{package}", EAGER_IMPORT="1")
    assert {f"mlrig.{package}.{module}" for module, _ in _stub_names(package)} <= set(loaded)
