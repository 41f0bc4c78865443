"""Property: for any old and new tree (files, directories, type changes) a sync makes an exact mirror."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrig.storage import sync_tree

_names = st.sampled_from(["a", "b", "c", "d.db-wal", "e.json"])
_rel = st.lists(_names, min_size=1, max_size=3).map("/".join)
_trees = st.dictionaries(_rel, st.binary(max_size=20), max_size=8)


def _materialise(top: Path, spec: dict[str, bytes]) -> dict[str, bytes]:
    """Write ``spec`` (skipping entries that clash with an earlier file/dir); return what was written."""
    if top.exists():
        shutil.rmtree(top)
    top.mkdir(parents=True)
    written: dict[str, bytes] = {}
    for rel, text in sorted(spec.items()):
        path = top / rel
        if any((top / p).is_file() for p in _prefixes(rel)) or path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
        written[rel] = text
    return written


def _prefixes(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _read(top: Path) -> dict[str, bytes]:
    return {
        p.relative_to(top).as_posix(): p.read_bytes()
        for p in top.rglob("*")
        if p.is_file() and not p.name.startswith(".mlrig-manifest")
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=_trees, new=_trees)
def test_sync_mirrors_any_tree_change(tmp_path_factory, old, new):
    base = tmp_path_factory.mktemp("prop")
    src, dst = base / "src", base / "dst"
    _materialise(src, old)
    sync_tree(src, dst, [src], fsync=False)
    expected = {r: t for r, t in _materialise(src, new).items() if not r.endswith(".db-wal")}  # sidecar files
    later = time.time_ns() + 10**9  # a later write: stat-based detection cannot see same-tick rewrites
    for rel in expected:
        os.utime(src / rel, ns=(later, later))
    stats = sync_tree(src, dst, [src], fsync=False)
    assert _read(dst) == expected
    again = sync_tree(src, dst, [src], fsync=False)
    assert again.copied == () and again.deleted == ()
    assert stats.unchanged + len(stats.copied) == len(expected)
