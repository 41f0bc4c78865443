"""Real processes backing up the same tree at once are serialised by the store lock and all succeed."""

from __future__ import annotations

import multiprocessing
import os

from mlrig.storage import BackupAction


def _worker(project, target, expect: str, rounds: int) -> None:  # forked child
    store = project.store()
    ok = all(store.backup(target, expect=expect).ok for _ in range(rounds))
    os._exit(0 if ok else 1)


def test_parallel_processes_converge(project, writer, snapshot_tree):
    src = project.outputs / "study"
    for i in range(60):
        writer(src / f"t{i % 6}" / f"f{i}.json", f"{i}" * 2000)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(project, src, "dir", 4)) for _ in range(3)]
    procs.append(ctx.Process(target=_worker, args=(project, src / "t0" / "f0.json", "file", 6)))
    for p in procs:
        p.start()
    for i in range(0, 60, 7):  # the source keeps changing while they run
        writer(src / f"t{i % 6}" / f"f{i}.json", "changed" * 300)
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    final = project.store().backup(src)
    assert final.ok and final.action in (BackupAction.COPIED, BackupAction.SKIPPED)
    assert snapshot_tree(project.mirror(src)) == snapshot_tree(src)
    assert not list(project.mirror(src).rglob("*.tmp"))
