"""The CLI sets process-wide state for its one invocation (MLflow HTTP limits in os.environ, log levels);
in-process tests put it back so later tests in the same worker see the defaults."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

_LOGGERS = ("", "mlflow", "alembic", "optuna")


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    env = dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    yield
    os.environ.clear()
    os.environ.update(env)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
