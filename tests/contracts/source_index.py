"""Read the checked packages' sources without importing them, and work out what each module binds.

Each root package is located with ``importlib.util.find_spec`` (which works below PEP 420 namespace parents
such as ``mlrig`` without running any package code) and every module in the import graph is mapped to a file
below the root package's search locations. A package whose ``__init__.py`` has an ``__init__.pyi`` beside it
(the ``lazy_loader.attach_stub`` idiom) exports what the stub imports: the stub is read with the ``__init__``.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grimp import ImportGraph


@dataclass(frozen=True)
class SourceModule:
    """One module of a checked root package, parsed from its file (and, for a package, its stub if any)."""

    name: str
    root: str
    path: Path
    is_package: bool
    tree: ast.Module
    stub_path: Path | None = None
    stub: ast.Module | None = None


_PARSE_CACHE: dict[tuple[Path, int, int], ast.Module] = {}


def _parse(path: Path) -> ast.Module:
    # The three contracts of one lint run read the same files; parse each version of a file once.
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    tree = _PARSE_CACHE.get(key)
    if tree is None:
        tree = ast.parse(path.read_bytes(), filename=str(path))
        _PARSE_CACHE[key] = tree
    return tree


def _root_locations(root: str) -> list[Path]:
    try:
        spec = importlib.util.find_spec(root)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"Could not locate root package {root!r}: {exc}") from exc
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"Root package {root!r} was not found as a package on sys.path.")
    return [Path(location) for location in spec.submodule_search_locations]


def _module_file(module: str, root: str, locations: Sequence[Path]) -> tuple[Path, bool] | None:
    relative = module[len(root) :].lstrip(".")
    parts = relative.split(".") if relative else []
    for base in locations:
        package_dir = base.joinpath(*parts)
        init = package_dir / "__init__.py"
        if init.is_file():
            return init, True
        if parts:
            plain = package_dir.with_suffix(".py")
            if plain.is_file():
                return plain, False
    return None


def root_of(module: str, roots: Sequence[str]) -> str | None:
    matches = [root for root in roots if module == root or module.startswith(root + ".")]
    return max(matches, key=len) if matches else None


def load_sources(graph: ImportGraph, roots: Sequence[str]) -> tuple[dict[str, SourceModule], list[str]]:
    """Parse every graph module under one of ``roots``; return them and warnings for missing files."""
    locations = {root: _root_locations(root) for root in roots}
    sources: dict[str, SourceModule] = {}
    warnings: list[str] = []
    modules: set[str] = set(graph.modules) | set(roots)
    for module in sorted(modules):
        root = root_of(module, roots)
        if root is None:
            continue
        found = _module_file(module, root, locations[root])
        if found is None:
            warnings.append(f"No source file found for {module}.")
            continue
        path, is_package = found
        stub_path = path.with_suffix(".pyi") if is_package else None
        if stub_path is not None and not stub_path.is_file():
            stub_path = None
        stub = _parse(stub_path) if stub_path is not None else None
        sources[module] = SourceModule(module, root, path, is_package, _parse(path), stub_path, stub)
    return sources, warnings


def top_level_statements(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at module level, including those in top-level ``if``/``try``/``with`` blocks."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from top_level_statements(stmt.body)
            yield from top_level_statements(stmt.orelse)
        elif isinstance(stmt, ast.Try | ast.TryStar):
            yield from top_level_statements(stmt.body)
            for handler in stmt.handlers:
                yield from top_level_statements(handler.body)
            yield from top_level_statements(stmt.orelse)
            yield from top_level_statements(stmt.finalbody)
        elif isinstance(stmt, ast.With | ast.AsyncWith | ast.For | ast.AsyncFor | ast.While):
            yield from top_level_statements(stmt.body)
            if isinstance(stmt, ast.For | ast.AsyncFor | ast.While):
                yield from top_level_statements(stmt.orelse)


# ----------------------------------------------------------------------------------------------------
# Name bindings (shared by the facade and re-export contracts)
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSource:
    """Where an imported name comes from: ``attribute`` is None for ``import module [as name]``."""

    module: str
    attribute: str | None
    explicit_reexport: bool = False

    def describe(self) -> str:
        return self.module if self.attribute is None else f"{self.module}.{self.attribute}"


@dataclass
class Bindings:
    """Top-level name bindings of one module."""

    local: set[str] = field(default_factory=set)
    imported: dict[str, ImportSource] = field(default_factory=dict)
    star_sources: list[str] = field(default_factory=list)
    all_names: list[str] | None = None
    # Names ``m`` whose list ``__all__`` splices in (``[*m.__all__, ...]``); see :func:`declared_all`.
    all_spliced: list[str] = field(default_factory=list)
    has_getattr: bool = False
    # The names a package's ``__init__.pyi`` imports (also in ``all_names``); None without a stub.
    stub_names: list[str] | None = None


def _resolve_relative(module: SourceModule, level: int, target: str | None) -> str:
    package_parts = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    if level > 1:
        package_parts = package_parts[: len(package_parts) - (level - 1)]
    base = ".".join(package_parts)
    if target:
        return f"{base}.{target}" if base else target
    return base


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _target_names(element)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _spliced_name(node: ast.expr) -> str | None:
    """``m`` for the expression ``m.__all__``."""
    if isinstance(node, ast.Attribute) and node.attr == "__all__" and isinstance(node.value, ast.Name):
        return node.value.id
    return None


def _all_parts(node: ast.expr | None) -> tuple[list[str], list[str]]:
    """The string literals of an ``__all__`` value and the names ``m`` of the ``m.__all__`` it splices in."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        names: list[str] = []
        spliced: list[str] = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                names.append(elt.value)
            elif isinstance(elt, ast.Starred) and (module := _spliced_name(elt.value)) is not None:
                spliced.append(module)
        return names, spliced
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _all_parts(node.left), _all_parts(node.right)
        return left[0] + right[0], left[1] + right[1]
    module = _spliced_name(node) if node is not None else None
    return ([], [module]) if module is not None else ([], [])


