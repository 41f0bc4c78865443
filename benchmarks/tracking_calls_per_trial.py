"""REST calls and wall time per trial: a 20-trial Optuna study tracked by mlrig vs optuna-integration's
``MLflowCallback``, both against the same real ``mlflow server`` (SQLite backend) on 127.0.0.1.

The trial loop's wall time is what training waits for: mlrig creates each trial run synchronously and sends
the closing batch and termination from a background writer thread (drained before the sweep ends); the time
until everything is terminated is printed as well. Calls are counted from the server's own access log
(every ``/api/...`` request line), so nothing sits between the client and the server.
Targets: mlrig ≤ 3 calls per trial and ≤ 0.5x the callback's time per trial.

    uv run --frozen python benchmarks/tracking_calls_per_trial.py [--trials 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna_integration.mlflow import MLflowCallback

from mlrig.tracking import MLflowSweepTracker

CALL_TARGET = 3.0
TIME_RATIO_TARGET = 0.5
_API_LINE = re.compile(r'"(?:GET|POST|PUT|PATCH|DELETE) (/api/[^ ?"]+)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'server.db'}",
            "--artifacts-destination",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"mlflow server exited:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.25)
        raise SystemExit("mlflow server did not start")

    def api_calls(self) -> list[str]:
        time.sleep(0.3)  # let the access log catch up
        return _API_LINE.findall(self.log.read_text(errors="replace"))

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", 0, 5)
    return (x - 2) ** 2 + y


def run_mlrig(
    uri: str, name: str, trials: int, count: Callable[[], int]
) -> tuple[float, float, int, Callable[[], None]]:
    """Sweep parent + one child run per trial: (seconds of the trial loop, seconds until the background
    writer has also sent every trial's batch and termination, REST calls of the trials, close)."""
    tracker = MLflowSweepTracker(name, tracking_uri=uri)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    hpo = {"objective": {"metric": "value", "goal": "minimize"}, "sampling": {"max_trials": trials}}
    sweep = tracker.start_sweep_run("sweep", hpo, "model", name, None, None, False)
    sweep.__enter__()

    def tracked(trial: optuna.Trial) -> float:
        with tracker.start_trial_run(trial.number) as run:
            value = _objective(trial)
            run.log_params(trial.params)
            run.log_metric("value", value)
        return value

    before = count()
    start = time.perf_counter()
    study.optimize(tracked, n_trials=trials)
    elapsed = time.perf_counter() - start
    tracker.wait()
    drained = time.perf_counter() - start
    trial_calls = count() - before

    def close() -> None:
        tracker.log_final_metrics(study, "value")
        sweep.__exit__(None, None, None)
        assert not tracker.failures, tracker.failures

    return elapsed, drained, trial_calls, close


def run_callback(uri: str, name: str, trials: int) -> float:
    callback = MLflowCallback(tracking_uri=uri, metric_name="value")
    study = optuna.create_study(study_name=name, sampler=optuna.samplers.RandomSampler(seed=0))
    start = time.perf_counter()
    study.optimize(_objective, n_trials=trials, callbacks=[callback])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # MLflow's end_run would fetch each run again just to print a "View run" URL; suppressing that makes the
    # anchor cheaper, i.e. the comparison conservative for mlrig.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    with tempfile.TemporaryDirectory(prefix="mlrig-bench-") as tmp:
        server = Server(Path(tmp))
        try:
            # warm-up (imports, first connections, experiment creation paths) for both sides
            run_callback(server.uri, "warm-callback", 2)
            count = lambda: len(server.api_calls())  # noqa: E731
            _, _, _, close = run_mlrig(server.uri, "warm-mlrig", 2, count)
            close()
            results: dict[str, dict[str, list[float]]] = {"mlrig": {}, "callback": {}}
            for rep in range(args.repeats):
                before = count()
                elapsed = run_callback(server.uri, f"callback-{rep}", args.trials)
                results["callback"].setdefault("time", []).append(elapsed / args.trials)
                results["callback"].setdefault("calls", []).append((count() - before) / args.trials)

                before = count()
                elapsed, drained, trial_calls, close = run_mlrig(
                    server.uri, f"mlrig-{rep}", args.trials, count
                )
                close()
                results["mlrig"].setdefault("time", []).append(elapsed / args.trials)
                results["mlrig"].setdefault("time_drained", []).append(drained / args.trials)
                results["mlrig"].setdefault("calls", []).append(trial_calls / args.trials)
                results["mlrig"].setdefault("calls_all", []).append((count() - before) / args.trials)
        finally:
            server.stop()
    mlrig_calls = statistics.median(results["mlrig"]["calls"])
    mlrig_all = statistics.median(results["mlrig"]["calls_all"])
    cb_calls = statistics.median(results["callback"]["calls"])
    mlrig_time = statistics.median(results["mlrig"]["time"])
    cb_time = statistics.median(results["callback"]["time"])
    ratio = mlrig_time / cb_time
    drained = statistics.median(results["mlrig"]["time_drained"])
    lines = [
        f"trials per study: {args.trials}, repeats: {args.repeats} (medians), mlflow {_mlflow_version()}",
        f"REST calls per trial  mlrig: {mlrig_calls:.2f}  (sweep set-up/close amortised in: {mlrig_all:.2f})",
        f"REST calls per trial  MLflowCallback (anchor): {cb_calls:.2f}",
        f"calls ratio mlrig/anchor: {mlrig_calls / cb_calls:.2f}   target: <= {CALL_TARGET:.0f} per trial "
        f"-> {'PASS' if mlrig_calls <= CALL_TARGET else 'FAIL'}",
        f"wall time per trial  mlrig: {mlrig_time * 1000:.1f} ms   "
        f"MLflowCallback (anchor): {cb_time * 1000:.1f} ms",
        f"time ratio mlrig/anchor: {ratio:.2f}   target: <= {TIME_RATIO_TARGET} "
        f"-> {'PASS' if ratio <= TIME_RATIO_TARGET else 'FAIL'}",
        f"(mlrig ends trial runs on a background writer; time until every trial run is also terminated: "
        f"{drained * 1000:.1f} ms per trial, ratio {drained / cb_time:.2f})",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def _mlflow_version() -> Any:
    import mlflow

    return mlflow.__version__


if __name__ == "__main__":
    main()
