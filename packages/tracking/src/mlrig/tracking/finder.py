"""Find the MLflow run of a context: run id, metadata.json, local index, run-key tag, (weak) context / name.

Strong strategies identify the run exactly: ``direct_run_id``, ``metadata_json``, ``local_index`` (confirmed
with one ``get_run``), ``tag_run_key_hash`` and, for a trial context, ``tag_trial_identity`` (study key
hash + trial number on a trial run, mlrig's ``hpo_trial`` or the reference's ``hpo`` stage: reaches reference
runs whose run key differs). Weak ones (``tag_context``, ``run_name_tag``) may match
another run with the same stage/model/name and are only tried when ``strict`` is false. There is no
"most recent run" fallback. ``strict=None`` honours ``run_finder.strict_mode_default`` of ``mlflow.yaml``
(default true).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from mlflow.entities import LifecycleStage, Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlrig.naming import (
    NamingContext,
    NamingError,
    TagsRegistry,
    build_mlflow_run_key,
    build_mlflow_run_key_hash,
    get_run_finder_config,
    load_tags_registry,
)
from mlrig.paths import PathsError, detect_repo_root, infer_config_dir
from mlrig.tracking.errors import TrackingError
from mlrig.tracking.index import find_in_mlflow_index, update_mlflow_index
from mlrig.tracking.queries import build_tag_filter, search_runs_all
from mlrig.tracking.trial_runs import TRIAL_STAGES, is_trial_run

logger = logging.getLogger(__name__)

STRONG_STRATEGIES: Final = (
    "direct_run_id",
    "metadata_json",
    "local_index",
    "tag_run_key_hash",
    "tag_trial_identity",
)
WEAK_STRATEGIES: Final = ("tag_context", "run_name_tag")
NEWEST_FIRST: Final = ("attributes.start_time DESC",)  # stores break ties by run id
_LOOKUP_ERRORS: Final = (MlflowException, OSError, TrackingError)


@dataclass(frozen=True)
class RunLookupReport:
    """Outcome of a run lookup: the run (when found), the strategy that found it and every strategy tried.

    ``error`` explains a miss (or collects the MLflow errors met on the way).
    """

    found: bool
    run_id: str | None = None
    strategy_used: str | None = None
    strategies_attempted: list[str] = field(default_factory=list)
    error: str | None = None
    run: Run | None = field(default=None, repr=False, compare=False)

    @property
    def weak(self) -> bool:
        """True when the run was matched by a weak strategy (possibly not the intended run)."""
        return self.strategy_used in WEAK_STRATEGIES


class _ExperimentMissingError(Exception):
    pass


# Experiment ids by (tracking URI, name), kept briefly: the lookup is a round trip as costly as the index
# path itself, and MLflow never reuses a name while a deleted experiment still holds it.
_EXPERIMENT_TTL_S: Final = 30.0
_experiment_cache: dict[tuple[str, str], tuple[str, float]] = {}


class _Lookup:
    """State of one :func:`find_mlflow_run` call (client, experiment, attempted strategies, errors)."""

    def __init__(self, client: MlflowClient, experiment_name: str) -> None:
        self.client = client
        self.experiment_name = experiment_name
        self.attempted: list[str] = []
        self.errors: list[str] = []
        self._experiment_id: str | None = None

    @property
    def experiment_id(self) -> str:
        """The experiment's id, fetched on first use (an index hit never needs it)."""
        if self._experiment_id is None:
            key = (self.client.tracking_uri, self.experiment_name)
            cached = _experiment_cache.get(key)
            if cached is not None and time.monotonic() - cached[1] < _EXPERIMENT_TTL_S:
                self._experiment_id = cached[0]
            else:
                experiment = self.client.get_experiment_by_name(self.experiment_name)
                if experiment is None:
                    _experiment_cache.pop(key, None)
                    raise _ExperimentMissingError(f"experiment {self.experiment_name!r} not found")
                self._experiment_id = str(experiment.experiment_id)
                _experiment_cache[key] = (self._experiment_id, time.monotonic())
        return self._experiment_id

    def attempt(self, strategy: str, fn: Callable[[], Run | None]) -> RunLookupReport | None:
        self.attempted.append(strategy)
        try:
            run = fn()
        except _LOOKUP_ERRORS as exc:
            logger.warning("run lookup strategy %s failed: %s", strategy, exc)
            self.errors.append(f"{strategy}: {exc}")
            return None
        if run is None:
            return None
        logger.debug("run %s found by %s", run.info.run_id, strategy)
        return RunLookupReport(
            found=True,
            run_id=run.info.run_id,
            strategy_used=strategy,
            strategies_attempted=list(self.attempted),
            error=None,
            run=run,
        )

    def get_run_here(self, run_id: str, source: str, experiment_id: str | None = None) -> Run | None:
        """The run ``run_id`` if it exists, is not deleted and belongs to this experiment (or to
        ``experiment_id``, known to be this experiment's); else None."""
        expected = experiment_id or self.experiment_id
        try:
            run = self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                logger.info("run %s from %s no longer exists", run_id, source)
                return None
            raise
        if run.info.experiment_id != expected:
            logger.warning(
                "run %s from %s is in experiment %s, not %s; ignoring it",
                run_id,
                source,
                run.info.experiment_id,
                expected,
            )
            return None
        if run.info.lifecycle_stage == LifecycleStage.DELETED:
            logger.info("run %s from %s is deleted; ignoring it", run_id, source)
            return None
        return run

    def search_first(self, tags: Mapping[str, object]) -> Run | None:
        """The newest run carrying ``tags`` (MLflow's default order: start time descending, then run id)."""
        tag_filter = build_tag_filter(tags)
        exact = not tag_filter.post_filter
        for run in search_runs_all(
            self.client,
            [self.experiment_id],
            tag_filter.filter_string,
            page_size=1 if exact else 100,
            max_results=1 if exact else None,
        ):
            if tag_filter.matches(run):
                return run
        return None


