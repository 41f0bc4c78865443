"""Making one safe path component out of any value, and checking a finished path."""

# os.path on plain strings throughout: these run for every path built and pathlib's parsing dominated.
# ruff: noqa: PTH113, PTH118, PTH206

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from mlrig.paths.errors import PathScopeError, PathsError

# Separators, NUL and control characters are never allowed inside a component, whatever the policy says.
_UNSAFE_CHARS = "/\\" + "".join(map(chr, range(0x20))) + "\x7f"
_ALWAYS_UNSAFE = re.compile(f"[{re.escape(_UNSAFE_CHARS)}]")


@dataclass(frozen=True)
class NormalizePolicy:
    """``normalize_paths`` from paths.yaml: replacements (in order), lowercase, length limits."""

    replace: tuple[tuple[str, str], ...] = ()
    forbidden_chars: str = ""
    lowercase: bool = False
    max_component_length: int = 255
    max_path_length: int | None = None
    # The whole policy as one str.translate table, when applying it at once equals applying it step by step.
    _table: dict[int, str] | None = field(init=False, repr=False, compare=False, default=None)
    _keeps_alnum: bool = field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        table = _one_pass_table(self)
        object.__setattr__(self, "_table", table)
        keeps_alnum = table is not None and not any(chr(c).isascii() and chr(c).isalnum() for c in table)
        object.__setattr__(self, "_keeps_alnum", keeps_alnum)


def _one_pass_table(pol: NormalizePolicy) -> dict[int, str] | None:
    """``pol``'s replacements, forbidden and unsafe characters as one translation table for ASCII input, or
    ``None`` when a step could act on what an earlier step produced (multi-character keys, replacement text
    containing a character that is itself replaced, forbidden or unsafe, or non-ASCII replacement text)."""
    replace = [(old, new) for old, new in pol.replace if old]
    if any(len(old) != 1 for old, _ in replace):
        return None
    produced = "".join(new for _, new in replace)
    acted_on = {old for old, _ in replace} | set(pol.forbidden_chars) | set(_UNSAFE_CHARS)
    if not produced.isascii() or not acted_on.isdisjoint(produced):
        return None
    # Later steps only see what earlier ones left: the replacement map overrides the other two.
    table = dict.fromkeys(map(ord, _UNSAFE_CHARS + pol.forbidden_chars), "_")
    table.update((ord(old), new) for old, new in replace)
    return table


_DEFAULT_POLICY = NormalizePolicy()


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def normalize_component(value: object, policy: NormalizePolicy | None = None) -> str:
    """One safe path component from ``value`` under ``policy`` (paths.yaml ``normalize_paths``).

    The policy's replacements, ``forbidden_chars``, lowercase and ``max_component_length`` (in UTF-8 bytes)
    apply first; then separators, NUL and control characters always become ``_``, and an empty result or one
    made only of dots (``.``, ``..``) becomes underscores, so the result never leaves its parent directory.
    """
    text = "" if value is None else str(value)
    pol = policy or _DEFAULT_POLICY
    table = pol._table
    if table is None or not text.isascii():
        return _normalize_stepwise(text, pol)
    # ASCII in, ASCII out: lowercasing can't make a character unsafe, and characters are bytes. Hashes and
    # plain names are letters and digits, which the table usually leaves alone.
    if not (text.isalnum() and pol._keeps_alnum):
        text = text.translate(table)
    if pol.lowercase:
        text = text.lower()
    limit = max(1, pol.max_component_length)
    if len(text) > limit:
        text = text[:limit]
    if text.strip(".") == "":
        text = "_" * max(1, min(len(text), pol.max_component_length))
    return text


def _normalize_stepwise(text: str, pol: NormalizePolicy) -> str:
    for old, new in pol.replace:
        if old:
            text = text.replace(old, new)
    for char in pol.forbidden_chars:
        text = text.replace(char, "_")
    if pol.lowercase:
        text = text.lower()
    text = _ALWAYS_UNSAFE.sub("_", text)
    text = _truncate_utf8(text, max(1, pol.max_component_length))
    if text.strip(".") == "":
        text = "_" * max(1, min(len(text), pol.max_component_length))
    return text


def is_within(path: str, root: str, *, strict: bool = False) -> bool:
    """Whether the normalised absolute path string ``path`` is ``root`` or below it, comparing whole
    components (``/data2`` is not within ``/data``); ``strict=True`` excludes ``root`` itself."""
    if path == root:
        return not strict
    return path.startswith(root.rstrip(os.sep) + os.sep)


_BAD_PARTS = frozenset(("", ".", ".."))


def _check_resolved(path: str, root: str) -> None:
    """``path`` leads through a symlink: its real location must be strictly inside ``root``'s and not a
    file."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if not is_within(real, real_root, strict=True):
        raise PathScopeError(f"path {path!r} resolves to {real!r}, outside the root {real_root!r}")
    if os.path.isfile(real):
        raise PathsError(f"cannot use {path!r} as an output directory: it exists as a file")


def check_output_parts(root: str, parts: list[str], max_path_length: int | None) -> Path:
    """``root/parts...`` after checking it: ``parts`` are plain components (no ``..``), so only a symlink
    inside ``root`` can lead elsewhere. Each existing level below ``root`` is looked at (one ``lstat``) on
    every call: a symlink met is resolved and checked, a file in the way raises."""
    # Plain components joined with the separator: os.path.join would re-parse every one of them.
    path = os.sep.join((root.rstrip(os.sep), *parts))
    if not parts or not _BAD_PARTS.isdisjoint(parts):
        raise PathScopeError(f"path {path!r} is not strictly inside the root {root!r}")
    if max_path_length is not None and len(path) > max_path_length:
        raise PathsError(
            f"path {path!r} is {len(path)} characters long, "
            f"over normalize_paths.max_path_length={max_path_length}"
        )
    current = root.rstrip(os.sep)
    for part in parts:
        current += os.sep + part
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # nothing below a missing level exists
        if stat.S_ISLNK(mode):
            _check_resolved(path, root)
            break
        if not stat.S_ISDIR(mode):
            raise PathsError(f"cannot use {path!r} as an output directory: {current!r} exists as a file")
    return Path(path)


def validate_output_path(path: Path | str, *, root: Path | str, max_path_length: int | None = None) -> Path:
    """``path`` made absolute, after checking it is usable as an output directory under ``root``.

    Raises ``PathScopeError`` when the path (after ``..`` and symlink resolution) is not strictly inside
    ``root``, and ``PathsError`` when it is longer than ``max_path_length`` or exists as a file.
    """
    candidate = os.path.abspath(path)  # noqa: PTH100 - lexical; symlinks are checked below
    root_abs = os.path.abspath(root)  # noqa: PTH100
    if is_within(candidate, root_abs, strict=True) and ".." not in candidate.split(os.sep):
        return check_output_parts(
            root_abs, candidate[len(root_abs.rstrip(os.sep)) + 1 :].split(os.sep), max_path_length
        )
    real, real_root = os.path.realpath(candidate), os.path.realpath(root_abs)
    if not is_within(real, real_root, strict=True):
        raise PathScopeError(f"path {str(path)!r} resolves to {real!r}, outside the root {real_root!r}")
    return check_output_parts(
        real_root, real[len(real_root.rstrip(os.sep)) + 1 :].split(os.sep), max_path_length
    )
