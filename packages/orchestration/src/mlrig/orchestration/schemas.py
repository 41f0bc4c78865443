"""The declared keys of every config file mlrig reads, and the validator that holds the files to them.

One schema per file, written as nested mappings of key -> spec. A key mlrig reads is :data:`OK` (or a
:class:`Leaf` with its allowed values); a subtree handed whole to the user's code (``train.yaml``'s
``training``, a data config) is :data:`ANY`; a key the reference project has but mlrig deliberately does not
implement is :func:`unimplemented` and warned about by name; any other key is unknown and warned about too.
Every problem reads ``<file>:<line>: <key>: <problem>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a config file; ``str()`` is ``<file>:<line>: <key>: <problem>``."""

    file: Path
    line: int | None
    key: str
    problem: str
    level: Literal["warning", "error"] = "warning"

    def __str__(self) -> str:
        line = self.line if self.line is not None else "?"
        return f"{self.file}:{line}: {self.key or '<top>'}: {self.problem}"


@dataclass(frozen=True)
class Leaf:
    """A key mlrig reads; ``choices`` (when given) are its allowed values, ``unimplemented_values`` values
    that parse but that mlrig does not implement (value -> why); ``kind`` (``int``, ``number``, ``bool``)
    the YAML type its value must have, ``minimum`` the smallest number allowed."""

    choices: tuple[str, ...] | None = None
    unimplemented_values: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["int", "number", "bool"] | None = None
    minimum: float | None = None


@dataclass(frozen=True)
class Free:
    """A subtree mlrig accepts whole (handed to the user's function, or checked by its own loader)."""


@dataclass(frozen=True)
class Unimplemented:
    """A key mlrig knows (the reference has it) but does not implement; ``reason`` says what to do instead."""

    reason: str


@dataclass(frozen=True)
class Each:
    """A mapping of user-chosen names (storage envs, stage names), each following ``item``."""

    item: Spec


@dataclass(frozen=True)
class SearchSpace:
    """An HPO ``search_space``: each entry checked as Optuna will read it."""


SEARCH_SPACE = SearchSpace()


Spec = Leaf | Free | Unimplemented | Each | SearchSpace | Mapping[str, "Spec"]

OK = Leaf()
ANY = Free()
_KIND_NAMES = {"int": "an integer", "number": "a number", "bool": "true or false"}


def _number(node: Node) -> float | None:
    """The number a scalar node holds, as mlrig reads it (``float()``; ``1e-5`` is a string to YAML 1.1)."""
    tag = node.tag.rsplit(":", 1)[-1]
    if not isinstance(node, ScalarNode) or tag not in ("int", "float", "str"):
        return None
    try:
        return float(yaml.safe_load(str(node.value))) if tag != "str" else float(str(node.value))
    except (TypeError, ValueError):
        return None


def _kind_problem(node: Node, spec: Leaf) -> str | None:
    """Why the scalar ``node`` breaks ``spec.kind``/``spec.minimum`` (None when it does not)."""
    if spec.kind is None:
        return None
    tag = node.tag.rsplit(":", 1)[-1]
    number = _number(node)
    ok = tag == spec.kind if spec.kind != "number" else number is not None
    if not ok:
        return f"must be {_KIND_NAMES[spec.kind]} (got {str(node.value)!r})"
    if spec.minimum is not None and number is not None and number < spec.minimum:
        return f"must be at least {spec.minimum:g} (got {node.value})"
    return None


def _search_space_problems(node: MappingNode) -> list[tuple[Node, str, str]]:
    """(node, key, problem) for each search-space entry Optuna would refuse: unknown type, missing or
    non-numeric bounds, ``min > max``, a log scale with ``min <= 0``, an empty choice."""
    found: list[tuple[Node, str, str]] = []
    for key_node, entry in node.value:
        name = f"search_space.{key_node.value}"
        if not isinstance(entry, MappingNode):
            found.append((key_node, name, "must be a mapping with a 'type'"))
            continue
        fields = {str(k.value): (k, v) for k, v in entry.value}
        kind = str(fields["type"][1].value) if "type" in fields else None
        if kind == "choice":
            values = fields.get("values")
            if values is None or not isinstance(values[1], SequenceNode) or not values[1].value:
                found.append((key_node, f"{name}.values", "must be a non-empty list"))
        elif kind in ("uniform", "loguniform", "int", "randint", "quniform"):
            bounds: dict[str, float] = {}
            for bound in ("min", "max"):
                item = fields.get(bound)
                number = _number(item[1]) if item is not None else None
                if item is None or number is None:
                    got = "missing" if item is None else f"got {item[1].value!r}"
                    found.append(
                        (item[0] if item else key_node, f"{name}.{bound}", f"must be a number ({got})")
                    )
                else:
                    bounds[bound] = number
            if len(bounds) == 2 and bounds["min"] > bounds["max"]:
                found.append((fields["min"][0], f"{name}.min", f"must not exceed max ({bounds['max']:g})"))
            elif kind == "loguniform" and bounds.get("min", 1.0) <= 0:
                found.append((fields["min"][0], f"{name}.min", "must be > 0 on a log scale"))
        else:
            where = fields["type"][0] if "type" in fields else key_node
            found.append((where, f"{name}.type", f"{kind!r} is not one of choice, uniform, loguniform, int"))
    return found


