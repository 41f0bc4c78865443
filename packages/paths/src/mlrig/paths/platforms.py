"""Which platform we run on and which storage environment a value names."""

from __future__ import annotations

import os
import time

from mlrig.paths.errors import PathsError

__all__ = ["STORAGE_ENVS", "detect_platform", "normalize_storage_env"]

STORAGE_ENVS = ("local", "colab", "kaggle", "azureml")
_ALIASES = {"azure": "azureml"}

_MARKERS = (
    ("colab", ("COLAB_GPU", "COLAB_TPU", "COLAB_RELEASE_TAG")),
    ("kaggle", ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE")),
    ("azureml", ("AZUREML_RUN_ID", "AZURE_ML_RUN_ID", "AZURE_ML_OUTPUT_DIR")),
)


def detect_platform() -> str:
    """``local``, ``colab``, ``kaggle`` or ``azureml``, from the platforms' environment markers.

    The markers are read again whenever the environment gains or loses a variable, and at least once a second.
    """
    global _detected
    now, size = time.monotonic(), len(os.environ)
    hit = _detected
    if hit is not None and hit[1] == size and now - hit[0] < _DETECTED_TTL:
        return hit[2]
    # Each absent variable costs a KeyError inside os.environ.get (~1.5 us): this runs for every path built.
    found = next(
        (name for name, variables in _MARKERS if any(os.environ.get(var) for var in variables)), "local"
    )
    _detected = (now, size, found)
    return found


_detected: tuple[float, int, str] | None = None
_DETECTED_TTL = 1.0


def normalize_storage_env(value: str | None) -> str:
    """The canonical storage environment for ``value`` (``azure`` → ``azureml``; ``None`` → detected)."""
    if value is None:
        return detect_platform()
    known = _CANONICAL.get(value) if isinstance(value, str) else None
    if known is not None:
        return known
    if not isinstance(value, str):
        raise PathsError(f"storage_env must be a string, got {value!r}")
    canonical = _ALIASES.get(value.strip().lower(), value.strip().lower())
    if canonical not in STORAGE_ENVS:
        raise PathsError(f"unknown storage_env {value!r}; expected one of {', '.join(STORAGE_ENVS)}")
    if len(_CANONICAL) < 64:  # bounded: arbitrary spellings must not grow it forever
        _CANONICAL[value] = canonical
    return canonical


# Spelling as given -> canonical name: this runs several times for every path built.
_CANONICAL: dict[str, str] = {}
