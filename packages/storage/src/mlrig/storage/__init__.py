"""mlrig.storage: atomic, incremental, SQLite-safe backup / restore / verify of output paths onto Google Drive
(Colab) or any mounted folder. The local→backup mapping itself lives in ``mlrig.paths.map_to_backup``; see the
package README for the guarantees. Each module lists the names it exports in its ``__all__``; this package
exports exactly those.
"""

from typing import TYPE_CHECKING

from mlrig.storage import callbacks, colab, errors, fileops, results, snapshots, sqlite_check, store, sync
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

__version__: str  # from the installed metadata, on first access; not in __all__

if not TYPE_CHECKING:  # hidden from type checkers, which would accept any name of a module with __getattr__

    def __getattr__(name: str) -> str:
        # importlib.metadata is slow to import (as slow as mlrig.paths): read the version only when asked.
        if name != "__version__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib.metadata import version

        return version("mlrig-storage")