def _metadata_run_id(output_dir: Path) -> str | None:
    """``run_id`` from ``<output_dir>/metadata.json`` (``mlflow`` as the writers use, or ``mlflow_info``)."""
    path = output_dir / "metadata.json"
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None
    if not isinstance(metadata, dict):
        return None
    for section in ("mlflow", "mlflow_info"):
        info = metadata.get(section)
        if isinstance(info, dict) and isinstance(info.get("run_id"), str) and info["run_id"]:
            return str(info["run_id"])
    return None


def _resolve_root(
    root_dir: Path | str | None, output_dir: Path | str | None, config_dir: Path | str | None
) -> Path | None:
    if root_dir is not None:
        return Path(root_dir)
    if output_dir is None and config_dir is None:
        return None
    try:
        return detect_repo_root(config_dir=config_dir, output_dir=output_dir)
    except PathsError as exc:
        logger.info("no project root for the run index: %s", exc)
        return None


def _context_tags(context: NamingContext, config_dir: Path | str | None) -> dict[str, object]:
    registry = load_tags_registry(config_dir)
    tags: dict[str, object] = {
        registry.key("process", "stage"): context.stage,
        registry.key("process", "model"): context.model,
    }
    if context.environment:
        tags[registry.key("process", "env")] = context.environment
    if context.spec_fp:
        tags[registry.key("paths", "spec_fp")] = context.spec_fp
    if context.stage in ("final_training", "conversion"):
        tags[registry.key("legacy", "variant")] = context.variant
    return tags


def find_mlflow_run(
    experiment_name: str,
    context: NamingContext | None = None,
    run_id: str | None = None,
    output_dir: Path | str | None = None,
    run_key_hash: str | None = None,
    strict: bool | None = None,
    root_dir: Path | str | None = None,
    config_dir: Path | str | None = None,
    *,
    run_name: str | None = None,
    client: MlflowClient | None = None,
    tracking_uri: str | None = None,
) -> RunLookupReport:
    """Find the run of ``context`` / ``run_key_hash`` / ``run_id`` in ``experiment_name``; never raises.

    Tries, in order: ``direct_run_id``, ``metadata_json`` (``output_dir/metadata.json``), ``local_index`` (the
    run index under ``root_dir``, confirmed with ``get_run``), ``tag_run_key_hash`` (newest run tagged
    ``code.run_key_hash``; a hit is written back to the index), ``tag_trial_identity`` (trial contexts: study
    key hash + trial number, stage ``hpo_trial`` or the reference's ``hpo``), then, only when not strict,
    ``tag_context`` and ``run_name_tag`` (``run_name`` argument). ``strategies_attempted`` lists what was
    actually tried.
    """
    if config_dir is None and root_dir is not None:
        config_dir = infer_config_dir(root_dir=root_dir)
    if strict is None:
        strict = bool(get_run_finder_config(config_dir)["strict_mode_default"])
    lookup = _Lookup(client or MlflowClient(tracking_uri=tracking_uri), experiment_name)
    try:
        return _find(
            lookup, context, run_id, output_dir, run_key_hash, strict, root_dir, config_dir, run_name
        )
    except _ExperimentMissingError as exc:
        return RunLookupReport(found=False, strategies_attempted=lookup.attempted, error=str(exc))


