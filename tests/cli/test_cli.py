"""Every ``mlrig`` command: its happy path and its bad-input path (clear message, non-zero exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow.tracking import MlflowClient

from mlrig.cli import main
from mlrig.orchestration.demo import prepare_demo_config
from mlrig.paths import acquire_root

S, T = "350a79aa" + "0" * 56, "0123abcd" + "1" * 56


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    prepare_demo_config(tmp_path)
    (tmp_path / "outputs").mkdir()
    return tmp_path


@pytest.fixture
def store_uri(project: Path) -> str:
    uri = f"sqlite:///{project}/mlruns/mlflow.db"
    (project / "mlruns").mkdir()
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("exp")
    for i, (value, status) in enumerate([(0.5, "FINISHED"), (0.9, "FINISHED"), (0.7, "KILLED")]):
        r = client.create_run(exp, run_name=f"run{i}", tags={"code.run_key_hash": f"{i:064x}", "grp": "a"})
        client.log_metric(r.info.run_id, "macro-f1", value)
        client.set_terminated(r.info.run_id, status)
    client.create_run(exp, run_name="left-running", tags={"grp": "b"})
    return uri


def test_help_does_not_import_mlflow_optuna_or_the_upper_packages() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from mlrig.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = ('mlflow', 'optuna', 'mlrig.tracking', 'mlrig.orchestration'); "
        "bad = [m for m in sys.modules if m.startswith(heavy)]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_versions() -> None:
    result = run("versions")
    assert result.exit_code == 0
    assert "mlrig-paths 0.1.0" in result.output and "mlrig-orchestration" in result.output
    found = json.loads(run("versions", "--json").stdout)
    assert {"mlflow-skinny", "optuna", "python"} <= set(found) and sys.executable in found["python"]


def test_paths_and_names(project: Path) -> None:
    args = ["--root", str(project), "--process-type", "hpo", "--model", "distil-bert", "--stage", "hpo_trial"]
    args += ["--study-key-hash", S, "--trial-key-hash", T, "--trial-number", "4"]
    result = run("paths", *args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(
        project.absolute() / "outputs/hpo/local/distil_bert/study-350a79aa/trial-0123abcd"
    )
    result = run("names", *args)
    assert result.exit_code == 0, result.output
    assert "run name: local_distil_bert_hpo_trial_study-350a79aa_t04" in result.output
    assert f"code.trial_key_hash = {T}" in result.output


def test_paths_bad_input(project: Path) -> None:
    result = run("paths", "--root", str(project), "--process-type", "training", "--model", "m")
    assert result.exit_code == 1
    assert result.output.startswith("Error: NamingError: ") and "training" in result.output
    assert result.output.count("\n") == 1, result.output
    result = run(
        "paths", "--root", str(project), "--process-type", "hpo", "--model", "m", "--stage", "hpo_trial"
    )
    assert result.exit_code == 1 and "Error" in result.output


def test_runs_find_list_best(project: Path, store_uri: str) -> None:
    base = ["--root", str(project), "--tracking-uri", store_uri, "--experiment", "exp"]
    result = run("runs", "find", *base, "--run-key-hash", f"{1:064x}")
    assert result.exit_code == 0, result.output
    assert "run1" in result.output and "tag_run_key_hash" in result.output
    result = run("runs", "list", *base, "--tag", "grp=a")
    assert result.exit_code == 0 and "3 run(s)" in result.stderr and "run(s)" not in result.stdout
    assert len(result.stdout.splitlines()) == 3
    result = run("-q", "runs", "list", *base, "--tag", "grp=a")
    assert result.stderr == "" and len(result.stdout.splitlines()) == 3  # -q: results only
    listed = json.loads(run("runs", "list", *base, "--tag", "grp=a", "--status", "finished", "--json").stdout)
    assert sorted(r["run_name"] for r in listed) == ["run0", "run1"]
    assert all(r["tags"]["grp"] == "a" and "macro-f1" in r["metrics"] for r in listed)
    # a key-hash or run-id prefix (what folder names show) finds the run
    result = run("runs", "find", *base, "--run-key-hash", "0" * 8)  # three runs' hashes start so
    assert result.exit_code == 1 and "3 runs in 'exp' match prefix '00000000'" in result.stderr
    by_id = json.loads(run("runs", "list", *base, "--json").stdout)
    run1 = next(r for r in by_id if r["run_name"] == "run1")
    result = run("runs", "find", *base, "--run-id", run1["run_id"][:8], "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["run_name"] == "run1", result.output
    result = run("runs", "find", *base, "--hash", run1["run_id"][:8])
    assert result.exit_code == 0 and "run1" in result.stdout
    # experiments by a unique part of their name, and the list of them
    assert "run1" in run("runs", "best", "--root", str(project), "--tracking-uri", store_uri,
                         "--experiment", "ex", "--metric", "macro-f1").stdout  # fmt: skip
    experiments = json.loads(
        run("experiments", "--root", str(project), "--tracking-uri", store_uri, "--json").stdout
    )
    assert {"name": "exp", "runs": 4} in [{k: e[k] for k in ("name", "runs")} for e in experiments]
    result = run("runs", "best", *base, "--metric", "macro-f1")
    assert result.exit_code == 0 and "run1" in result.output and "macro-f1=0.9" in result.output
    result = run("runs", "best", *base, "--metric", "macro-f1", "--direction", "minimize")
    assert "run0" in result.output
    result = run("runs", "best", *base, "--metric", "macro-f1", "--tag", "grp=b")
    assert result.exit_code == 1 and "grp=b" in result.stderr  # the tag filter is honoured, not ignored


def test_runs_bad_input(project: Path, store_uri: str) -> None:
    base = ["--root", str(project), "--tracking-uri", store_uri]
    result = run("runs", "list", *base, "--experiment", "nope")
    assert result.exit_code == 1 and "no MLflow experiment 'nope'" in result.output and "exp" in result.output
    result = run("runs", "find", *base, "--experiment", "exp")
    assert result.exit_code == 2 and "--run-key-hash" in result.output
    result = run("runs", "find", *base, "--experiment", "exp", "--run-key-hash", "f" * 64)
    assert result.exit_code == 1 and "run not found" in result.output
    result = run("runs", "list", *base, "--experiment", "exp", "--tag", "novalue")
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = run("runs", "best", *base, "--experiment", "exp", "--metric", "nope")
    assert result.exit_code == 1 and "'nope'" in result.output


def test_cleanup_interrupted(project: Path, store_uri: str) -> None:
    base = ["--root", str(project), "--tracking-uri", store_uri, "--experiment", "exp"]
    with acquire_root(project):  # a live owner: its runs are left alone, however old
        result = run("cleanup-interrupted", *base)
        assert "owned by the live pid" in result.output and "0 interrupted" in result.output
    assert "0 interrupted" in run("cleanup-interrupted", *base, "--older-than-minutes", "60").output
    result = run("cleanup-interrupted", *base, "--older-than-minutes", "0", "--dry-run")
    assert "would end" in result.output and "1 interrupted run(s) (dry run)" in result.output
    result = run("cleanup-interrupted", *base, "--older-than-minutes", "0")
    assert result.exit_code == 0 and "1 interrupted run(s)" in result.output
    client = MlflowClient(tracking_uri=store_uri)
    exp = client.get_experiment_by_name("exp")
    left = client.search_runs([exp.experiment_id], "attributes.run_name = 'left-running'")[0]
    assert left.info.status == "KILLED" and left.data.tags["code.interrupted"] == "true"


def test_backup_restore_verify(project: Path, tmp_path: Path) -> None:
    data = project / "outputs" / "hpo" / "x"
    data.mkdir(parents=True)
    (data / "a.json").write_text(json.dumps({"a": 1}))
    bk = ["--root", str(project), "--backup-root", str(tmp_path / "drive")]
    result = run("backup", str(data), *bk)
    assert result.exit_code == 1 and "does not exist" in result.output  # an unmounted drive is refused
    (tmp_path / "drive").mkdir()
    result = run("backup", str(data), *bk)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "drive" / "outputs" / "hpo" / "x" / "a.json").is_file()
    assert run("verify", str(data), *bk).exit_code == 0
    (data / "a.json").write_text("changed, longer content")
    result = run("verify", str(data), *bk)
    assert result.exit_code == 1 and "a.json" in result.output
    (data / "a.json").unlink()
    result = run("restore", str(data), *bk)
    assert result.exit_code == 0 and json.loads((data / "a.json").read_text()) == {"a": 1}


def test_backup_bad_input(project: Path, tmp_path: Path) -> None:
    (tmp_path / "drive").mkdir()
    bk = ["--root", str(project), "--backup-root", str(tmp_path / "drive")]
    result = run("backup", str(project / "config"), *bk)
    assert result.exit_code == 1 and "backup failed" in result.output
    result = run("restore", str(project / "outputs" / "never"), *bk)
    assert result.exit_code == 1 and "restore failed" in result.output


def test_doctor(project: Path, tmp_path: Path) -> None:
    (tmp_path / "drive").mkdir()
    args = ["--root", str(project), "--backup-root", str(tmp_path / "drive")]
    args += ["--tracking-uri", f"sqlite:///{project}/mlruns.db"]
    result = run("doctor", *args)
    assert result.exit_code == 0, result.output
    assert "[ok] experiment/demo.yaml" in result.output and "all checks passed" in result.output
    (project / "config" / "paths.yaml").write_text("base: [unclosed\n")
    (project / "config" / "hpo" / "demo.yaml").unlink()
    result = run("doctor", "--root", str(project), "--backup-root", str(tmp_path / "missing"))
    assert result.exit_code == 1
    assert "[FAIL] paths.yaml" in result.output and ":1:" in result.output
    assert "[FAIL] experiment/demo.yaml" in result.output and "hpo/demo.yaml" in result.output
    assert "[FAIL] backup folder" in result.output and "does not exist" in result.output
    assert "problem(s) found" in result.output


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def test_doctor_lists_no_unknown_key_on_the_demo_configs_and_creates_nothing(project: Path) -> None:
    before = _tree(project)
    result = run("doctor", "--root", str(project))
    assert "[ok] config keys:" in result.output and "0 error(s), 0 warning(s)" in result.output
    assert "unknown key" not in result.output and "not implemented" not in result.output
    assert _tree(project) == before  # no store, study, folder or cache file


def test_doctor_names_file_key_and_line_of_a_typo(project: Path) -> None:
    hpo = project / "config" / "hpo" / "demo.yaml"
    lines = hpo.read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if line.startswith("k_fold:"))
    lines[n] = "k_fodl:"
    hpo.write_text("\n".join(lines) + "\n")
    result = run("doctor", "--root", str(project))
    assert f"{hpo}:{n + 1}: k_fodl: unknown key" in result.output, result.output
    assert "[ok] config keys:" in result.output  # a warning, not a failure


@pytest.mark.slow
def test_a_live_tracking_server_passes_the_reachability_check(tmp_path: Path, mlflow_server_uri: str) -> None:
    result = run("experiments", "--root", str(tmp_path), "--tracking-uri", mlflow_server_uri, "--json")
    assert result.exit_code == 0, result.output
    assert "Default" in {e["name"] for e in json.loads(result.stdout)}
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] and os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
