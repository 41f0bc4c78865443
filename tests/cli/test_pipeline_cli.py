"""``mlrig sweep`` end to end on a user's own ``train`` (a module outside the mlrig packages), in a real
terminal: overrides applied, ``resolved_config.yaml`` beside the study and as an artifact of the sweep run,
progress on stderr only, the root's settings remembered by the read-only commands that follow."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from mlflow.tracking import MlflowClient

from mlrig.cli import main
from mlrig.orchestration.demo import prepare_demo_config

USER_PROJECT = Path(__file__).with_name("user_project")
MLRIG = [sys.executable, "-c", "from mlrig.cli import main; main()"]
OVERRIDES = [
    "hpo.sampling.max_trials=2",
    "hpo.k_fold.n_splits=2",
    "hpo.search_space.backbone.values=[tiny]",
    "train.training.epochs=2",
]
ESCAPES = re.compile(r"\x1b\[|\r")


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _in_terminal(args: list[str], cwd: Path, timeout: float = 240) -> tuple[int, str, str]:
    """Run ``args`` with stdout and stderr on two different pseudo-terminals; return (rc, stdout, stderr)
    with the terminals' own ``\\r\\n`` line ends turned back into ``\\n``."""
    out_master, out_slave = os.openpty()
    err_master, err_slave = os.openpty()
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        args, stdout=out_slave, stderr=err_slave, stdin=subprocess.DEVNULL, cwd=cwd, env=env
    )
    os.close(out_slave)
    os.close(err_slave)
    chunks: dict[int, bytearray] = {out_master: bytearray(), err_master: bytearray()}
    open_fds = set(chunks)
    deadline = time.monotonic() + timeout
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_fds), [], [], 1.0)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the other side is closed
                data = b""
            if data:
                chunks[fd] += data
            else:
                open_fds.discard(fd)
    rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    for fd in chunks:
        os.close(fd)

    def text(fd: int) -> str:
        return chunks[fd].decode("utf-8", "replace").replace("\r\n", "\n")

    return rc, text(out_master), text(err_master)


@pytest.mark.slow
def test_sweep_runs_a_user_train_with_overrides_and_saves_the_resolved_config(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    prepare_demo_config(root)
    args = [*MLRIG, "sweep", "--root", str(root), "--experiment", "demo", "--train", "my_train:train"]
    args += ["--labels", "my_train:labels", "--python-path", str(USER_PROJECT), "--json", *OVERRIDES]
    rc, out, err = _in_terminal(args, cwd=tmp_path)
    assert rc == 0, err
    # stdout is the JSON summary and nothing else: no progress bar, no escape code, no log line
    assert not ESCAPES.search(out), repr(out[:300])
    summary = json.loads(out)
    # the progress went to the terminal's stderr, drawn in place
    assert "sweep tiny" in err and "\r" in err, repr(err[-500:])
    assert "Creating initial MLflow database tables" not in err and "[I " not in err  # library INFO hidden
    assert "WARNING" not in err, err  # not even "repository root not found" (cwd is no repository)

    (sweep,) = summary["sweeps"]
    assert sweep["backbone"] == "tiny" and sweep["trials_run"] == 2
    resolved_file = Path(sweep["study_dir"]) / "resolved_config.yaml"
    resolved = yaml.safe_load(resolved_file.read_text())
    assert resolved["overrides"] == OVERRIDES
    assert resolved["train"]["training"]["epochs"] == 2 and resolved["hpo"]["sampling"]["max_trials"] == 2
    trial_ckpts = list(Path(sweep["study_dir"]).rglob("checkpoint/model.json"))
    assert trial_ckpts and json.loads(trial_ckpts[0].read_text())["epochs"] == 2  # the user's train saw it

    client = MlflowClient(tracking_uri=summary["tracking_uri"])
    names = [a.path for a in client.list_artifacts(sweep["parent_run_id"])]
    assert "resolved_config.yaml" in names
    local = client.download_artifacts(sweep["parent_run_id"], "resolved_config.yaml", str(tmp_path))
    assert yaml.safe_load(Path(local).read_text()) == resolved

    # the root remembers its backup folder and tracking URI: later commands need no flags
    settings = json.loads((root / ".mlrig" / "settings.json").read_text())
    assert settings == {"backup_root": str(root / "backup"), "tracking_uri": summary["tracking_uri"]}
    hash8 = Path(sweep["study_dir"]).name.removeprefix("study-")
    listed = cli("runs", "list", "--root", str(root), "--experiment", "hpo-tiny", "--hash", hash8, "--json")
    assert listed.exit_code == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert sweep["parent_run_id"] in {r["run_id"] for r in runs}
    assert all(any(v.startswith(hash8) for k, v in r["tags"].items() if k.endswith("_hash")) for r in runs)
    study_db = Path(sweep["study_dir"]) / "study.db"
    stamp = study_db.stat().st_mtime_ns
    (study,) = json.loads(cli("studies", "--root", str(root), "--json").stdout)
    assert study["study_hash"] == hash8 and study["model"] == "tiny" and sum(study["trials"].values()) == 2
    assert study_db.stat().st_mtime_ns == stamp and not list(study_db.parent.glob("study.db-*"))  # read only
    doctor = cli("doctor", "--root", str(root))
    assert doctor.exit_code == 0, doctor.output
    assert f"[ok] backup folder: {root / 'backup'} is writable" in doctor.stdout

    # the whole pipeline with the user's convert and benchmark resumes the same sweep and runs the stages
    more = [o.replace("max_trials=2", "max_trials=3") for o in OVERRIDES]
    args = ["-q", "pipeline", "--root", str(root), "--experiment", "demo", "--train", "my_train:train"]
    args += [
        "--labels",
        "my_train:labels",
        "--convert",
        "my_train:convert",
        "--benchmark",
        "my_train:benchmark",
    ]
    done = cli(*args, "--python-path", str(USER_PROJECT), "--json", *more)
    assert done.exit_code == 0, done.stderr
    assert done.stderr == ""  # -q: no progress, no warnings
    stages = json.loads(done.stdout)
    final, bench = stages["final_training"], stages["benchmark"]
    assert bench["metrics"]["latency_batch_1_ms"] == pytest.approx(1.02)  # the user's benchmark ran
    assert (
        yaml.safe_load((Path(final["output_dir"]) / "resolved_config.yaml").read_text())["overrides"] == more
    )
    assert "resolved_config.yaml" in [a.path for a in client.list_artifacts(final["run_id"])]

    # the printed UI hint runs as printed (up to --help: the server itself is not started)
    ui = shlex.split(summary["mlflow_ui_command"])
    assert ui[:3] == [sys.executable, "-m", "mlflow"] and "--backend-store-uri" in ui
    helped = subprocess.run(
        [*ui[: ui.index("ui") + 1], "--help"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0 and "--backend-store-uri" in helped.stdout, helped.stderr
