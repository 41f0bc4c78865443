"""mlrig.cli: the ``mlrig`` command line (shipped with mlrig-orchestration).

Only click, the standard library and ``mlrig.paths`` load at start-up: each command imports what it needs when
it runs, so ``mlrig --help`` never imports mlflow or optuna (nor ``mlrig.orchestration``, which does).
"""

from mlrig.cli import commands
from mlrig.cli.commands import *

__all__ = [*commands.__all__]
