"""Architecture specs: the plain-data language between search and export, and the registry
that reads any kind of them from JSON.

A spec is a frozen dataclass, validated on construction, that round-trips through JSON.
The controller's tokens decode to a spec, the run directory stores specs, and export compiles
them. docs/specs.md describes every kind's format; the paper's two kinds are defined beside
this module and re-exported here, where users import them:

* `RNNCellSpec` (``"kind": "rnn_cell"``, `nascell.rnn_spec`): the recurrent cell tree of
    Zoph & Le, section 3.4.
* `ConvSpec` (``"kind": "conv"``, `nascell.conv_spec`): a convolutional network with skip
    connections, sections 3.1-3.3.

Every validation failure raises `SpecError` (a `ValueError`, `nascell.spec_base`) whose
message names the field, the offending value and what is allowed. This module holds the
registry of kinds (`SPEC_KINDS`, `register_spec_kind`), `spec_from_dict` / `spec_from_json`,
and `coerce_spec`, through which every layer and tool reads "a spec".
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Type

from nascell.conv_spec import CONV_OPS, ConvLayer, ConvSpec
from nascell.rnn_spec import (
    EXTENDED_ACTIVATIONS,
    EXTENDED_COMBINES,
    FIGURE5_SPEC,
    NAS_CELL_SPEC,
    PAPER_ACTIVATIONS,
    PAPER_COMBINES,
    CellIndex,
    NodeOp,
    RNNCellSpec,
    rnn_cell_spec,
)
from nascell.spec_base import SpecBase, SpecError, _fail, _parse_json, _SpecBase

# The field checks stay importable from here, where spec kinds written before the split found
# them (a user's own kind; nascell.enas_spec now imports nascell.spec_base).
from nascell.spec_base import _check_int as _check_int
from nascell.spec_base import _check_keys as _check_keys

__all__ = [
    "CONV_OPS", "EXTENDED_ACTIVATIONS", "EXTENDED_COMBINES", "FIGURE5_SPEC", "NAS_CELL_SPEC",
    "PAPER_ACTIVATIONS", "PAPER_COMBINES", "SPEC_KINDS", "CellIndex", "ConvLayer", "ConvSpec",
    "NodeOp", "RNNCellSpec", "SpecBase", "SpecError", "coerce_spec", "register_spec_kind",
    "rnn_cell_spec", "spec_from_dict", "spec_from_json",
]


# ---------------------------------------------------------------------------------------------
# Registry of spec kinds, so `spec_from_json` can read any of them.
# ---------------------------------------------------------------------------------------------

SPEC_KINDS: Dict[str, Type[_SpecBase]] = {RNNCellSpec.kind: RNNCellSpec, ConvSpec.kind: ConvSpec}


def register_spec_kind(cls: Type[_SpecBase]) -> Type[_SpecBase]:
    """Class decorator: make a new spec kind readable by `spec_from_json`."""
    SPEC_KINDS[cls.kind] = cls
    return cls


def spec_from_dict(data: Dict[str, Any]):
    """Any registered spec from its dict form, dispatched on ``data["kind"]``."""
    if not isinstance(data, dict) or "kind" not in data:
        raise SpecError(f"a spec needs a 'kind' field; known kinds: {sorted(SPEC_KINDS)}")
    cls = SPEC_KINDS.get(data["kind"])
    if cls is None:
        _fail("kind", data["kind"], f"known kinds: {sorted(SPEC_KINDS)}")
    return cls.from_dict(data)


def spec_from_json(text: str):
    """Any registered spec from JSON text, dispatched on its ``kind`` field."""
    return spec_from_dict(_parse_json(text))


def coerce_spec(spec: Any, expected: Optional[Type[_SpecBase]] = None,
                default: Optional[Type[_SpecBase]] = None):
    """A spec object from a spec, its dict, its JSON text, or the path of a JSON file.

    Every layer and tool that takes "a spec" reads it through this one function.

    Args:
      spec: a spec object, ``spec.to_dict()``, ``spec.to_json()``, or a path (str or
        ``os.PathLike``) of a file holding that JSON.
      expected: the spec class the result must be; a dict without ``"kind"`` is read as it.
      default: without ``expected``, the spec class a dict without ``"kind"`` is read as (a
        spec of any kind is accepted).

    Raises:
      SpecError: a field is wrong, or the spec is of another kind than ``expected``.
      FileNotFoundError: a string that is neither JSON text nor an existing file.
      ValueError: ``spec`` is none of the forms above.
    """
    what = expected.__name__ if expected is not None else "spec"
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if isinstance(spec, (bytes, bytearray)):
        spec = spec.decode("utf-8")
    if isinstance(spec, str):
        if not spec.lstrip().startswith("{"):
            if not os.path.isfile(spec):
                raise FileNotFoundError(f"spec {spec!r} is neither JSON text nor an existing "
                                        "JSON file")
            with open(spec, "r", encoding="utf-8") as f:
                spec = f.read()
        spec = _parse_json(spec)
    if isinstance(spec, dict):
        if expected is not None:
            if spec.get("kind", expected.kind) != expected.kind:
                _fail("kind", spec["kind"], f"expected a {what} (kind {expected.kind!r})")
            spec = dict(spec, kind=expected.kind)
        elif default is not None and "kind" not in spec:
            spec = dict(spec, kind=default.kind)
        spec = spec_from_dict(spec)
    if not isinstance(spec, tuple(SPEC_KINDS.values())):
        raise ValueError(f"Argument `spec` must be a {what}, its dict, its JSON text or the path "
                         f"of a JSON file. Received: spec={spec!r} (a {type(spec).__name__})")
    if expected is not None and not isinstance(spec, expected):
        _fail("kind", spec.kind, f"expected a {what} (kind {expected.kind!r}); build one with "
              f"{what}.from_json(...)")
    return spec
