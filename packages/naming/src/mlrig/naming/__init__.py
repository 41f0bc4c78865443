"""mlrig.naming: run identity -- contexts, deterministic keys and fingerprints, run names, tags and experiment
names.

Pure functions over config: nothing here reserves versions, talks to MLflow or reads identity from environment
variables. See the package README for every key, pattern and tag.

Its public names are listed once, in ``__init__.pyi``: each loads with its module on first use, and
``EAGER_IMPORT=1`` loads them all at import.
"""

import lazy_loader as lazy

from mlrig.naming._version import __version__ as __version__

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
