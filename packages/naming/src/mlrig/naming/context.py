"""``NamingContext``: everything that identifies one run, validated at construction."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlrig.naming._patterns import HEX_ID
from mlrig.naming.errors import NamingError
from mlrig.naming.run_keys import build_trial_id
from mlrig.paths import PathsError, normalize_storage_env

if TYPE_CHECKING:
    from typing import Final

PROCESS_TYPES: Final = (
    "hpo",
    "hpo_refit",
    "benchmarking",
    "final_training",
    "conversion",
    "best_configurations",
)
HPO_STAGES: Final = ("hpo_sweep", "hpo_trial", "hpo_trial_fold")
STAGES: Final = (
    *HPO_STAGES,
    "hpo_refit",
    "benchmarking",
    "final_training",
    "conversion",
    "best_configurations",
)

# Fields each stage cannot do without (its run name, run key or output path needs them).
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "hpo_sweep": ("study_key_hash",),
    "hpo_trial": ("study_key_hash", "trial_number"),
    "hpo_trial_fold": ("study_key_hash", "trial_number", "fold_idx"),
    "hpo_refit": ("study_key_hash", "trial_key_hash", "trial_number"),
    "benchmarking": ("study_key_hash", "trial_key_hash"),
    "final_training": ("spec_fp", "exec_fp"),
    "conversion": ("parent_training_id", "conv_fp"),
    "best_configurations": ("spec_fp",),
}
# Stages whose context fills ``trial_id`` (``build_trial_id``) when it is not given.
_DERIVED_TRIAL_ID: Final = ("hpo_trial", "hpo_trial_fold", "hpo_refit", "benchmarking")
_HASH_FIELDS: Final = (
    "spec_fp",
    "exec_fp",
    "conv_fp",
    "study_key_hash",
    "trial_key_hash",
    "benchmark_config_hash",
)
_PARENT_WITH_VARIANT = re.compile(r"spec[_-]([a-fA-F0-9]+)[_-]exec[_-]([a-fA-F0-9]+)/v(\d+)")
_PARENT = re.compile(r"spec[_-]([a-fA-F0-9]+)[_-]exec[_-]([a-fA-F0-9]+)")


def parse_parent_training_id(parent_id: str | None) -> dict[str, str]:
    """Split ``spec_<fp>_exec_<fp>/v<N>`` (or ``spec-<8>_exec-<8>/vN``) into ``spec_hash``, ``exec_hash``,
    ``variant``.

    Hashes are cut to 8 characters; the variant is ``"1"`` when absent. Unparseable input gives ``"unknown"``
    hashes (reference behaviour); a conversion :class:`NamingContext` rejects such an id instead.
    """
    if not parent_id:
        return {"spec_hash": "unknown", "exec_hash": "unknown", "variant": "1"}
    match = _PARENT_WITH_VARIANT.search(parent_id)
    variant = match.group(3) if match else "1"
    match = match or _PARENT.search(parent_id)
    if not match:
        logging.getLogger(__name__).debug(
            "parent_training_id %r does not match spec_<fp>_exec_<fp>[/v<N>]", parent_id
        )
        return {"spec_hash": "unknown", "exec_hash": "unknown", "variant": "1"}
    spec, exec_ = match.group(1).lower()[:8], match.group(2).lower()[:8]
    return {"spec_hash": spec, "exec_hash": exec_, "variant": str(int(variant))}


def build_parent_training_id(spec_fp: str, exec_fp: str, variant: int = 1) -> str:
    """``spec_<spec_fp>_exec_<exec_fp>/v<variant>`` with full fingerprints (a conversion's parent id)."""
    for field, value in (("spec_fp", spec_fp), ("exec_fp", exec_fp)):
        if not isinstance(value, str) or not HEX_ID.fullmatch(value):
            raise NamingError(f"{field} must be 8-64 lowercase hex characters, got {value!r}")
    if isinstance(variant, bool) or not isinstance(variant, int) or variant < 1:
        raise NamingError(f"variant must be an int >= 1, got {variant!r}")
    return f"spec_{spec_fp}_exec_{exec_fp}/v{variant}"


def _fail(field: str, message: str, value: object) -> NamingError:
    return NamingError(f"NamingContext.{field}: {message} (got {value!r})")


@dataclass(frozen=True, slots=True)
class NamingContext:
    """Identity of one run: process type and stage, model, environments, fingerprints, hashes, trial/fold,
    variant.

    Construction validates every field and the combination (see ``_REQUIRED``), normalises ``environment`` and
    ``storage_env`` (``azure`` → ``azureml``; ``storage_env`` defaults to ``environment``) and fills ``stage``
    when it is left ``None``: ``hpo`` contexts become ``hpo_sweep``, ``hpo_trial`` (a trial id/number is set)
    or ``hpo_trial_fold`` (a fold index is set); other process types use their own name as stage. A trial,
    fold, refit or benchmark context with a ``trial_number`` and no ``trial_id`` gets the study-unique
    ``build_trial_id(study_key_hash, trial_number)``.
    """

    process_type: str
    model: str
    environment: str | None = None
    stage: str | None = None
    storage_env: str | None = None
    study_name: str | None = None
    spec_fp: str | None = None
    exec_fp: str | None = None
    variant: int = 1
    trial_id: str | None = None
    trial_number: int | None = None
    fold_idx: int | None = None
    parent_training_id: str | None = None
    conv_fp: str | None = None
    study_key_hash: str | None = None
    trial_key_hash: str | None = None
    benchmark_config_hash: str | None = None

    def __post_init__(self) -> None:
        if self.process_type not in PROCESS_TYPES:
            raise _fail("process_type", f"must be one of {', '.join(PROCESS_TYPES)}", self.process_type)
        if not isinstance(self.model, str) or not self.model.strip():
            raise _fail("model", "must be a non-empty string", self.model)
        for field in ("environment", "storage_env"):
            raw = getattr(self, field)
            if field == "storage_env" and raw is None:
                object.__setattr__(self, field, self.environment)
                continue
            if raw is not None and not isinstance(raw, str):
                raise _fail(field, "must be a string", raw)
            try:
                object.__setattr__(self, field, normalize_storage_env(raw))
            except PathsError as exc:
                raise _fail(field, str(exc), raw) from exc
        if isinstance(self.variant, bool) or not isinstance(self.variant, int) or self.variant < 1:
            raise _fail("variant", "must be an int >= 1", self.variant)
        for field in ("trial_number", "fold_idx"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise _fail(field, "must be an int >= 0", value)
        for field in _HASH_FIELDS:
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not HEX_ID.fullmatch(value)):
                raise _fail(field, "must be 8-64 lowercase hex characters", value)
        for field in ("trial_id", "study_name", "parent_training_id"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise _fail(field, "must be a non-empty string when set", value)
        stage = self._resolve_stage()
        object.__setattr__(self, "stage", stage)
        for field in _REQUIRED[stage]:
            if getattr(self, field) is None:
                raise _fail(
                    field, f"is required for stage {stage!r} (process_type={self.process_type!r})", None
                )
        if self.fold_idx is not None and stage != "hpo_trial_fold":
            raise _fail("fold_idx", f"is only valid for stage 'hpo_trial_fold', not {stage!r}", self.fold_idx)
        if self.process_type == "conversion":
            self._check_parent()
        if self.trial_id is None and stage in _DERIVED_TRIAL_ID and self.trial_number is not None:
            # One study-unique trial id for tags, tokens and benchmark keys; callers never format it.
            object.__setattr__(self, "trial_id", build_trial_id(str(self.study_key_hash), self.trial_number))

    def _resolve_stage(self) -> str:
        stage = self.stage
        if self.process_type != "hpo":
            if stage is not None and stage != self.process_type:
                hint = (
                    " (use process_type='hpo' for HPO sweep/trial/fold runs)" if stage in HPO_STAGES else ""
                )
                raise _fail(
                    "stage", f"must be None or {self.process_type!r} for this process_type{hint}", stage
                )
            return self.process_type
        if stage is None:
            if self.fold_idx is not None:
                return "hpo_trial_fold"
            return "hpo_trial" if self.trial_id is not None or self.trial_number is not None else "hpo_sweep"
        if stage not in HPO_STAGES:
            hint = " (use process_type='hpo_refit' for refits)" if stage == "hpo_refit" else ""
            raise _fail(
                "stage", f"must be one of {', '.join(HPO_STAGES)} for process_type 'hpo'{hint}", stage
            )
        return stage

    def _check_parent(self) -> None:
        parsed = parse_parent_training_id(self.parent_training_id)
        if parsed["spec_hash"] == "unknown":
            raise _fail(
                "parent_training_id", "must look like 'spec_<hex>_exec_<hex>/v<N>'", self.parent_training_id
            )
        for field, key in (("spec_fp", "spec_hash"), ("exec_fp", "exec_hash")):
            own = getattr(self, field)
            if own is not None and own[:8] != parsed[key]:
                raise _fail(field, f"disagrees with parent_training_id {self.parent_training_id!r}", own)
        parent_variant = int(parsed["variant"])
        if self.variant not in (1, parent_variant):
            raise _fail(
                "variant", f"disagrees with parent_training_id {self.parent_training_id!r}", self.variant
            )
        # A conversion lives under its parent's variant: take it from the parent id so path and name agree.
        object.__setattr__(self, "variant", parent_variant)

    def tokens(self) -> dict[str, str]:
        """Token values for path patterns (``mlrig.paths.render_output_path``), as the reference
        ``build_token_values``.

        Full values (``spec_fp``, ``study_key_hash``, ...) are ``""`` when unset; ``*8`` and ``*_hash`` forms
        are the first 8 characters. For conversions without their own ``spec_fp``/``exec_fp`` the short forms
        come from ``parent_training_id``. ``study_name``, ``trial_number`` and ``fold_idx`` are present only
        when set.
        """
        spec, exec_ = self.spec_fp or "", self.exec_fp or ""
        spec8, exec8 = spec[:8], exec_[:8]
        if self.process_type == "conversion" and not (spec8 and exec8):
            parsed = parse_parent_training_id(self.parent_training_id)
            spec8, exec8 = spec8 or parsed["spec_hash"], exec8 or parsed["exec_hash"]
        conv, study, trial, bench = (
            self.conv_fp or "",
            self.study_key_hash or "",
            self.trial_key_hash or "",
            self.benchmark_config_hash or "",
        )
        conv8, study8, trial8, bench8 = conv[:8], study[:8], trial[:8], bench[:8]
        tokens = {
            "environment": self.environment or "",
            "storage_env": self.storage_env or "",
            "model": self.model,
            "stage": self.stage or "",
            "variant": str(self.variant),
            "trial_id": self.trial_id or "",
            "parent_training_id": self.parent_training_id or "",
            "spec_fp": spec,
            "exec_fp": exec_,
            "conv_fp": conv,
            "study_key_hash": study,
            "trial_key_hash": trial,
            "benchmark_config_hash": bench,
            "spec8": spec8,
            "exec8": exec8,
            "conv8": conv8,
            "study8": study8,
            "trial8": trial8,
            "bench8": bench8,
            "spec_hash": spec8,
            "exec_hash": exec8,
            "conv_hash": conv8,
            "study_hash": study8,
            "trial_hash": trial8,
            "bench_hash": bench8,
        }
        if self.study_name is not None:
            tokens["study_name"] = self.study_name
        if self.trial_number is not None:
            tokens["trial_number"] = str(self.trial_number)
        if self.fold_idx is not None:
            tokens["fold_idx"] = str(self.fold_idx)
        return tokens


def build_token_values(context: NamingContext) -> dict[str, str]:
    """Reference name for :meth:`NamingContext.tokens`."""
    return context.tokens()


def create_naming_context(
    process_type: str,
    model: str,
    spec_fp: str | None = None,
    exec_fp: str | None = None,
    environment: str | None = None,
    stage: str | None = None,
    storage_env: str | None = None,
    study_name: str | None = None,
    variant: int = 1,
    trial_id: str | None = None,
    trial_number: int | None = None,
    fold_idx: int | None = None,
    parent_training_id: str | None = None,
    conv_fp: str | None = None,
    study_key_hash: str | None = None,
    trial_key_hash: str | None = None,
    benchmark_config_hash: str | None = None,
) -> NamingContext:
    """Build a :class:`NamingContext` (reference signature); ``environment=None`` detects the platform."""
    return NamingContext(
        process_type=process_type,
        model=model,
        environment=environment,
        stage=stage,
        storage_env=storage_env,
        study_name=study_name,
        spec_fp=spec_fp,
        exec_fp=exec_fp,
        variant=variant,
        trial_id=trial_id,
        trial_number=trial_number,
        fold_idx=fold_idx,
        parent_training_id=parent_training_id,
        conv_fp=conv_fp,
        study_key_hash=study_key_hash,
        trial_key_hash=trial_key_hash,
        benchmark_config_hash=benchmark_config_hash,
    )
