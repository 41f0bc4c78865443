"""Making one safe path component out of any value, and checking a finished path."""

# os.path on plain strings throughout: these run for every path built and pathlib's parsing dominated.
# ruff: noqa: PTH113, PTH118, PTH206

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from mlrig.paths.errors import PathScopeError, PathsError

__all__ = ["NormalizePolicy", "is_within", "normalize_component", "validate_output_path"]

# Separators and NUL are never allowed inside a component, whatever the policy says.
_ALWAYS_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NormalizePolicy:
    """``normalize_paths`` from paths.yaml: replacements (in order), lowercase, length limits."""

    replace: tuple[tuple[str, str], ...] = ()
    forbidden_chars: str = ""
    lowercase: bool = False
    max_component_length: int = 255
    max_path_length: int | None = None


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
    # Keyed by the policy's identity (hashing the policy costs more than the lookup saves); the entry keeps
    # the policy alive, so an id can't be reused while its entry exists.
    hit = _memo.get((text, id(pol)))
    if hit is not None and hit[0] is pol:
        return hit[1]
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    result = _normalize(text, pol)
    _memo[(text, id(pol))] = (pol, result)
    return result


_MEMO_SIZE = 8192
_memo: dict[tuple[str, int], tuple[NormalizePolicy, str]] = {}


def _normalize(text: str, pol: NormalizePolicy) -> str:
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


_real_roots: dict[str, tuple[float, str]] = {}
# A root's symlinks are re-resolved at most once per second (roots are checked on every path built).
_ROOT_TTL = 1.0


def _real_root(root: str) -> str:
    now = time.monotonic()
    hit = _real_roots.get(root)
    if hit is not None and now - hit[0] < _ROOT_TTL:
        return hit[1]
    real = os.path.realpath(root)
    _real_roots[root] = (now, real)
    return real


def is_within(path: str, root: str, *, strict: bool = False) -> bool:
    """Whether the normalised absolute path string ``path`` is ``root`` or below it, comparing whole
    components (``/data2`` is not within ``/data``); ``strict=True`` excludes ``root`` itself."""
    if path == root:
        return not strict
    return path.startswith(root.rstrip(os.sep) + os.sep)


_BAD_PARTS = frozenset(("", ".", ".."))
# Output path -> (checked at, max_path_length, Path): a finished path is re-checked against the file system at
# most once per ``_ROOT_TTL`` (like its root) -- a run asks for its directory many times.
_checked: dict[str, tuple[float, int | None, Path]] = {}
_CHECKED_SIZE = 4096


def check_output_parts(root: str, parts: list[str], max_path_length: int | None) -> Path:
    """``root/parts...`` after checking it: ``parts`` are plain components (no ``..``), so only a symlink
    inside ``root`` can lead elsewhere -- each existing component is lstat-ed once and symlinks resolved."""
    # Plain components joined with the separator: os.path.join would re-parse every one of them.
    path = os.sep.join((root.rstrip(os.sep), *parts))
    if not parts or not _BAD_PARTS.isdisjoint(parts):
        raise PathScopeError(f"path {path!r} is not strictly inside the root {root!r}")
    now = time.monotonic()
    hit = _checked.get(path)
    if hit is not None and now - hit[0] < _ROOT_TTL and hit[1] == max_path_length:
        return hit[2]
    if max_path_length is not None and len(path) > max_path_length:
        raise PathsError(
            f"path {path!r} is {len(path)} characters long, "
            f"over normalize_paths.max_path_length={max_path_length}"
        )
    real_root = _real_root(root)
    current = real_root
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # nothing below exists yet, so nothing below can be a symlink
        if stat.S_ISLNK(mode):
            real = os.path.realpath(os.path.join(current, *parts[i + 1 :]))
            if not is_within(real, real_root, strict=True):
                raise PathScopeError(f"path {path!r} resolves to {real!r}, outside the root {real_root!r}")
            if os.path.isfile(real):
                raise PathsError(f"cannot use {path!r} as an output directory: it exists as a file")
            break
        if not stat.S_ISDIR(mode):
            raise PathsError(f"cannot use {path!r} as an output directory: {current!r} exists as a file")
    result = Path(path)
    if len(_checked) >= _CHECKED_SIZE:
        _checked.clear()
    _checked[path] = (now, max_path_length, result)
    return result


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
    real, real_root = os.path.realpath(candidate), _real_root(root_abs)
    if not is_within(real, real_root, strict=True):
        raise PathScopeError(f"path {str(path)!r} resolves to {real!r}, outside the root {real_root!r}")
    return check_output_parts(
        real_root, real[len(real_root.rstrip(os.sep)) + 1 :].split(os.sep), max_path_length
    )
