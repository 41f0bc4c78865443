"""``build_output_path``: the one way to get a run's directory (context → tokens → paths renderer)."""

from __future__ import annotations

from pathlib import Path

from mlrig.naming.context import NamingContext
from mlrig.paths import infer_config_dir, load_paths_config, render_output_path


def build_output_path(
    root_dir: Path | str, context: NamingContext, config_dir: Path | str | None = None
) -> Path:
    """The output directory of ``context`` under ``root_dir`` per ``paths.yaml`` (with ``storage_env``
    overrides).

    ``config_dir=None`` resolves the project's config directory from ``root_dir`` like every other config
    reader. Does not create the directory; paths errors (``PathsError``) propagate unchanged.
    """
    # Arguments go through as given (str or Path): building Path objects here would double the call's cost.
    cfg_dir = config_dir if config_dir is not None else infer_config_dir(root_dir=Path(root_dir))
    storage_env = context.storage_env or ""
    config = load_paths_config(cfg_dir, storage_env=storage_env)
    return render_output_path(
        root_dir, context.process_type, context.tokens(), storage_env=storage_env, config=config
    )