def _find(
    lookup: _Lookup,
    context: NamingContext | None,
    run_id: str | None,
    output_dir: Path | str | None,
    run_key_hash: str | None,
    strict: bool,
    root_dir: Path | str | None,
    config_dir: Path | str | None,
    run_name: str | None,
) -> RunLookupReport:
    client, experiment_name = lookup.client, lookup.experiment_name
    registry = load_tags_registry(config_dir)

    if run_id:
        found = lookup.attempt("direct_run_id", lambda: lookup.get_run_here(run_id, "the run_id argument"))
        if found:
            return found
    if output_dir is not None:
        meta_dir = Path(output_dir)

        def from_metadata() -> Run | None:
            meta_id = _metadata_run_id(meta_dir)
            return lookup.get_run_here(meta_id, str(meta_dir / "metadata.json")) if meta_id else None

        found = lookup.attempt("metadata_json", from_metadata)
        if found:
            return found
    key_hash = run_key_hash
    if not key_hash and context is not None:
        try:
            key_hash = build_mlflow_run_key_hash(build_mlflow_run_key(context))
        except NamingError as exc:
            lookup.errors.append(f"run key of the context: {exc}")
    root = _resolve_root(root_dir, output_dir, config_dir) if key_hash else None
    uri = client.tracking_uri
    if key_hash and root is not None:
        index_root, index_hash = root, key_hash

        def from_index() -> Run | None:
            entry = find_in_mlflow_index(index_root, index_hash, tracking_uri=uri, config_dir=config_dir)
            if entry is None:
                return None
            known = str(entry["experiment_id"]) if entry.get("experiment_name") == experiment_name else None
            run = lookup.get_run_here(str(entry["run_id"]), "the run index", known)
            tagged = run.data.tags.get(registry.key("grouping", "run_key_hash")) if run else None
            if run is not None and tagged not in (None, index_hash):
                logger.warning(
                    "run %s in the run index carries run key hash %s, not %s",
                    run.info.run_id,
                    tagged,
                    index_hash,
                )
                return None
            return run

        found = lookup.attempt("local_index", from_index)
        if found:
            return found
    if key_hash:
        search_hash = key_hash
        found = lookup.attempt(
            "tag_run_key_hash",
            lambda: lookup.search_first({registry.key("grouping", "run_key_hash"): search_hash}),
        )
        if found:
            if root is not None and found.run is not None:
                _remember(root, key_hash, found.run, uri, experiment_name, config_dir)
            return found
    if context is not None and context.stage == "hpo_trial":
        trial_ctx = context
        found = lookup.attempt("tag_trial_identity", lambda: _trial_by_identity(lookup, trial_ctx, registry))
        if found:
            return found
    if not strict:
        if context is not None:
            context_tags = _context_tags(context, config_dir)
            found = lookup.attempt("tag_context", lambda: lookup.search_first(context_tags))
            if found:
                return found
        if run_name:
            name = run_name
            found = lookup.attempt("run_name_tag", lambda: lookup.search_first({"mlflow.runName": name}))
            if found:
                return found
    mode = "strict" if strict else "non-strict"
    tried = ", ".join(lookup.attempted) or "nothing"
    message = f"no run found in experiment {experiment_name!r} ({mode}; tried {tried})"
    if lookup.errors:
        message += "; errors: " + "; ".join(lookup.errors)
    return RunLookupReport(found=False, strategies_attempted=lookup.attempted, error=message)


def _trial_by_identity(lookup: _Lookup, context: NamingContext, registry: TagsRegistry) -> Run | None:
    """The newest trial run of the context's study and trial number (either project's stage value)."""
    for stage in TRIAL_STAGES:
        run = lookup.search_first(
            {
                registry.key("process", "stage"): stage,
                registry.key("process", "model"): context.model,
                registry.key("grouping", "study_key_hash"): context.study_key_hash,
                registry.key("hpo", "trial_number"): context.trial_number,
            }
        )
        if run is not None and is_trial_run(run, registry):
            return run
    return None


def _remember(
    root: Path, key_hash: str, run: Run, uri: str, experiment_name: str, config_dir: Path | str | None
) -> None:
    """Write a tag-search hit back to the run index (best effort: the lookup already succeeded)."""
    try:
        update_mlflow_index(
            root,
            key_hash,
            run.info.run_id,
            run.info.experiment_id,
            uri,
            config_dir=config_dir,
            experiment_name=experiment_name,
            run_name=run.info.run_name,
        )
    except (TrackingError, OSError, PathsError) as exc:
        logger.warning("could not record run %s in the run index under %s: %s", run.info.run_id, root, exc)
