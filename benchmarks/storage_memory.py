"""Peak memory of a backup is independent of file size (target: peak RSS ratio large/small <= 1.1).

Each case runs in a fresh process: import mlrig.storage, back up one file, report the peak RSS (ru_maxrss).
The anchor is the same backup of a small file of the same kind, measured in the same run. Cases: a plain
file (1 MiB vs 512 MiB, streamed with sendfile) and a SQLite database (1 MiB vs 128 MiB, online backup API).
Run: ``uv run --frozen python benchmarks/storage_memory.py``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_RATIO = 1.1
MIB = 1 << 20

CHILD = """
import resource, sys
from pathlib import Path
from mlrig.storage import DriveBackupStore
root, target = Path(sys.argv[1]), Path(sys.argv[2])
backup_root = root.parent / ("backup-" + target.name)
backup_root.mkdir()
store = DriveBackupStore(root, backup_root, scratch_dir=root.parent)
assert store.backup(target).ok
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_plain(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as fh:
        for _ in range(size // MIB):
            fh.write(block)


def make_sqlite(path: Path, size: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE blobs (b BLOB)")
    chunk = os.urandom(64 * 1024)
    conn.executemany("INSERT INTO blobs VALUES (?)", [(chunk,)] * (size // len(chunk)))
    conn.commit()
    conn.close()


def peak_kib(root: Path, target: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(target)], check=True, capture_output=True
    )
    return int(out.stdout.decode().strip())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlrig-bench-") as tmp:
        root = Path(tmp) / "repo"
        outputs = root / "outputs"
        outputs.mkdir(parents=True)
        cases = [
            ("plain file", make_plain, "small.bin", MIB, "large.bin", 512 * MIB),
            ("SQLite db", make_sqlite, "small.db", MIB, "large.db", 128 * MIB),
        ]
        worst = 0.0
        for label, make, small_name, small, large_name, large in cases:
            make(outputs / small_name, small)
            make(outputs / large_name, large)
            anchor = peak_kib(root, outputs / small_name)
            figure = peak_kib(root, outputs / large_name)
            ratio = figure / anchor
            worst = max(worst, ratio)
            print(
                f"{label}: peak RSS {figure / 1024:.1f} MiB for {large // MIB} MiB, "
                f"anchor {anchor / 1024:.1f} MiB for {small // MIB} MiB, ratio {ratio:.3f}"
            )
        verdict = "OK" if worst <= TARGET_RATIO else "MISSED"
        print(f"worst ratio large/small = {worst:.3f} (target <= {TARGET_RATIO}) {verdict}")


if __name__ == "__main__":
    main()
