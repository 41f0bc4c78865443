"""What N workers on one Optuna study in PostgreSQL need to agree on: advisory locks, the schema creation,
the ask "ticket" that never overshoots the budget, heartbeats, failing dead workers' trials (and ending their
MLflow runs), the study-held fold splits and the once-per-study parent run and finaliser."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mlrig.orchestration.errors import OrchestrationError
from mlrig.orchestration.folds import FoldSplits, create_kfold_splits

logger = logging.getLogger(__name__)

STORAGE_ENV = "MLRIG_OPTUNA_STORAGE"
PARENT_ATTR = "mlflow_parent_run_id"
FINALISED_ATTR = "finalised"
FOLDS_ATTR = "fold_splits"
# Counted against the budget at ask time: a RUNNING trial may still complete, a WAITING one is a retry.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


class DistributedConfig:
    """Distributed mode's settings: where the study lives and how dead workers are detected."""

    def __init__(
        self,
        storage_url: str,
        *,
        heartbeat_interval: int = 10,
        grace_period: int | None = None,
        worker_id: str | None = None,
    ) -> None:
        if not storage_url.startswith(("postgresql://", "postgresql+")):
            raise OrchestrationError(f"distributed mode needs a postgresql storage URL, got {storage_url!r}")
        self.storage_url = storage_url
        self.heartbeat_interval = max(1, int(heartbeat_interval))
        # Optuna's default grace is 2 intervals; a trial is stale once its heartbeat is older than this.
        self.grace_period = int(grace_period) if grace_period else 2 * self.heartbeat_interval
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"

    def worker_seed(self, seed: int) -> int:
        """A per-worker sampler seed: the same seed on every worker would sample the same parameters."""
        return (seed * 1_000_003 + zlib.crc32(self.worker_id.encode())) % (2**31 - 1)


def distributed_config(
    hpo_config: Mapping[str, Any], storage_url: str | None = None
) -> DistributedConfig | None:
    """``hpo.distributed`` (``storage``, ``heartbeat_interval``, ``grace_period``) with the storage URL from
    ``storage_url``, the config or ``$MLRIG_OPTUNA_STORAGE``; None when no URL is set (local mode)."""
    section = dict(hpo_config.get("distributed") or {})
    url = storage_url or section.get("storage") or os.environ.get(STORAGE_ENV)
    if not url:
        return None
    return DistributedConfig(
        str(url),
        heartbeat_interval=int(section.get("heartbeat_interval", 10)),
        grace_period=section.get("grace_period"),
    )


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna warns that heartbeats are experimental and meant for ``Study.optimize``: known, by design here;
    ``failed_trial_callback`` is kept (deprecated in 4.9) because optuna>=4.0 lacks its new name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
        warnings.filterwarnings("ignore", ".*failed_trial_callback", FutureWarning)
        yield


