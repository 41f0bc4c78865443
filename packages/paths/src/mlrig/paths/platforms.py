"""Which platform we run on and which storage environment a value names."""

from __future__ import annotations

import os

from mlrig.paths.errors import PathsError

STORAGE_ENVS = ("local", "colab", "kaggle", "azureml")
_ALIASES = {"azure": "azureml"}

_MARKERS = (
    ("colab", ("COLAB_GPU", "COLAB_TPU", "COLAB_RELEASE_TAG")),
    ("kaggle", ("KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE")),
    ("azureml", ("AZUREML_RUN_ID", "AZURE_ML_RUN_ID", "AZURE_ML_OUTPUT_DIR")),
)


def detect_platform() -> str:
    """``local``, ``colab``, ``kaggle`` or ``azureml``, from the platforms' environment markers (read on every
    call)."""
    for name, variables in _MARKERS:
        if any(os.environ.get(var) for var in variables):
            return name
    return "local"


def normalize_storage_env(value: str | None) -> str:
    """The canonical storage environment for ``value`` (``azure`` → ``azureml``; ``None`` → detected)."""
    if value is None:
        return detect_platform()
    if not isinstance(value, str):
        raise PathsError(f"storage_env must be a string, got {value!r}")
    canonical = _ALIASES.get(value.strip().lower(), value.strip().lower())
    if canonical not in STORAGE_ENVS:
        raise PathsError(f"unknown storage_env {value!r}; expected one of {', '.join(STORAGE_ENVS)}")
    return canonical
