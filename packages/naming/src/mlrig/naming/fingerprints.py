"""16-hex training/conversion/benchmark fingerprints (C2 JSON); the 64-hex benchmark config hash (C1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlrig.naming.canonical import canonical_json, compute_hash_16, compute_hash_64, fingerprint_json

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "compute_bench_fp",
    "compute_benchmark_config_hash",
    "compute_conv_fp",
    "compute_exec_fp",
    "compute_hardware_fp",
    "compute_spec_fp",
]


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
