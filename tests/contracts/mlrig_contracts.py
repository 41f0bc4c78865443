"""Custom import-linter contract types that keep mlrig DRY.

Registered in ``.importlinter`` through ``contract_types``:

- ``no_facades`` (:class:`NoFacadesContract`): a module whose public names are all imported from elsewhere
  (a re-export shim) breaks it. A package ``__init__`` re-exporting its own package's submodules is the one
  allowed form; an ``__init__`` exporting a name from outside its own package (a parent package's module, an
  external library) breaks it too (names of another root package are ``no_cross_package_reexports``' job).
- ``no_cross_package_reexports`` (:class:`NoCrossPackageReexportsContract`): a module of root package ``X``
  must not export (``__all__``, a package's ``__init__.pyi``, ``from m import a as a`` or ``from m import *``)
  a name whose home is root package ``Y``.
- ``no_duplicate_definitions`` (:class:`NoDuplicateDefinitionsContract`): functions and classes (top level,
  class members and those defined inside functions) in different modules whose bodies are identical after
  normalising identifiers, strings, numbers and docstrings break it; every location is reported as
  ``module:qualname:line``. The identifiers normalised are those the definition introduces (its name,
  parameters, locals, members, ``self.x`` state); names it uses from outside (``json`` vs ``yaml``, ``str``
  vs ``Path``) are kept, so only copies match. Bodies below a size (``min_statements`` logic statements,
  default 5, or ``min_nodes`` AST nodes, default 120; field declarations, ``pass`` and docstrings do not
  count) are ignored.

A package with an ``__init__.pyi`` beside its ``__init__.py`` (the mlrig idiom: ``lazy_loader.attach_stub``
reads the stub at run time) exports exactly the names its stub imports, each with the home its
``from .module import a as a`` names; a stub importing from outside its package is a re-export like one in
``__init__.py``. An ``__all__`` that splices in modules' own lists (``__all__ = [*runs.__all__, ...]``) is
read as the names of those modules' literal ``__all__``; a list spliced from anything else breaks
``no_facades``, since its names cannot be checked.

The contracts read source files and never import the checked packages (see ``source_index``); the
duplicate detection lives in ``duplicates``.
"""

from __future__ import annotations

import abc
from typing import Any

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

from tests.contracts.duplicates import find_duplicates
from tests.contracts.source_index import (
    Bindings,
    DeclaredAll,
    ImportSource,
    SourceModule,
    declared_all,
    is_within,
    load_sources,
    module_bindings,
    resolve_home,
    root_of,
)


