from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlrig.paths import (
    PathsError,
    get_cache_file_path,
    get_timestamped_cache_filename,
    load_cache_file,
    save_cache_with_dual_strategy,
)


def cache_dir(project: Path, kind: str = "final_training") -> Path:
    return project / "outputs" / "cache" / kind


def test_dual_strategy_writes_three_files(project: Path) -> None:
    cfg = project / "config"
    data = {"metrics": {"macro-f1": 0.9, "loss": 0.1, "other": 1}, "checkpoint": "x"}
    ts, latest, index = save_cache_with_dual_strategy(
        project, cfg, "final_training", data, "distil-bert", "run/1", "20251228_001000"
    )
    assert ts == cache_dir(project) / "final_training_distil_bert_run_1_20251228_001000.json"
    assert latest == cache_dir(project) / "latest_final_training_cache.json"
    assert index == cache_dir(project) / "final_training_index.json"
    saved = json.loads(ts.read_text())
    assert saved["checkpoint"] == "x"
    assert saved["cache_metadata"]["timestamped_file"] == ts.name
    assert json.loads(latest.read_text()) == saved
    entries = json.loads(index.read_text())["entries"]
    assert entries == [
        {
            "timestamp": "20251228_001000",
            "backbone": "distil-bert",
            "identifier": "run/1",
            "timestamped_file": ts.name,
            "latest_file": latest.name,
            "metrics": {"macro-f1": 0.9, "loss": 0.1},
        }
    ]
    assert "cache_metadata" not in data  # the caller's dict is not modified
    assert load_cache_file(project, cfg, "final_training") == saved
    assert load_cache_file(project, cfg, "final_training", specific_identifier="run/1") == saved
    assert load_cache_file(project, cfg, "final_training", specific_timestamp="20251228_001000") == saved
    assert load_cache_file(project, cfg, "final_training", specific_identifier="zzz") is None


def test_same_second_saves_never_overwrite(project: Path) -> None:
    cfg = project / "config"
    first = save_cache_with_dual_strategy(project, cfg, "final_training", {"n": 1}, "b", "i", "t")[0]
    second = save_cache_with_dual_strategy(project, cfg, "final_training", {"n": 2}, "b", "i", "t")[0]
    assert first is not None and second is not None and first != second
    assert json.loads(first.read_text())["n"] == 1
    assert json.loads(second.read_text())["n"] == 2
    assert load_cache_file(project, cfg, "final_training")["n"] == 2  # type: ignore[index]


def test_timestamp_is_normalised(project: Path) -> None:
    name = get_timestamped_cache_filename(project / "config", "final_training", "b", "i", "../../evil")
    assert "/" not in name
    ts = save_cache_with_dual_strategy(
        project, project / "config", "final_training", {}, "b", "i", "../../evil"
    )[0]
    assert ts is not None and ts.parent == cache_dir(project)


def test_index_is_bounded_and_trimmed_entries_still_load(project: Path) -> None:
    cfg = project / "config"
    for i in range(25):
        save_cache_with_dual_strategy(
            project, cfg, "best_model_selection", {"i": i}, "m", f"id{i}", f"t{i:02d}"
        )
    index = json.loads(
        (cache_dir(project, "best_model_selection") / "best_model_selection_index.json").read_text()
    )
    assert [e["identifier"] for e in index["entries"]] == [f"id{i}" for i in range(5, 25)]
    found = load_cache_file(project, cfg, "best_model_selection", specific_identifier="id0")
    assert found is not None and found["i"] == 0


def test_reference_cache_file_dropped_off_the_index_is_found_by_timestamp(project: Path) -> None:
    # What the reference wrote: a timestamped file whose cache_metadata has no timestamp/identifier, an index
    # (trimmed to max_entries) that no longer lists it, and a latest copy of a newer save.
    cfg = project / "config"
    folder = cache_dir(project, "best_model_selection")
    folder.mkdir(parents=True)
    old = "best_model_selection_distilbert_exp_key_20251228_001000.json"
    meta = {"saved_at": "2025-12-28T00:10:00", "cache_directory": str(folder), "strategy": "dual"}
    (folder / old).write_text(
        json.dumps({"backbone": "distilbert", "cache_metadata": {**meta, "timestamped_file": old}})
    )
    new = "best_model_selection_deberta_exp_key_20260101_120000.json"
    newer = {"backbone": "deberta", "cache_metadata": {**meta, "timestamped_file": new}}
    (folder / new).write_text(json.dumps(newer))
    (folder / "latest_best_model_selection_cache.json").write_text(json.dumps(newer))
    entry = {
        "timestamp": "20260101_120000",
        "backbone": "deberta",
        "identifier": "exp_key",
        "timestamped_file": new,
    }
    (folder / "best_model_selection_index.json").write_text(json.dumps({"entries": [entry]}))
    found = load_cache_file(project, cfg, "best_model_selection", specific_timestamp="20251228_001000")
    assert found is not None and found["backbone"] == "distilbert"
    assert load_cache_file(project, cfg, "best_model_selection", specific_timestamp="20251228_001001") is None
    by_both = load_cache_file(
        project,
        cfg,
        "best_model_selection",
        specific_timestamp="20251228_001000",
        specific_identifier="exp_key",
    )
    assert by_both is not None and by_both["backbone"] == "distilbert"


