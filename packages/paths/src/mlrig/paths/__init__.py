"""mlrig.paths: where things are -- config-driven output layout, roots, normalisation, cache files, the backup
mapping, YAML config reading and atomic writes, and ``MlrigError``, the root of every mlrig error. The bottom
layer of mlrig; see the package README.

Each module lists the names it exports in its ``__all__``; this package exports exactly those.
"""

from mlrig.paths import cache, config, drive, errors, files, layout, normalize, owner, parse, platforms, roots
from mlrig.paths._version import __version__ as __version__  # not in __all__
from mlrig.paths.cache import *
from mlrig.paths.config import *
from mlrig.paths.drive import *
from mlrig.paths.errors import *
from mlrig.paths.files import *
from mlrig.paths.layout import *
from mlrig.paths.normalize import *
from mlrig.paths.owner import *
from mlrig.paths.parse import *
from mlrig.paths.platforms import *
from mlrig.paths.roots import *

__all__ = [
    *cache.__all__,
    *config.__all__,
    *drive.__all__,
    *errors.__all__,
    *files.__all__,
    *layout.__all__,
    *normalize.__all__,
    *owner.__all__,
    *parse.__all__,
    *platforms.__all__,
    *roots.__all__,
]
