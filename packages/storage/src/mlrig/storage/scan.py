"""Walking source and destination trees without following symlinks out of scope."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlrig.paths import is_within
from mlrig.storage.fileops import (
    SQLITE_SIDECARS,
    SQLITE_SUFFIXES,
    Signature,
    is_sqlite_sidecar,
    is_temp_name,
    signature,
)

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".mlrig-manifest.json"
_SQLITE_SUFFIX_TUPLE = tuple(SQLITE_SUFFIXES)


def is_reserved_name(name: str) -> bool:
    """Names never copied between trees: our temps, manifests (and their temps)."""
    return name.startswith(".") and (
        is_temp_name(name) or name.startswith((MANIFEST_NAME, "." + MANIFEST_NAME))
    )


def _is_manifest_temp(name: str) -> bool:
    return name.startswith("." + MANIFEST_NAME) and name.endswith(".tmp")


def inside_any(path: str, roots: Iterable[str]) -> bool:
    """Whether the real path string ``path`` equals or lies under one of ``roots`` (real path strings)."""
    return any(is_within(path, root) for root in roots)


@dataclass
class SourceTree:
    """Files (rel → absolute path string, signature), directories and skipped symlinks of a source tree."""

    files: dict[str, tuple[str, Signature]] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    skipped_links: list[str] = field(default_factory=list)


@dataclass
class DestTree:
    """Names found in a destination tree (no stat calls: cheap on network mounts)."""

    files: set[str] = field(default_factory=set)
    dirs: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    temps: list[Path] = field(default_factory=list)


def _follow_link(
    entry: os.DirEntry[str], child: str, roots: list[str], visited: set[str], tree: SourceTree
) -> str:
    """Handle a symlink in a source tree; returns the directory to descend into, or ''."""
    target = os.path.realpath(entry.path)
    real = Path(target)
    if not real.exists() or not inside_any(target, roots):
        logger.warning("not following symlink %s -> %s (outside scope or broken)", entry.path, real)
        tree.skipped_links.append(child)
    elif real.is_dir():
        if target not in visited:
            visited.add(target)
            tree.dirs.add(child)
            return entry.path
        tree.skipped_links.append(child)
    elif real.is_file() and not is_sqlite_sidecar(entry.name):
        tree.files[child] = (target, signature(target))
    return ""


def scan_source(top: Path, scope: Iterable[Path]) -> SourceTree:
    """Walk ``top``; symlinks are followed only when their target lies inside one of ``scope`` (no loops).

    Temps, manifests and SQLite ``-wal``/``-journal``/``-shm`` sidecars are left out. The loop is the hot path
    of a no-change pass, hence the inlined checks.
    """
    roots = [os.path.realpath(p) for p in scope]
    tree = SourceTree()
    files, dirs = tree.files, tree.dirs
    visited = {os.path.realpath(top)}
    stack: list[tuple[str, str]] = [(str(top), "")]
    while stack:
        dirpath, rel = stack.pop()
        prefix = rel + "/" if rel else ""
        with os.scandir(dirpath) as it:
            for entry in it:
                name = entry.name
                if name[0] == "." and is_reserved_name(name):
                    continue
                child = prefix + name
                if entry.is_symlink():
                    descend = _follow_link(entry, child, roots, visited, tree)
                    if descend:
                        stack.append((descend, child))
                elif entry.is_dir(follow_symlinks=False):
                    dirs.add(child)
                    stack.append((entry.path, child))
                elif entry.is_file(follow_symlinks=False):
                    if name.endswith(SQLITE_SIDECARS) and is_sqlite_sidecar(name):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if name.lower().endswith(_SQLITE_SUFFIX_TUPLE):
                        files[child] = (entry.path, signature(entry.path, st))
                    else:
                        files[child] = (entry.path, (st.st_size, st.st_mtime_ns))
    return tree


def scan_dest(top: Path) -> DestTree:
    """List ``top`` by name and type only; symlinks and special files count as ``others``."""
    tree = DestTree()
    if not top.is_dir():
        return tree
    stack: list[tuple[str, str]] = [(str(top), "")]
    while stack:
        dirpath, rel = stack.pop()
        prefix = rel + "/" if rel else ""
        with os.scandir(dirpath) as it:
            for entry in it:
                name = entry.name
                if name[0] == ".":
                    if is_temp_name(name) or _is_manifest_temp(name):
                        tree.temps.append(Path(entry.path))
                        continue
                    if is_reserved_name(name):
                        continue
                child = prefix + name
                if entry.is_symlink():
                    tree.others.add(child)
                elif entry.is_dir(follow_symlinks=False):
                    tree.dirs.add(child)
                    stack.append((entry.path, child))
                elif entry.is_file(follow_symlinks=False):
                    tree.files.add(child)
                else:
                    tree.others.add(child)
    return tree
