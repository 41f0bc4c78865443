"""mlrig.orchestration: HPO sweeps that resume, champion selection, stage runners and the demo pipeline. See
the package README.

Each module lists the names it exports in its ``__all__``; this package exports exactly those. Importing it
imports optuna and mlflow: the ``mlrig`` command line lives in ``mlrig.cli``, which imports this package only
inside the commands that need it.
"""

from typing import TYPE_CHECKING

from mlrig.orchestration import (
    candidates,
    configs,
    demo,
    distributed,
    errors,
    requests,
    runs,
    schemas,
    selection,
    services,
    stages,
    state,
    sweep,
    validation,
    worker,
    worker_launch,
)
from mlrig.orchestration.candidates import *
from mlrig.orchestration.configs import *
from mlrig.orchestration.demo import *
from mlrig.orchestration.distributed import *
from mlrig.orchestration.errors import *
from mlrig.orchestration.requests import *
from mlrig.orchestration.runs import *
from mlrig.orchestration.schemas import *
from mlrig.orchestration.selection import *
from mlrig.orchestration.services import *
from mlrig.orchestration.stages import *
from mlrig.orchestration.state import *
from mlrig.orchestration.sweep import *
from mlrig.orchestration.validation import *
from mlrig.orchestration.worker import *
from mlrig.orchestration.worker_launch import *

__all__ = [
    *candidates.__all__,
    *configs.__all__,
    *demo.__all__,
    *distributed.__all__,
    *errors.__all__,
    *requests.__all__,
    *runs.__all__,
    *schemas.__all__,
    *selection.__all__,
    *services.__all__,
    *stages.__all__,
    *state.__all__,
    *sweep.__all__,
    *validation.__all__,
    *worker.__all__,
    *worker_launch.__all__,
]

__version__: str  # from the installed metadata, on first access; not in __all__

if not TYPE_CHECKING:  # hidden from type checkers, which would accept any name of a module with __getattr__

    def __getattr__(name: str) -> str:
        # importlib.metadata is slow to import (as slow as mlrig.paths): read the version only when asked.
        if name != "__version__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib.metadata import version

        return version("mlrig-orchestration")
