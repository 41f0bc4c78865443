"""mlrig.orchestration: see the package README."""

from importlib.metadata import version as _version

__version__ = _version("mlrig-orchestration")

__all__ = ["__version__"]
