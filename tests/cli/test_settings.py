"""A root remembers its backup folder and tracking URI (``<root>/.mlrig/settings.json``): written by the
commands that create state, read by the rest; explicit flags and ``MLFLOW_TRACKING_URI`` win."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrig.cli.common import remember, settled_backup_root, settled_tracking_uri
from mlrig.paths import read_root_settings, write_root_settings


def test_settings_are_merged_and_reading_creates_nothing(tmp_path: Path) -> None:
    assert read_root_settings(tmp_path / "missing") == {} and not (tmp_path / "missing").exists()
    write_root_settings(tmp_path, backup_root="/b", tracking_uri=None)
    merged = write_root_settings(tmp_path, tracking_uri="sqlite:///x.db", backup_root=None)
    assert merged == {"backup_root": "/b", "tracking_uri": "sqlite:///x.db"}
    assert json.loads((tmp_path / ".mlrig" / "settings.json").read_text()) == merged
    assert not list((tmp_path / ".mlrig").glob("*.tmp"))  # written atomically
    (tmp_path / ".mlrig" / "settings.json").write_text("{not json")
    assert read_root_settings(tmp_path) == {}  # a broken file is ignored (and logged), never fatal


def test_flags_win_then_the_environment_then_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert settled_backup_root(tmp_path, None) is None and settled_tracking_uri(tmp_path, None) is None
    remember(tmp_path, backup_root=tmp_path / "drive", tracking_uri="http://127.0.0.1:5000")
    assert settled_backup_root(tmp_path, None) == tmp_path / "drive"
    assert settled_backup_root(tmp_path, Path("/flag")) == Path("/flag")
    assert settled_tracking_uri(tmp_path, None) == "http://127.0.0.1:5000"
    assert settled_tracking_uri(tmp_path, "sqlite:///flag.db") == "sqlite:///flag.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert settled_tracking_uri(tmp_path, None) is None  # resolve_tracking_uri then takes the environment's
