"""MLflow-native results: train-set metric keys, the sweep's trials table, resolved configs as artifacts, and
the final model as an MLflow (pyfunc) model, registered with an alias.

Like every tracking call, these never stop training: a failure is logged as a warning and reported by the
return value (``False`` / ``None``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from mlflow.tracking import MlflowClient

from mlrig.paths import atomic_write_bytes, atomic_write_json
from mlrig.tracking.artifacts import log_artifact_safe
from mlrig.tracking.retry import DEFAULT_RETRY, RetryPolicy

logger = logging.getLogger(__name__)

#: Prefix of scores measured on the training rows (refit, final training): ``train_macro-f1``.
TRAIN_PREFIX: Final = "train_"
#: The flag metric a training function returns when it scored on its training rows (not logged).
EVALUATED_ON_TRAIN: Final = "evaluated_on_train"


class _MetricSink(Protocol):
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...


class StepLogger:
    """A ``report(step, value)`` callback (``TrainRequest.report``) that logs ``value`` as ``key`` at
    ``step`` on ``run`` (a ``TrackedRun`` or a tracker; buffered, sent with the run's batch), then returns
    ``prune(step, value)`` (False without one). ``last_step`` is the last step reported (0 before any), the
    step at which the caller logs the final scores so they continue the curve."""

    def __init__(
        self,
        run: _MetricSink | None,
        key: str,
        prune: Callable[[int, float], bool] | None = None,
    ) -> None:
        self.run, self.key, self.prune = run, key, prune
        self.last_step = 0
        self._last: tuple[int, float] | None = None

    def __call__(self, step: int, value: float) -> bool:
        self.last_step = max(self.last_step, int(step))
        self._last = (int(step), float(value))
        if self.run is not None:
            self.run.log_metrics({self.key: float(value)}, int(step))
        return self.prune(step, value) if self.prune is not None else False

    def log_final(self, metrics: Mapping[str, float]) -> None:
        """Log the training function's final ``metrics`` at :attr:`last_step` (the curve's key only when
        its final value is not already the curve's last point)."""
        if self.run is None:
            return
        last = self._last
        final = {
            k: float(v)
            for k, v in metrics.items()
            if not (k == self.key and last is not None and last == (self.last_step, float(v)))
        }
        self.run.log_metrics(final, self.last_step)


def train_key(metric: str) -> str:
    """The key of ``metric`` measured on the training rows: ``train_<metric>``."""
    return metric if metric.startswith(TRAIN_PREFIX) else f"{TRAIN_PREFIX}{metric}"


def train_set_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` measured on the training rows under ``train_<key>`` (``macro-f1`` → ``train_macro-f1``),
    so they never share a key with a held-out score (the CV mean of a trial keeps ``macro-f1``) and a
    search or sort on ``macro-f1`` never ranks a score on the training rows first. The
    ``evaluated_on_train`` flag is dropped (the key says it)."""
    return {train_key(k): float(v) for k, v in metrics.items() if k != EVALUATED_ON_TRAIN}


def trials_table_rows(study: Any) -> list[dict[str, Any]]:
    """One row per trial of an Optuna ``study`` (duck-typed: ``trials`` with ``number``, ``state``,
    ``value``, ``params``, ``user_attrs``): number, state, value, the MLflow run id and every param."""
    rows: list[dict[str, Any]] = []
    for trial in getattr(study, "trials", []):
        state = getattr(trial, "state", None)
        row: dict[str, Any] = {
            "number": trial.number,
            "state": getattr(state, "name", str(state)),
            "value": trial.value,
            "run_id": (getattr(trial, "user_attrs", None) or {}).get("mlflow_run_id", ""),
        }
        row.update({f"param_{k}": v for k, v in sorted(trial.params.items())})
        rows.append(row)
    return rows


def _csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["number"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue().encode("utf-8")


def log_trials_table(
    study: Any,
    path: Path | str,
    run_id: str | None,
    *,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """Write the study's trials table to ``path`` (CSV; :func:`trials_table_rows`) and upload it to
    ``run_id`` (the sweep parent) as ``trials.csv``. True when both worked."""
    target = Path(path)
    try:
        atomic_write_bytes(target, _csv_bytes(trials_table_rows(study)))
    except (OSError, AttributeError, TypeError) as exc:
        logger.warning("trials table %s not written (training continues): %s", target, exc)
        return False
    if not run_id:
        return False
    return log_artifact_safe(target, "trials.csv", run_id, client=client, retry=retry or DEFAULT_RETRY)


def log_json_artifact(
    data: Mapping[str, Any],
    path: Path | str,
    run_id: str | None,
    *,
    artifact_path: str | None = None,
    client: MlflowClient | None = None,
    retry: RetryPolicy | None = None,
) -> bool:
    """Write ``data`` as JSON to ``path`` (kept beside the stage's outputs) and upload it to ``run_id``
    (as ``artifact_path``, default the file's name). True when both worked."""
    target = Path(path)
    try:
        atomic_write_json(target, json.loads(json.dumps(dict(data), default=str)))
    except (OSError, TypeError, ValueError) as exc:
        logger.warning("%s not written (training continues): %s", target, exc)
        return False
    if not run_id:
        return False
    return log_artifact_safe(
        target, artifact_path or target.name, run_id, client=client, retry=retry or DEFAULT_RETRY
    )


@dataclass(frozen=True)
class LoggedModelInfo:
    """A model logged by :func:`log_pyfunc_model`: its id, ``models:/<id>`` URI, and the registered
    version / alias when it was registered."""

    model_id: str
    model_uri: str
    registered_name: str | None = None
    version: str | None = None
    alias: str | None = None


def log_pyfunc_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    python_model: Any,
    *,
    name: str = "model",
    artifacts: Mapping[str, str] | None = None,
    pip_requirements: Sequence[str] | None = None,
    params: Mapping[str, object] | None = None,
    register_as: str | None = None,
    alias: str | None = None,
) -> LoggedModelInfo | None:
    """Log ``python_model`` (an ``mlflow.pyfunc.PythonModel``, or the path of a models-from-code file;
    ``artifacts`` its files) as an MLflow model
    output of ``run_id``, through ``client`` only (no fluent run, no global tracking URI), and, with
    ``register_as``, register it as a new version of that registered model with ``alias`` pointing at it.

    ``pip_requirements`` are recorded as given (no inference, which would re-import the model in a
    subprocess). Without ``mlflow.pyfunc`` (not every install has it), on a store without a model registry,
    or on any failure: a warning, and None (or the model without its registration)."""
    try:
        import mlflow.pyfunc
        from mlflow.entities import LoggedModelOutput
        from mlflow.models import Model
    except ImportError as exc:
        logger.warning("MLflow model not logged: mlflow.pyfunc is not available (%s)", exc)
        return None
    try:
        model = client.create_logged_model(
            experiment_id,
            name=name,
            source_run_id=run_id,
            params={k: str(v) for k, v in (params or {}).items()},
            model_type="pyfunc",
        )
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        with tempfile.TemporaryDirectory(prefix="mlrig-model-") as tmp:
            local = Path(tmp) / "model"
            meta = Model(
                artifact_path=model.artifact_location,
                model_uuid=model.model_id,
                run_id=run_id,
                model_id=model.model_id,
            )
            with _quiet("mlflow.utils.environment"):  # "Failed to resolve installed pip version" (uv venvs)
                mlflow.pyfunc.save_model(
                    str(local),
                    python_model=python_model,
                    artifacts=dict(artifacts or {}),
                    pip_requirements=list(pip_requirements or []),
                    mlflow_model=meta,
                )
            client.log_model_artifacts(model.model_id, str(local))
        client.finalize_logged_model(model.model_id, "READY")
    except Exception as exc:
        logger.warning(
            "MLflow model of run %s not logged (training continues): %s: %s", run_id, type(exc).__name__, exc
        )
        return None
    info = LoggedModelInfo(model.model_id, f"models:/{model.model_id}")
    if not register_as:
        return info
    # the version's source is the model's artifact location: a models:/ URI would be resolved through
    # MLflow's global tracking URI, which mlrig never sets
    return _register(client, info, model.artifact_location, run_id, register_as, alias)


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Logger ``name`` at ERROR for the block (its level restored after)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _register(
    client: MlflowClient, info: LoggedModelInfo, source: str, run_id: str, name: str, alias: str | None
) -> LoggedModelInfo:
    from mlflow.exceptions import MlflowException

    try:
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(
            name, source, run_id=run_id, model_id=info.model_id, await_creation_for=0
        )
        if alias:
            client.set_registered_model_alias(name, alias, version.version)
    except Exception as exc:
        logger.warning(
            "model %s not registered as %r (the store may have no model registry): %s: %s",
            info.model_id,
            name,
            type(exc).__name__,
            exc,
        )
        return info
    return LoggedModelInfo(info.model_id, info.model_uri, name, str(version.version), alias)
