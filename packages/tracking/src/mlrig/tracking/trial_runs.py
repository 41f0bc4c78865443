"""HPO trial runs in MLflow, as mlrig writes them (``code.stage=hpo_trial``) and as the reference project did
(``code.stage=hpo`` on every HPO run; a trial is the one with a parent run and a trial number): which runs are
trials, and their trial numbers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from mlrig.naming import TagsRegistry, load_tags_registry, parse_trial_number
from mlrig.tracking.queries import query_runs_by_tags

logger = logging.getLogger(__name__)

REFERENCE_TRIAL_STAGE: Final = "hpo"
# mlrig's value first: where both exist, a run mlrig wrote is preferred.
TRIAL_STAGES: Final = ("hpo_trial", REFERENCE_TRIAL_STAGE)


def extract_trial_number(run: Run, config_dir: Path | str | None = None) -> int | None:
    """The trial number of ``run`` (reference order): tag ``trial_number``, ``code.hpo.trial_number``,
    ``code.trial``, then ``trial[_-]<n>`` in the run name; None when none of them holds one."""
    registry = load_tags_registry(config_dir)
    tags = run.data.tags
    for section, name in (("legacy", "trial_number"), ("hpo", "trial_number"), ("legacy", "trial")):
        value = tags.get(registry.key(section, name))
        if value is None:
            continue
        try:
            return int(value)
        except ValueError:
            logger.warning("run %s: tag %s=%r is not a trial number", run.info.run_id, name, value)
    name_tag = tags.get("mlflow.runName") or run.info.run_name
    return parse_trial_number(name_tag)


def is_trial_run(run: Run, registry: TagsRegistry) -> bool:
    """Whether ``run`` is an HPO trial run: ``code.stage=hpo_trial``, or the reference's ``code.stage=hpo``
    on a child run that carries a trial number (the reference's sweep parents carry the same stage)."""
    tags = run.data.tags
    stage = tags.get(registry.key("process", "stage"))
    if stage == "hpo_trial":
        return True
    return (
        stage == REFERENCE_TRIAL_STAGE
        and bool(tags.get(registry.key("mlflow", "parent_run_id")))
        and any(tags.get(registry.key(section, "trial_number")) is not None for section in ("hpo", "legacy"))
    )


def query_trial_runs(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    backbone: str | None = None,
    required_tags: Mapping[str, object] | None = None,
    *,
    status: str | None = "FINISHED",
    config_dir: Path | str | None = None,
) -> list[Run]:
    """Trial runs (mlrig's ``hpo_trial`` and the reference's ``hpo``) in ``experiment_ids``, newest first.

    ``backbone`` matches the ``code.model`` tag (both projects write it; the reference never wrote
    ``code.backbone``); ``required_tags`` and ``status`` (default FINISHED, None for any) narrow further.
    """
    registry = load_tags_registry(config_dir)
    base: dict[str, object] = dict(required_tags or {})
    if backbone is not None:
        base[registry.key("process", "model")] = backbone
    found: dict[str, Run] = {}
    for stage in TRIAL_STAGES:
        wanted = {**base, registry.key("process", "stage"): stage}
        for run in query_runs_by_tags(client, experiment_ids, wanted, status=status):
            if is_trial_run(run, registry):
                found.setdefault(run.info.run_id, run)
    return sorted(found.values(), key=lambda r: (-(r.info.start_time or 0), r.info.run_id))