def test_keep_all_false_prunes_to_max_files(project: Path) -> None:
    cfg = project / "config"
    data = yaml.safe_load((cfg / "paths.yaml").read_text())
    data["cache_strategies"]["final_training"]["timestamped"].update(keep_all=False, max_files=3)
    (cfg / "paths.yaml").write_text(yaml.safe_dump(data))
    for i in range(6):
        save_cache_with_dual_strategy(project, cfg, "final_training", {"i": i}, "b", "i", f"t{i}")
    stamped = sorted(p.name for p in cache_dir(project).glob("final_training_b_*.json"))
    assert stamped == [
        "final_training_b_i_t3.json",
        "final_training_b_i_t4.json",
        "final_training_b_i_t5.json",
    ]
    assert (cache_dir(project) / "latest_final_training_cache.json").exists()


def test_disabled_parts_are_not_referenced(project: Path) -> None:
    cfg = project / "config"
    data = yaml.safe_load((cfg / "paths.yaml").read_text())
    data["cache_strategies"]["final_training"]["timestamped"]["enabled"] = False
    (cfg / "paths.yaml").write_text(yaml.safe_dump(data))
    ts, latest, index = save_cache_with_dual_strategy(project, cfg, "final_training", {"a": 1}, "b", "i", "t")
    assert ts is None and latest is not None and index is not None
    assert json.loads(index.read_text())["entries"][0]["timestamped_file"] is None
    assert json.loads(latest.read_text())["cache_metadata"]["timestamped_file"] is None


def test_tampered_index_cannot_escape(project: Path) -> None:
    cfg = project / "config"
    save_cache_with_dual_strategy(project, cfg, "final_training", {"a": 1}, "b", "i", "t")
    secret = project / "outputs" / "secret.json"
    secret.write_text(json.dumps({"secret": True}))
    index = cache_dir(project) / "final_training_index.json"
    index.write_text(json.dumps({"entries": [{"identifier": "i", "timestamped_file": "../../secret.json"}]}))
    assert load_cache_file(project, cfg, "final_training", use_latest=False, specific_identifier="i") != {
        "secret": True
    }
    (cache_dir(project) / "latest_final_training_cache.json").unlink()
    assert load_cache_file(project, cfg, "final_training") is None


def test_corrupt_files_are_skipped_not_raised(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = project / "config"
    ts = save_cache_with_dual_strategy(project, cfg, "final_training", {"a": 1}, "b", "i", "t")[0]
    (cache_dir(project) / "latest_final_training_cache.json").write_text('{"trunc')
    assert load_cache_file(project, cfg, "final_training") == json.loads(ts.read_text())  # type: ignore[union-attr]
    assert "unreadable cache file" in caplog.text
    (cache_dir(project) / "final_training_index.json").write_text("[1, 2")
    save_cache_with_dual_strategy(project, cfg, "final_training", {"a": 2}, "b", "i", "t2")
    entries = json.loads((cache_dir(project) / "final_training_index.json").read_text())["entries"]
    assert [e["timestamp"] for e in entries] == ["t2"]


def test_get_cache_file_path_is_always_a_file(project: Path) -> None:
    cfg = project / "config"
    d = cache_dir(project, "best_model_selection")
    assert (
        get_cache_file_path(project, cfg, "best_model_selection")
        == d / "latest_best_model_selection_cache.json"
    )
    assert get_cache_file_path(project, cfg, "best_model_selection", file_type="index") == (
        d / "best_model_selection_index.json"
    )
    assert get_cache_file_path(project, cfg, "best_model_selection", filename="x.json") == d / "x.json"
    with pytest.raises(PathsError):
        get_cache_file_path(project, cfg, "best_model_selection", filename="../x.json")
    with pytest.raises(PathsError):
        get_cache_file_path(project, cfg, "best_model_selection", file_type="timestamped")


SAVER = """
import sys
from pathlib import Path
from mlrig.paths import save_cache_with_dual_strategy
root, worker = Path(sys.argv[1]), int(sys.argv[2])
for i in range(2):
    save_cache_with_dual_strategy(
        root, root / "config", "final_training", {"w": worker, "i": i}, "b", f"w{worker}", "same"
    )
"""


@pytest.mark.slow
def test_eight_processes_save_concurrently(project: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(project), str(w)]) for w in range(8)]
    assert [p.wait(120) for p in procs] == [0] * 8
    index = json.loads((cache_dir(project) / "final_training_index.json").read_text())["entries"]
    assert len(index) == 16
    assert len({e["timestamped_file"] for e in index}) == 16
    files = list(cache_dir(project).glob("final_training_b_*.json"))
    assert len(files) == 16
    payloads = [json.loads(f.read_text()) for f in files]
    assert {(d["w"], d["i"]) for d in payloads} == {(w, i) for w in range(8) for i in range(2)}
    assert not list(cache_dir(project).glob(".*.tmp"))
