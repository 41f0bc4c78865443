"""Run lookup by run key in a SQLite MLflow store with 1,000 and 10,000 runs: run index vs raw tag search.

For each store size the script bulk-inserts FINISHED runs (12 tags each, like mlrig's) through the SQL store,
records the newest 1,000 in the run index, then times (median over distinct keys):

* index only: ``find_in_mlflow_index`` (the local file, parsed once per file state);
* index hit: ``find_in_mlflow_index`` + one ``get_run`` (the finder's ``local_index`` path);
* ``find_mlflow_run`` hit (the whole call: experiment lookup, index, ``get_run`` confirmation);
* raw ``search_runs`` with ``tags.`code.run_key_hash` = '<h>'`` (the anchor);
* miss: ``find_mlflow_run`` for an unknown key (index miss + tag search) vs the raw search for it.

Targets (issue 6): hit >= 2x faster than the raw search at 10,000 runs, hit flat in store size
(10k/1k <= 1.2x), miss <= 1.2x the raw search.

    uv run --frozen python benchmarks/tracking_lookup.py [--sizes 1000 10000] [--samples 200]
"""

from __future__ import annotations

import argparse
import logging
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mlflow.tracking import MlflowClient

from mlrig.tracking import find_in_mlflow_index, find_mlflow_run, update_mlflow_index

EXPERIMENT = "bench-lookup"
TAG = "code.run_key_hash"


def _bulk_insert(client: MlflowClient, experiment_id: str, n: int) -> list[tuple[str, str]]:
    """Insert ``n`` runs in one transaction; returns ``(run_key_hash, run_id)`` oldest first."""
    from mlflow.store.tracking.dbmodels.models import SqlRun, SqlTag

    store = client._tracking_client.store
    runs = [(secrets.token_hex(32), uuid.uuid4().hex) for _ in range(n)]
    now = int(time.time() * 1000) - n
    with store.ManagedSessionMaker(read_only=False) as session:
        for i, (key_hash, run_id) in enumerate(runs):
            session.add(
                SqlRun(
                    run_uuid=run_id,
                    name=f"local_distilbert_hpo_trial_{i}",
                    status="FINISHED",
                    start_time=now + i,
                    end_time=now + i + 1,
                    lifecycle_stage="active",
                    artifact_uri=f"/tmp/none/{run_id}",
                    experiment_id=int(experiment_id),
                    source_type="LOCAL",
                    source_name="",
                    entry_point_name="",
                    user_id="bench",
                    source_version="",
                )
            )
            tags = {
                TAG: key_hash,
                "mlflow.runName": f"local_distilbert_hpo_trial_{i}",
                "code.stage": "hpo_trial",
                "code.model": "distilbert",
                "code.backbone": "distilbert",
                "code.env": "local",
                "code.storage_env": "local",
                "code.project": "resume-ner",
                "code.trial_id": f"trial_{i}",
                "code.study_key_hash": "a" * 64,
                "code.trial_key_hash": secrets.token_hex(32),
                "trial_number": str(i),
            }
            session.add_all([SqlTag(key=k, value=v, run_uuid=run_id) for k, v in tags.items()])
    return runs


def _median_ms(fn: Callable[[str], object], keys: list[str]) -> float:
    for key in keys[:5]:
        fn(key)  # warm caches and connections
    times = []
    for key in keys:
        start = time.perf_counter()
        fn(key)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(n: int, samples: int, workdir: Path) -> dict[str, float]:
    """Median milliseconds of each lookup path with ``n`` runs in the store."""
    root = workdir / f"project-{n}"
    (root / "config").mkdir(parents=True)
    uri = f"sqlite:///{workdir / f'mlflow-{n}.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(EXPERIMENT, artifact_location=(workdir / "artifacts").as_uri())
    runs = _bulk_insert(client, experiment_id, n)
    indexed = runs[-1000:]
    for key_hash, run_id in indexed:
        update_mlflow_index(root, key_hash, run_id, experiment_id, uri, experiment_name=EXPERIMENT)
    hit_keys = [key for key, _ in indexed[-samples:]]
    miss_keys = [secrets.token_hex(32) for _ in range(samples)]

    def index_hit(key: str) -> None:
        entry = find_in_mlflow_index(root, key, tracking_uri=uri)
        assert entry is not None
        client.get_run(entry["run_id"])

    def finder(key: str) -> None:
        report = find_mlflow_run(EXPERIMENT, run_key_hash=key, root_dir=root, client=client, strict=True)
        assert report.found == (key in hit_set), report

    def raw_search(key: str) -> None:
        client.search_runs([experiment_id], f"tags.`{TAG}` = '{key}'", max_results=1)

    hit_set = set(hit_keys)
    return {
        "index_only": _median_ms(lambda key: find_in_mlflow_index(root, key, tracking_uri=uri), hit_keys),
        "index_hit": _median_ms(index_hit, hit_keys),
        "finder_hit": _median_ms(finder, hit_keys),
        "raw_search_hit": _median_ms(raw_search, hit_keys),
        "finder_miss": _median_ms(finder, miss_keys),
        "raw_search_miss": _median_ms(raw_search, miss_keys),
        "get_run": _median_ms(lambda key: client.get_run(dict(indexed)[key]), hit_keys[:50]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mlrig-bench-lookup-") as tmp:
        for n in args.sizes:
            start = time.perf_counter()
            results[n] = measure(n, args.samples, Path(tmp))
            print(f"[{n} runs measured in {time.perf_counter() - start:.0f}s]")
    columns = (
        "index_only",
        "index_hit",
        "finder_hit",
        "raw_search_hit",
        "get_run",
        "finder_miss",
        "raw_search_miss",
    )
    print(f"{'runs':>6} | " + " | ".join(f"{c:>15}" for c in columns) + "   (median ms)")
    for n, r in results.items():
        print(f"{n:>6} | " + " | ".join(f"{r[c]:15.3f}" for c in columns))
    for n, r in results.items():
        print(
            f"{n} runs: raw search / index hit = {r['raw_search_hit'] / r['index_hit']:.2f}x (target >= 2x), "
            f"raw search / finder hit = {r['raw_search_hit'] / r['finder_hit']:.2f}x, "
            f"finder miss / raw search = {r['finder_miss'] / r['raw_search_miss']:.2f}x (target <= 1.2x)"
        )
    small, large = min(results), max(results)
    if small != large:
        for path in ("index_only", "index_hit", "finder_hit", "get_run", "raw_search_hit"):
            ratio = results[large][path] / results[small][path]
            print(
                f"{path}: {large}/{small} runs = {ratio:.2f}x"
                + (" (target <= 1.2x)" if path in ("index_hit", "finder_hit") else "")
            )


if __name__ == "__main__":
    main()
