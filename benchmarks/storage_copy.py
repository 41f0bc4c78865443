"""Full backup of ~1 GiB vs ``cp -r`` (target: throughput ratio >= 0.8).

Eight 128 MiB files are backed up into an empty backup root with the default store (atomic temp + fsync +
rename per file) and with ``fsync=False`` (atomic rename, no flush). Anchors measured in the same run on the
same tree: ``cp -r`` (no durability, compared with ``fsync=False``) and ``cp -r`` followed by ``sync`` of the
copied files (the durability of the default store). Best of 2 rounds each; dirty
pages are flushed before every timed step. Run: ``uv run --frozen python benchmarks/storage_copy.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlrig.storage import BackupAction, DriveBackupStore

TARGET_RATIO = 0.8
FILES = 8
FILE_MIB = 128
ROUNDS = 2


def build_tree(top: Path) -> int:
    top.mkdir(parents=True)
    block = os.urandom(1 << 20)
    for i in range(FILES):
        with open(top / f"checkpoint-{i}.bin", "wb") as fh:
            for j in range(FILE_MIB):
                fh.write(block[j:] + block[:j])
    return FILES * FILE_MIB << 20


def timed(step: Callable[[], None]) -> float:
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlrig-bench-") as tmp:
        base = Path(tmp)
        root = base / "repo"
        src = root / "outputs" / "final_training"
        total = build_tree(src)
        best = {k: float("inf") for k in ("mlrig", "mlrig fsync=False", "cp -r", "cp -r + sync")}
        for r in range(ROUNDS):
            backup_root = base / f"backup{r}"
            backup_root.mkdir()
            (base / f"nosync{r}").mkdir()

            def ours(backup_root: Path = backup_root, fsync: bool = True) -> None:
                res = DriveBackupStore(root, backup_root, scratch_dir=base, fsync=fsync).backup(src)
                assert res.action is BackupAction.COPIED and len(res.stats.copied) == FILES, res

            def ours_nosync(backup_root: Path = base / f"nosync{r}") -> None:
                ours(backup_root, fsync=False)

            def cp(dst: Path = base / f"cp{r}") -> None:
                subprocess.run(["cp", "-r", str(src), str(dst)], check=True)

            def cp_sync(dst: Path = base / f"cps{r}") -> None:
                subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
                subprocess.run(["sync", *map(str, sorted(dst.iterdir()))], check=True)

            best["mlrig"] = min(best["mlrig"], timed(ours))
            best["mlrig fsync=False"] = min(best["mlrig fsync=False"], timed(ours_nosync))
            best["cp -r"] = min(best["cp -r"], timed(cp))
            best["cp -r + sync"] = min(best["cp -r + sync"], timed(cp_sync))
            for d in (backup_root, base / f"nosync{r}", base / f"cp{r}", base / f"cps{r}"):
                shutil.rmtree(d)
        mib = total / (1 << 20)
        for name, secs in best.items():
            print(f"{name:>17}: {secs:.2f} s, {mib / secs:.0f} MiB/s ({mib:.0f} MiB, best of {ROUNDS})")
        pairs = (("mlrig", "cp -r + sync"), ("mlrig fsync=False", "cp -r"), ("mlrig", "cp -r"))
        for ours_name, anchor in pairs:
            ratio = best[anchor] / best[ours_name]
            verdict = "OK" if ratio >= TARGET_RATIO else "MISSED"
            print(
                f"throughput ratio {ours_name} / {anchor} = {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}"
            )


if __name__ == "__main__":
    main()
