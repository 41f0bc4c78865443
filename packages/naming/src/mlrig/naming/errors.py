"""Error types of mlrig.naming (one base, ``NamingError``: an ``MlrigError`` and a ``ValueError``)."""

from __future__ import annotations

from pathlib import Path

from mlrig.paths import MlrigError


class NamingError(MlrigError, ValueError):
    """Base error of mlrig.naming: an invalid naming input, context or config."""


class NamingConfigError(NamingError):
    """A naming config file (naming.yaml, tags.yaml, mlflow.yaml) is present but invalid.

    ``file`` is the offending file (``None`` for an in-memory policy), ``key`` the dotted key at fault and
    ``value`` the value found there.
    """

    def __init__(
        self, message: str, *, file: Path | None = None, key: str | None = None, value: object = None
    ):
        where = f"[{file.name if file is not None else 'config'}]"
        if key:
            where += f" {key}:"
        super().__init__(f"{where} {message}" + (f" (file: {file})" if file is not None else ""))
        self.file = file
        self.key = key
        self.value = value


class HashInputError(NamingError):
    """A value handed to a key/fingerprint function cannot be serialised canonically."""


class TagKeyError(NamingError, KeyError):
    """An unknown ``(section, name)`` tag key was looked up in the tags registry."""

    def __str__(self) -> str:  # KeyError would repr-quote the message
        return str(self.args[0]) if self.args else ""
