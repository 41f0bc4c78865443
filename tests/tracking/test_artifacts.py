"""Checkpoint archives (skip rules, manifest) and artifact uploads (paths, retries, failures)."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlrig.tracking import (
    RetryPolicy,
    TrackingError,
    create_checkpoint_archive,
    create_run_safe,
    get_or_create_experiment,
    log_artifact_safe,
    log_artifacts_safe,
    log_checkpoint_safe,
    upload_checkpoint_archive,
)

FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02, deadline=5)


def _checkpoint(root: Path) -> Path:
    ckpt = root / "checkpoint"
    (ckpt / "sub").mkdir(parents=True)
    (ckpt / "__pycache__").mkdir()
    (ckpt / ".cache").mkdir()
    files = {
        "model.safetensors": b"\x00weights" * 100,
        "config.json": b'{"a": 1}',
        "model.logits.npy": b"npy",  # the reference dropped this (".log" substring)
        "x.tmpl": b"tmpl",  # ... and this (".tmp" substring)
        "train.log": b"log line",  # ... and this
        "a.pyc": b"pyc",
        ".config.json.abc123.tmp": b"partial",
        "sub/tokenizer.json": b"{}",
        "__pycache__/m.cpython-311.pyc": b"pyc",
        ".cache/blob": b"cache",
    }
    for rel, data in files.items():
        (ckpt / rel).write_bytes(data)
    outside = root / "outside.bin"
    outside.write_bytes(b"secret")
    (ckpt / "link_inside.json").symlink_to(ckpt / "config.json")
    (ckpt / "link_outside.bin").symlink_to(outside)
    (ckpt / "dir_link").symlink_to(ckpt / "sub", target_is_directory=True)
    with (ckpt / "big_vocab.json").open("wb") as fh:  # sparse 101 MiB: the reference silently dropped it
        fh.truncate(101 * 1024 * 1024)
    return ckpt


def test_archive_skip_rules_and_manifest(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    archive, manifest = create_checkpoint_archive(ckpt, trial_number=7, compresslevel=1)
    assert archive.parent == tmp_path  # beside the checkpoint, not in the system temp dir
    with tarfile.open(archive) as tar:
        members = sorted(m.name for m in tar.getmembers())
        assert tar.extractfile("best_trial_checkpoint/link_inside.json").read() == b'{"a": 1}'  # type: ignore[union-attr]
        assert tar.getmember("best_trial_checkpoint/big_vocab.json").size == 101 * 1024 * 1024
    expected = {
        "big_vocab.json",
        "config.json",
        "link_inside.json",
        "model.logits.npy",
        "model.safetensors",
        "sub/tokenizer.json",
        "train.log",
        "x.tmpl",
    }
    assert members == sorted(f"best_trial_checkpoint/{p}" for p in expected)
    assert {f["path"] for f in manifest["files"]} == expected
    assert manifest["file_count"] == len(expected)
    assert manifest["total_size"] == sum(f["size"] for f in manifest["files"])
    assert manifest["trial_number"] == 7 and manifest["extracted_path"] == "best_trial_checkpoint"
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == {
        "__pycache__/",
        ".cache/",
        "dir_link/",
        "a.pyc",
        ".config.json.abc123.tmp",
        "link_outside.bin",
    }
    assert "outside the checkpoint" in skipped["link_outside.bin"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_archive_output_path_and_errors(tmp_path: Path) -> None:
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / "w.bin").write_bytes(b"1")
    out = tmp_path / "out" / "a.tar.gz"
    archive, manifest = create_checkpoint_archive(ckpt, output_path=out, extracted_path="model")
    assert archive == out.resolve() and manifest["files"] == [{"path": "w.bin", "size": 1}]
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["model/w.bin"]
    with pytest.raises(TrackingError, match="inside checkpoint_dir"):
        create_checkpoint_archive(ckpt, output_path=ckpt / "x.tar.gz")
    with pytest.raises(TrackingError, match="not a directory"):
        create_checkpoint_archive(tmp_path / "missing")


@pytest.fixture
def run_on_sqlite(sqlite_tracking_uri: str) -> tuple[MlflowClient, str]:
    exp = get_or_create_experiment("artifacts", tracking_uri=sqlite_tracking_uri)
    run_id = create_run_safe(exp, "a", tracking_uri=sqlite_tracking_uri)
    assert run_id is not None
    return MlflowClient(sqlite_tracking_uri), run_id


def test_artifact_paths_file_is_file_folder_is_folder(
    tmp_path: Path, run_on_sqlite: tuple[MlflowClient, str], artifact_files: Callable[..., set[str]]
) -> None:
    client, run_id = run_on_sqlite
    metrics = tmp_path / "m.json"
    metrics.write_text("{}")
    archive = tmp_path / "checkpoint_x1y2.tar.gz"
    archive.write_bytes(b"gz")
    folder = tmp_path / "onnx"
    (folder / "inner").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "inner" / "extra.txt").write_text("x")
    kw = {"client": client, "retry": FAST}
    assert log_artifact_safe(metrics, "metrics.json", run_id, **kw)  # a file-like target names the file
    assert log_artifact_safe(metrics, "reports", run_id, **kw)  # a folder-like target is a folder
    assert log_artifact_safe(metrics, "deep/dir/final.json", run_id, **kw)
    assert log_artifact_safe(archive, "best.tar.gz", run_id, **kw)
    assert log_artifact_safe(metrics, None, run_id, **kw)
    assert log_artifacts_safe(folder, None, run_id, **kw)  # the folder keeps its name
    assert log_artifact_safe(folder, "exported", run_id, **kw)  # a folder given to log_artifact_safe
    assert artifact_files(client, run_id) == {
        "metrics.json",
        "reports/m.json",
        "deep/dir/final.json",
        "best.tar.gz",
        "m.json",
        "onnx/model.onnx",
        "onnx/inner/extra.txt",
        "exported/model.onnx",
        "exported/inner/extra.txt",
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mlrig-")]  # staging dirs removed


def test_missing_inputs_and_no_run_return_false(
    tmp_path: Path, run_on_sqlite: tuple[MlflowClient, str], artifact_files: Callable[..., set[str]]
) -> None:
    client, run_id = run_on_sqlite
    assert not log_artifact_safe(tmp_path / "nope.json", None, run_id, client=client, retry=FAST)
    assert not log_artifacts_safe(tmp_path / "nope", None, run_id, client=client, retry=FAST)
    existing = tmp_path / "f.txt"
    existing.write_text("x")
    assert not log_artifact_safe(existing, None, None, client=client, retry=FAST)  # no run id, no active run
    assert artifact_files(client, run_id) == set()


def test_upload_checkpoint_archive_names(
    tmp_path: Path, run_on_sqlite: tuple[MlflowClient, str], artifact_files: Callable[..., set[str]]
) -> None:
    client, run_id = run_on_sqlite
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    (ckpt / "w.bin").write_bytes(b"123")
    archive, manifest = create_checkpoint_archive(ckpt, 3)
    assert upload_checkpoint_archive(archive, manifest, None, run_id, client=client, retry=FAST)
    assert upload_checkpoint_archive(
        archive, manifest, "refit/model.tar.gz", run_id, client=client, retry=FAST
    )
    assert upload_checkpoint_archive(archive, None, "plain_folder", run_id, client=client, retry=FAST)
    assert log_checkpoint_safe(ckpt, "checkpoint.tar.gz", None, run_id, client=client, retry=FAST)
    assert artifact_files(client, run_id) == {
        "best_trial_checkpoint.tar.gz",
        "best_trial_checkpoint_manifest.json",
        "refit/model.tar.gz",
        "refit/model_manifest.json",
        "plain_folder/best_trial_checkpoint.tar.gz",
        "checkpoint.tar.gz",
        "checkpoint_manifest.json",
    }
    local = Path(client.download_artifacts(run_id, "refit/model_manifest.json", str(tmp_path / "dl")))
    assert json.loads(local.read_text())["files"] == [{"path": "w.bin", "size": 3}]
    archive.unlink()  # ours; log_checkpoint_safe must have removed its own
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ck.")] == []


def test_upload_failure_returns_false_and_cleans_up(
    tmp_path: Path, unreachable_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"x")
    run_id = "0" * 32
    ok = upload_checkpoint_archive(
        archive, {"files": []}, None, run_id, tracking_uri=unreachable_uri, retry=FAST
    )
    assert ok is False
    assert not archive.exists()  # cleanup_on_failure
    kept = tmp_path / "b.tar.gz"
    kept.write_bytes(b"x")
    assert not upload_checkpoint_archive(
        kept, None, None, run_id, cleanup_on_failure=False, tracking_uri=unreachable_uri, retry=FAST
    )
    assert kept.exists()


@pytest.mark.slow
def test_artifacts_round_trip_through_server(
    tmp_path: Path, mlflow_server_uri: str, artifact_files: Callable[..., set[str]]
) -> None:
    exp = get_or_create_experiment("served-artifacts", tracking_uri=mlflow_server_uri)
    run_id = create_run_safe(exp, "srv", tracking_uri=mlflow_server_uri)
    assert run_id is not None
    ckpt = tmp_path / "ck"
    ckpt.mkdir()
    payload = os.urandom(200_000)
    (ckpt / "w.bin").write_bytes(payload)
    assert log_checkpoint_safe(
        ckpt, "best_trial_checkpoint.tar.gz", 1, run_id, tracking_uri=mlflow_server_uri
    )
    client = MlflowClient(mlflow_server_uri)
    assert artifact_files(client, run_id) == {
        "best_trial_checkpoint.tar.gz",
        "best_trial_checkpoint_manifest.json",
    }
    local = client.download_artifacts(run_id, "best_trial_checkpoint.tar.gz", str(tmp_path / "dl"))
    with tarfile.open(local) as tar:
        assert tar.extractfile("best_trial_checkpoint/w.bin").read() == payload  # type: ignore[union-attr]