class _SourceContract(Contract):
    """Base for contracts that read the source of the root packages."""

    packages = fields.ListField(subfield=fields.StringField(), required=False)

    def _roots(self) -> list[str]:
        configured: list[str] | None = self._option("packages")
        roots = configured or list(self.session_options.get("root_packages", []))
        if not roots:
            raise ValueError(f"Contract {self.name!r} has no packages to check.")
        return [str(root) for root in roots]

    def _option(self, name: str) -> Any:
        # Field values are set per instance by Contract._populate_fields; the class attribute is the Field.
        return vars(self)[name]

    @abc.abstractmethod
    def _violations(self, sources: dict[str, SourceModule], roots: list[str]) -> list[str]:
        """One message per violation found in ``sources``."""

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots = self._roots()
        sources, warnings = load_sources(graph, roots)
        output.verbose_print(verbose, f"{self.name}: read {len(sources)} modules under {', '.join(roots)}.")
        violations = self._violations(sources, roots)
        return ContractCheck(kept=not violations, warnings=warnings, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(f"- {violation}", bold=False)
            output.new_line()


def _public_names(bindings: Bindings, declared: DeclaredAll | None) -> list[str]:
    if declared is not None:
        return list(dict.fromkeys(declared.names))
    names = sorted(name for name in bindings.local | set(bindings.imported) if not name.startswith("_"))
    return names + (["*"] if bindings.star_sources else [])


def _reexport_source(bindings: Bindings, name: str) -> str | None:
    """Where a public name is re-exported from, or None when the module defines it itself."""
    if name == "*":
        return ", ".join(f"{star}.*" for star in bindings.star_sources)
    if name in bindings.local:
        return None
    source = bindings.imported.get(name)
    if source is not None:
        if source.attribute in (None, name):
            return source.module
        return f"{source.module}, as {source.attribute}"
    if bindings.star_sources:
        return " or ".join(f"{star}.*" for star in bindings.star_sources)
    if bindings.has_getattr:
        return "module __getattr__"
    return None


def _defined(sources: dict[str, SourceModule], source: ImportSource) -> bool:
    """False when ``source`` is a module of the checked packages that binds no such name."""
    if source.attribute is None or source.module not in sources:
        return True
    if f"{source.module}.{source.attribute}" in sources:
        return True
    return resolve_home(sources, source.module, source.attribute) is not None


class NoFacadesContract(_SourceContract):
    """No module may consist only of re-exports; a package ``__init__`` may re-export its own package only.

    Options: ``packages`` (optional; defaults to the session's ``root_packages``).
    """

    def _violations(self, sources: dict[str, SourceModule], roots: list[str]) -> list[str]:
        violations: list[str] = []
        for name, module in sources.items():
            bindings = module_bindings(module)
            declared = declared_all(sources, module)
            violations.extend(
                f"{name} ({module.path}) builds __all__ from {spliced}.__all__, which is not a module of the "
                "checked packages with a literal __all__: its names cannot be checked."
                for spliced in (declared.unresolved if declared is not None else [])
            )
            if module.is_package:
                violations.extend(self._package_violations(sources, module, declared, roots))
                continue
            if name.rpartition(".")[2] == "__main__":
                continue
            public = _public_names(bindings, declared)
            origins = [(public_name, _reexport_source(bindings, public_name)) for public_name in public]
            if public and all(origin is not None for _, origin in origins):
                shown = ", ".join(
                    str(origin) if public_name == "*" else f"{public_name} (from {origin})"
                    for public_name, origin in origins
                )
                violations.append(
                    f"{name} is a facade module ({module.path}): every public name is imported from "
                    f"elsewhere: {shown}. Import from the defining package's __init__ instead."
                )
        return violations

    @staticmethod
    def _package_violations(
        sources: dict[str, SourceModule], module: SourceModule, declared: DeclaredAll | None, roots: list[str]
    ) -> list[str]:
        bindings = module_bindings(module)
        stub_names = set(bindings.stub_names or [])

        def listed(exported_name: str) -> str:
            # Where the name is listed (the stub or __all__), so a report points at the file to fix.
            if exported_name in stub_names:
                return f"(package __init__, {module.stub_path}) lists {exported_name} in its stub"
            return f"(package __init__, {module.path}) lists {exported_name} in __all__"

        def foreign(source_module: str) -> bool:
            # Outside this package but inside the same root package (or an external library). Names of other
            # root packages are left to no_cross_package_reexports.
            if is_within(source_module, module.name):
                return False
            return root_of(source_module, roots) in (None, module.root)

        # Exports of this __init__: its __all__ or, without one, the explicit ``import a as a`` idiom and the
        # public names it imports from the checked packages.
        if declared is not None:
            exported = list(dict.fromkeys(declared.names))
        else:
            exported = [
                name
                for name, source in bindings.imported.items()
                if source.explicit_reexport
                or (not name.startswith("_") and root_of(source.module, roots) is not None)
            ]
        violations: list[str] = []
        for exported_name in exported:
            if exported_name in bindings.local:
                continue
            source = bindings.imported.get(exported_name)
            # A name that arrives through ``from .module import *`` is followed to the module defining it.
            origin = (
                source.describe() if source is not None else resolve_home(sources, module.name, exported_name)
            )
            # A stub's import runs only when the name is first used: check here that its module binds it.
            stub_source_undefined = (
                exported_name in stub_names and source is not None and not _defined(sources, source)
            )
            if origin is None or stub_source_undefined:
                violations.append(
                    f"{module.name} {listed(exported_name)}, but neither it nor the modules it imports "
                    "define that name."
                )
            elif foreign(source.module if source is not None else origin):
                stub = f" (listed in {module.stub_path})" if exported_name in stub_names else ""
                violations.append(
                    f"{module.name} (package __init__, {module.path}) re-exports {exported_name} from "
                    f"{origin}{stub}, which is outside its package. Only its own submodules may be "
                    "re-exported."
                )
        for star in bindings.star_sources:
            if foreign(star):
                violations.append(
                    f"{module.name} (package __init__, {module.path}) re-exports everything from {star} "
                    f"(from {star} import *), which is outside its package."
                )
        return violations


class NoCrossPackageReexportsContract(_SourceContract):
    """No module of root package ``X`` may export a name whose home is another root package ``Y``.

    Options: ``packages`` (optional; defaults to the session's ``root_packages``).
    """

    def _violations(self, sources: dict[str, SourceModule], roots: list[str]) -> list[str]:
        violations: list[str] = []
        for name, module in sources.items():
            bindings = module_bindings(module)
            own_root = module.root
            exported: dict[str, str] = {}
            declared = declared_all(sources, module)
            stub_names = set(bindings.stub_names or [])
            for exported_name in declared.names if declared is not None else []:
                listed = (
                    "lists it in its __init__.pyi" if exported_name in stub_names else "lists it in __all__"
                )
                exported.setdefault(exported_name, listed)
            for bound, source in bindings.imported.items():
                if source.explicit_reexport:
                    exported.setdefault(bound, f"re-exports it with 'import ... as {bound}'")
            for exported_name, how in exported.items():
                if exported_name in bindings.local:
                    continue
                home = resolve_home(sources, name, exported_name)
                home_root = root_of(home, roots) if home is not None else None
                if home is None or home_root is None or home_root == own_root:
                    continue
                violations.append(
                    f"{name} exports {exported_name!r} ({how}), but its home is {home} in package "
                    f"{home_root}. Import it from {home_root} where it is needed instead of re-exporting it."
                )
            for star in bindings.star_sources:
                star_root = root_of(star, roots)
                if star_root is not None and star_root != own_root:
                    violations.append(
                        f"{name} re-exports every public name of {star} (from {star} import *), which "
                        f"belongs to package {star_root}."
                    )
        return violations


class NoDuplicateDefinitionsContract(_SourceContract):
    """No two modules may define functions or classes whose normalised bodies are identical.

    Options: ``packages`` (optional; defaults to the session's ``root_packages``), ``min_statements``
    (default 5) and ``min_nodes`` (default 120): a definition is compared when it reaches either size;
    ``ignore``: optional ``module:qualname`` entries to leave out.
    """

    min_statements = fields.IntegerField(default=5, minimum=1)
    min_nodes = fields.IntegerField(default=120, minimum=1)
    ignore = fields.ListField(subfield=fields.StringField(), required=False)

    def _violations(self, sources: dict[str, SourceModule], roots: list[str]) -> list[str]:
        groups = find_duplicates(
            sources,
            min_statements=int(self._option("min_statements")),
            min_nodes=int(self._option("min_nodes")),
            ignore=self._option("ignore") or [],
        )
        violations: list[str] = []
        for group in groups:
            first, *others = group
            violations.append(
                f"duplicate {first.kind}: {first.location} has the same normalised body as "
                + ", ".join(other.location for other in others)
                + ". Keep one definition in its home package and import it."
            )
        return violations
