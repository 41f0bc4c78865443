"""Reading v2 HPO paths back, and finding study/trial folders by their hashes."""

from __future__ import annotations

import re
from pathlib import Path

from mlrig.paths.config import config_for
from mlrig.paths.layout import outputs_base
from mlrig.paths.normalize import normalize_component
from mlrig.paths.platforms import STORAGE_ENVS, normalize_storage_env

__all__ = ["find_study_by_hash", "find_trial_by_hash", "is_v2_path", "parse_hpo_path", "parse_hpo_path_v2"]

_STUDY = re.compile(r"study-([0-9a-fA-F]{8})")
_TRIAL = re.compile(r"trial-([0-9a-fA-F]{8})")
_BENCH = re.compile(r"bench-([0-9a-fA-F]{8})")


def _parts(path: Path | str) -> list[str]:
    return [p for p in re.split(r"[/\\]+", str(path)) if p]


def parse_hpo_path(path: Path | str) -> dict[str, str] | None:
    """``{storage_env, model, study8, trial8}`` (+ ``bench8``) from a v2 HPO or benchmarking path, else None.

    Works on any separator and on trailing components (``refit``, ``checkpoint``); hashes are returned in
    lower case. The two components before ``study-<8 hex>`` are the storage env and the model.
    """
    parts = _parts(path)
    for i in range(2, len(parts) - 1):
        study, trial = _STUDY.fullmatch(parts[i]), _TRIAL.fullmatch(parts[i + 1])
        if study and trial:
            info = {
                "storage_env": parts[i - 2],
                "model": parts[i - 1],
                "study8": study.group(1).lower(),
                "trial8": trial.group(1).lower(),
            }
            bench = _BENCH.fullmatch(parts[i + 2]) if i + 2 < len(parts) else None
            if bench:
                info["bench8"] = bench.group(1).lower()
            return info
    return None


# The reference project's name for the same function.
parse_hpo_path_v2 = parse_hpo_path


def is_v2_path(path: Path | str) -> bool:
    """Whether ``path`` is (inside) a v2 ``<env>/<model>/study-<8>/trial-<8>`` folder; agrees with
    :func:`parse_hpo_path`."""
    return parse_hpo_path(path) is not None


def _study_folder(
    root_dir: Path | str, config_dir: Path | str | None, model: str, study_key_hash: str, env: str
) -> Path:
    config = config_for(root_dir, config_dir, env, None)
    model_dir = normalize_component(model, config.normalize)
    hpo = outputs_base(root_dir, config) / config.outputs["hpo"]
    return hpo / env / model_dir / f"study-{study_key_hash[:8].lower()}"


def _envs(storage_env: str | None) -> tuple[str, ...]:
    if storage_env is not None:
        return (normalize_storage_env(storage_env),)
    return STORAGE_ENVS


def find_study_by_hash(
    root_dir: Path | str,
    config_dir: Path | str | None,
    model: str,
    study_key_hash: str,
    storage_env: str | None = None,
) -> Path | None:
    """The existing ``<hpo>/<env>/<model>/study-<study8>`` folder, searched where the writer put it.

    The base is override-aware (as ``build_output_path``), ``model`` is normalised as paths are, and the
    storage envs are tried in a fixed order (only ``storage_env`` when given). None when absent.
    """
    if not study_key_hash or len(study_key_hash) < 8:
        return None
    for env in _envs(storage_env):
        folder = _study_folder(root_dir, config_dir, model, study_key_hash, env)
        if folder.is_dir():
            return folder
    return None


def find_trial_by_hash(
    root_dir: Path | str,
    config_dir: Path | str | None,
    model: str,
    study_key_hash: str,
    trial_key_hash: str,
    storage_env: str | None = None,
) -> Path | None:
    """The existing ``.../study-<study8>/trial-<trial8>`` folder (see :func:`find_study_by_hash`)."""
    if not trial_key_hash or len(trial_key_hash) < 8:
        return None
    for env in _envs(storage_env):
        study = find_study_by_hash(root_dir, config_dir, model, study_key_hash, env)
        if study is not None and (trial := study / f"trial-{trial_key_hash[:8].lower()}").is_dir():
            return trial
    return None
