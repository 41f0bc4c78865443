"""Queries against a real SQLite MLflow store: quoting, pagination, best run, variant groups."""

from __future__ import annotations

import itertools
import math
import re
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.entities import Metric, Run, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.search_utils import SearchUtils

import mlrig.tracking.queries as queries_module
from mlrig.tracking import (
    TrackingError,
    build_tag_filter,
    existing_run_ids,
    find_best_run_by_metric,
    group_runs_by_variant,
    objective_of,
    query_runs_by_tags,
    search_runs_all,
)

AWKWARD_VALUES = [
    "plain",
    "it's",
    'say "hi"',
    "both ' and \"",
    "trailing\\",
    "back\\slash",
    "50%_off",
    "x' OR tags.`code.kind` = 'plain",
    "spaces  and\ttabs",
    "ünïcödé ✓",
    "",
]


@pytest.fixture
def client(sqlite_tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=sqlite_tracking_uri)


@pytest.fixture
def experiment_id(client: MlflowClient, sqlite_artifact_root: Path) -> str:
    return client.create_experiment("queries", artifact_location=sqlite_artifact_root.as_uri())


def _run(client: MlflowClient, experiment_id: str, tags: dict[str, str], *, finish: bool = True) -> str:
    run = client.create_run(experiment_id, tags=tags)
    if finish:
        client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["code.kind", "a b", "plain"]), value=st.text(max_size=30))
def test_every_value_round_trips_through_mlflows_parser(key: str, value: str) -> None:
    tag_filter = build_tag_filter({key: value})
    (clause,) = SearchUtils.parse_search_filter(tag_filter.filter_string)
    assert clause["key"] == key
    if clause["comparator"] == "=":
        assert clause["value"] == value
        assert not tag_filter.post_filter
    else:
        assert clause["comparator"] == "LIKE"
        assert _like_regex(clause["value"]).fullmatch(value)
        assert tag_filter.post_filter == {key: value}


def test_tag_key_with_backtick_is_refused() -> None:
    with pytest.raises(TrackingError, match="backtick"):
        build_tag_filter({"bad`key": "v"})


def test_awkward_values_find_exactly_their_run(client: MlflowClient, experiment_id: str) -> None:
    ids = {
        value: _run(client, experiment_id, {"code.kind": value, "other key": "x"}) for value in AWKWARD_VALUES
    }
    _run(client, experiment_id, {"code.kind": "plain"}, finish=False)  # RUNNING: excluded by default
    for value, run_id in ids.items():
        runs = query_runs_by_tags(client, [experiment_id], {"code.kind": value, "other key": "x"})
        assert [r.info.run_id for r in runs] == [run_id], value
    assert len(query_runs_by_tags(client, [experiment_id], {"code.kind": "plain"}, status=None)) == 2


def test_filter_string_is_combined_with_tags(client: MlflowClient, experiment_id: str) -> None:
    a = _run(client, experiment_id, {"code.kind": "k", "code.model": "bert"})
    _run(client, experiment_id, {"code.kind": "k", "code.model": "roberta"})
    runs = query_runs_by_tags(client, [experiment_id], {"code.kind": "k"}, "tags.`code.model` = 'bert'")
    assert [r.info.run_id for r in runs] == [a]


def test_pagination_follows_tokens(client: MlflowClient, experiment_id: str) -> None:
    ids = {_run(client, experiment_id, {"code.kind": "page"}) for _ in range(23)}
    _run(client, experiment_id, {"code.kind": "other"})
    got = [
        r.info.run_id
        for r in search_runs_all(client, [experiment_id], "tags.`code.kind` = 'page'", page_size=5)
    ]
    assert len(got) == len(set(got)) == 23
    assert set(got) == ids
    capped = query_runs_by_tags(client, [experiment_id], {"code.kind": "page"}, max_results=7, page_size=5)
    assert len(capped) == 7
    with pytest.raises(TrackingError, match="page_size"):
        list(search_runs_all(client, [experiment_id], page_size=0))


def _bulk_runs(client: MlflowClient, experiment_id: str, n: int, tags: dict[str, str]) -> set[str]:
    """Insert ``n`` FINISHED runs in one transaction through the SQL store (create_run is ~30 ms each)."""
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag

    store = client._tracking_client.store
    ids = {uuid.uuid4().hex for _ in range(n)}
    with store.ManagedSessionMaker(read_only=False) as session:
        for i, run_id in enumerate(sorted(ids)):
            session.add(
                SqlRun(
                    run_uuid=run_id,
                    name=f"bulk-{i}",
                    status="FINISHED",
                    start_time=1_000 + i,
                    end_time=2_000 + i,
                    lifecycle_stage="active",
                    artifact_uri=f"/tmp/none/{run_id}",
                    experiment_id=int(experiment_id),
                    source_type="LOCAL",
                    source_name="",
                    entry_point_name="",
                    user_id="test",
                    source_version="",
                )
            )
            session.add_all([SqlTag(key=k, value=v, run_uuid=run_id) for k, v in tags.items()])
    return ids


