"""``build_output_path``: the one way to get a run's directory (context → tokens → paths renderer)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.naming.context import NamingContext
from mlrig.paths import PathsConfig, infer_config_dir, load_paths_config, render_output_path

if TYPE_CHECKING:
    from mlrig.naming.config import NamingConfig


def build_output_path(
    root_dir: Path | str,
    context: NamingContext,
    config_dir: Path | str | None = None,
    *,
    paths_config: PathsConfig | None = None,
    naming_config: NamingConfig | None = None,
) -> Path:
    """The output directory of ``context`` under ``root_dir`` per ``paths.yaml`` (with ``storage_env``
    overrides).

    ``paths_config`` is the run's loaded paths config (``mlrig.paths.load_paths_config(config_dir,
    storage_env)``, made once per run), else the one in the run's ``naming_config``; without either,
    paths.yaml is loaded now, from ``config_dir`` or (when None) the project's config directory found from
    ``root_dir``. Does not create the directory; paths errors (``PathsError``, e.g. a config loaded for
    another storage environment) propagate unchanged.
    """
    storage_env = context.storage_env or ""
    if paths_config is None and naming_config is not None:
        paths_config = naming_config.paths
    if paths_config is None:
        cfg_dir = config_dir if config_dir is not None else infer_config_dir(root_dir=Path(root_dir))
        paths_config = load_paths_config(cfg_dir, storage_env=storage_env)
    return render_output_path(
        root_dir, context.process_type, context.tokens(), storage_env=storage_env, config=paths_config
    )
