"""The errors of mlrig.paths: the root of every mlrig error, the package's base class, a config error and a
scope error."""

from __future__ import annotations

_UNSET = object()


class MlrigError(Exception):
    """Root of every error mlrig raises on purpose: each package's base error derives from it.

    Catch it to tell mlrig's typed errors (bad config, bad input, failed backup or tracking step) from bugs.
    """


class PathsError(MlrigError, ValueError):
    """Base error of mlrig.paths: bad input to a path function (messages name the value at fault)."""


class PathsConfigError(PathsError):
    """A config file is unreadable or invalid; names the file, key, value and (for YAML) line/column."""

    def __init__(
        self,
        message: str,
        *,
        file: object = None,
        key: str | None = None,
        value: object = _UNSET,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.key = key
        self.value = None if value is _UNSET else value
        self.line = line
        self.column = column
        where = self.file or "<config>"
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        detail = f"{where}: "
        if key:
            detail += f"key '{key}': "
        detail += message
        if value is not _UNSET:
            detail += f" (got {value!r})"
        super().__init__(detail)


class PathScopeError(PathsError):
    """A path lies outside the root it must stay in (or on the wrong side of a backup mapping)."""
