"""Error types of mlrig.storage (one base, ``BackupError``: an ``MlrigError`` and an ``OSError``)."""

from __future__ import annotations

from pathlib import Path

from mlrig.paths import MlrigError


class BackupError(MlrigError, OSError):
    """A backup, restore or verify step failed.

    ``path`` is the file at fault (source or destination) and ``reason`` a short explanation; both are in the
    message. Being an ``OSError``, callers that already catch ``OSError`` around file copies keep working.
    """

    def __init__(self, reason: str, *, path: Path | None = None) -> None:
        message = f"{reason}: {path}" if path is not None else reason
        super().__init__(message)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:  # OSError would format (errno, strerror) otherwise
        return str(self.args[0]) if self.args else ""


class BackupConfigError(BackupError, ValueError):
    """The store itself is misconfigured (e.g. a missing root); also a ``ValueError``, as in the reference."""
