"""Crash safety: a backup process killed with SIGKILL at random points never leaves a torn or lost file."""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import random
import sqlite3
import time
from pathlib import Path

import pytest

from mlrig.storage import BackupAction

ROUNDS = 50


def _content(rel: str, version: int) -> bytes:
    size = 20_000 + int(hashlib.sha256(f"{rel}:{version}".encode()).hexdigest()[:5], 16) % 120_000
    seed = hashlib.sha256(f"{rel}|{version}".encode()).digest()
    body = (seed * (size // len(seed) + 1))[:size]
    return f"{rel}:{version}:{size}\n".encode() + body + b"END\n"


def _parse(rel: str, data: bytes) -> int:
    """Version of a complete, untorn file; raises AssertionError otherwise."""
    header, _, _ = data.partition(b"\n")
    name, version, _size = header.decode().rsplit(":", 2)
    assert name == rel, f"{rel} holds the content of {name}"
    assert data == _content(rel, int(version)), f"{rel} is torn (version {version})"
    return int(version)


def _db_rows(db: Path) -> int:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


def _mutate(src: Path, rng: random.Random, version: int, state: dict[str, int], db_rows: list[int]) -> None:
    rels = sorted(state)
    for rel in rng.sample(rels, k=max(1, len(rels) // 2)):
        state[rel] = version
        (src / rel).write_bytes(_content(rel, version))
    for rel in rng.sample(sorted(state), k=2):
        (src / rel).unlink()
        del state[rel]
    for k in range(3):
        rel = f"t{rng.randrange(8)}/new-{version}-{k}.bin"
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(_content(rel, version))
        state[rel] = version
    conn = sqlite3.connect(src / "study.db")
    conn.executemany("INSERT INTO t VALUES (?)", [(version,)] * 50)
    conn.commit()
    conn.close()
    db_rows.append(db_rows[-1] + 50)


def _child(project, src: Path, direction: str) -> None:  # forked process, killed at a random point
    # outputs_dir given: the child starts copying at once instead of loading paths.yaml first, which would
    # use up part of the window the kill is aimed at.
    store = project.store(outputs_dir=project.outputs)
    if direction == "backup":
        store.backup(src, expect="dir")
    else:
        store.restore(src, expect="dir", delete=True)  # a mirroring restore: deletions are crash-tested too
    os._exit(0)


def _crash_rounds(project, direction: str, rounds: int, seed: int) -> tuple[int, int, float]:
    """Kill ``direction`` (backup/restore) ``rounds`` times; returns (kills mid-run, mixed trees, full s)."""
    rng = random.Random(seed)
    local = project.outputs / "hpo" / "local" / "m" / "study-crash"
    state: dict[str, int] = {}
    for i in range(40):
        rel = f"t{i % 8}/f{i}.bin"
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(_content(rel, 0))
        state[rel] = 0
    conn = sqlite3.connect(local / "study.db")
    conn.execute("CREATE TABLE t (v INTEGER)")
    conn.commit()
    conn.close()
    db_rows = [0]
    store = project.store()
    run = store.backup if direction == "backup" else functools.partial(store.restore, delete=True)
    started = time.monotonic()
    assert store.backup(local).action is BackupAction.COPIED
    full = time.monotonic() - started
    # the side that changes between rounds, and the side the killed process writes to
    source, target = (
        (local, project.mirror(local)) if direction == "backup" else (project.mirror(local), local)
    )
    ctx = multiprocessing.get_context("fork")
    killed_mid_run = mixed_rounds = 0
    for version in range(1, rounds + 1):
        before = dict(state)
        _mutate(source, rng, version, state, db_rows)
        proc = ctx.Process(target=_child, args=(project, local, direction))
        proc.start()
        time.sleep(rng.uniform(0, full * 0.8))
        if proc.is_alive():
            killed_mid_run += 1
        proc.kill()
        proc.join()
        versions: list[bool] = []
        for path in target.rglob("*"):
            rel = path.relative_to(target).as_posix()
            if path.is_dir() or path.name.startswith(".") or rel == "study.db":
                continue
            got = _parse(rel, path.read_bytes())
            assert got in {before.get(rel), state.get(rel)}, f"round {version}: {rel} has version {got}"
            if before.get(rel) != state.get(rel) and rel in state:
                versions.append(got == state[rel])
        mixed_rounds += any(versions) and not all(versions)
        assert _db_rows(target / "study.db") in {db_rows[-2], db_rows[-1]}
        for rel in before.keys() & state.keys():  # a file still wanted is never missing from the copy
            assert (target / rel).is_file(), f"round {version}: {rel} vanished"
        again = run(local)
        assert again.ok, f"round {version}: re-run failed: {again}"
        assert not [p for p in target.rglob("*.tmp*")], f"round {version}: temp files left after re-run"
        assert {r: _parse(r, (target / r).read_bytes()) for r in state} == state
        files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
        assert files == set(state) | {"study.db", ".mlrig-manifest.json"}
        assert _db_rows(target / "study.db") == db_rows[-1]
    return killed_mid_run, mixed_rounds, full


@pytest.mark.slow
def test_sigkill_during_backup_keeps_old_or_new_and_converges(project):
    killed, mixed, full = _crash_rounds(project, "backup", ROUNDS, seed=20261123)
    print(
        f"backup crash test: {ROUNDS} rounds, {killed} SIGKILLs while the backup ran, "
        f"{mixed} left a half-updated tree (old and new files), full copy {full:.3f}s"
    )
    assert killed >= ROUNDS // 5, f"only {killed} kills hit a running backup"
    assert mixed >= 5, "too few kills landed between two file copies for the test to bite"


@pytest.mark.slow
def test_sigkill_during_restore_keeps_old_or_new_and_converges(project):
    rounds = 20
    killed, mixed, _full = _crash_rounds(project, "restore", rounds, seed=7)
    print(f"restore crash test: {rounds} rounds, {killed} SIGKILLs while running, {mixed} half-updated trees")
    assert killed >= rounds // 5, f"only {killed} kills hit a running restore"
    assert mixed >= 2, "too few kills landed between two file copies for the test to bite"
