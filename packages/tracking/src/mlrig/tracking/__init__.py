"""mlrig.tracking: see the package README."""

from importlib.metadata import version as _version

__version__ = _version("mlrig-tracking")

__all__ = ["__version__"]
