"""mlrig.paths: where things are -- config-driven output layout, roots, normalisation, cache files, the backup
mapping, YAML config reading and atomic writes, and ``MlrigError``, the root of every mlrig error. The bottom
layer of mlrig; see the package README.

Its public names are listed once, in ``__init__.pyi``: each loads with its module on first use, and
``EAGER_IMPORT=1`` loads them all at import.
"""

import lazy_loader as lazy

from mlrig.paths._version import __version__ as __version__

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