def _literal_strings(node: ast.expr | None) -> list[str]:
    return _all_parts(node)[0]


def _alias_source(value: ast.expr, bindings: Bindings) -> ImportSource | None:
    """``name = imported`` or ``name = imported.attr`` re-binds an imported object: still a re-export."""
    attributes: list[str] = []
    while isinstance(value, ast.Attribute):
        attributes.insert(0, value.attr)
        value = value.value
    if not isinstance(value, ast.Name) or value.id in bindings.local:
        return None
    source = bindings.imported.get(value.id)
    if source is None:
        return None
    if not attributes:
        return source
    base = source.describe()
    dotted = ".".join([base, *attributes])
    module, _, attribute = dotted.rpartition(".")
    return ImportSource(module, attribute)


def _bind_import(stmt: ast.Import, bindings: Bindings) -> None:
    for alias in stmt.names:
        if alias.asname is None:
            top = alias.name.split(".")[0]
            bindings.imported[top] = ImportSource(top, None)
        else:
            # Only ``import x as x`` is the explicit re-export idiom; ``import a.b as b`` is a plain import.
            bindings.imported[alias.asname] = ImportSource(alias.name, None, alias.asname == alias.name)
        bindings.local.discard(alias.asname or alias.name.split(".")[0])


def _bind_import_from(stmt: ast.ImportFrom, module: SourceModule, bindings: Bindings) -> None:
    source_module = _resolve_relative(module, stmt.level, stmt.module) if stmt.level else (stmt.module or "")
    if source_module == "__future__":
        return
    for alias in stmt.names:
        if alias.name == "*":
            bindings.star_sources.append(source_module)
            continue
        bound = alias.asname or alias.name
        bindings.imported[bound] = ImportSource(source_module, alias.name, alias.asname == alias.name)
        bindings.local.discard(bound)


def _update_all(stmt: ast.stmt, bindings: Bindings) -> bool:
    """Record ``__all__`` assignments and mutations; return True when ``stmt`` was one."""
    if (
        isinstance(stmt, ast.Assign)
        and any(isinstance(target, ast.Name) and target.id == "__all__" for target in stmt.targets)
    ) or (
        isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == "__all__"
    ):
        bindings.all_names, bindings.all_spliced = _all_parts(stmt.value)
        return True
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == "__all__":
        names, spliced = _all_parts(stmt.value)
        bindings.all_names = [*(bindings.all_names or []), *names]
        bindings.all_spliced = [*bindings.all_spliced, *spliced]
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "__all__"
        ):
            return False
        arguments = stmt.value.args
        added: list[str] = []
        if func.attr == "extend" and arguments:
            added, spliced = _all_parts(arguments[0])
            bindings.all_spliced = [*bindings.all_spliced, *spliced]
        elif func.attr == "append" and arguments:
            added = _literal_strings(ast.List(elts=[arguments[0]]))
        bindings.all_names = [*(bindings.all_names or []), *added]
        return True
    return False


def _bind_local(names: Iterable[str], bindings: Bindings) -> None:
    for name in names:
        bindings.local.add(name)
        bindings.imported.pop(name, None)


_BINDINGS_CACHE: dict[tuple[str, Path], tuple[ast.Module, ast.Module | None, Bindings]] = {}


