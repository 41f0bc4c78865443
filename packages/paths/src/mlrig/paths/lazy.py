"""Loaded on first use: package exports (PEP 562), shared by the mlrig packages' ``__init__`` modules, and
loggers.

Importing a package then costs almost nothing; ``from mlrig.x import name`` imports only the module that
defines ``name`` (and what it needs). ``logging`` is imported when a module first logs, not when it loads:
only rare paths (fallbacks, skipped files) log, and importing ``logging`` costs more than most mlrig modules.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

# Not typing.TYPE_CHECKING: importing typing costs more than this module (type checkers honour the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["get_logger", "lazy_exports"]


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, importing ``logging`` only now."""
    import logging

    return logging.getLogger(name)


def lazy_exports(
    package: str, exports: Mapping[str, str], *, distribution: str
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public names load on first use.

    ``exports`` maps each public name to the submodule of ``package`` that defines it; ``__version__`` is read
    from ``distribution``'s installed metadata. A loaded value is stored on the package, so the next access
    is a plain attribute lookup.
    """

    def module_getattr(name: str) -> object:
        if name == "__version__":
            from importlib.metadata import version  # deferred: importlib.metadata is slow to import

            value: object = version(distribution)
        else:
            module = exports.get(name)
            if module is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def module_dir() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports, "__version__"})

    return module_getattr, module_dir
