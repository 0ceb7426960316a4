"""What every spec kind shares: `SpecError`, the field checks, JSON parsing and `SpecBase`.

A spec kind (`nascell.rnn_spec`, `nascell.conv_spec`, `nascell.enas_spec`, or a user's own,
docs/kinds.md) validates its fields with these checks, so every validation failure raises
`SpecError` (a `ValueError`) whose message names the field, the offending value and what is
allowed. The registry that reads any kind from JSON is `nascell.spec`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, Iterable, Optional


class SpecError(ValueError):
    """A spec failed validation; the message names the field, the value and what is allowed."""


def _fail(field: str, value: Any, allowed: str) -> None:
    raise SpecError(f"invalid spec field {field!r}: {allowed}. Received: {field}={value!r}")


def _check_int(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(field, value, f"expected an integer >= {minimum}")
    if value < minimum:
        _fail(field, value, f"expected an integer >= {minimum}")
    return value


def _check_keys(field: str, data: Any, required: Iterable[str],
                optional: Iterable[str] = ()) -> None:
    if not isinstance(data, dict):
        _fail(field, data, "expected a JSON object")
    required = list(required)
    allowed = set(required) | set(optional)
    missing = [k for k in required if k not in data]
    if missing:
        raise SpecError(f"invalid spec field {field!r}: missing key(s) {missing}; "
                                        f"expected keys {sorted(allowed)}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"invalid spec field {field!r}: unknown key(s) {unknown}; "
                                        f"expected keys {sorted(allowed)}")


def _parse_json(text: str) -> Dict[str, Any]:
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise SpecError(f"Argument `text` (spec JSON) must be a string. Received: text of type "
                        f"{type(text).__name__}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"malformed spec JSON: {e.msg} at line {e.lineno} column {e.colno}; "
                          "expected a JSON object such as {\"kind\": \"rnn_cell\", ...}"
                          ) from None
    if not isinstance(data, dict):
        raise SpecError(f"malformed spec JSON: top level is {type(data).__name__}, expected an "
                        "object")
    return data


class _SpecBase:
    """JSON helpers shared by every spec kind."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> Dict[str, Any]:
        raise NotImplementedError

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        raise NotImplementedError

    @classmethod
    def from_json(cls, text: str):
        data = _parse_json(text)
        if "kind" in data and data["kind"] != cls.kind:
            _fail("kind", data["kind"], f"{cls.__name__} expects kind {cls.kind!r}")
        return cls.from_dict(data)



# The base class of every spec kind, public so a user's own kind can derive from it
# (docs/kinds.md): subclasses set ``kind`` and implement ``to_dict`` / ``from_dict``.
SpecBase = _SpecBase
