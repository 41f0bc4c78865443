"""mlrig.storage: atomic, incremental, SQLite-safe backup / restore / verify of output paths onto Google Drive
(Colab) or any mounted folder. The local→backup mapping itself lives in ``mlrig.paths.map_to_backup``; see the
package README for the guarantees.

Its public names are listed once, in ``__init__.pyi``: each loads with its module on first use, and
``EAGER_IMPORT=1`` loads them all at import.
"""

import lazy_loader as lazy

from mlrig.storage._version import __version__ as __version__

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
