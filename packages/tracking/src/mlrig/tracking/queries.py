"""Run queries: server-side filter strings with safe quoting, full pagination, the objective, best run,
variant groups.

MLflow's filter grammar has no escape sequences: a value is taken verbatim from between its quotes. A value
that cannot be written verbatim in single or double quotes (it holds both quote characters, or ends with a
backslash) is searched with a ``LIKE`` pattern in which the unsafe characters are ``_`` wildcards, and the
exact value is then checked on the client, so no value can inject a clause and none is silently mismatched.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from mlrig.naming import load_tags_registry
from mlrig.tracking.errors import TrackingError

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE: Final = 1000
_MAX_PAGE_SIZE: Final = 50000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD
_IDS_PER_SEARCH: Final = 100
# what a run id can be; anything else names no run (and could not be quoted in a filter)
_RUN_ID: Final = re.compile(r"[0-9A-Za-z_-]+")
_UNSAFE_IN_LIKE: Final = str.maketrans({"'": "_", '"': "_", "\\": "_"})


def _quote_key(key: str) -> str:
    if not isinstance(key, str) or not key or "`" in key:
        raise TrackingError(f"tag key must be a non-empty string without backticks, got {key!r}")
    return f"`{key}`"


def _literal(value: str) -> str | None:
    """``value`` as a filter literal MLflow parses back verbatim, or None when no such literal exists."""
    if value.endswith("\\"):
        return None
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


@dataclass(frozen=True, slots=True)
class TagFilter:
    """A server-side filter string plus the exact tag values still to check on the client.

    ``post_filter`` is empty unless a value had to be searched with a ``LIKE`` pattern; :meth:`matches`
    applies it.
    """

    filter_string: str
    post_filter: Mapping[str, str]

    def matches(self, run: Run) -> bool:
        """True when ``run`` carries every exact tag value that the filter string could only approximate."""
        tags = run.data.tags
        return all(tags.get(k) == v for k, v in self.post_filter.items())


def build_tag_filter(tags: Mapping[str, object], *, extra: str = "") -> TagFilter:
    """An ``AND`` filter requiring each ``tags`` key to equal its value (``str(value)``), plus ``extra``.

    Keys are back-quoted (dots and spaces are fine); values are quoted so MLflow reads them verbatim.
    """
    clauses: list[str] = []
    post: dict[str, str] = {}
    for key, raw in tags.items():
        value = str(raw)
        ident = f"tags.{_quote_key(key)}"
        literal = _literal(value)
        if literal is not None:
            clauses.append(f"{ident} = {literal}")
        else:
            clauses.append(f"{ident} LIKE '{value.translate(_UNSAFE_IN_LIKE)}'")
            post[key] = value
    if extra.strip():
        clauses.append(extra.strip())
    return TagFilter(" AND ".join(clauses), post)


def search_runs_all(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str = "",
    *,
    order_by: Sequence[str] | None = None,
    run_view_type: int = ViewType.ACTIVE_ONLY,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_results: int | None = None,
) -> Iterator[Run]:
    """Every run matching ``filter_string``, following page tokens until the last page.

    ``max_results`` is an explicit cap (None: no cap); ``page_size`` only sets the round-trip size.
    """
    if not 1 <= page_size <= _MAX_PAGE_SIZE:
        raise TrackingError(f"page_size must be in 1..{_MAX_PAGE_SIZE}, got {page_size}")
    if max_results is not None and max_results < 0:
        raise TrackingError(f"max_results must be >= 0 or None, got {max_results}")
    if not experiment_ids:
        return
    remaining = max_results
    token: str | None = None
    seen_tokens: set[str] = set()
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        page = client.search_runs(
            experiment_ids=list(experiment_ids),
            filter_string=filter_string,
            run_view_type=run_view_type,
            max_results=size,
            order_by=list(order_by) if order_by else None,
            page_token=token,
        )
        yield from page
        if remaining is not None:
            remaining -= len(page)
        token = page.token
        if not token:
            return
        if token in seen_tokens:
            raise TrackingError(
                f"search_runs returned page token {token!r} twice for filter {filter_string!r}"
            )
        seen_tokens.add(token)


def existing_run_ids(
    client: MlflowClient, experiment_ids: Sequence[str], run_ids: Iterable[object]
) -> set[str]:
    """Which of ``run_ids`` name runs of ``experiment_ids`` the store holds (not deleted): a search per
    ``_IDS_PER_SEARCH`` ids instead of a ``get_run`` each (a resumed 200-trial sweep: 1 query, not 200)."""
    wanted = sorted({str(r) for r in run_ids if r and _RUN_ID.fullmatch(str(r))})
    found: set[str] = set()
    for start in range(0, len(wanted), _IDS_PER_SEARCH):
        listed = ", ".join(f"'{run_id}'" for run_id in wanted[start : start + _IDS_PER_SEARCH])
        found.update(
            run.info.run_id
            for run in search_runs_all(client, experiment_ids, f"attributes.run_id IN ({listed})")
        )
    return found


def query_runs_by_tags(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    required_tags: Mapping[str, object],
    filter_string: str = "",
    max_results: int | None = None,
    *,
    status: str | None = "FINISHED",
    order_by: Sequence[str] | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> list[Run]:
    """Runs in ``experiment_ids`` whose tags equal ``required_tags`` (and that match ``filter_string``).

    The tag constraints and ``status`` (default FINISHED, None for any) are pushed into the server-side filter
    and every page is fetched; ``max_results`` caps the result only when given. Default order: newest first.
    """
    extra = filter_string.strip()
    if status is not None:
        extra = f"{extra} AND attributes.status = '{status}'" if extra else f"attributes.status = '{status}'"
    tag_filter = build_tag_filter(required_tags, extra=extra)
    runs: list[Run] = []
    for run in search_runs_all(
        client,
        experiment_ids,
        tag_filter.filter_string,
        order_by=order_by,
        page_size=page_size,
        max_results=None if tag_filter.post_filter else max_results,
    ):
        if tag_filter.matches(run):
            runs.append(run)
            if max_results is not None and len(runs) >= max_results:
                break
    logger.debug(
        "query_runs_by_tags(%s): %d runs for %r", experiment_ids, len(runs), tag_filter.filter_string
    )
    return runs


def _metric_value(run: Run, metric_name: str) -> float | None:
    value = run.data.metrics.get(metric_name)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _direction(direction: object, what: str) -> str:
    value = str(direction).lower()
    if value not in ("maximize", "minimize"):
        raise TrackingError(f"{what} must be 'maximize' or 'minimize', got {direction!r}")
    return value


def objective_of(config: Mapping[str, Any]) -> tuple[str, str]:
    """The objective ``(metric, direction)`` of an HPO or ``best_model_selection.yaml`` config.

    The one place the ``objective`` section is read: ``metric`` (default ``macro-f1``) and ``direction``
    (default ``maximize``, lower-cased; the reference's legacy ``goal`` is read as its alias). Any other
    direction raises :class:`TrackingError` naming it. (The study key hashes the raw section, as the
    reference did, so a config's identity never depends on this parsing.)
    """
    objective = config.get("objective") or {}
    metric = str(objective.get("metric", "macro-f1"))
    raw = objective.get("direction", objective.get("goal", "maximize"))
    return metric, _direction(raw, "objective.direction")


def find_best_run_by_metric(
    runs: Iterable[Run], metric_name: str, maximize: bool = True, *, direction: str | None = None
) -> Run | None:
    """The run with the best ``metric_name`` (``direction`` "maximize"/"minimize" overrides ``maximize``).

    Runs without the metric or with NaN are ignored. Ties go to the earliest ``start_time``, then the smallest
    ``run_id``, so the answer never depends on the order of ``runs``. None when no run has the metric.
    """
    if direction is not None:
        maximize = _direction(direction, "direction") == "maximize"
    best: tuple[float, float, str] | None = None
    best_run: Run | None = None
    for run in runs:
        value = _metric_value(run, metric_name)
        if value is None:
            continue
        start = float(run.info.start_time) if run.info.start_time is not None else math.inf
        key = (-value if maximize else value, start, run.info.run_id)
        if best is None or key < best:
            best, best_run = key, run
    return best_run


def group_runs_by_variant(
    runs: Iterable[Run], variant_tag: str | None = None, *, default: str = "default"
) -> dict[str, list[Run]]:
    """Runs grouped by the value of ``variant_tag`` (default: the registry's variant tag, ``code.variant``;
    runs without it under ``default``), input order kept."""
    if variant_tag is None:
        variant_tag = load_tags_registry().key("legacy", "variant")
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.data.tags.get(variant_tag, default), []).append(run)
    return groups
