"""Experiment names and backbone short names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlrig.naming.errors import NamingError

if TYPE_CHECKING:
    from typing import Any, Final

_AML_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,254}")
# Trailing backbone-name tokens that only describe the size/casing of the usual checkpoint, not the family.
_SHORT_NAME_DROP: Final = frozenset({"base", "uncased", "cased"})


def _join(experiment_name: str, stage: str, backbone: str | None) -> str:
    parts = [experiment_name, stage] + ([backbone] if backbone else [])
    for what, value in zip(("experiment_name", "stage", "backbone"), parts, strict=False):
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise NamingError(
                f"{what} must be a non-empty string without surrounding whitespace, got {value!r}"
            )
    return "-".join(parts)


def build_mlflow_experiment_name(experiment_name: str, stage: str, backbone: str | None = None) -> str:
    """``{experiment_name}-{stage}-{backbone}`` (``-{backbone}`` omitted when ``backbone`` is empty), e.g.
    ``resume_ner_baseline-hpo-distilbert`` or ``resume_ner_baseline-benchmark``.
    """
    return _join(experiment_name, stage, backbone)


def build_aml_experiment_name(experiment_name: str, stage: str, backbone: str | None = None) -> str:
    """The same join as :func:`build_mlflow_experiment_name`, checked against Azure ML's experiment-name rules
    (letters, digits, ``_`` and ``-``, starting with a letter or digit, at most 255 characters).
    """
    name = _join(experiment_name, stage, backbone)
    if not _AML_NAME.fullmatch(name):
        raise NamingError(
            f"Azure ML experiment name {name!r} must be 1-255 letters, digits, '_' or '-' and start with a "
            "letter or digit"
        )
    return name


def get_stage_config(experiment_cfg: Any, stage: str) -> dict[str, Any]:
    """``experiment_cfg.stages[stage]`` (attribute or mapping key), or ``{}``."""
    stages = (
        experiment_cfg.get("stages")
        if isinstance(experiment_cfg, Mapping)
        else getattr(experiment_cfg, "stages", None)
    )
    if not stages:
        return {}
    if not isinstance(stages, Mapping):
        raise NamingError(f"experiment config 'stages' must be a mapping, got {type(stages).__name__}")
    found = stages.get(stage) or {}
    if not isinstance(found, Mapping):
        raise NamingError(f"experiment config stages.{stage} must be a mapping, got {found!r}")
    return dict(found)


def extract_short_backbone_name(backbone: str) -> str:
    """A backbone's short name: drop an ``org/`` prefix, then trailing ``base``/``uncased``/``cased`` tokens.

    ``distilbert-base-uncased`` → ``distilbert``, ``distilroberta-base`` → ``distilroberta``,
    ``microsoft/deberta-v3-base`` → ``deberta-v3``, ``xlm-roberta-base`` → ``xlm-roberta``,
    ``bert-large-uncased`` → ``bert-large``.
    """
    if not isinstance(backbone, str) or not backbone.strip():
        raise NamingError(f"backbone must be a non-empty string, got {backbone!r}")
    name = backbone.strip().rstrip("/").rsplit("/", 1)[-1]
    parts = name.split("-")
    while len(parts) > 1 and parts[-1].lower() in _SHORT_NAME_DROP:
        parts.pop()
    return "-".join(parts)
