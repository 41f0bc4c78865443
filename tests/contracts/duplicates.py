"""Find functions and classes whose bodies are the same once normalised (the duplicate-definitions rule)."""

from __future__ import annotations

import ast
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.contracts.source_index import SourceModule, top_level_statements

_DEFINITION = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
_NON_IDENTIFIER_STRING_FIELDS = frozenset({"kind", "type_comment", "tag"})


@dataclass(frozen=True)
class Definition:
    """A function or class found in a module, with the fingerprint of its normalised body."""

    module: str
    qualname: str
    kind: str
    line: int
    depth: int
    parent: str | None
    fingerprint: str
    statements: int
    nodes: int

    @property
    def location(self) -> str:
        return f"{self.module}:{self.qualname}:{self.line}"


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


_SELF_NAMES = frozenset({"self", "cls", "mcs"})


def _own_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    """Identifiers a definition introduces itself: its name, parameters, locals, members and ``self`` state.

    Only these are normalised: a renamed copy still matches, while code that calls different globals (``json``
    against ``yaml``, ``str`` against ``Path``) does not.
    """
    own = {node.name}
    for child in ast.walk(node):
        if isinstance(child, _DEFINITION):
            own.add(child.name)
        elif isinstance(child, ast.arg):
            own.add(child.arg)
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store | ast.Del):
            own.add(child.id)
        elif (
            isinstance(child, ast.Attribute)
            and isinstance(child.ctx, ast.Store | ast.Del)
            and isinstance(child.value, ast.Name)
            and child.value.id in _SELF_NAMES
        ):
            own.add(child.attr)
        elif isinstance(child, ast.alias) and child.asname and child.asname != child.name:
            own.add(child.asname)
        elif isinstance(child, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and child.name:
            own.add(child.name)
    return own


def _declarations(node: ast.AST) -> set[int]:
    """Ids of ``name: type [= default]`` field declarations in class bodies: data, not logic."""
    return {
        id(stmt)
        for child in ast.walk(node)
        if isinstance(child, ast.ClassDef)
        for stmt in child.body
        if isinstance(stmt, ast.AnnAssign)
    }


class _Normaliser:
    """Serialise a definition with its own identifiers alpha-renamed, literals reduced to their type and
    docstrings dropped; count its logic statements and AST nodes on the way."""

    def __init__(self, root: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.root = root
        self.own = _own_names(root)
        self.declarations = _declarations(root)
        self.names: dict[str, int] = {}
        self.tokens: list[str] = []
        self.statements = 0
        self.nodes = 0

    def _identifier(self, value: str) -> str:
        if value not in self.own:
            return value
        return f"${self.names.setdefault(value, len(self.names))}"

    @staticmethod
    def _constant(value: object) -> str:
        if value is None or value is Ellipsis or isinstance(value, bool):
            return repr(value)
        return type(value).__name__

    def _is_logic(self, node: ast.stmt) -> bool:
        if node is self.root or id(node) in self.declarations or isinstance(node, ast.Pass):
            return False
        return not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))

    def visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr_context):
            return
        self.nodes += 1
        if isinstance(node, ast.stmt) and self._is_logic(node):
            self.statements += 1
        self.tokens.append(type(node).__name__)
        self.tokens.append("(")
        if isinstance(node, ast.JoinedStr):
            # An f-string is a string constant around its placeholders: only the placeholders count.
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    self.visit(part)
            self.tokens.append(")")
            return
        for field_name, value in ast.iter_fields(node):
            if field_name in _NON_IDENTIFIER_STRING_FIELDS:
                continue
            if isinstance(node, ast.Constant) and field_name == "value":
                self.tokens.append(self._constant(value))
            elif isinstance(value, list):
                items = value
                if (
                    field_name == "body"
                    and isinstance(node, _DEFINITION)
                    and items
                    and _is_docstring(items[0])
                ):
                    items = items[1:]
                self.tokens.append("[")
                for item in items:
                    self._visit_value(item)
                self.tokens.append("]")
            else:
                self._visit_value(value)
        self.tokens.append(")")

    def _visit_value(self, value: Any) -> None:
        if isinstance(value, ast.AST):
            self.visit(value)
        elif isinstance(value, str):
            self.tokens.append(self._identifier(value))
        else:
            self.tokens.append(repr(value))


def _fingerprint(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> tuple[str, int, int]:
    normaliser = _Normaliser(node)
    normaliser.visit(node)
    digest = hashlib.sha256(" ".join(normaliser.tokens).encode()).hexdigest()
    return digest, normaliser.statements, normaliser.nodes


def _inner_definitions(node: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    """Definitions inside a function's body (under any ``if``/``for``/``with``/``try``), not nested deeper."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _DEFINITION):
            yield child
        else:
            yield from _inner_definitions(child)


def module_definitions(module: SourceModule) -> list[Definition]:
    """Top-level functions and classes of ``module`` and, recursively, the members of its classes and the
    functions and classes defined inside its functions (qualname ``outer.<locals>.inner``, as Python names
    them): a copy of a helper is a copy wherever it is defined."""
    found: list[Definition] = []

    def collect(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, prefix: str, depth: int) -> None:
        qualname = f"{prefix}.{node.name}" if prefix else node.name
        digest, statements, nodes = _fingerprint(node)
        found.append(
            Definition(
                module=module.name,
                qualname=qualname,
                kind="class" if isinstance(node, ast.ClassDef) else "function",
                line=node.lineno,
                depth=depth,
                parent=prefix or None,
                fingerprint=digest,
                statements=statements,
                nodes=nodes,
            )
        )
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, _DEFINITION):
                    collect(member, qualname, depth + 1)
        else:
            for inner in _inner_definitions(node):
                collect(inner, f"{qualname}.<locals>", depth + 1)

    for stmt in top_level_statements(module.tree.body):
        if isinstance(stmt, _DEFINITION):
            collect(stmt, "", 0)
    return found


def find_duplicates(
    sources: dict[str, SourceModule],
    *,
    min_statements: int,
    min_nodes: int,
    ignore: Iterable[str] = (),
) -> list[list[Definition]]:
    """Groups of definitions from at least two modules with identical normalised bodies.

    A definition takes part when it has at least ``min_statements`` logic statements or ``min_nodes`` AST
    nodes. Members of a class that is itself reported are not reported again.
    """
    ignored = set(ignore)
    groups: dict[str, list[Definition]] = defaultdict(list)
    for module in sources.values():
        for definition in module_definitions(module):
            if f"{definition.module}:{definition.qualname}" in ignored:
                continue
            if definition.statements >= min_statements or definition.nodes >= min_nodes:
                groups[definition.fingerprint].append(definition)
    reported: set[tuple[str, str]] = set()
    duplicates: list[list[Definition]] = []
    for members in sorted(groups.values(), key=lambda group: min(member.depth for member in group)):
        remaining = [member for member in members if not _inside_reported(member, reported)]
        if len({member.module for member in remaining}) < 2:
            continue
        remaining.sort(key=lambda member: (member.module, member.line))
        duplicates.append(remaining)
        reported.update((member.module, member.qualname) for member in remaining)
    duplicates.sort(key=lambda group: (group[0].module, group[0].line))
    return duplicates


def _inside_reported(definition: Definition, reported: set[tuple[str, str]]) -> bool:
    parent = definition.parent
    while parent:
        if (definition.module, parent) in reported:
            return True
        parent = parent.rpartition(".")[0]
    return False
