"""The run-name version counter and the run index in PostgreSQL, for distributed mode: the same operations
as the JSON files of ``counter.py`` / ``index.py`` (which stay for local mode), one upsert per key, so N
workers on N machines share one counter and one index."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlrig.tracking.errors import TrackingError

logger = logging.getLogger(__name__)

# Created under a transaction-level advisory lock: concurrent CREATE TABLE IF NOT EXISTS on an empty database
# collide on pg_type's unique index.
_SCHEMA_LOCK = 0x6D6C726967  # "mlrig"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS mlrig_run_name_counter (
    counter_key TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mlrig_run_name_allocation (
    counter_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reserved_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    committed_at TIMESTAMPTZ,
    expired_at TIMESTAMPTZ,
    PRIMARY KEY (counter_key, version)
);
CREATE TABLE IF NOT EXISTS mlrig_run_index (
    run_key_hash TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    experiment_id TEXT NOT NULL,
    tracking_uri TEXT NOT NULL,
    experiment_name TEXT,
    run_name TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""


class PostgresRunState:
    """Run-name versions and the run index of one PostgreSQL database (``postgresql[+psycopg]://…``)."""

    def __init__(self, url: str) -> None:
        if not url.startswith(("postgresql://", "postgresql+")):
            raise TrackingError(f"PostgresRunState needs a postgresql URL, got {url!r}")
        try:
            import psycopg  # noqa: F401  (the optional driver: a clear error now, not at the first call)
        except ImportError as exc:
            raise TrackingError(
                "the PostgreSQL driver is missing: pip install 'mlrig-tracking[postgres]'"
            ) from exc
        self.url = "postgresql://" + url.split("://", 1)[1]
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(_SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        import psycopg

        # One short connection per operation: a worker reserves a handful of versions per sweep.
        with psycopg.connect(self.url) as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def reserve_run_name_version(self, counter_key: str, run_id: str | None) -> int:
        """Reserve the next version of ``counter_key`` (unique and increasing across every worker); with a
        ``run_id`` whose reservation is still open, that version again."""
        if not counter_key:
            raise TrackingError("counter_key must be a non-empty string")
        with self._transaction() as cur:
            if run_id:
                cur.execute(
                    "SELECT version FROM mlrig_run_name_allocation "
                    "WHERE counter_key = %s AND run_id = %s AND status = 'reserved'",
                    (counter_key, run_id),
                )
                row = cur.fetchone()
                if row is not None:
                    return int(row[0])
            cur.execute(
                "INSERT INTO mlrig_run_name_counter (counter_key, last_version) VALUES (%s, 1) "
                "ON CONFLICT (counter_key) DO UPDATE "
                "SET last_version = mlrig_run_name_counter.last_version + 1 RETURNING last_version",
                (counter_key,),
            )
            version = int(cur.fetchone()[0])
            cur.execute(
                "INSERT INTO mlrig_run_name_allocation (counter_key, version, run_id, status) "
                "VALUES (%s, %s, %s, 'reserved')",
                (counter_key, version, run_id or f"pending-{version}"),
            )
        return version

    def commit_run_name_version(self, counter_key: str, run_id: str, version: int) -> bool:
        """Mark ``version`` of ``counter_key`` as used by ``run_id``; False when it was never reserved or is
        committed to another run."""
        if not run_id:
            raise TrackingError("commit_run_name_version: run_id must be a non-empty string")
        with self._transaction() as cur:
            cur.execute(
                "UPDATE mlrig_run_name_allocation "
                "SET run_id = %s, status = 'committed', committed_at = now() "
                "WHERE counter_key = %s AND version = %s AND (status <> 'committed' OR run_id = %s)",
                (run_id, counter_key, version, run_id),
            )
            ok = bool(cur.rowcount == 1)
        if not ok:
            logger.warning("version %d of %s was not reserved or is another run's", version, counter_key)
        return ok

    def cleanup_stale_reservations(self, stale_minutes: float) -> int:
        """Expire reservations open for more than ``stale_minutes`` (their versions are never reused)."""
        with self._transaction() as cur:
            cur.execute(
                "UPDATE mlrig_run_name_allocation SET status = 'expired', expired_at = now() "
                "WHERE status = 'reserved' AND reserved_at < now() - make_interval(secs => %s)",
                (float(stale_minutes) * 60,),
            )
            return int(cur.rowcount)

    def update_mlflow_index(
        self,
        run_key_hash: str,
        run_id: str,
        experiment_id: str,
        tracking_uri: str,
        *,
        experiment_name: str | None = None,
        run_name: str | None = None,
    ) -> None:
        """Record ``run_key_hash → run_id`` (upsert)."""
        for name, value in (
            ("run_key_hash", run_key_hash),
            ("run_id", run_id),
            ("tracking_uri", tracking_uri),
        ):
            if not value:
                raise TrackingError(f"update_mlflow_index: {name} must be non-empty")
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO mlrig_run_index AS i (run_key_hash, run_id, experiment_id, tracking_uri, "
                "experiment_name, run_name) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (run_key_hash) DO UPDATE SET run_id = EXCLUDED.run_id, "
                "experiment_id = EXCLUDED.experiment_id, tracking_uri = EXCLUDED.tracking_uri, "
                "experiment_name = COALESCE(EXCLUDED.experiment_name, i.experiment_name), "
                "run_name = COALESCE(EXCLUDED.run_name, i.run_name), updated_at = now()",
                (run_key_hash, run_id, experiment_id, tracking_uri, experiment_name, run_name),
            )

    def find_in_mlflow_index(
        self, run_key_hash: str, tracking_uri: str | None = None
    ) -> dict[str, Any] | None:
        """The index entry of ``run_key_hash`` (``run_id``, ``experiment_id``, ``tracking_uri`` and, when
        recorded, ``experiment_name`` / ``run_name``), or None (also for another ``tracking_uri``)."""
        if not run_key_hash:
            return None
        with self._transaction() as cur:
            cur.execute(
                "SELECT run_id, experiment_id, tracking_uri, experiment_name, run_name FROM mlrig_run_index "
                "WHERE run_key_hash = %s",
                (run_key_hash,),
            )
            row = cur.fetchone()
        if row is None or (tracking_uri is not None and row[2].rstrip("/") != tracking_uri.rstrip("/")):
            return None
        keys = ("run_id", "experiment_id", "tracking_uri", "experiment_name", "run_name")
        return {k: v for k, v in zip(keys, row, strict=True) if v}
