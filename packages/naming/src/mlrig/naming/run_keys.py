"""Run identity: the trial id, the run key of every stage and the version-counter key -- derived here only.

Trial, fold and refit run keys are built from the context's study key hash and trial number, so two studies of
one backbone never share a run key (the reference's ``hpo:{model}:trial_{n}`` collided across studies). Sweep,
final-training, conversion and benchmark keys keep the reference templates byte for byte.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mlrig.naming.canonical import compute_hash_64
from mlrig.naming.errors import NamingError

if TYPE_CHECKING:
    from mlrig.naming.context import NamingContext

# Reference rule for reading a trial number back from a run name or trial id (``trial_3``, ``trial-3_...``).
_TRIAL_NUMBER = re.compile(r"trial[_-](\d+)")


def _trial_number(trial_number: object) -> int:
    if isinstance(trial_number, bool) or not isinstance(trial_number, int) or trial_number < 0:
        raise NamingError(f"trial_number must be an int >= 0, got {trial_number!r}")
    return trial_number


def build_trial_id(study_key_hash: str, trial_number: int) -> str:
    """The trial id of trial ``trial_number`` of study ``study_key_hash``: ``trial_{n}_{study8}``.

    Unique per study (the reference's ``trial_{n}`` was not); ``parse_trial_number`` reads ``n`` back. A
    ``NamingContext`` of a trial, fold or refit without an explicit ``trial_id`` gets this one.
    """
    if not isinstance(study_key_hash, str) or len(study_key_hash) < 8:
        raise NamingError(f"study_key_hash must be a hex string of >= 8 characters, got {study_key_hash!r}")
    return f"trial_{_trial_number(trial_number)}_{study_key_hash[:8]}"


def parse_trial_number(text: str | None) -> int | None:
    """The trial number in a trial id or run name (``trial_3``, ``trial_3_fold1``, ``trial-3_<id>``), else
    None."""
    if not text:
        return None
    match = _TRIAL_NUMBER.search(text)
    return int(match.group(1)) if match else None


def _trial_scope(context: NamingContext) -> str:
    """``study_{study_key_hash}:trial_{n}``: the study-unique part of trial, fold and refit run keys."""
    if context.study_key_hash is None or context.trial_number is None:
        raise NamingError(
            f"{context.stage} run key requires NamingContext.study_key_hash and trial_number "
            f"(got {context.study_key_hash!r}, {context.trial_number!r})"
        )
    return f"study_{context.study_key_hash}:trial_{context.trial_number}"


def build_mlflow_run_key(context: NamingContext) -> str:
    """The run key of ``context`` (raw ``context.model``).

    ================  ==========================================================================
    hpo_sweep         ``hpo:{model}:study_{study_key_hash}``  (reference)
    hpo_trial         ``hpo:{model}:study_{study_key_hash}:trial_{trial_number}``
    hpo_trial_fold    ``hpo:{model}:study_{study_key_hash}:trial_{trial_number}:fold{fold_idx}``
    hpo_refit         ``hpo_refit:{model}:study_{study_key_hash}:trial_{trial_number}``
    benchmarking      ``benchmark:{model}:{trial_id}``  (reference; ``trial_id`` required)
    final_training    ``final_training:{model}:spec_{spec_fp}:exec_{exec_fp}:v{variant}``  (reference)
    conversion        ``conversion:{model}:{parent_training_id}:conv_{conv_fp}``  (reference)
    other             ``{process_type}:{model}:spec_{spec_fp}``  (reference)
    ================  ==========================================================================

    Trial, fold and refit keys ignore ``trial_id`` (a caller-chosen label such as the reference's ``trial_3``
    would collide across studies); see the package README.
    """
    model, stage = context.model, context.stage
    if stage == "hpo_sweep":
        return f"hpo:{model}:study_{context.study_key_hash}"
    if stage in ("hpo_trial", "hpo_trial_fold", "hpo_refit"):
        prefix = "hpo_refit" if stage == "hpo_refit" else "hpo"
        key = f"{prefix}:{model}:{_trial_scope(context)}"
        return f"{key}:fold{context.fold_idx}" if stage == "hpo_trial_fold" else key
    if stage == "benchmarking":
        if not context.trial_id:
            raise NamingError(
                "benchmarking run key requires NamingContext.trial_id (or trial_number, from which the "
                "context derives it)"
            )
        return f"benchmark:{model}:{context.trial_id}"
    if stage == "final_training":
        return f"final_training:{model}:spec_{context.spec_fp}:exec_{context.exec_fp}:v{context.variant}"
    if stage == "conversion":
        return f"conversion:{model}:{context.parent_training_id}:conv_{context.conv_fp}"
    return f"{context.process_type}:{model}:spec_{context.spec_fp}"


def build_mlflow_run_key_hash(run_key: str) -> str:
    """SHA-256 (64 hex) of a run key."""
    if not isinstance(run_key, str) or not run_key:
        raise NamingError(f"run_key must be a non-empty string, got {run_key!r}")
    return compute_hash_64(run_key)


def build_counter_key(project_name: str, process_type: str, run_key_hash: str, environment: str) -> str:
    """``{project_name}:{process_type}:{run_key_hash}:{environment}``, the run-name version counter's key."""
    for field, value in (
        ("project_name", project_name),
        ("process_type", process_type),
        ("run_key_hash", run_key_hash),
        ("environment", environment),
    ):
        if not isinstance(value, str) or not value or ":" in value:
            raise NamingError(f"{field} must be a non-empty string without ':', got {value!r}")
    return f"{project_name}:{process_type}:{run_key_hash}:{environment}"