def _lock_id(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (the same on every machine)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class AdvisoryLocks:
    """PostgreSQL session advisory locks on one connection: released by the server if the process dies."""

    def __init__(self, storage_url: str) -> None:
        import psycopg

        url = storage_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._conn = psycopg.connect(url, autocommit=True)
        self._mutex = threading.Lock()  # one connection: one statement at a time

    def _execute(self, sql: str, key: int) -> Any:
        with self._mutex:
            row = self._conn.execute(sql, (key,)).fetchone()
        return row[0] if row is not None else None

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold the lock ``name`` for the block (waiting for it)."""
        key = _lock_id(name)
        self._execute("SELECT pg_advisory_lock(%s)", key)
        try:
            yield
        finally:
            self._execute("SELECT pg_advisory_unlock(%s)", key)

    @contextmanager
    def try_hold(self, name: str) -> Iterator[bool]:
        """Take the lock ``name`` if free; yields whether it was taken (released at the end if so)."""
        key = _lock_id(name)
        got = bool(self._execute("SELECT pg_try_advisory_lock(%s)", key))
        try:
            yield got
        finally:
            if got:
                self._execute("SELECT pg_advisory_unlock(%s)", key)

    def close(self) -> None:
        """Close the connection (releasing every lock still held)."""
        self._conn.close()


def open_shared_storage(
    config: DistributedConfig,
    locks: AdvisoryLocks,
    failed_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
) -> optuna.storages.RDBStorage:
    """``RDBStorage`` with heartbeats, built under an advisory lock: N processes creating Optuna's schema
    on an empty database at once fail with ``UniqueViolation`` (optuna #1092)."""
    with locks.hold("mlrig:optuna-schema"), quiet_optuna():
        return optuna.storages.RDBStorage(
            config.storage_url,
            heartbeat_interval=config.heartbeat_interval,
            grace_period=config.grace_period,
            failed_trial_callback=failed_trial_callback,
            engine_kwargs={"pool_pre_ping": True},
        )


@contextmanager
def heartbeat(storage: optuna.storages.RDBStorage, trial_id: int, interval: float) -> Iterator[None]:
    """Record the trial's heartbeat every ``interval`` seconds for the block (Optuna's own heartbeat only
    runs inside ``Study.optimize``; mlrig uses ask/tell)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                storage.record_heartbeat(trial_id)
            except Exception as exc:  # a missed beat is retried at the next interval
                logger.warning("heartbeat of trial %d failed: %s", trial_id, exc)

    thread = threading.Thread(target=beat, name=f"mlrig-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def study_lock_name(study: optuna.Study) -> str:
    """The advisory lock serialising asks, parent claims and finalising of one study."""
    return f"mlrig:study:{study.study_name}"


def ask_ticket(
    study: optuna.Study, storage: optuna.storages.RDBStorage, target: int, locks: AdvisoryLocks
) -> tuple[optuna.Trial | None, bool]:
    """Under the study's lock: fail stale trials, then ask only while COMPLETE+PRUNED+RUNNING+WAITING is under
    ``target`` (a WAITING retry is always taken). Returns ``(trial, budget_reached)``; ``(None, False)``
    means wait: the budget is held by running trials that may still fail."""
    with locks.hold(study_lock_name(study)), quiet_optuna():
        optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in DONE for t in trials)
        if done >= target:
            return None, True
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if not waiting and sum(t.state in COUNTED for t in trials) >= target:
            return None, False
        trial = study.ask()
        storage.record_heartbeat(trial._trial_id)  # at once: a trial without a beat never goes stale
        return trial, False


def study_fold_splits(
    study: optuna.Study, locks: AdvisoryLocks, labels: Sequence[int], k_fold: Mapping[str, Any]
) -> FoldSplits | None:
    """The study's CV splits, kept in a study user attr (created once, by whichever worker comes first)."""
    if not k_fold.get("enabled"):
        return None
    wanted = create_kfold_splits(
        labels,
        int(k_fold.get("n_splits", 5)),
        random_seed=int(k_fold.get("random_seed", 42)),
        shuffle=bool(k_fold.get("shuffle", True)),
        stratified=bool(k_fold.get("stratified", True)),
    )
    with locks.hold(study_lock_name(study)):
        saved = study.user_attrs.get(FOLDS_ATTR)
        if saved is None:
            study.set_user_attr(
                FOLDS_ATTR,
                {"metadata": dict(wanted.metadata), "folds": [[list(a), list(b)] for a, b in wanted.folds]},
            )
            return wanted
    if saved.get("metadata") != dict(wanted.metadata):
        raise OrchestrationError(
            f"study {study.study_name!r} has fold splits for {saved.get('metadata')}, "
            f"this worker needs {dict(wanted.metadata)}"
        )
    folds = tuple((tuple(a), tuple(b)) for a, b in saved["folds"])
    return FoldSplits(folds=folds, metadata=wanted.metadata)


def claim_parent_run(
    study: optuna.Study,
    locks: AdvisoryLocks,
    create: Callable[[], str | None],
    usable: Callable[[str], bool],
    recover: Callable[[], str | None] | None = None,
) -> str | None:
    """The study's one sweep parent run id: published as a study user attr, created under the study's lock
    by the first worker (double-checked: a worker that waited for the lock finds it published). Before
    creating, ``recover`` looks for a parent created but never published (its creator died in between, found
    by its run-key-hash tag): that one is adopted and published instead of a second parent."""
    published = study.user_attrs.get(PARENT_ATTR)
    if isinstance(published, str) and usable(published):
        return published
    with locks.hold(study_lock_name(study)):
        published = study.user_attrs.get(PARENT_ATTR)
        if isinstance(published, str) and usable(published):
            return published
        run_id = recover() if recover is not None else None
        if run_id:
            logger.info("study %s: adopting the unpublished sweep parent run %s", study.study_name, run_id)
        else:
            run_id = create()
        if run_id:
            study.set_user_attr(PARENT_ATTR, run_id)
        return run_id


def finalise_once(
    study: optuna.Study, locks: AdvisoryLocks, worker_id: str, finalise: Callable[[], None]
) -> bool:
    """Run ``finalise`` (refit, final metrics, parent FINISHED) once per study: the worker that takes the
    finaliser lock and finds no ``finalised`` record does it; one killed meanwhile leaves it to the next."""
    with locks.try_hold(study_lock_name(study) + ":final") as got:
        if not got or study.user_attrs.get(FINALISED_ATTR):
            return False
        finalise()
        study.set_user_attr(FINALISED_ATTR, {"by": worker_id, "at": time.time()})
        return True
