"""One process owns a root: real processes hold, wait for, lose (SIGKILL) and hand over the owner lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mlrig.paths.errors import PathsError
from mlrig.paths.owner import (
    OwnerRecord,
    RootBusyError,
    acquire_root,
    owner_is_alive,
    read_owner,
)

HOLDER = textwrap.dedent(
    """
    import sys, time
    from mlrig.paths.owner import acquire_root
    owner = acquire_root(sys.argv[1], wait=float(sys.argv[3]))
    print("owned", flush=True)
    time.sleep(float(sys.argv[2]))
    owner.release()
    print("released", flush=True)
    """
)


def _holder(root: Path, hold: float, wait: float = 0.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), str(hold), str(wait)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "owned", (line, proc.stderr.read() if proc.stderr else "")
    return proc


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    root = tmp_path / "root"
    root.mkdir()
    proc = _holder(root, hold=60)
    yield root, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_process_is_refused_with_a_line_naming_the_holder(held) -> None:
    root, proc = held
    started = time.monotonic()
    with pytest.raises(RootBusyError) as err:
        acquire_root(root, wait=0.3)
    assert time.monotonic() - started >= 0.25
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, PathsError)
    assert f"pid {proc.pid} on {socket.gethostname()} (since " in message and str(root) in message
    assert err.value.holder is not None and err.value.holder.pid == proc.pid
    record = read_owner(root)
    assert record is not None and record.pid == proc.pid and owner_is_alive(record)


def test_sigkilled_owner_is_dead_and_the_root_can_be_taken(held) -> None:
    root, proc = held
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = read_owner(root)
    assert stale is not None and stale.pid == proc.pid
    assert not owner_is_alive(stale)  # decided by pid + start time, not by age (the record is seconds old)
    with acquire_root(root) as owner:
        assert owner.held and read_owner(root) == owner.record and owner.record.pid == os.getpid()
        assert owner_is_alive(owner.record)
    assert read_owner(root) is None and not owner.held


def test_waiter_gets_the_root_when_the_holder_releases(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = _holder(root, hold=0.5)
    try:
        with acquire_root(root, wait=30) as owner:
            assert owner.record.pid == os.getpid()
            assert proc.stdout is not None and proc.stdout.readline().strip() == "released"
    finally:
        proc.wait()
    assert proc.returncode == 0


def test_child_waits_for_this_process(tmp_path: Path) -> None:
    root = tmp_path / "root"
    owner = acquire_root(root)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), "0", "30"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    assert child.poll() is None  # still waiting
    owner.release()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out.split() == ["owned", "released"]


def test_same_process_cannot_acquire_twice(tmp_path: Path) -> None:
    with acquire_root(tmp_path) as owner:
        with pytest.raises(RootBusyError, match=r"\(this process\); waited 0s"):
            acquire_root(tmp_path)
        assert owner.held
    with acquire_root(tmp_path):
        pass


def test_pid_reuse_and_other_hosts() -> None:
    me = OwnerRecord(pid=os.getpid(), host=socket.gethostname(), started="2026-01-01T00:00:00Z")
    assert owner_is_alive(me)  # no start time recorded: the pid decides
    if Path("/proc/self/stat").exists():
        reused = replace(me, process_start="another-boot:12345")
        assert not owner_is_alive(reused)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    assert not owner_is_alive(replace(me, pid=int(gone.stdout)))
    assert owner_is_alive(replace(me, pid=int(gone.stdout), host="some-other-host"))  # cannot tell: alive


def test_unreadable_record_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / ".mlrig").mkdir()
    (tmp_path / ".mlrig" / "owner.json").write_text("{not json")
    assert read_owner(tmp_path) is None
    assert read_owner(tmp_path / "nowhere") is None
