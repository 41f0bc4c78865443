"""mlrig.orchestration: HPO sweeps that resume, champion selection, stage runners and the demo pipeline. See
the package README.

Its public names are listed once, in ``__init__.pyi``: each loads with its module on first use, and
``EAGER_IMPORT=1`` loads them all at import. Most of its names import optuna and mlflow
when first used: the ``mlrig`` command line lives in ``mlrig.cli``, which uses this package only inside the
commands that need it.
"""

import lazy_loader as lazy

from mlrig.orchestration._version import __version__ as __version__

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
