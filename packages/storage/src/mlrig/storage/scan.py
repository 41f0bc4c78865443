"""Walking a source or destination tree (one walk for both) without following symlinks out of scope."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlrig.paths import is_within
from mlrig.storage.fileops import (
    SQLITE_SUFFIXES,
    TRANSIENT_SUFFIXES,
    Signature,
    is_temp_name,
    is_transient_name,
    signature,
)

logger = logging.getLogger(__name__)

MANIFEST_NAME = ".mlrig-manifest.json"
_SQLITE_SUFFIX_TUPLE = tuple(SQLITE_SUFFIXES)
_SCANDIR_FD = os.scandir in os.supports_fd
_SQLITE_LAST = frozenset(c for suffix in SQLITE_SUFFIXES for c in (suffix[-1], suffix[-1].upper()))


def is_reserved_name(name: str) -> bool:
    """Names never copied between trees: our temps, manifests (and their temps)."""
    return name.startswith(".") and (
        is_temp_name(name) or name.startswith((MANIFEST_NAME, "." + MANIFEST_NAME))
    )


def _is_leftover_temp(name: str) -> bool:
    return is_temp_name(name) or (name.startswith("." + MANIFEST_NAME) and name.endswith(".tmp"))


def inside_any(path: str, roots: Iterable[str]) -> bool:
    """Whether the real path string ``path`` equals or lies under one of ``roots`` (real path strings)."""
    return any(is_within(path, root) for root in roots)


@dataclass
class Tree:
    """What one walk of a tree found (relative ``/``-separated paths).

    ``files`` maps rel → (absolute path string, signature). A *source* tree's signature is the change
    signature ``(size, mtime_ns[, wal size, wal mtime_ns])`` (:func:`~mlrig.storage.fileops.signature`); a
    *destination* tree's is its stat ``(size, mtime_ns, inode, ctime_ns)``, which any rewrite of the copy
    changes. ``others`` are destination symlinks and special files; ``transient`` lock/journal/temp files
    (never copied); ``temps`` leftover temps of a killed run; ``skipped_links`` source symlinks not followed.
    """

    files: dict[str, tuple[str, Signature]] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    others: set[str] = field(default_factory=set)
    transient: set[str] = field(default_factory=set)
    temps: list[Path] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)


def _follow_link(path: str, child: str, roots: list[str], visited: set[str], tree: Tree) -> str:
    """Handle a symlink in a source tree; returns the directory to descend into, or ''."""
    target = os.path.realpath(path)
    real = Path(target)
    if not real.exists() or not inside_any(target, roots):
        logger.warning("not following symlink %s -> %s (outside scope or broken)", path, real)
        tree.skipped_links.append(child)
    elif real.is_dir():
        if target not in visited:
            visited.add(target)
            tree.dirs.add(child)
            return path
        tree.skipped_links.append(child)
    elif real.is_file() and not is_transient_name(child.rsplit("/", 1)[-1]):
        tree.files[child] = (target, signature(target))
    return ""


@contextlib.contextmanager
def _listing(dirpath: str) -> Iterator[Iterator[os.DirEntry[str]]]:
    """``os.scandir`` of ``dirpath``; through a directory fd where supported, so that each entry's stat is an
    ``fstatat`` relative to it instead of a walk of the whole path (a tenth of a no-change pass)."""
    if not _SCANDIR_FD:
        with os.scandir(dirpath) as it:
            yield it
        return
    fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(fd) as fd_it:
            yield fd_it
    finally:
        os.close(fd)


def scan_tree(top: Path, scope: Iterable[Path] | None = None) -> Tree:
    """Walk ``top`` once: a source tree when ``scope`` is given, else a destination tree (see :class:`Tree`).

    In a source tree symlinks are followed only when their target lies inside one of ``scope`` (no loops); in
    a destination tree they are never followed. A missing ``top`` gives an empty tree. The loop is the hot
    path of a no-change pass (one ``lstat`` per file on each side), hence the inlined checks.
    """
    tree = Tree()
    source = scope is not None
    roots = [os.path.realpath(p) for p in scope] if scope is not None else []
    if not source and not top.is_dir():
        return tree
    files, dirs, transient = tree.files, tree.dirs, tree.transient
    visited = {os.path.realpath(top)}
    stack: list[tuple[str, str]] = [(str(top), "")]
    while stack:
        dirpath, rel = stack.pop()
        prefix = rel + "/" if rel else ""
        base = dirpath + os.sep
        with _listing(dirpath) as it:
            for entry in it:
                name = entry.name
                if name[0] == "." and is_reserved_name(name):
                    if _is_leftover_temp(name):
                        tree.temps.append(Path(base + name))
                    continue
                child = prefix + name
                if entry.is_file(follow_symlinks=False):
                    if name.endswith(TRANSIENT_SUFFIXES):
                        transient.add(child)
                        continue
                    st = entry.stat()  # not a symlink: the lstat, without the keyword's cost
                    if not source:
                        files[child] = (base + name, (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
                    elif name[-1] in _SQLITE_LAST and name.lower().endswith(_SQLITE_SUFFIX_TUPLE):
                        files[child] = (base + name, signature(base + name, st))
                    else:
                        files[child] = (base + name, (st.st_size, st.st_mtime_ns))
                elif entry.is_dir(follow_symlinks=False):
                    dirs.add(child)
                    stack.append((base + name, child))
                elif source and entry.is_symlink():
                    descend = _follow_link(base + name, child, roots, visited, tree)
                    if descend:
                        stack.append((descend, child))
                elif not source:
                    tree.others.add(child)
    return tree