@pytest.mark.slow
def test_query_returns_more_than_1000_runs(client: MlflowClient, experiment_id: str) -> None:
    ids = _bulk_runs(client, experiment_id, 2345, {"code.kind": "bulk"})
    _bulk_runs(client, experiment_id, 10, {"code.kind": "noise"})
    runs = query_runs_by_tags(client, [experiment_id], {"code.kind": "bulk"})
    assert len(runs) == len(ids)
    assert {r.info.run_id for r in runs} == ids
    starts = [r.info.start_time for r in runs]
    assert starts == sorted(starts, reverse=True)
    assert len(list(search_runs_all(client, [experiment_id]))) == len(ids) + 10


def _runs_with_metric(client: MlflowClient, experiment_id: str, values: list[float | None]) -> list[Run]:
    out = []
    for value in values:
        run = client.create_run(experiment_id, start_time=1_000, tags={"code.kind": "m"})
        if value is not None:
            client.log_batch(run.info.run_id, metrics=[Metric("f1", value, 0, 0)], tags=[RunTag("v", "1")])
        out.append(client.get_run(run.info.run_id))
    return out


def test_best_run_direction_nan_and_missing(client: MlflowClient, experiment_id: str) -> None:
    runs = _runs_with_metric(client, experiment_id, [0.5, math.nan, 0.9, None, 0.1])
    best = find_best_run_by_metric(runs, "f1")
    worst = find_best_run_by_metric(runs, "f1", maximize=False)
    assert best is not None and best.data.metrics["f1"] == 0.9
    assert worst is not None and worst.data.metrics["f1"] == 0.1
    by_direction = find_best_run_by_metric(runs, "f1", maximize=True, direction="minimize")
    assert by_direction is not None and by_direction.info.run_id == worst.info.run_id
    assert find_best_run_by_metric(runs, "missing") is None
    assert find_best_run_by_metric([], "f1") is None
    with pytest.raises(TrackingError, match="direction"):
        find_best_run_by_metric(runs, "f1", direction="up")


def test_best_run_tie_break_is_order_independent(client: MlflowClient, experiment_id: str) -> None:
    runs = _runs_with_metric(client, experiment_id, [0.7, 0.7, 0.7, 0.2])
    winners = {find_best_run_by_metric(list(p), "f1").info.run_id for p in itertools.permutations(runs)}  # type: ignore[union-attr]
    assert winners == {min(r.info.run_id for r in runs[:3])}


def test_group_runs_by_variant_keeps_order(client: MlflowClient, experiment_id: str) -> None:
    ids = [
        _run(client, experiment_id, {"code.variant": "1"}),
        _run(client, experiment_id, {}),
        _run(client, experiment_id, {"code.variant": "2"}),
        _run(client, experiment_id, {"code.variant": "1"}),
    ]
    runs = [client.get_run(i) for i in ids]
    groups = group_runs_by_variant(runs)
    assert {k: [r.info.run_id for r in v] for k, v in groups.items()} == {
        "1": [ids[0], ids[3]],
        "default": [ids[1]],
        "2": [ids[2]],
    }
    assert list(group_runs_by_variant(runs, default="none")) == ["1", "none", "2"]


def test_objective_of_is_the_one_reading_of_the_objective() -> None:
    assert objective_of({}) == ("macro-f1", "maximize")
    assert objective_of({"objective": {"metric": "loss", "direction": "Minimize"}}) == ("loss", "minimize")
    assert objective_of({"objective": {"goal": "minimize"}}) == ("macro-f1", "minimize")  # legacy alias
    assert objective_of({"objective": {"direction": "maximize", "goal": "minimize"}})[1] == "maximize"
    with pytest.raises(TrackingError, match=r"objective\.direction.*'up'"):
        objective_of({"objective": {"direction": "up"}})


def test_existing_run_ids_names_the_runs_the_store_holds(
    client: MlflowClient, experiment_id: str, sqlite_artifact_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = [_run(client, experiment_id, {}) for _ in range(5)]
    deleted = _run(client, experiment_id, {})
    client.delete_run(deleted)
    other = client.create_experiment("elsewhere", artifact_location=sqlite_artifact_root.as_uri())
    elsewhere = _run(client, other, {})
    monkeypatch.setattr(queries_module, "_IDS_PER_SEARCH", 2)  # several searches for 9 ids
    asked = [*kept, deleted, elsewhere, uuid.uuid4().hex, "x' OR '1'='1", None, ""]
    assert existing_run_ids(client, [experiment_id], asked) == set(kept)
    assert existing_run_ids(client, [experiment_id, other], asked) == {*kept, elsewhere}
    assert existing_run_ids(client, [experiment_id], []) == set()
