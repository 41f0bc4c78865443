"""mlrig.naming: run identity -- contexts, deterministic keys and fingerprints, run names, tags and experiment
names.

Pure functions over config: nothing here reserves versions, talks to MLflow or reads identity from environment
variables. See the package README for every key, pattern and tag. Each module lists the names it exports in
its ``__all__``; this package exports exactly those.
"""

from mlrig.naming import (
    canonical,
    config,
    context,
    errors,
    experiments,
    fingerprints,
    keys,
    mlflow_config,
    outputs,
    policy,
    run_keys,
    run_names,
    tags,
)
from mlrig.naming._version import __version__ as __version__  # not in __all__
from mlrig.naming.canonical import *
from mlrig.naming.config import *
from mlrig.naming.context import *
from mlrig.naming.errors import *
from mlrig.naming.experiments import *
from mlrig.naming.fingerprints import *
from mlrig.naming.keys import *
from mlrig.naming.mlflow_config import *
from mlrig.naming.outputs import *
from mlrig.naming.policy import *
from mlrig.naming.run_keys import *
from mlrig.naming.run_names import *
from mlrig.naming.tags import *

__all__ = [
    *canonical.__all__,
    *config.__all__,
    *context.__all__,
    *errors.__all__,
    *experiments.__all__,
    *fingerprints.__all__,
    *keys.__all__,
    *mlflow_config.__all__,
    *outputs.__all__,
    *policy.__all__,
    *run_keys.__all__,
    *run_names.__all__,
    *tags.__all__,
]
