"""``user_errors``: every mlrig error (an ``MlrigError``) becomes one line and exit status 1; other exceptions
are bugs and keep their traceback."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlrig.cli.common import user_errors
from mlrig.naming import NamingConfigError, NamingError, TagKeyError
from mlrig.orchestration import OrchestrationError
from mlrig.paths import MlrigError, PathsConfigError, PathScopeError, PathsError
from mlrig.storage import BackupConfigError, BackupError
from mlrig.tracking import TrackingError

ROOT_ERRORS = [
    (PathsError, ValueError),
    (NamingError, ValueError),
    (BackupError, OSError),
    (TrackingError, RuntimeError),
    (OrchestrationError, RuntimeError),
]


def _command_raising(error: BaseException) -> click.Command:
    @click.command()
    def command() -> None:
        with user_errors():
            raise error

    return command


@pytest.mark.parametrize(("error_type", "builtin"), ROOT_ERRORS, ids=lambda value: value.__name__)
def test_every_root_error_is_an_mlrig_error_and_keeps_its_builtin_base(
    error_type: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(error_type, MlrigError)
    assert issubclass(error_type, builtin)


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (PathScopeError("/x is outside /root"), "Error: PathScopeError: /x is outside /root"),
        (
            PathsConfigError("not a mapping", file=Path("paths.yaml"), key="drive"),
            "Error: PathsConfigError: paths.yaml: key 'drive': not a mapping",
        ),
        (
            NamingConfigError("unknown token", file=Path("naming.yaml"), key="run_names.hpo"),
            "Error: NamingConfigError: [naming.yaml] run_names.hpo: unknown token (file: naming.yaml)",
        ),
        (TagKeyError("unknown tag ('code', 'x')"), "Error: TagKeyError: unknown tag ('code', 'x')"),
        (
            BackupConfigError("backup root missing", path=Path("/drive")),
            "Error: BackupConfigError: backup root missing: /drive",
        ),
        (TrackingError("run r1 not found"), "Error: TrackingError: run r1 not found"),
        (OrchestrationError("no trials in study s"), "Error: OrchestrationError: no trials in study s"),
        (MlrigError("plain"), "Error: MlrigError: plain"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_an_mlrig_error_is_one_line_and_exit_status_1(error: MlrigError, line: str) -> None:
    result = CliRunner().invoke(_command_raising(error), [])
    assert result.exit_code == 1
    assert result.output == line + "\n"


@pytest.mark.parametrize("error", [ValueError("bug"), OSError("disk"), KeyError("k")], ids=repr)
def test_other_errors_are_not_swallowed(error: Exception) -> None:
    result = CliRunner().invoke(_command_raising(error), [])
    assert result.exception is error
    assert "Error:" not in result.output
