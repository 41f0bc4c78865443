"""One process owns a project root at a time: a lock on ``<root>/.mlrig/owner.lock`` plus an owner record.

The lock (``filelock``, an OS lock that the kernel drops when the holder dies, even by SIGKILL) decides who
owns the root. The record ``<root>/.mlrig/owner.json`` (written atomically after the lock is taken) says who
that is: ``{"pid", "host", "started", "process_start"}``. A second process waits up to ``wait`` seconds, then
gets a :class:`RootBusyError` whose one-line message names the holder. :func:`owner_is_alive` decides whether
a recorded owner is still running from its pid, host and process start time, never from the record's age,
so a sweep that runs for hours is not mistaken for a dead one.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from mlrig.paths.errors import PathsError
from mlrig.paths.files import atomic_write_json

if TYPE_CHECKING:
    from filelock import FileLock

logger = logging.getLogger(__name__)

_OWNER_DIR = ".mlrig"
_LOCK_NAME = "owner.lock"
_RECORD_NAME = "owner.json"
_SETTINGS_NAME = "settings.json"
_CLEAN_NAME = "clean-close.json"


@dataclass(frozen=True)
class OwnerRecord:
    """Who owns a root: ``pid`` on ``host``, owner since ``started`` (ISO-8601 UTC).

    ``process_start`` identifies that exact process (``<boot id>:<start tick>`` from ``/proc`` on Linux,
    ``None`` elsewhere), so a pid reused by another process after a crash or a reboot is not taken for it.
    """

    pid: int
    host: str
    started: str
    process_start: str | None = None

    def describe(self) -> str:
        """``pid 123 on host-a (since 2026-12-02T07:46:01Z)``."""
        return f"pid {self.pid} on {self.host} (since {self.started})"


class RootBusyError(PathsError):
    """Another process owns the root; ``holder`` is its record (``None`` when it wrote none yet)."""

    def __init__(self, root: Path, holder: OwnerRecord | None, waited: float) -> None:
        who = holder.describe() if holder is not None else "another process (no owner record yet)"
        mine = " (this process)" if holder is not None and _is_this_process(holder) else ""
        super().__init__(f"root {root} is in use by {who}{mine}; waited {waited:g}s")
        self.root, self.holder, self.waited = root, holder, waited


def _owner_dir(root: Path | str) -> Path:
    return Path(root) / _OWNER_DIR


def _process_start(pid: int) -> str | None:
    """``<boot id>:<start time in clock ticks>`` of ``pid`` (Linux), ``None`` where ``/proc`` cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name in parentheses may contain spaces
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


def _hostname() -> str:
    import socket  # deferred: it loads selectors and more, and only owner checks need the host

    return socket.gethostname()


def _is_this_process(record: OwnerRecord) -> bool:
    return record.pid == os.getpid() and record.host == _hostname()


