"""mlrig.orchestration: HPO sweeps that resume, champion selection, stage runners and the demo pipeline. See
the package README.

Each module lists the names it exports in its ``__all__``; this package exports exactly those. Importing it
imports optuna and mlflow: the ``mlrig`` command line lives in ``mlrig.cli``, which imports this package only
inside the commands that need it.
"""

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
from mlrig.orchestration._version import __version__ as __version__  # not in __all__
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
