"""``mlrig experiments`` and ``mlrig runs find|list|best``: read-only queries of the tracking store.

They never create anything: a root without a store (a mistyped ``--root``) is one line and exit 1.
Experiments are named exactly or by a unique part of their name; runs by their id or a hash prefix (the
8 characters in folder names: ``study-350a79aa``, ``trial-0123abcd``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlrig.cli.common import (
    check_tracking_uri,
    config_option,
    emit_json,
    json_option,
    resolve_config_dir,
    root_option,
    settled_backup_root,
    settled_tracking_uri,
    user_errors,
)
from mlrig.cli.common import status as say

_STATUSES = ("FINISHED", "FAILED", "KILLED", "RUNNING", "SCHEDULED")
_tracking_option = click.option("--tracking-uri", default=None, help="MLflow tracking URI.")


def existing_client(root: Path, config_dir: Path | None, tracking_uri: str | None) -> Any:
    """The client of the root's store -- taken over from a reference store or restored from its backup when
    only those exist -- or one line when there is none (nothing is created then)."""
    from mlrig.cli.checks import open_store
    from mlrig.tracking import resolve_tracking_uri

    if not root.is_dir():
        raise click.ClickException(f"project root {root.absolute()} does not exist")
    cfg = resolve_config_dir(root, config_dir)
    uri = resolve_tracking_uri(
        settled_tracking_uri(root, tracking_uri), root_dir=root.absolute(), config_dir=cfg
    )
    check_tracking_uri(uri)
    client, _ = open_store(root.absolute(), cfg, uri, settled_backup_root(root, None), create=False)
    return client


def experiment_id(client: Any, name: str) -> tuple[str, str]:
    """(id, name) of the experiment named ``name``, else the only one whose name contains it."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id), str(experiment.name)
    every = client.search_experiments()
    matches = [e for e in every if name.lower() in e.name.lower()]
    if len(matches) == 1:
        return str(matches[0].experiment_id), str(matches[0].name)
    if matches:
        shown = ", ".join(sorted(e.name for e in matches))
        raise click.ClickException(f"{name!r} matches several MLflow experiments: {shown}")
    known = ", ".join(sorted(e.name for e in every)) or "none"
    raise click.ClickException(f"no MLflow experiment {name!r}; known: {known}")


def _row(run: Any, metric: str | None = None) -> str:
    value = "" if metric is None else f"  {metric}={run.data.metrics.get(metric)}"
    return f"{run.info.run_id}  {run.info.status:<8}  {run.info.run_name}{value}"


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "experiment_id": run.info.experiment_id,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
    }


def _tags(items: tuple[str, ...]) -> dict[str, str]:
    required = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        required[key] = value
    return required


def _hash_match(run: Any, prefix: str) -> bool:
    prefix = prefix.lower()
    return any(
        k.endswith("_hash") and str(v).lower().startswith(prefix) for k, v in run.data.tags.items()
    ) or str(run.info.run_id).startswith(prefix)


def _query(
    client: Any, exp_id: str, tags: dict[str, str], status: str | None, hash_prefix: str | None
) -> Any:
    from mlrig.tracking import query_runs_by_tags

    found = query_runs_by_tags(client, [exp_id], tags, status=status)
    return [r for r in found if _hash_match(r, hash_prefix)] if hash_prefix else found


def _query_options(fn: Any) -> Any:
    for option in reversed(
        (
            root_option,
            config_option,
            _tracking_option,
            click.option("--experiment", required=True, help="Experiment name, or a unique part of it."),
            click.option("--tag", "tags", multiple=True, help="KEY=VALUE filter (repeatable)."),
            click.option(
                "--hash",
                "hash_prefix",
                default=None,
                help="Run id or key-hash prefix (e.g. the 8 characters of study-<hash>).",
            ),
            json_option,
        )
    ):
        fn = option(fn)
    return fn


@click.command()
@root_option
@config_option
@_tracking_option
@json_option
def experiments(root: Path, config_dir: Path | None, tracking_uri: str | None, as_json: bool) -> None:
    """List the MLflow experiments of the root's store (id, name, number of runs)."""
    with user_errors():
        from mlrig.tracking import search_runs_all

        client = existing_client(root, config_dir, tracking_uri)
        found = []
        for exp in sorted(client.search_experiments(), key=lambda e: e.name):
            n = sum(1 for _ in search_runs_all(client, [exp.experiment_id], ""))
            found.append({"experiment_id": exp.experiment_id, "name": exp.name, "runs": n})
    if as_json:
        emit_json(found)
        return
    for item in found:
        click.echo(f"{item['experiment_id']:>4}  {item['runs']:>5} run(s)  {item['name']}")


