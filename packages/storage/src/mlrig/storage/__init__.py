"""mlrig.storage: atomic, incremental, SQLite-safe backup / restore / verify of output paths onto Google Drive
(Colab) or any mounted folder. The local→backup mapping itself lives in ``mlrig.paths.map_to_backup``; see the
package README for the guarantees."""

from importlib.metadata import version as _version

from mlrig.storage.colab import create_colab_store, mount_colab_drive
from mlrig.storage.errors import BackupConfigError, BackupError
from mlrig.storage.fileops import copy_file_atomic, snapshot_sqlite
from mlrig.storage.results import (
    BackupAction,
    BackupResult,
    EnsureLocalOptions,
    PathCallback,
    Progress,
    ProgressCallback,
    SyncStats,
    VerifyReport,
)
from mlrig.storage.store import DriveBackupStore
from mlrig.storage.sync import sync_tree

__version__ = _version("mlrig-storage")

__all__ = [
    "BackupAction",
    "BackupConfigError",
    "BackupError",
    "BackupResult",
    "DriveBackupStore",
    "EnsureLocalOptions",
    "PathCallback",
    "Progress",
    "ProgressCallback",
    "SyncStats",
    "VerifyReport",
    "__version__",
    "copy_file_atomic",
    "create_colab_store",
    "mount_colab_drive",
    "snapshot_sqlite",
    "sync_tree",
]
