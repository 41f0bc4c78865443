"""Finding the repository root and the config directory."""

from __future__ import annotations

import logging
from pathlib import Path

from mlrig.paths.config import PATHS_FILE, RepoRootSettings, default_config_dir, load_paths_config
from mlrig.paths.errors import PathsError
from mlrig.paths.platforms import detect_platform

logger = logging.getLogger(__name__)


def _settings_for(candidate: Path, settings: RepoRootSettings | None) -> RepoRootSettings:
    if settings is not None:
        return settings
    config_dir = default_config_dir(candidate)
    return load_paths_config(config_dir if (config_dir / PATHS_FILE).is_file() else None).repository_root


def validate_repo_root(candidate: Path | str, settings: RepoRootSettings | None = None) -> bool:
    """Whether ``candidate`` looks like the repository root: every required marker exists.

    ``extra_markers`` are optional, as in the reference: when none of them exists it is logged, never a
    failure (a Colab or Kaggle copy of a project often has no ``.git``)."""
    path = Path(candidate)
    if not path.is_dir():
        return False
    cfg = _settings_for(path, settings)
    if not all((path / marker).exists() for marker in cfg.required_markers):
        return False
    if cfg.extra_markers and not any((path / marker).exists() for marker in cfg.extra_markers):
        logger.info(
            "%s has the required markers but none of the extra markers %s; accepted as the repository root",
            path,
            ", ".join(cfg.extra_markers),
        )
    return True


def _walk_up(start: Path, depth: int) -> list[Path]:
    chain = [start, *start.parents]
    return chain[: depth + 1]


def _search(
    start_path: Path | None,
    config_dir: Path | None,
    output_dir: Path | None,
    settings: RepoRootSettings | None,
) -> Path | None:
    depth = (settings or RepoRootSettings()).max_depth
    if config_dir is not None:
        cfg = Path(config_dir).absolute()
        candidate = cfg.parent if cfg.name == "config" else cfg
        if validate_repo_root(candidate, settings):
            return candidate
    if output_dir is not None:
        # The parent of the nearest ``outputs`` component, whether or not that directory exists yet.
        for level in _walk_up(Path(output_dir).absolute(), depth):
            if level.name == "outputs" and validate_repo_root(level.parent, settings):
                return level.parent
    if start_path is not None:
        start = Path(start_path).absolute()
        if start.is_file():
            start = start.parent
        for level in _walk_up(start, depth):
            if validate_repo_root(level, settings):
                return level
    cfg_settings = settings or RepoRootSettings()
    for candidate_str in cfg_settings.workspace_candidates:
        if validate_repo_root(candidate_str, settings):
            return Path(candidate_str)
    for candidate_str in cfg_settings.platform_candidates.get(detect_platform(), ()):
        candidate = Path(candidate_str)
        if validate_repo_root(candidate, settings):
            return candidate
        if candidate.is_dir():
            for child in sorted(p for p in candidate.iterdir() if p.is_dir()):
                if validate_repo_root(child, settings):
                    return child
    for level in _walk_up(Path.cwd(), depth):
        if validate_repo_root(level, settings):
            return level
    return None


def detect_repo_root(
    start_path: Path | str | None = None,
    config_dir: Path | str | None = None,
    output_dir: Path | str | None = None,
) -> Path:
    """The repository root: from ``config_dir``, then ``output_dir``, ``start_path``, the configured workspace
    and platform candidates, and the current directory's ancestors.

    When nothing matches, returns the current directory with a warning (``search.fallback_to_cwd``) or raises
    ``PathsError``. Searched afresh on every call: a run finds its root once and passes it down.
    """
    settings = None
    if config_dir is not None:
        settings = load_paths_config(config_dir).repository_root
    found = _search(
        None if start_path is None else Path(start_path),
        None if config_dir is None else Path(config_dir),
        None if output_dir is None else Path(output_dir),
        settings,
    )
    cfg = settings or RepoRootSettings()
    if found is None:
        if not cfg.fallback_to_cwd:
            raise PathsError(
                "could not find the repository root from "
                f"start_path={start_path!r}, config_dir={config_dir!r}, output_dir={output_dir!r} "
                "and repository_root.search.fallback_to_cwd is false"
            )
        if cfg.warn_on_fallback:
            logger.warning("repository root not found; falling back to the current directory %s", Path.cwd())
        return Path.cwd()
    return found


def infer_config_dir(
    config_dir: Path | str | None = None,
    path: Path | str | None = None,
    start_path: Path | str | None = None,
    root_dir: Path | str | None = None,
) -> Path:
    """The project's config directory: ``config_dir`` as given, else ``<root_dir>/config``, else
    ``<repo root>/config`` with the root detected from ``path``/``start_path`` (or the current directory)."""
    if config_dir is not None:
        return Path(config_dir)
    if root_dir is not None:
        return default_config_dir(root_dir)
    start = start_path if start_path is not None else path
    return default_config_dir(detect_repo_root(start_path=start, output_dir=path))


def resolve_project_paths(
    output_dir: Path | str | None = None,
    config_dir: Path | str | None = None,
    start_path: Path | str | None = None,
) -> tuple[Path, Path]:
    """``(root_dir, config_dir)`` of the project from any path (the reference signature).

    With ``config_dir`` the root is detected from it and ``config_dir`` is returned as given; otherwise the
    root is detected from ``output_dir``/``start_path`` (then the current directory) and the config dir is
    ``<root>/config``.
    """
    if config_dir is not None:
        return detect_repo_root(config_dir=config_dir), Path(config_dir)
    root = detect_repo_root(start_path=start_path, output_dir=output_dir)
    return root, infer_config_dir(root_dir=root)
