from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlrig.paths import atomic_write_json, atomic_write_text, freeze, thaw


def test_atomic_write_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "x.json"
    atomic_write_json(target, freeze({"k": [1, {"z": 2}]}))
    assert json.loads(target.read_text()) == {"k": [1, {"z": 2}]}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


def test_failed_replace_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_freeze_thaw_round_trip() -> None:
    data = {"a": [1, 2, {"b": {3}}], "c": {"d": "e"}}
    frozen = freeze(data)
    with pytest.raises(TypeError):
        frozen["a"] = 1
    assert isinstance(frozen["a"], tuple)
    assert thaw(frozen) == {"a": [1, 2, {"b": [3]}], "c": {"d": "e"}}
