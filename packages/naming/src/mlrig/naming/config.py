"""``NamingConfig``: the naming configs of one run, loaded once and passed down as ``naming_config=``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlrig.naming.errors import NamingError
from mlrig.naming.mlflow_config import MlflowNamingSettings, get_mlflow_settings
from mlrig.naming.policy import NamingPolicy, get_naming_policy
from mlrig.naming.tags import TagsRegistry, load_tags_registry
from mlrig.paths import PathsConfig, infer_config_dir, load_paths_config, normalize_storage_env


@dataclass(frozen=True, slots=True)
class NamingConfig:
    """Everything naming reads from config for one run: the compiled ``naming.yaml`` policy, the
    ``tags.yaml`` registry, the ``mlflow.yaml`` naming settings and the run's ``paths.yaml``.

    Immutable. Made by :func:`load_naming_config` once per run and passed down as ``naming_config=``; a
    function given it reads no file (and ignores its ``config_dir`` argument). To see edited files, load a
    new one.
    """

    config_dir: Path
    policy: NamingPolicy
    tags: TagsRegistry
    mlflow: MlflowNamingSettings
    paths: PathsConfig


def load_naming_config(
    config_dir: Path | str | None = None,
    storage_env: str | None = None,
    *,
    paths_config: PathsConfig | None = None,
) -> NamingConfig:
    """Read and validate ``naming.yaml``, ``tags.yaml``, ``mlflow.yaml`` and ``paths.yaml`` of ``config_dir``
    (``None``: ``mlrig.paths.infer_config_dir()``, resolved once for all four) now.

    ``paths.yaml`` is loaded for ``storage_env`` (``mlrig.paths.load_paths_config``), unless the run already
    holds its ``paths_config``, which is then used as is (its ``storage_env`` must agree). Absent naming files
    give the packaged defaults; an invalid one raises :class:`NamingConfigError`.
    """
    resolved = Path(config_dir) if config_dir is not None else infer_config_dir()
    if paths_config is None:
        paths_config = load_paths_config(resolved, storage_env)
    elif storage_env and paths_config.storage_env != normalize_storage_env(storage_env):
        raise NamingError(
            f"paths_config was loaded for storage_env {paths_config.storage_env!r}, not {storage_env!r}"
        )
    return NamingConfig(
        config_dir=resolved,
        policy=get_naming_policy(resolved),
        tags=load_tags_registry(resolved),
        mlflow=get_mlflow_settings(resolved),
        paths=paths_config,
    )
