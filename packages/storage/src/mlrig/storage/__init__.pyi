from .callbacks import backup_hpo_study_to_drive as backup_hpo_study_to_drive
from .callbacks import create_incremental_backup_callback as create_incremental_backup_callback
from .callbacks import create_study_db_backup_callback as create_study_db_backup_callback
from .callbacks import immediate_backup_if_needed as immediate_backup_if_needed
from .colab import create_colab_store as create_colab_store
from .colab import mount_colab_drive as mount_colab_drive
from .errors import BackupConfigError as BackupConfigError
from .errors import BackupError as BackupError
from .fileops import copy_file_atomic as copy_file_atomic
from .fileops import snapshot_sqlite as snapshot_sqlite
from .results import BackupAction as BackupAction
from .results import BackupResult as BackupResult
from .results import EnsureLocalOptions as EnsureLocalOptions
from .results import PathCallback as PathCallback
from .results import Progress as Progress
from .results import ProgressCallback as ProgressCallback
from .results import SyncStats as SyncStats
from .results import VerifyReport as VerifyReport
from .snapshots import CoalescingSnapshotter as CoalescingSnapshotter
from .sqlite_check import SqliteCheck as SqliteCheck
from .sqlite_check import check_sqlite as check_sqlite
from .sqlite_check import recover_sqlite as recover_sqlite
from .store import DriveBackupStore as DriveBackupStore
from .sync import sync_tree as sync_tree

__version__: str
