"""Canonical JSON serialisation and SHA-256 helpers behind every key and fingerprint.

Two serialisations exist in the reference scheme and both are reproduced byte for byte:

* **C1, canonical compact JSON**: ``json.dumps(obj, sort_keys=True, separators=(",", ":"))`` (HPO keys, refit
  protocol fingerprint, benchmark config hash);
* **C2, fingerprint JSON**: ``json.dumps(obj, sort_keys=True)`` with the default ``", "`` / ``": "``
  separators (spec/exec/conv/bench fingerprints).

Unlike the reference, nothing arbitrary is hashed: read-only mappings (as returned by
``mlrig.paths.read_yaml_config``)
are serialised like dicts, ``pathlib`` paths, dates and times become ``str(value)`` (exactly what the
reference's ``default=str`` produced for them), and every other non-JSON value -- sets, objects, NaN/infinity
--
raises :class:`~mlrig.naming.errors.HashInputError` naming where it was found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING

from mlrig.naming.errors import HashInputError

if TYPE_CHECKING:
    from typing import Any


def _str_types() -> tuple[type, ...]:
    """Values serialised as ``str(value)``: paths, dates, times (datetime is a date subclass)."""
    import datetime  # only non-JSON values get here: `import mlrig.naming` does not load it

    return (PurePath, datetime.date, datetime.time)


_KEY_TYPES = (str, int, float, bool, type(None))


def _default(obj: object) -> object:
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, _str_types()):
        return str(obj)
    raise TypeError(f"unsupported type {type(obj).__name__}")


def _locate(obj: object, where: str, seen: set[int]) -> str | None:
    """Describe the first value under ``obj`` that cannot be serialised (slow path, errors only)."""
    if obj is None or isinstance(obj, (str, bool, int, *_str_types())):
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"{where}: non-finite float {obj!r} is not valid JSON"
    if isinstance(obj, (Mapping, list, tuple)):
        if id(obj) in seen:
            return f"{where}: circular reference"
        seen.add(id(obj))
        try:
            if isinstance(obj, Mapping):
                keys = list(obj)
                for key in keys:
                    if not isinstance(key, _KEY_TYPES):
                        return f"{where}: mapping key {key!r} of type {type(key).__name__} is not a JSON key"
                try:
                    sorted(keys)
                except TypeError:
                    return f"{where}: mapping keys of mixed types {sorted({type(k).__name__ for k in keys})}"
                for key in keys:
                    found = _locate(obj[key], f"{where}.{key}", seen)
                    if found:
                        return found
            else:
                for index, item in enumerate(obj):
                    found = _locate(item, f"{where}[{index}]", seen)
                    if found:
                        return found
        finally:
            seen.discard(id(obj))
        return None
    return f"{where}: value {obj!r} of type {type(obj).__name__} cannot be serialised canonically"


def _dumps(obj: object, what: str, separators: tuple[str, str] | None) -> str:
    import json  # deferred, like hashlib below: `import mlrig.naming` does not load them

    try:
        return json.dumps(obj, sort_keys=True, separators=separators, default=_default, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        detail = _locate(obj, what, set()) or f"{what}: {exc}"
        raise HashInputError(
            f"cannot hash {detail}; only JSON values (mappings, lists/tuples, str, int, finite float, bool, "
            "None) "
            "and paths/dates/times (as str) are accepted"
        ) from exc


def canonical_json(obj: object, *, what: str = "value") -> str:
    """C1: compact, key-sorted, ASCII-escaped JSON (``separators=(",", ":")``)."""
    return _dumps(obj, what, (",", ":"))


def fingerprint_json(obj: object, *, what: str = "value") -> str:
    """C2: key-sorted JSON with the default ``", "`` / ``": "`` separators (training fingerprints)."""
    return _dumps(obj, what, None)


def compute_hash_64(text: str) -> str:
    """SHA-256 of the UTF-8 text as 64 lowercase hex characters."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compute_hash_16(text: str) -> str:
    """The first 16 hex characters of :func:`compute_hash_64`."""
    return compute_hash_64(text)[:16]


def compute_json_hash(obj: Any, length: int = 64) -> str:
    """SHA-256 of the C1 JSON of ``obj``, truncated to ``length`` (1..64) hex characters."""
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 64:
        raise HashInputError(f"length must be an int in 1..64, got {length!r}")
    return compute_hash_64(canonical_json(obj))[:length]
