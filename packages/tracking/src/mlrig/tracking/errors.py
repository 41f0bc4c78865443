"""The single base error of mlrig.tracking."""

from __future__ import annotations

from mlrig.paths import MlrigError


class TrackingError(MlrigError, RuntimeError):
    """A tracking operation failed (bad argument, unreachable store, exhausted retries).

    Messages name the run, experiment, key or file at fault.
    """