@click.group()
def runs() -> None:
    """Find, list and rank MLflow runs."""


@runs.command("find")
@_query_options
@click.option("--run-key-hash", default=None, help="The run's key hash, or a prefix of it (8+ characters).")
@click.option("--run-id", default=None, help="The run id, or a unique prefix of it.")
@click.option("--run-name", default=None)
def runs_find(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    tags: tuple[str, ...],
    hash_prefix: str | None,
    as_json: bool,
    run_key_hash: str | None,
    run_id: str | None,
    run_name: str | None,
) -> None:
    """Find one run (run index → run-key tag → name) and say how it was found."""
    if not (run_key_hash or run_id or run_name or hash_prefix):
        raise click.UsageError("give --run-key-hash, --run-id, --run-name or --hash")
    with user_errors():
        from mlrig.tracking import find_mlflow_run

        client = existing_client(root, config_dir, tracking_uri)
        exp_id, name = experiment_id(client, experiment)
        short = [(k, v) for k, v in (("run_key_hash", run_key_hash), ("run_id", run_id)) if v and len(v) < 32]
        if hash_prefix or short or tags:
            prefix = hash_prefix or (short[0][1] if short else None)
            found = _query(client, exp_id, _tags(tags), None, prefix)
            if len(found) != 1:
                what = f"prefix {prefix!r}" if prefix else "tags"
                raise click.ClickException(
                    f"{len(found)} runs in {name!r} match {what}"
                    + (f": {', '.join(r.info.run_id[:12] for r in found[:5])}" if found else "")
                )
            run, how = found[0], "prefix"
        else:
            report = find_mlflow_run(
                name,
                run_id=run_id,
                run_key_hash=run_key_hash,
                strict=run_name is None,
                root_dir=root.absolute(),
                config_dir=resolve_config_dir(root, config_dir),
                run_name=run_name,
                client=client,
            )
            if not report.found or report.run is None:
                raise click.ClickException(
                    f"run not found in {name!r} (tried {', '.join(report.strategies_attempted)})"
                    + (f": {report.error}" if report.error else "")
                )
            run, how = report.run, str(report.strategy_used)
    if as_json:
        emit_json({**_run_json(run), "found_by": how})
    else:
        click.echo(f"{_row(run)}  (found by {how})")


@runs.command("list")
@_query_options
@click.option(
    "--status",
    type=click.Choice(_STATUSES, case_sensitive=False),
    default=None,
    help="Only runs with this status (default: any).",
)
def runs_list(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    tags: tuple[str, ...],
    hash_prefix: str | None,
    as_json: bool,
    status: str | None,
) -> None:
    """List the runs of an experiment (all pages), newest first; the count goes to stderr."""
    required = _tags(tags)
    with user_errors():
        client = existing_client(root, config_dir, tracking_uri)
        exp_id, _ = experiment_id(client, experiment)
        found = _query(client, exp_id, required, status.upper() if status else None, hash_prefix)
    if as_json:
        emit_json([_run_json(r) for r in found])
        return
    for run in found:
        click.echo(_row(run))
    say(f"{len(found)} run(s)")


@runs.command("best")
@_query_options
@click.option("--metric", required=True)
@click.option(
    "--direction", type=click.Choice(["maximize", "minimize"]), default="maximize", show_default=True
)
def runs_best(
    root: Path,
    config_dir: Path | None,
    tracking_uri: str | None,
    experiment: str,
    tags: tuple[str, ...],
    hash_prefix: str | None,
    as_json: bool,
    metric: str,
    direction: str,
) -> None:
    """The FINISHED run with the best value of METRIC among those matching --tag/--hash (deterministic
    tie-break)."""
    required = _tags(tags)
    with user_errors():
        from mlrig.tracking import find_best_run_by_metric

        client = existing_client(root, config_dir, tracking_uri)
        exp_id, name = experiment_id(client, experiment)
        found = _query(client, exp_id, required, "FINISHED", hash_prefix)
        best = find_best_run_by_metric(found, metric, maximize=direction == "maximize")
    if best is None:
        where = f" matching {', '.join(tags)}" if tags else ""
        raise click.ClickException(f"no FINISHED run in {name!r}{where} has metric {metric!r}")
    if as_json:
        emit_json(_run_json(best))
    else:
        click.echo(_row(best, metric))
