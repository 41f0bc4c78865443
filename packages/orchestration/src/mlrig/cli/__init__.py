"""mlrig.cli: the ``mlrig`` command line (shipped with mlrig-orchestration).

Only click, the standard library and ``mlrig.paths`` load at start-up: each command imports what it needs when
it runs, so ``mlrig --help`` never imports mlflow or optuna (nor ``mlrig.orchestration``, which does).

Its public names are listed once, in ``__init__.pyi``: each loads with its module on first use, and
``EAGER_IMPORT=1`` loads them all at import.
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
