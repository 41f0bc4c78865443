"""Deterministic K-fold splits, computed once per study and saved next to ``study.db``."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrig.orchestration.errors import OrchestrationError
from mlrig.paths import atomic_write_json

FOLD_SPLITS_FILE = "fold_splits.json"


@dataclass(frozen=True)
class FoldSplits:
    """``folds[k] = (train_indices, eval_indices)`` plus the settings that produced them."""

    folds: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    metadata: Mapping[str, Any]


def create_kfold_splits(
    labels: Sequence[int], k: int, *, random_seed: int = 42, shuffle: bool = True, stratified: bool = True
) -> FoldSplits:
    """``k`` disjoint evaluation folds covering every row once (stratified by label when asked)."""
    n = len(labels)
    if k < 2 or k > n:
        raise OrchestrationError(f"k_fold.n_splits must be between 2 and the number of rows ({n}), got {k}")
    rng = random.Random(random_seed)
    groups: dict[int, list[int]] = {}
    for idx, label in enumerate(labels):
        groups.setdefault(int(label) if stratified else 0, []).append(idx)
    buckets: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for key in sorted(groups):
        rows = groups[key]
        if shuffle:
            rng.shuffle(rows)
        for i, row in enumerate(rows):
            buckets[(i + offset) % k].append(row)
        offset += len(rows)
    all_rows = set(range(n))
    folds = tuple((tuple(sorted(all_rows - set(bucket))), tuple(sorted(bucket))) for bucket in buckets)
    meta = {"k": k, "random_seed": random_seed, "shuffle": shuffle, "stratified": stratified, "n_rows": n}
    return FoldSplits(folds=folds, metadata=meta)


def load_or_create_fold_splits(
    study_dir: Path, labels: Sequence[int], k_fold_config: Mapping[str, Any]
) -> FoldSplits:
    """The study's saved splits, or new ones saved atomically; a file made for other settings raises."""
    k = int(k_fold_config.get("n_splits", 5))
    wanted = create_kfold_splits(
        labels,
        k,
        random_seed=int(k_fold_config.get("random_seed", 42)),
        shuffle=bool(k_fold_config.get("shuffle", True)),
        stratified=bool(k_fold_config.get("stratified", True)),
    )
    path = study_dir / FOLD_SPLITS_FILE
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise OrchestrationError(
                f"{path} is not valid JSON ({exc}); delete it to recreate the splits"
            ) from exc
        if saved.get("metadata") != dict(wanted.metadata):
            raise OrchestrationError(
                f"{path} was made with {saved.get('metadata')}, but this study needs {dict(wanted.metadata)}"
            )
        folds = tuple((tuple(f["train"]), tuple(f["eval"])) for f in saved["folds"])
        return FoldSplits(folds=folds, metadata=wanted.metadata)
    atomic_write_json(
        path,
        {
            "metadata": dict(wanted.metadata),
            "folds": [{"train": list(tr), "eval": list(ev)} for tr, ev in wanted.folds],
        },
        indent=None,
    )
    return wanted
