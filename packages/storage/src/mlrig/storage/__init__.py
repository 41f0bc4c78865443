"""mlrig.storage: atomic, incremental, SQLite-safe backup / restore / verify of output paths onto Google Drive
(Colab) or any mounted folder. The local→backup mapping itself lives in ``mlrig.paths.map_to_backup``; see the
package README for the guarantees. Each module lists the names it exports in its ``__all__``; this package
exports exactly those.
"""

from mlrig.storage import callbacks, colab, errors, fileops, results, snapshots, sqlite_check, store, sync
from mlrig.storage._version import __version__ as __version__  # not in __all__
from mlrig.storage.callbacks import *
from mlrig.storage.colab import *
from mlrig.storage.errors import *
from mlrig.storage.fileops import *
from mlrig.storage.results import *
from mlrig.storage.snapshots import *
from mlrig.storage.sqlite_check import *
from mlrig.storage.store import *
from mlrig.storage.sync import *

__all__ = [
    *callbacks.__all__,
    *colab.__all__,
    *errors.__all__,
    *fileops.__all__,
    *results.__all__,
    *snapshots.__all__,
    *sqlite_check.__all__,
    *store.__all__,
    *sync.__all__,
]