def unimplemented(reason: str) -> Unimplemented:
    """A key mlrig deliberately does not implement (warned about by name); ``reason`` says why."""
    return Unimplemented(reason)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: Node) -> str | None:
    if isinstance(node, ScalarNode):
        return str(node.value)
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag.endswith(":null")


class _Walker:
    def __init__(self, file: Path) -> None:
        self.file = file
        self.issues: list[ConfigIssue] = []
        self.merged: set[int] = set()

    def add(self, node: Node, key: str, problem: str, level: Literal["warning", "error"] = "warning") -> None:
        self.issues.append(ConfigIssue(self.file, _line(node), key, problem, level))

    def mapping(self, node: MappingNode, spec: Mapping[str, Spec] | Each, prefix: str) -> None:
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if name == "<<":  # a YAML merge key: the merged mapping(s) hold keys of this same mapping
                merged = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for item in merged:
                    # An anchored block merged in several places is one text: report its keys once.
                    if isinstance(item, MappingNode) and id(item) not in self.merged:
                        self.merged.add(id(item))
                        self.mapping(item, spec, prefix)
                continue
            key = f"{prefix}{name}"
            child = spec.item if isinstance(spec, Each) else spec.get(name, spec.get("*"))
            if child is None:
                self.add(key_node, key, "unknown key (not read by mlrig; a typo?)")
            else:
                self.value(key_node, value_node, child, key)

    def value(self, key_node: Node, node: Node, spec: Spec, key: str) -> None:
        if isinstance(spec, Free):
            return
        if isinstance(spec, SearchSpace):
            if isinstance(node, MappingNode):
                for where, name, problem in _search_space_problems(node):
                    self.add(where, name, problem, "error")
            elif not _is_null(node):
                self.add(node, key, "must be a mapping", "error")
            return
        if isinstance(spec, Unimplemented):
            self.add(key_node, key, f"not implemented by mlrig, ignored: {spec.reason}")
            return
        if isinstance(spec, Leaf):
            value = _scalar(node)
            if value is None or _is_null(node):
                return
            if value in spec.unimplemented_values:
                self.add(
                    node,
                    key,
                    f"value {value!r} is not implemented by mlrig: {spec.unimplemented_values[value]}",
                )
            elif spec.choices is not None and value not in spec.choices:
                self.add(node, key, f"{value!r} is not one of {', '.join(spec.choices)}", "error")
            elif (wrong := _kind_problem(node, spec)) is not None:
                self.add(node, key, wrong, "error")
            return
        if isinstance(node, MappingNode):
            self.mapping(node, spec, f"{key}.")
        elif not _is_null(node):
            self.add(node, key, "must be a mapping", "error")


def validate_config_file(path: Path, spec: Mapping[str, Spec]) -> list[ConfigIssue]:
    """The issues of the YAML file ``path`` against ``spec`` (none when the file does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [ConfigIssue(path, None, "", f"cannot be read: {type(exc).__name__}: {reason}", "error")]
    return validate_config_text(text, path, spec)


def validate_config_text(text: str, path: Path, spec: Mapping[str, Spec]) -> list[ConfigIssue]:
    """The issues of the YAML ``text`` (read from, or standing for, ``path``) against ``spec``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return [ConfigIssue(path, line, "", f"not valid YAML: {exc.problem}", "error")]
    walker = _Walker(path)
    if root is None or _is_null(root):
        return []
    if not isinstance(root, MappingNode):
        walker.add(root, "", "the top level must be a mapping", "error")
    else:
        walker.mapping(root, spec, "")
    return walker.issues


def key_line(path: Path, key: str) -> int | None:
    """The line of the dotted ``key`` in the YAML file ``path``, when it is there."""
    try:
        node: Node | None = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for part in key.split("."):
        if not isinstance(node, MappingNode):
            return line
        for key_node, value_node in node.value:
            if str(key_node.value) == part:
                line, node = _line(key_node), value_node
                break
        else:
            return line
    return line
