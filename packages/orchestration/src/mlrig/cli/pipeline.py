"""``mlrig demo`` / ``sweep`` / ``pipeline``: run the pipeline on the user's own functions (or the demo's),
with Hydra-style ``section.key=value`` overrides, progress on stderr and the summary on stdout."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlrig.cli.common import (
    check_tracking_uri,
    config_option,
    emit_json,
    json_option,
    quiet_libraries,
    remember,
    resolve_config_dir,
    root_option,
    settled_backup_root,
    settled_tracking_uri,
    show_progress,
    status,
    user_errors,
)


class SweepBars:
    """One progress bar per backbone on stderr when it is a terminal (nothing otherwise, or under -q)."""

    def __init__(self) -> None:
        self.enabled = show_progress()
        self.bars: dict[str, Any] = {}

    def __call__(self, backbone: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(backbone)
        if bar is None:
            bar = click.progressbar(
                length=total, label=f"sweep {backbone:<8}", show_pos=True, file=sys.stderr
            )
            bar.__enter__()
            self.bars[backbone] = bar
        bar.update(done - bar.pos)
        if done >= total:
            self.close(backbone)

    def close(self, backbone: str | None = None) -> None:
        for name in [backbone] if backbone else list(self.bars):
            bar = self.bars.pop(name, None) if name else None
            if bar is not None:
                bar.__exit__(None, None, None)


def _common(fn: Any) -> Any:
    """The options every pipeline command takes."""
    options = [
        root_option,
        config_option,
        click.option(
            "--max-trials", type=click.IntRange(min=1), default=None, help="Override sampling.max_trials."
        ),
        click.option(
            "--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite under <root>/mlruns)."
        ),
        click.option(
            "--backup-root",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Backup folder, or a local folder standing in for the Drive mount (default: the one the "
            "root remembers, else <root>/backup).",
        ),
        json_option,
        click.argument("overrides", nargs=-1),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _user_options(fn: Any) -> Any:
    options = [
        click.option(
            "--experiment",
            "experiment",
            default=None,
            help="config/experiment/<NAME>.yaml (default: the only experiment there).",
        ),
        click.option("--train", "train", required=True, help="Your training function, module:function."),
        click.option(
            "--labels",
            default=None,
            help="module:function giving the rows' class labels from "
            "the data config, for stratified CV folds (default: the demo dataset's).",
        ),
        click.option(
            "--python-path",
            "python_path",
            multiple=True,
            type=click.Path(path_type=Path),
            help="Folder to import your module from (repeatable; the current folder always is).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run(
    root: Path,
    tracking_uri: str | None,
    backup_root: Path | None,
    as_json: bool,
    bars: SweepBars,
    call: Callable[[str | None, Path], Any],
) -> None:
    """Settle the URI and backup root (flags, else what the root remembers), check the URI, run, print."""
    from mlrig.cli.report import demo_json, demo_table

    uri = settled_tracking_uri(root, tracking_uri)
    if uri:
        check_tracking_uri(uri)
    backup = settled_backup_root(root, backup_root) or root / "backup"
    with user_errors():
        quiet_libraries()
        try:
            summary = call(uri, backup)
        finally:
            bars.close()
    remember(root, backup_root=summary.backup_root, tracking_uri=summary.tracking_uri)
    if as_json:
        emit_json(demo_json(summary))
    else:
        click.echo(demo_table(summary))


@click.command()
@_common
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Only the sweeps, by N worker processes on the root's services (started when not up).",
)
def demo(
    root: Path,
    config_dir: Path | None,
    max_trials: int | None,
    tracking_uri: str | None,
    backup_root: Path | None,
    as_json: bool,
    overrides: tuple[str, ...],
    workers: int | None,
) -> None:
    """Run the whole pipeline on a small numpy model: sweep → selection → benchmark → final training →
    conversion. Running it again resumes and reuses instead of duplicating. OVERRIDES: section.key=value
    (e.g. hpo.sampling.max_trials=4)."""
    if workers is not None:
        if overrides:
            raise click.UsageError("--workers takes no OVERRIDES (the workers read the root's configs)")
        from mlrig.cli.worker import demo_workers

        demo_workers(root, workers, config_dir, max_trials)
        return
    bars = SweepBars()

    def call(uri: str | None, backup: Path) -> Any:
        from mlrig.orchestration import run_demo

        return run_demo(
            root,
            config_dir=config_dir,
            tracking_uri=uri,
            backup_root=backup,
            max_trials=max_trials,
            progress=bars,
            overrides=overrides,
            on_step=status,
        )

    _run(root, tracking_uri, backup_root, as_json, bars, call)


def _user_run(stages: bool, **kw: Any) -> None:
    root: Path = kw["root"]
    for folder in (*kw["python_path"], Path.cwd()):
        if str(Path(folder).absolute()) not in sys.path:
            sys.path.insert(0, str(Path(folder).absolute()))
    bars = SweepBars()

    def call(uri: str | None, backup: Path) -> Any:
        from mlrig.orchestration import load_callable, run_pipeline

        cfg = resolve_config_dir(root, kw["config_dir"])
        name = kw["experiment"] or _only_experiment(cfg)
        fns = {k: load_callable(kw[k]) if kw.get(k) else None for k in ("labels", "convert", "benchmark")}
        return run_pipeline(
            root,
            name,
            load_callable(kw["train"]),
            convert=fns["convert"],
            benchmark=fns["benchmark"],
            labels=fns["labels"],
            config_dir=cfg,
            tracking_uri=uri,
            backup_root=backup,
            max_trials=kw["max_trials"],
            overrides=kw["overrides"],
            stages=stages,
            progress=bars,
            on_step=status,
        )

    _run(root, kw["tracking_uri"], kw["backup_root"], kw["as_json"], bars, call)


def _only_experiment(cfg: Path) -> str:
    from mlrig.orchestration import OrchestrationError

    found = sorted(p.stem for p in cfg.glob("experiment/*.yaml"))
    if len(found) != 1:
        raise OrchestrationError(
            f"pass --experiment: {cfg}/experiment has {', '.join(found) if found else 'no experiment file'}"
        )
    return found[0]


@click.command()
@_common
@_user_options
def sweep(**kw: Any) -> None:
    """Sweep every backbone of an experiment with your training function (resumable; no stages).
    OVERRIDES: section.key=value, e.g. hpo.sampling.max_trials=4 train.training.epochs=3 (+key=value adds
    a key). The resolved config is saved beside each study and logged to its sweep run."""
    _user_run(False, **kw)


@click.command()
@_common
@_user_options
@click.option(
    "--convert", default=None, help="Your conversion function, module:function (default: the demo's)."
)
@click.option(
    "--benchmark", default=None, help="Your benchmark function, module:function (default: the demo's)."
)
def pipeline(**kw: Any) -> None:
    """Sweep, select the champion, train it on all data, convert and benchmark it, with your functions.
    OVERRIDES: section.key=value as for ``mlrig sweep``."""
    _user_run(True, **kw)
