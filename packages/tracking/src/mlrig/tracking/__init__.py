"""mlrig.tracking: MLflow run trees, trackers, run index, version counter, finder, queries and artifacts.

Importing this package changes nothing global in MLflow (no tracking URI, no experiment, no patches).

Its public names are listed once, in ``__init__.pyi``: each loads with its module on first use, and
``EAGER_IMPORT=1`` loads them all at import.
"""

import lazy_loader as lazy

from mlrig.tracking._version import __version__ as __version__

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
