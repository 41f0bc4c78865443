"""mlrig.paths: where things are -- config-driven output layout, roots, normalisation, cache files, the backup
mapping, YAML config reading and atomic writes. The bottom layer of mlrig; see the package README.

Names load on first use (PEP 562, :func:`lazy_exports`): ``import mlrig.paths`` stays cheap, and
``from mlrig.paths import resolve_output_path`` imports only the layout modules.
"""

from __future__ import annotations

from mlrig.paths.lazy import get_logger, lazy_exports

# Not typing.TYPE_CHECKING: importing typing costs more than this module (type checkers honour the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlrig.paths.cache import (
        get_cache_file_path,
        get_cache_strategy_config,
        get_timestamped_cache_filename,
        load_cache_file,
        save_cache_with_dual_strategy,
    )
    from mlrig.paths.config import (
        NAME_ONLY_TOKENS,
        PATH_TOKENS,
        PROCESS_PATTERN_KEYS,
        DriveSettings,
        PathsConfig,
        RepoRootSettings,
        load_paths_config,
    )
    from mlrig.paths.drive import get_drive_backup_base, get_drive_backup_path, is_drive_path, map_to_backup
    from mlrig.paths.errors import PathsConfigError, PathScopeError, PathsError
    from mlrig.paths.files import (
        atomic_write_bytes,
        atomic_write_json,
        atomic_write_text,
        freeze,
        read_yaml_config,
        thaw,
    )
    from mlrig.paths.layout import get_outputs_dir, outputs_base, render_output_path, resolve_output_path
    from mlrig.paths.normalize import NormalizePolicy, is_within, normalize_component, validate_output_path
    from mlrig.paths.parse import (
        find_study_by_hash,
        find_trial_by_hash,
        is_v2_path,
        parse_hpo_path,
        parse_hpo_path_v2,
    )
    from mlrig.paths.platforms import STORAGE_ENVS, detect_platform, normalize_storage_env
    from mlrig.paths.roots import detect_repo_root, infer_config_dir, validate_repo_root

_EXPORTS = {
    "get_cache_file_path": "cache",
    "get_cache_strategy_config": "cache",
    "get_timestamped_cache_filename": "cache",
    "load_cache_file": "cache",
    "save_cache_with_dual_strategy": "cache",
    "NAME_ONLY_TOKENS": "config",
    "PATH_TOKENS": "config",
    "PROCESS_PATTERN_KEYS": "config",
    "DriveSettings": "config",
    "PathsConfig": "config",
    "RepoRootSettings": "config",
    "load_paths_config": "config",
    "get_drive_backup_base": "drive",
    "get_drive_backup_path": "drive",
    "is_drive_path": "drive",
    "map_to_backup": "drive",
    "PathsConfigError": "errors",
    "PathScopeError": "errors",
    "PathsError": "errors",
    "atomic_write_bytes": "files",
    "atomic_write_json": "files",
    "atomic_write_text": "files",
    "freeze": "files",
    "read_yaml_config": "files",
    "thaw": "files",
    "get_outputs_dir": "layout",
    "outputs_base": "layout",
    "render_output_path": "layout",
    "resolve_output_path": "layout",
    "NormalizePolicy": "normalize",
    "is_within": "normalize",
    "normalize_component": "normalize",
    "validate_output_path": "normalize",
    "find_study_by_hash": "parse",
    "find_trial_by_hash": "parse",
    "is_v2_path": "parse",
    "parse_hpo_path": "parse",
    "parse_hpo_path_v2": "parse",
    "STORAGE_ENVS": "platforms",
    "detect_platform": "platforms",
    "normalize_storage_env": "platforms",
    "detect_repo_root": "roots",
    "infer_config_dir": "roots",
    "validate_repo_root": "roots",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, distribution="mlrig-paths")

__all__ = [
    "DriveSettings",
    "NAME_ONLY_TOKENS",
    "NormalizePolicy",
    "PATH_TOKENS",
    "PROCESS_PATTERN_KEYS",
    "PathScopeError",
    "PathsConfig",
    "PathsConfigError",
    "PathsError",
    "RepoRootSettings",
    "STORAGE_ENVS",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "detect_platform",
    "detect_repo_root",
    "find_study_by_hash",
    "find_trial_by_hash",
    "freeze",
    "get_cache_file_path",
    "get_cache_strategy_config",
    "get_drive_backup_base",
    "get_logger",
    "get_drive_backup_path",
    "get_outputs_dir",
    "get_timestamped_cache_filename",
    "infer_config_dir",
    "is_drive_path",
    "is_v2_path",
    "is_within",
    "lazy_exports",
    "load_cache_file",
    "load_paths_config",
    "map_to_backup",
    "normalize_component",
    "normalize_storage_env",
    "outputs_base",
    "parse_hpo_path",
    "parse_hpo_path_v2",
    "read_yaml_config",
    "render_output_path",
    "resolve_output_path",
    "save_cache_with_dual_strategy",
    "thaw",
    "validate_output_path",
    "validate_repo_root",
]
