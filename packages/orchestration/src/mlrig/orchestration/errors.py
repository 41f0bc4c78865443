"""The single base error of mlrig.orchestration."""

from __future__ import annotations

from mlrig.paths import MlrigError


class OrchestrationError(MlrigError, RuntimeError):
    """A stage cannot run as configured (bad config, missing input, inconsistent state).

    Messages name the file, key or run at fault.
    """
