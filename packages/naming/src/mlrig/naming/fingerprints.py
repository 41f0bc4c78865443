"""16-hex training/conversion/benchmark fingerprints (C2 JSON); the 64-hex benchmark config hash (C1)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlrig.naming.canonical import canonical_json, compute_hash_16, compute_hash_64, fingerprint_json

if TYPE_CHECKING:
    from typing import Any

logger = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _git_dir(root: Path) -> Path | None:
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
        text = dot_git.read_text(encoding="utf-8").strip()
        if text.startswith("gitdir:"):
            target = Path(text.removeprefix("gitdir:").strip())
            return target if target.is_absolute() else root / target
    return None


def _common_dir(git_dir: Path) -> Path:
    common = git_dir / "commondir"  # a worktree keeps refs in the main repository
    if common.is_file():
        target = Path(common.read_text(encoding="utf-8").strip())
        return target if target.is_absolute() else git_dir / target
    return git_dir


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    for base in dict.fromkeys((git_dir, _common_dir(git_dir))):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text(encoding="utf-8").strip()
            return value if _SHA.fullmatch(value) else None
        packed = base / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _SHA.fullmatch(parts[0]):
                    return parts[0]
    return None


def detect_git_sha(root_dir: Path | str) -> str | None:
    """The commit checked out in ``root_dir`` (read from ``.git``; worktrees and packed refs included), or
    None -- logged -- when ``root_dir`` is not a git checkout, so ``exec_fp`` then records ``git_sha:
    "unknown"``."""
    root = Path(root_dir)
    try:
        git_dir = _git_dir(root)
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip() if git_dir is not None else None
    except OSError:
        git_dir, head = None, None
    sha: str | None = None
    if git_dir is not None and head:
        sha = head if _SHA.fullmatch(head) else None
        if head.startswith("ref:"):
            try:
                sha = _resolve_ref(git_dir, head.removeprefix("ref:").strip())
            except OSError:
                sha = None
    if sha is None:
        logger.info(
            "%s is not a git checkout (or its HEAD is unreadable): exec_fp uses git_sha 'unknown'", root
        )
    return sha


def compute_spec_fp(
    model_config: Mapping[str, Any] | None,
    data_config: Mapping[str, Any] | None,
    train_config: Mapping[str, Any] | None,
    seed: int | None,
) -> str:
    """What is trained: the full model, data and train configs plus the seed (16 hex)."""
    payload = {"model": model_config, "data": data_config, "train": train_config, "seed": seed}
    return compute_hash_16(fingerprint_json(payload, what="spec"))


def compute_exec_fp(
    git_sha: str | None,
    env_config: Mapping[str, Any] | None,
    include_precision: object = None,
    include_determinism: object = None,
) -> str:
    """How it is executed: git SHA (``"unknown"`` when absent) and environment, optional
    precision/determinism.
    """
    payload: dict[str, Any] = {"git_sha": git_sha or "unknown", "env": env_config}
    if include_precision is not None:
        payload["precision"] = include_precision
    if include_determinism is not None:
        payload["determinism"] = include_determinism
    return compute_hash_16(fingerprint_json(payload, what="exec"))


def compute_conv_fp(
    parent_spec_fp: str, parent_exec_fp: str, conversion_config: Mapping[str, Any] | None
) -> str:
    """A conversion: the parent's spec/exec fingerprints plus the whole conversion config (16 hex)."""
    payload = {
        "parent_spec_fp": parent_spec_fp,
        "parent_exec_fp": parent_exec_fp,
        "conversion": conversion_config,
    }
    return compute_hash_16(fingerprint_json(payload, what="conversion"))


def compute_bench_fp(
    model_config: Mapping[str, Any] | None, benchmark_config: Mapping[str, Any] | None
) -> str:
    """A benchmark setup: model config plus the whole benchmark config (16 hex)."""
    payload = {"model": model_config, "benchmark": benchmark_config}
    return compute_hash_16(fingerprint_json(payload, what="benchmark"))


def compute_hardware_fp(hardware_info: Mapping[str, Any]) -> str:
    """The hardware description dict itself (16 hex)."""
    return compute_hash_16(fingerprint_json(hardware_info, what="hardware_info"))


def compute_benchmark_config_hash(benchmark_config: Mapping[str, Any]) -> str:
    """``benchmark_config_hash`` (context field, ``bench8`` path token): SHA-256 of the whole config's C1
    JSON.
    """
    return compute_hash_64(canonical_json(benchmark_config, what="benchmark_config"))
