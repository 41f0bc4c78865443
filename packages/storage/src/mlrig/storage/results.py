"""Value objects of mlrig.storage: results, options, progress and callback types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol

Expect = Literal["any", "file", "dir"]
Prefer = Literal["local", "drive", "newer"]


class BackupAction(StrEnum):
    """What a backup/restore call did (reference values)."""

    COPIED = "copied"
    SKIPPED = "skipped"
    MISSING = "missing"
    ERROR = "error"


@dataclass(frozen=True)
class SyncStats:
    """Counts of one file or directory sync; in dry-run mode what *would* be done.

    ``kept`` lists destination-only entries a restore left in place (``delete=False``); a kept directory is
    listed once, not file by file.
    """

    copied: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    unchanged: int = 0
    skipped_links: tuple[str, ...] = ()
    bytes_copied: int = 0
    kept: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupResult:
    """Outcome of a backup/restore: ``src`` is always where data is read from, ``dst`` where it goes."""

    ok: bool
    action: BackupAction
    src: Path
    dst: Path
    reason: str = ""
    error: BaseException | None = None
    stats: SyncStats = field(default_factory=SyncStats)

    def __str__(self) -> str:
        mark = "\u2713" if self.ok else "\u2717"
        return f"{mark} [{self.action.name}] {self.src.name} -> {self.dst.name} ({self.reason})"

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class EnsureLocalOptions:
    """How ``ensure_local`` reconciles a local path with its backup.

    ``if_missing``: restore when the local path does not exist. ``if_stale``: when both exist and differ,
    restore if the backup is newer. ``prefer`` decides a difference: ``"local"`` keeps local (unless
    ``if_stale`` and the backup is newer), ``"newer"`` takes whichever side is newer, ``"drive"`` always takes
    the backup.
    """

    if_missing: bool = True
    if_stale: bool = False
    prefer: Prefer = "local"

    def __post_init__(self) -> None:
        if self.prefer not in ("local", "drive", "newer"):
            raise ValueError(
                f"EnsureLocalOptions.prefer must be 'local', 'drive' or 'newer', got {self.prefer!r}"
            )


@dataclass(frozen=True)
class Progress:
    """Progress of one sync: totals are known before the first byte is copied."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str = ""


ProgressCallback = Callable[[Progress], None]


class PathCallback(Protocol):
    """The one callback signature for backup/restore hooks: ``callback(path, is_directory=False) -> bool``."""

    def __call__(self, path: Path | str, is_directory: bool = False) -> bool: ...


@dataclass(frozen=True)
class VerifyReport:
    """Differences between a source and its backup found by ``verify``."""

    ok: bool
    src: Path
    dst: Path
    checked: int = 0
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    differing: tuple[str, ...] = ()
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok
