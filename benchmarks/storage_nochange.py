"""No-change backup pass over 10,000 small files vs ``rsync -a`` on the same trees (target ratio <= 1.5).

Both sides are first fully synced; then each tool re-runs with nothing to do, interleaved, median of 7 runs.
Our figure is a full ``DriveBackupStore.backup(dir)`` call (scope checks, lock, source and destination stat
walks, manifest compare). Run: ``uv run --frozen python benchmarks/storage_nochange.py``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mlrig.storage import BackupAction, DriveBackupStore

TARGET_RATIO = 1.5
FILES = 10_000
RUNS = 7


def build_tree(top: Path) -> None:
    for i in range(FILES):
        d = top / f"trial-{i // 100:03d}"
        if i % 100 == 0:
            d.mkdir(parents=True)
        (d / f"metrics-{i}.json").write_text(f'{{"loss": {i}}}' * 8)


def main() -> None:
    if shutil.which("rsync") is None:
        raise SystemExit("rsync is required for the anchor")
    with tempfile.TemporaryDirectory(prefix="mlrig-bench-") as tmp:
        base = Path(tmp)
        root = base / "repo"
        src = root / "outputs" / "hpo"
        build_tree(src)
        backup_root = base / "backup"
        backup_root.mkdir()
        rsync_dst = base / "rsync" / "hpo"
        rsync_dst.parent.mkdir()
        store = DriveBackupStore(root, backup_root, scratch_dir=base)
        first = DriveBackupStore(root, backup_root, scratch_dir=base, fsync=False).backup(src)
        assert first.ok and len(first.stats.copied) == FILES, first
        subprocess.run(["rsync", "-a", f"{src}/", f"{rsync_dst}/"], check=True)
        ours: list[float] = []
        anchor: list[float] = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            res = store.backup(src)
            ours.append(time.perf_counter() - t0)
            assert res.action is BackupAction.SKIPPED and res.stats.unchanged == FILES, res
            t0 = time.perf_counter()
            subprocess.run(["rsync", "-a", f"{src}/", f"{rsync_dst}/"], check=True)
            anchor.append(time.perf_counter() - t0)
        mine, theirs = statistics.median(ours), statistics.median(anchor)
        ratio = mine / theirs
        print(f"no-change pass, {FILES} files: mlrig {mine * 1000:.1f} ms (median of {RUNS})")
        print(f"anchor rsync -a, same tree:      {theirs * 1000:.1f} ms (median of {RUNS})")
        verdict = "OK" if ratio <= TARGET_RATIO else "MISSED"
        print(f"ratio mlrig/rsync = {ratio:.2f} (target <= {TARGET_RATIO}) {verdict}")


if __name__ == "__main__":
    main()
