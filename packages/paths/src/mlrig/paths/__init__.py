"""mlrig.paths: see the package README."""

from importlib.metadata import version as _version

__version__ = _version("mlrig-paths")

__all__ = ["__version__"]
