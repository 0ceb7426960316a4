"""Where a data set came from: the JSON record a run directory keeps, and its fingerprint.

Every data source (`nascell.search.data.corpus`, `nascell.search.data.images`,
`nascell.search.data.image_sources`) describes what it loaded in a *record*: a small
JSON-serializable dict with its ``kind`` ("text" or "images"), ``source`` (folder, file,
python, tfds, ...), where it lives (``paths`` / ``data_dir``), what shapes or vocabulary it has,
and a ``fingerprint`` of its content. The record has two uses:

* a resumed search compares `identity` of the stored record with the new one, so a search
  resumed on other data is refused like any other changed setting (the location is left out of
  the identity: the same files moved elsewhere are still the same data);
* the export reads the input shape, number of classes or vocabulary size from it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Tuple

import numpy as np

# Keys that say where the data lives, not what it is: left out of `identity` (at any depth).
LOCATION_KEYS = ("paths", "path", "data_dir", "image_dir", "tfds_data_dir")


class DataError(ValueError):
    """The data is unusable as given (an empty split, a class folder with no images, mixed
    image sizes, a vocabulary over its cap, ...); the message names the problem and the fix."""


class DataMismatchError(DataError):
    """The data differs from the data a run directory was created with."""


def fingerprint(*parts: Any) -> str:
    """``"sha256:<16 hex digits>"`` over the given arrays and strings.

    Arrays contribute their dtype, shape and bytes (so the same values in another dtype or
    layout differ); strings and lists of strings contribute their UTF-8 text; ``None`` marks an
    absent part. Used for the ``fingerprint`` field of every record.
    """
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            h.update(b"\x00none")
        elif isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"\x00array:{a.dtype.str}:{a.shape}".encode())
            h.update(a.tobytes())
        elif isinstance(part, str):
            h.update(b"\x00str:" + part.encode("utf-8"))
        elif isinstance(part, (list, tuple)):
            h.update(b"\x00list:" + json.dumps(list(part), ensure_ascii=False).encode("utf-8"))
        else:
            h.update(b"\x00json:" + json.dumps(part, sort_keys=True).encode("utf-8"))
    return "sha256:" + h.hexdigest()[:16]


def identity(record: Dict[str, Any]) -> Dict[str, Any]:
    """The record without where the data lives (at any depth): what a resumed search must
    match."""
    return {k: identity(v) if isinstance(v, dict) else v for k, v in record.items()
            if k not in LOCATION_KEYS}


def is_location(dotted_key: str) -> bool:
    """Whether a dotted run-config key (``evaluator.data.path``) is a location inside a data
    record (a ``data`` entry), which a resumed search need not match."""
    parts = dotted_key.split(".")
    return parts[-1] in LOCATION_KEYS and "data" in parts[:-1]


def _flatten(obj: Any, prefix: str = "") -> Iterable[Tuple[str, Any]]:
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj


def differences(stored: Dict[str, Any], now: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """``(dotted key, stored value, new value)`` for every identity key that differs."""
    a = dict(_flatten(json.loads(json.dumps(identity(stored), default=_json_default))))
    b = dict(_flatten(json.loads(json.dumps(identity(now), default=_json_default))))
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_same_data(stored: Dict[str, Any], now: Dict[str, Any], where: str = "the run") -> None:
    """Raise `DataMismatchError` when ``now`` is other data than ``stored``.

    Args:
        stored: the record saved when the run was created.
        now: the record of the data given now.
        where: what holds ``stored`` (for the message), e.g. the run directory.
    """
    diffs = differences(stored, now)
    if diffs:
        detail = "; ".join(f"{k}: {a!r} then, {b!r} now" for k, a, b in diffs[:5])
        raise DataMismatchError(
            f"the data differs from the data {where} was created with ({detail}). Pass the "
            "same data to resume it, or start a new run directory for the new data.")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return repr(obj)


def to_json(record: Dict[str, Any]) -> Dict[str, Any]:
    """The record as JSON gives it back (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(record, sort_keys=True, default=_json_default))
