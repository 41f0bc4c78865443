"""mlrig.paths: where things are -- config-driven output layout, roots, normalisation, cache files, the backup
mapping, YAML config reading and atomic writes. The bottom layer of mlrig; see the package README."""

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
    clear_config_cache,
    freeze,
    read_yaml_config,
    thaw,
)
from mlrig.paths.layout import get_outputs_dir, outputs_base, render_output_path, resolve_output_path
from mlrig.paths.normalize import NormalizePolicy, normalize_component, validate_output_path
from mlrig.paths.parse import (
    find_study_by_hash,
    find_trial_by_hash,
    is_v2_path,
    parse_hpo_path,
    parse_hpo_path_v2,
)
from mlrig.paths.platforms import STORAGE_ENVS, detect_platform, normalize_storage_env
from mlrig.paths.roots import clear_repo_root_cache, detect_repo_root, infer_config_dir, validate_repo_root


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata on first use: importlib.metadata is slow to import.
    if name == "__version__":
        from importlib.metadata import version

        return version("mlrig-paths")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "NAME_ONLY_TOKENS",
    "PATH_TOKENS",
    "PROCESS_PATTERN_KEYS",
    "STORAGE_ENVS",
    "DriveSettings",
    "NormalizePolicy",
    "PathScopeError",
    "PathsConfig",
    "PathsConfigError",
    "PathsError",
    "RepoRootSettings",
    "__version__",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clear_config_cache",
    "clear_repo_root_cache",
    "detect_platform",
    "detect_repo_root",
    "find_study_by_hash",
    "find_trial_by_hash",
    "freeze",
    "get_cache_file_path",
    "get_cache_strategy_config",
    "get_drive_backup_base",
    "get_drive_backup_path",
    "get_outputs_dir",
    "get_timestamped_cache_filename",
    "infer_config_dir",
    "is_drive_path",
    "is_v2_path",
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