def _bind_stub(module: SourceModule, stub: ast.Module, bindings: Bindings) -> None:
    """A stub's imports are the package's exports: ``attach_stub`` turns them into ``__all__`` at run time and
    type checkers read them as re-exports. Its other statements (``__version__: str``) export nothing. A
    literal ``__all__`` the ``__init__.py`` has besides is kept, so neither list hides the other's names."""
    exported: list[str] = []
    for stmt in top_level_statements(stub.body):
        if isinstance(stmt, ast.Import):
            _bind_import(stmt, bindings)
            exported += [alias.asname or alias.name.split(".")[0] for alias in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            _bind_import_from(stmt, module, bindings)
            exported += [alias.asname or alias.name for alias in stmt.names if alias.name != "*"]
    bindings.stub_names = exported
    bindings.all_names = [*(bindings.all_names or []), *exported]


def module_bindings(module: SourceModule) -> Bindings:
    """The names ``module`` binds at top level, split into defined here and imported."""
    cached = _BINDINGS_CACHE.get((module.name, module.path))
    if cached is not None and cached[0] is module.tree and cached[1] is module.stub:
        return cached[2]
    bindings = Bindings()
    for stmt in top_level_statements(module.tree.body):
        if _update_all(stmt, bindings):
            continue
        if isinstance(stmt, ast.Import):
            _bind_import(stmt, bindings)
        elif isinstance(stmt, ast.ImportFrom):
            _bind_import_from(stmt, module, bindings)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            _bind_local([stmt.name], bindings)
            if stmt.name == "__getattr__":
                bindings.has_getattr = True
        elif isinstance(stmt, ast.Assign):
            names = [name for target in stmt.targets for name in _target_names(target)]
            alias = _alias_source(stmt.value, bindings)
            if alias is not None and len(names) == 1:
                bindings.imported[names[0]] = alias
                bindings.local.discard(names[0])
            else:
                _bind_local(names, bindings)
        # An annotated assignment (``JSON: TypeAlias = Any``) declares a name of the module's own.
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
            _bind_local(_target_names(stmt.target), bindings)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                if item.optional_vars is not None:
                    _bind_local(_target_names(item.optional_vars), bindings)
    if module.stub is not None:
        _bind_stub(module, module.stub, bindings)
    _BINDINGS_CACHE[(module.name, module.path)] = (module.tree, module.stub, bindings)
    return bindings


@dataclass(frozen=True)
class DeclaredAll:
    """The names a module's ``__all__`` holds; ``unresolved`` are the ``m`` of spliced ``m.__all__`` entries
    that are not a checked module with a literal ``__all__`` (their names cannot be known)."""

    names: list[str]
    unresolved: list[str]


def _spliced_module(sources: dict[str, SourceModule], bindings: Bindings, name: str) -> str | None:
    source = bindings.imported.get(name)
    if source is None:
        return None
    if source.attribute is None:
        return source.module
    submodule = f"{source.module}.{source.attribute}"
    return submodule if submodule in sources else None


def declared_all(
    sources: dict[str, SourceModule], module: SourceModule, _seen: frozenset[str] = frozenset()
) -> DeclaredAll | None:
    """``module.__all__`` as written, each ``*m.__all__`` replaced by the names of ``m``'s own ``__all__``
    (followed through the checked modules); None when the module has no ``__all__``."""
    bindings = module_bindings(module)
    if bindings.all_names is None:
        return None
    names = list(bindings.all_names)
    unresolved: list[str] = []
    for spliced in bindings.all_spliced:
        target = _spliced_module(sources, bindings, spliced)
        nested = None
        if target is not None and target in sources and target not in _seen:
            nested = declared_all(sources, sources[target], _seen | {module.name})
        if nested is None:
            unresolved.append(spliced)
            continue
        names += nested.names
        unresolved += nested.unresolved
    return DeclaredAll(names, unresolved)


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def resolve_home(
    sources: dict[str, SourceModule], module: str, name: str, _seen: frozenset[tuple[str, str]] = frozenset()
) -> str | None:
    """The module where ``module.name`` is really defined, following imports through the checked packages.

    Names that leave the checked packages resolve to the external module they come from. Returns None when the
    name cannot be found.
    """
    if (module, name) in _seen or module not in sources:
        return None
    seen = _seen | {(module, name)}
    bindings = module_bindings(sources[module])
    if name in bindings.local:
        return module
    source = bindings.imported.get(name)
    if source is None:
        for star in bindings.star_sources:
            home = resolve_home(sources, star, name, seen)
            if home is not None:
                return home
        if f"{module}.{name}" in sources:
            return f"{module}.{name}"
        return None
    if source.attribute is None:
        return source.module
    submodule = f"{source.module}.{source.attribute}"
    if submodule in sources:
        return submodule
    if source.module in sources:
        return resolve_home(sources, source.module, source.attribute, seen) or source.module
    return source.module
