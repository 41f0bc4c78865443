"""mlrig.tracking: MLflow run trees, trackers, run index, version counter, finder, queries and artifacts.

Importing this package changes nothing global in MLflow (no tracking URI, no experiment, no patches). Each
module lists the names it exports in its ``__all__``; this package exports exactly those.
"""

from mlrig.tracking import (
    artifacts,
    checkpoint_fetch,
    counter,
    errors,
    finder,
    index,
    lifecycle,
    pg_state,
    queries,
    results,
    retry,
    runs,
    setup,
    shared_sweep,
    sweep,
    takeover,
    tracker_base,
    trackers,
    tree,
    trial_lookup,
    trial_runs,
    urls,
    writer,
)
from mlrig.tracking._version import __version__ as __version__  # not in __all__
from mlrig.tracking.artifacts import *
from mlrig.tracking.checkpoint_fetch import *
from mlrig.tracking.counter import *
from mlrig.tracking.errors import *
from mlrig.tracking.finder import *
from mlrig.tracking.index import *
from mlrig.tracking.lifecycle import *
from mlrig.tracking.pg_state import *
from mlrig.tracking.queries import *
from mlrig.tracking.results import *
from mlrig.tracking.retry import *
from mlrig.tracking.runs import *
from mlrig.tracking.setup import *
from mlrig.tracking.shared_sweep import *
from mlrig.tracking.sweep import *
from mlrig.tracking.takeover import *
from mlrig.tracking.tracker_base import *
from mlrig.tracking.trackers import *
from mlrig.tracking.tree import *
from mlrig.tracking.trial_lookup import *
from mlrig.tracking.trial_runs import *
from mlrig.tracking.urls import *
from mlrig.tracking.writer import *

__all__ = [
    *artifacts.__all__,
    *checkpoint_fetch.__all__,
    *counter.__all__,
    *errors.__all__,
    *finder.__all__,
    *index.__all__,
    *lifecycle.__all__,
    *pg_state.__all__,
    *queries.__all__,
    *results.__all__,
    *retry.__all__,
    *runs.__all__,
    *setup.__all__,
    *shared_sweep.__all__,
    *sweep.__all__,
    *takeover.__all__,
    *tracker_base.__all__,
    *trackers.__all__,
    *tree.__all__,
    *trial_lookup.__all__,
    *trial_runs.__all__,
    *urls.__all__,
    *writer.__all__,
]
