"""Reading v2 HPO paths back, and finding study/trial folders by their hashes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from mlrig.paths.config import PROCESS_PATTERN_KEYS, PathsConfig, config_for
from mlrig.paths.errors import PathsConfigError
from mlrig.paths.layout import outputs_base
from mlrig.paths.normalize import check_output_parts, normalize_component
from mlrig.paths.platforms import STORAGE_ENVS, normalize_storage_env

# The Optuna study database inside each study folder.
STUDY_DB: Final = "study.db"

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


def parse_study_dir(path: Path | str) -> dict[str, str] | None:
    """``{storage_env, model, study8}`` of a study folder ``.../<env>/<model>/study-<8 hex>``, else None."""
    parts = _parts(path)
    study = _STUDY.fullmatch(parts[-1]) if len(parts) >= 3 else None
    if study is None:
        return None
    return {"storage_env": parts[-3], "model": parts[-2], "study8": study.group(1).lower()}


# The reference project's name for the same function.
parse_hpo_path_v2 = parse_hpo_path


def is_v2_path(path: Path | str) -> bool:
    """Whether ``path`` is (inside) a v2 ``<env>/<model>/study-<8>/trial-<8>`` folder; agrees with
    :func:`parse_hpo_path`."""
    return parse_hpo_path(path) is not None


def build_study_dir(
    root_dir: Path | str, model: str, study_key_hash: str, *, storage_env: str, config: PathsConfig
) -> Path:
    """The study folder of ``study_key_hash``: ``<outputs base of config>/<outputs.hpo>/`` and the segments of
    the ``hpo`` pattern (``patterns.hpo_v2``) up to the one holding ``{study8}``, e.g.
    ``.../hpo/local/distilbert/study-1a2b3c4d``. ``storage_env`` fills ``{storage_env}``; ``config``'s own
    env decides the base (an HPO study lives on local disk whatever env its runs use). Creates nothing."""
    key = PROCESS_PATTERN_KEYS["hpo"]
    compiled = config.template(key)
    values = {
        "storage_env": normalize_component(storage_env, config.normalize),
        "model": normalize_component(model, config.normalize),
        "study8": normalize_component(study_key_hash[:8].lower(), config.normalize),
    }
    parts = config.outputs["hpo"].split("/")
    for template, names in zip(compiled.segments, compiled.segment_names, strict=True):
        missing = [name for name in names if name not in values]
        if missing:
            raise PathsConfigError(
                f"a study folder has only storage_env, model, study8 up to {{study8}}; found {missing}",
                file=config.file_label,
                key=f"patterns.{key}",
            )
        parts.append(template % values)
        if "study8" in names:
            return check_output_parts(
                str(outputs_base(root_dir, config)), parts, config.normalize.max_path_length
            )
    raise PathsConfigError("pattern has no {study8} segment", file=config.file_label, key=f"patterns.{key}")


def _study_folder(
    root_dir: Path | str, config_dir: Path | str | None, model: str, study_key_hash: str, env: str
) -> Path:
    config = config_for(root_dir, config_dir, env, None)
    return build_study_dir(root_dir, model, study_key_hash, storage_env=env, config=config)


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


def find_study_dirs(
    root_dir: Path | str, config_dir: Path | str | None = None, storage_env: str | None = None
) -> list[Path]:
    """Every existing study folder under the HPO outputs (the ``hpo`` pattern's segments up to ``{study8}``),
    sorted; all storage envs unless ``storage_env`` is given. Reads the tree only to that depth."""
    found: set[Path] = set()
    for env in _envs(storage_env):
        config = config_for(root_dir, config_dir, env, None)
        names = config.template(PROCESS_PATTERN_KEYS["hpo"]).segment_names
        depth = next((i for i, seg in enumerate(names) if "study8" in seg), None)
        if depth is None:
            continue
        base = outputs_base(root_dir, config).joinpath(*config.outputs["hpo"].split("/"))
        pattern = "/".join(["*"] * depth + ["study-*"])
        found.update(p for p in base.glob(pattern) if p.is_dir() and parse_study_dir(p) is not None)
    return sorted(found)


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
