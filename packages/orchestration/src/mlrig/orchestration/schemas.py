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

__all__ = ["ConfigIssue", "validate_config_file"]


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
    that parse but that mlrig does not implement (value -> why)."""

    choices: tuple[str, ...] | None = None
    unimplemented_values: Mapping[str, str] = field(default_factory=dict)


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


Spec = Leaf | Free | Unimplemented | Each | Mapping[str, "Spec"]

OK = Leaf()
ANY = Free()


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