def read_owner(root: Path | str) -> OwnerRecord | None:
    """The owner record of ``root``; ``None`` when there is none or it cannot be read (logged)."""
    import json  # deferred: only readers of a record need it

    path = _owner_dir(root) / _RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return OwnerRecord(
            pid=int(data["pid"]),
            host=str(data["host"]),
            started=str(data["started"]),
            process_start=None if data.get("process_start") is None else str(data["process_start"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        logger.warning("ignoring unreadable owner record %s (%s)", path, exc)
        return None


def owner_is_alive(record: OwnerRecord) -> bool:
    """Whether the process ``record`` names is still running.

    Dead means: same host, and the pid no longer exists or now belongs to a process that started at another
    time (pid reuse, reboot). A record from another host cannot be checked from here and counts as alive.
    """
    if record.host != _hostname():
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    if record.process_start is None:
        return True
    current = _process_start(record.pid)
    return current is None or current == record.process_start


class RootOwner:
    """Ownership of a root by this process (from :func:`acquire_root`); release it or use ``with``."""

    def __init__(self, root: Path, record: OwnerRecord, lock: FileLock) -> None:
        self.root, self.record, self._lock = root, record, lock

    @property
    def held(self) -> bool:
        """Whether this object still owns the root."""
        return self._lock.is_locked

    def release(self) -> None:
        """Remove the owner record (if it is still ours) and drop the lock; safe to call twice."""
        if not self._lock.is_locked:
            return
        try:
            if read_owner(self.root) == self.record:
                (_owner_dir(self.root) / _RECORD_NAME).unlink(missing_ok=True)
        finally:
            self._lock.release(force=True)

    def __enter__(self) -> RootOwner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def acquire_root(root: Path | str, *, wait: float | None = 0.0) -> RootOwner:
    """Make this process the owner of ``root``, waiting up to ``wait`` seconds (``None``: for ever).

    Raises :class:`RootBusyError` naming the holder (pid, host, since when) when the root stays owned. A
    second :func:`acquire_root` of the same root in the same process is refused too (the message says
    "this process"): ownership is not re-entrant.
    """
    # filelock is slow to import (tens of ms) and `import mlrig.paths` loads this module: only a run that
    # takes a root needs it.
    from filelock import FileLock, Timeout

    base = Path(os.path.abspath(root))  # noqa: PTH100 - lexical: the record names the root as given
    folder = _owner_dir(base)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / _LOCK_NAME), timeout=-1 if wait is None else max(wait, 0.0))
    started = time.monotonic()
    try:
        lock.acquire()
    except Timeout:
        raise RootBusyError(base, read_owner(base), round(time.monotonic() - started, 1)) from None
    record = OwnerRecord(
        pid=os.getpid(),
        host=_hostname(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        process_start=_process_start(os.getpid()),
    )
    try:
        atomic_write_json(folder / _RECORD_NAME, asdict(record))
    except BaseException:
        lock.release(force=True)
        raise
    logger.info("this process owns %s (%s)", base, record.describe())
    return RootOwner(base, record, lock)


def read_root_settings(root: Path | str) -> dict[str, str]:
    """What the first state-creating command remembered about ``root`` (``<root>/.mlrig/settings.json``:
    ``backup_root``, ``tracking_uri``); ``{}`` when there is none. Reads only; never creates anything."""
    import json  # deferred, as in read_owner

    path = _owner_dir(root) / _SETTINGS_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable root settings %s: %s", path, exc)
        return {}
    return {str(k): str(v) for k, v in data.items() if v is not None} if isinstance(data, dict) else {}


def write_root_settings(root: Path | str, **values: str | None) -> dict[str, str]:
    """Merge ``values`` (``None`` leaves a key as it is) into ``<root>/.mlrig/settings.json``, atomically;
    return the merged settings. Written by the commands that create state, read by all the others."""
    merged = read_root_settings(root)
    merged.update({k: str(v) for k, v in values.items() if v is not None})
    atomic_write_json(_owner_dir(root) / _SETTINGS_NAME, dict(sorted(merged.items())))
    return merged


def _file_mark(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def record_clean_close(root: Path | str, files: list[Path]) -> None:
    """Remember ``files`` as a session of ``root`` that ended without an error leaves them (size, mtime,
    ctime, inode in ``<root>/.mlrig/clean-close.json``, atomically), for :func:`closed_clean`."""
    marks = {os.fspath(Path(f).resolve()): _file_mark(Path(f)) for f in files if Path(f).is_file()}
    atomic_write_json(_owner_dir(root) / _CLEAN_NAME, marks)


def closed_clean(root: Path | str, file: Path | str) -> bool:
    """Whether ``file`` is exactly as the last clean session of ``root`` left it (:func:`record_clean_close`):
    any write since, a kill mid-run included, changes its mtime and ctime. Reads only."""
    import json  # deferred, as in read_owner

    try:
        marks = json.loads((_owner_dir(root) / _CLEAN_NAME).read_text(encoding="utf-8"))
        return isinstance(marks, dict) and marks.get(os.fspath(Path(file).resolve())) == _file_mark(
            Path(file)
        )
    except (OSError, ValueError):
        return False
