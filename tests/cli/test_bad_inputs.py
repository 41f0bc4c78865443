"""Every ordinary mistake of issue #17: one line on stderr, the right exit code, nothing created.

Each row runs the real command in-process (click's runner keeps stdout and stderr apart); "nothing created"
compares the project tree before and after.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from mlrig.cli import main
from mlrig.cli.common import MlrigGroup, configure
from mlrig.orchestration.demo import prepare_demo_config

USER_PROJECT = str(Path(__file__).with_name("user_project"))


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def _one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    prepare_demo_config(root)
    return root


def _edit(path: Path, old: str, new: str) -> int:
    lines = path.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if old in line)
    lines[n] = lines[n].replace(old, new)
    path.write_text("\n".join(lines) + "\n")
    return n + 1


def _sweep(root: Path, *extra: str) -> Result:
    args = ["sweep", "--root", str(root), "--experiment", "demo", "--train", "my_train:train"]
    return run(*args, "--python-path", USER_PROJECT, *extra)


@pytest.mark.parametrize("command", ["demo", "sweep"])
def test_max_trials_not_an_integer(project: Path, command: str) -> None:
    hpo = project / "config" / "hpo" / "demo.yaml"
    line = _edit(hpo, "max_trials: 6", 'max_trials: "six"')
    before = _tree(project)
    result = run("demo", "--root", str(project)) if command == "demo" else _sweep(project)
    message = _one_line_error(result)
    assert f"{hpo}:{line}: sampling.max_trials: must be an integer (got 'six')" in message
    assert _tree(project) == before


def test_loguniform_min_zero(project: Path) -> None:
    hpo = project / "config" / "hpo" / "demo.yaml"
    line = _edit(hpo, "min: 0.003", "min: 0.0")
    before = _tree(project)
    message = _one_line_error(_sweep(project))
    assert f"{hpo}:{line}: search_space.learning_rate.min: must be > 0 on a log scale" in message
    assert _tree(project) == before


def test_unreadable_yaml(project: Path) -> None:
    hpo = project / "config" / "hpo" / "demo.yaml"
    if os.geteuid() == 0:  # root reads any file: a folder in its place is unreadable to anyone
        hpo.unlink()
        hpo.mkdir()
    else:
        hpo.chmod(0)
    before = _tree(project)
    message = _one_line_error(run("demo", "--root", str(project)))
    assert str(hpo) in message and "cannot be read" in message
    assert _tree(project) == before


def test_unknown_tracking_uri_scheme(project: Path) -> None:
    before = _tree(project)
    message = _one_line_error(run("demo", "--root", str(project), "--tracking-uri", "foo://bar"))
    assert "foo://bar" in message and "unknown scheme 'foo'" in message
    assert _tree(project) == before


@pytest.mark.parametrize("command", ["demo", "runs", "doctor"])
def test_unreachable_tracking_server_fails_fast_naming_the_uri(project: Path, command: str) -> None:
    uri = "http://127.0.0.1:1"
    before = _tree(project)
    t0 = time.monotonic()
    if command == "doctor":
        result = run("doctor", "--root", str(project), "--tracking-uri", uri)
        line = next(x for x in result.stdout.splitlines() if x.startswith("[FAIL] tracking store"))
        assert result.exit_code == 1 and f"tracking server {uri} is unreachable" in line
    else:
        args = ["runs", "list", "--experiment", "x"] if command == "runs" else ["demo"]
        message = _one_line_error(run(*args, "--root", str(project), "--tracking-uri", uri))
        assert f"tracking server {uri} is unreachable" in message
    assert time.monotonic() - t0 < 15
    assert _tree(project) == before


def test_too_few_trials_for_selection_is_refused_before_sweeping(project: Path) -> None:
    before = _tree(project)
    message = _one_line_error(run("demo", "--root", str(project), "--max-trials", "2"))
    assert "max_trials=2" in message and "min_trials_per_group=3" in message
    assert _tree(project) == before


def test_unknown_override_key_is_named(project: Path) -> None:
    before = _tree(project)
    message = _one_line_error(_sweep(project, "hpo.sampling.max_trails=3"))
    assert "unknown key hpo.sampling.max_trails" in message and "max_trials" in message
    message = _one_line_error(_sweep(project, "hpo.sampling.max_trials=six"))
    assert "override hpo.sampling.max_trials: must be an integer" in message
    message = _one_line_error(_sweep(project, "model.x=1"))
    assert "unknown section 'model'" in message
    assert _tree(project) == before


def test_user_module_that_cannot_be_imported(project: Path) -> None:
    before = _tree(project)
    message = _one_line_error(
        run("sweep", "--root", str(project), "--experiment", "demo", "--train", "no_such_module:train")
    )
    assert "cannot import 'no_such_module'" in message
    message = _one_line_error(_sweep(project, "--labels", "my_train:nope"))
    assert "has no attribute 'nope'" in message
    assert _tree(project) == before


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "list", "--experiment", "x"],
        ["runs", "best", "--experiment", "x", "--metric", "m"],
        ["experiments"],
        ["studies"],
        ["cleanup-interrupted", "--experiment", "x", "--dry-run"],
        ["doctor"],
        ["verify"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_read_only_commands_on_a_mistyped_root_create_nothing(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "porj"
    result = run(*args, "--root", str(typo))
    assert result.exit_code == (2 if args[0] == "verify" else 1), result.output  # verify: 1 is "differs"
    assert not typo.exists()
    if args[0] not in ("doctor", "verify"):
        assert "does not exist" in _one_line_error(result)
    root = tmp_path / "empty"
    root.mkdir()
    result = run(*args, "--root", str(root))
    assert result.exit_code in ((0,) if args[0] == "studies" else (1, 2)), result.output  # none is no error
    assert _tree(root) == set()


def test_fixed_values_are_choices(tmp_path: Path) -> None:
    result = run("runs", "list", "--root", str(tmp_path), "--experiment", "x", "--status", "BOGUS")
    assert result.exit_code == 2 and "'BOGUS' is not one of" in result.stderr
    result = run("runs", "best", "--root", str(tmp_path), "--experiment", "x", "--metric", "m", "--tag", "k")
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


def test_an_unexpected_error_is_one_line_and_v_shows_the_traceback() -> None:
    @click.group(cls=MlrigGroup)
    @click.option("-v", "--verbose", count=True)
    def group(verbose: int) -> None:
        configure(verbose, False)

    @group.command()
    def boom() -> None:
        raise ValueError("first line\n  second line")

    message = _one_line_error(CliRunner().invoke(group, ["boom"]))
    assert message == "Error: ValueError: first line second line (-v for the traceback)"
    result = CliRunner().invoke(group, ["-v", "boom"])
    assert isinstance(result.exception, ValueError)  # the traceback is kept
    configure(0, False)


def test_v_keeps_the_traceback_of_an_mlrig_error(project: Path) -> None:
    result = CliRunner().invoke(main, ["-v", "sweep", "--root", str(project), "--train", "nope:train"])
    assert result.exit_code == 1 and type(result.exception).__name__ == "OrchestrationError"
    configure(0, False)
