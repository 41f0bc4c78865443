"""The single base error of mlrig.tracking."""

from __future__ import annotations

from mlrig.paths import MlrigError

__all__ = ["TrackingError"]


class TrackingError(MlrigError, RuntimeError):
    """A tracking operation failed (bad argument, unreachable store, exhausted retries).

    Messages name the run, experiment, key or file at fault.
    """
