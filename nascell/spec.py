"""Architecture specs: the plain-data language between search and export.

(Over 400 lines on purpose: the two paper kinds, their validation and the JSON registry every
kind reads through are one idea, and splitting them would scatter the format's definition.)

A spec is a frozen dataclass, validated on construction, that round-trips through JSON.
The controller's tokens decode to a spec, the run directory stores specs, and export compiles
them. Two kinds are defined here (docs/specs.md describes every kind's format):

* `RNNCellSpec` (``"kind": "rnn_cell"``): the recurrent cell tree of Zoph & Le, section 3.4.
* `ConvSpec` (``"kind": "conv"``): a convolutional network with skip connections, sections
    3.1-3.3.

Every validation failure raises `SpecError` (a `ValueError`) whose message names the field,
the offending value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Sequence, Tuple, Type

PAPER_COMBINES: Tuple[str, ...] = ("add", "mult")
EXTENDED_COMBINES: Tuple[str, ...] = PAPER_COMBINES + ("max",)
PAPER_ACTIVATIONS: Tuple[str, ...] = ("identity", "tanh", "sigmoid", "relu")
EXTENDED_ACTIVATIONS: Tuple[str, ...] = PAPER_ACTIVATIONS + ("sin",)

CONV_OPS: Tuple[str, ...] = ("conv", "max_pool")


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


# ---------------------------------------------------------------------------------------------
# Recurrent cell spec.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NodeOp:
    """One tree node: how its two inputs are combined and the activation applied after."""

    combine: str
    activation: str

    def __post_init__(self):
        if self.combine not in EXTENDED_COMBINES:
            _fail("combine", self.combine, f"allowed: {list(EXTENDED_COMBINES)}")
        if self.activation not in EXTENDED_ACTIVATIONS:
            _fail("activation", self.activation, f"allowed: {list(EXTENDED_ACTIVATIONS)}")

    @property
    def is_extended(self) -> bool:
        return self.combine not in PAPER_COMBINES or self.activation not in PAPER_ACTIVATIONS

    def to_dict(self) -> Dict[str, str]:
        return {"combine": self.combine, "activation": self.activation}

    @classmethod
    def from_dict(cls, data: Any, field: str = "node") -> "NodeOp":
        _check_keys(field, data, ("combine", "activation"))
        try:
            return cls(combine=data["combine"], activation=data["activation"])
        except SpecError as e:
            raise SpecError(f"{field}: {e}") from None


@dataclasses.dataclass(frozen=True)
class CellIndex:
    """Where the memory cell enters (`inject`) and which node's combination is `c_t` (`output`)."""

    inject: int
    output: int

    def to_dict(self) -> Dict[str, int]:
        return {"inject": self.inject, "output": self.output}


@dataclasses.dataclass(frozen=True)
class RNNCellSpec(_SpecBase):
    """A recurrent cell tree with `base` leaves and `2*base - 1` nodes.

    Nodes are numbered level by level: leaves ``0..base-1``, then the next level, the root last.
    Node ``k`` of a level combines nodes ``2k`` and ``2k+1`` of the level below. Leaf ``i``
    computes ``act(combine(x W_i, h_prev U_i + b_i))``; internal nodes ``act(combine(l, r))``.
    The output of node ``cell_index.inject`` (after its activation) is replaced, as its parent
    sees it, by ``inject.activation(inject.combine(out, c_prev))``; for the root that replaced
    value is ``h_t``. ``c_t`` is node ``cell_index.output``'s combination before activation.
    """

    kind: ClassVar[str] = "rnn_cell"

    base: int
    nodes: Tuple[NodeOp, ...]
    cell_inject: NodeOp
    cell_index: CellIndex

    def __post_init__(self):
        base = self.base
        if isinstance(base, bool) or not isinstance(base, int) or base < 2 or base & (base - 1):
            _fail("base", base, "expected a power of two >= 2 (2, 4, 8, ...)")
        nodes = tuple(self.nodes)
        for i, node in enumerate(nodes):
            if not isinstance(node, NodeOp):
                _fail(f"nodes[{i}]", node, "expected a NodeOp(combine, activation)")
        object.__setattr__(self, "nodes", nodes)
        if len(nodes) != self.num_nodes:
            _fail("nodes", f"{len(nodes)} nodes",
                        f"a base-{base} tree needs exactly 2*base-1 = {self.num_nodes} nodes")
        if not isinstance(self.cell_inject, NodeOp):
            _fail("cell_inject", self.cell_inject, "expected a NodeOp(combine, activation)")
        if not isinstance(self.cell_index, CellIndex):
            _fail("cell_index", self.cell_index, "expected a CellIndex(inject, output)")
        for name in ("inject", "output"):
            value = getattr(self.cell_index, name)
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not 0 <= value < self.num_nodes):
                _fail(f"cell_index.{name}", value,
                      f"expected a node index in [0, {self.num_nodes - 1}]")

    # --- tree structure -------------------------------------------------------------------------

    @property
    def num_nodes(self) -> int:
        return 2 * self.base - 1

    @property
    def root(self) -> int:
        return self.num_nodes - 1

    @property
    def is_extended(self) -> bool:
        """True if any op is outside the paper's space (max, sin)."""
        return any(n.is_extended for n in self.nodes) or self.cell_inject.is_extended

    def levels(self) -> List[List[int]]:
        """Node indices level by level, leaves first, the root alone last."""
        out, start, size = [], 0, self.base
        while size >= 1:
            out.append(list(range(start, start + size)))
            start, size = start + size, size // 2
        return out

    def children(self, node: int) -> Optional[Tuple[int, int]]:
        """The two nodes an internal node combines, or None for a leaf."""
        levels = self.levels()
        for depth, level in enumerate(levels):
            if node in level:
                if depth == 0:
                    return None
                k = node - level[0]
                below = levels[depth - 1][0]
                return below + 2 * k, below + 2 * k + 1
        raise SpecError(f"node {node} is not in a base-{self.base} tree")

    def parent(self, node: int) -> Optional[int]:
        """The node that reads `node`, or None for the root."""
        for candidate in range(self.base, self.num_nodes):
            if node in self.children(candidate):
                return candidate
        return None

    # --- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        return {
                "kind": self.kind,
                "base": self.base,
                "nodes": [n.to_dict() for n in self.nodes],
                "cell_inject": self.cell_inject.to_dict(),
                "cell_index": self.cell_index.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RNNCellSpec":
        _check_keys("rnn_cell", data, ("base", "nodes", "cell_inject", "cell_index"), ("kind",))
        if data.get("kind", cls.kind) != cls.kind:
            _fail("kind", data["kind"], f"expected {cls.kind!r}")
        if not isinstance(data["nodes"], list):
            _fail("nodes", data["nodes"], "expected a list of {combine, activation} objects")
        nodes = tuple(NodeOp.from_dict(n, f"nodes[{i}]") for i, n in enumerate(data["nodes"]))
        _check_keys("cell_index", data["cell_index"], ("inject", "output"))
        return cls(base=data["base"], nodes=nodes,
                              cell_inject=NodeOp.from_dict(data["cell_inject"], "cell_inject"),
                              cell_index=CellIndex(**data["cell_index"]))


def rnn_cell_spec(base: int, nodes: Sequence[Tuple[str, str]], inject: Tuple[str, str],
                                    inject_node: int, output_node: int) -> RNNCellSpec:
    """Shorthand: ``rnn_cell_spec(2, [("add","tanh"), ...], ("add","relu"), 0, 1)``."""
    return RNNCellSpec(base=base, nodes=tuple(NodeOp(c, a) for c, a in nodes),
                       cell_inject=NodeOp(*inject),
                       cell_index=CellIndex(inject_node, output_node))


# The cell Zoph & Le found on Penn Treebank (TensorFlow's `NASCell`); docs/tree_cell.md.
NAS_CELL_SPEC = rnn_cell_spec(
        base=8,
        nodes=[("add", "sigmoid"), ("add", "relu"), ("add", "sigmoid"), ("mult", "relu"),
                      ("add", "tanh"), ("add", "sigmoid"), ("add", "tanh"), ("add", "sigmoid"),
                      ("mult", "tanh"), ("add", "tanh"), ("mult", "tanh"), ("add", "sigmoid"),
                      ("mult", "identity"), ("add", "tanh"),
                      ("mult", "tanh")],
        inject=("add", "tanh"), inject_node=8, output_node=12)

# The paper's base-2 example (Figure 5).
FIGURE5_SPEC = rnn_cell_spec(
        base=2, nodes=[("add", "tanh"), ("mult", "relu"), ("mult", "sigmoid")],
        inject=("add", "relu"), inject_node=0, output_node=1)


# ---------------------------------------------------------------------------------------------
# Conv spec.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One layer of a conv child.

    ``op="conv"``: a ``filter_height x filter_width`` convolution with ``filters`` output
    channels and the given strides, followed by batch normalization and ReLU.
    ``op="max_pool"``: a max pooling layer whose window is ``filter_height x filter_width``;
    ``filters`` must be None (it keeps its input's channels).
    ``inputs``: indices of earlier layers this layer reads; empty means it reads the image.
    """

    filter_height: int = 3
    filter_width: int = 3
    filters: Optional[int] = 36
    stride_height: int = 1
    stride_width: int = 1
    inputs: Tuple[int, ...] = ()
    op: str = "conv"

    def __post_init__(self):
        if self.op not in CONV_OPS:
            _fail("op", self.op, f"allowed: {list(CONV_OPS)}")
        for name in ("filter_height", "filter_width", "stride_height", "stride_width"):
            _check_int(name, getattr(self, name), 1)
        if self.op == "conv":
            _check_int("filters", self.filters, 1)
        elif self.filters is not None:
            _fail("filters", self.filters, "a max_pool layer keeps its input's channels: use None")
        inputs = self.inputs
        if isinstance(inputs, (str, bytes)) or not isinstance(inputs, (list, tuple)):
            _fail("inputs", inputs, "expected a list of earlier layer indices")
        inputs = tuple(inputs)
        for j in inputs:
            _check_int("inputs", j, 0)
        if len(set(inputs)) != len(inputs):
            _fail("inputs", list(inputs), "each earlier layer may be listed once")
        object.__setattr__(self, "inputs", tuple(sorted(inputs)))

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["inputs"] = list(self.inputs)
        return d


@dataclasses.dataclass(frozen=True)
class ConvSpec(_SpecBase):
    """An ordered list of conv / max_pool layers with skip connections (see `ConvLayer`)."""

    kind: ClassVar[str] = "conv"

    layers: Tuple[ConvLayer, ...]

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            _fail("layers", [], "a conv spec needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ConvLayer):
                _fail(f"layers[{i}]", layer, "expected a ConvLayer")
            for j in layer.inputs:
                if j >= i:
                    _fail(f"layers[{i}].inputs", list(layer.inputs),
                                f"a layer may only read earlier layers (indices 0..{i - 1})")
        object.__setattr__(self, "layers", layers)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def loose_ends(self) -> List[int]:
        """Layers whose output no later layer reads (the last layer always counts)."""
        read = {j for layer in self.layers for j in layer.inputs}
        return [i for i in range(len(self.layers)) if i not in read or i == len(self.layers) - 1]

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ConvSpec":
        _check_keys("conv", data, ("layers",), ("kind",))
        if data.get("kind", cls.kind) != cls.kind:
            _fail("kind", data["kind"], f"expected {cls.kind!r}")
        if not isinstance(data["layers"], list):
            _fail("layers", data["layers"], "expected a list of layer objects")
        fields = [f.name for f in dataclasses.fields(ConvLayer)]
        layers = []
        for i, raw in enumerate(data["layers"]):
            if not isinstance(raw, dict):
                _fail(f"layers[{i}]", raw, "expected a JSON object")
            unknown = sorted(set(raw) - set(fields))
            if unknown:
                raise SpecError(f"invalid spec field 'layers[{i}]': unknown key(s) {unknown}; "
                                                f"expected keys {fields}")
            try:
                layers.append(ConvLayer(**raw))
            except SpecError as e:
                raise SpecError(f"layers[{i}]: {e}") from None
        return cls(layers=tuple(layers))


# The base class of every spec kind, public so a user's own kind can derive from it
# (docs/kinds.md): subclasses set ``kind`` and implement ``to_dict`` / ``from_dict``.
SpecBase = _SpecBase


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


def coerce_spec(spec: Any, expected: Optional[Type[_SpecBase]] = None):
    """A spec object from a spec, its dict, its JSON text, or the path of a JSON file.

    Every layer and tool that takes "a spec" reads it through this one function.

    Args:
      spec: a spec object, ``spec.to_dict()``, ``spec.to_json()``, or a path (str or
        ``os.PathLike``) of a file holding that JSON.
      expected: the spec class the result must be; a dict without ``"kind"`` is read as it.

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
        spec = spec_from_dict(spec)
    if not isinstance(spec, tuple(SPEC_KINDS.values())):
        raise ValueError(f"Argument `spec` must be a {what}, its dict, its JSON text or the path "
                         f"of a JSON file. Received: spec={spec!r} (a {type(spec).__name__})")
    if expected is not None and not isinstance(spec, expected):
        _fail("kind", spec.kind, f"expected a {what} (kind {expected.kind!r}); build one with "
              f"{what}.from_json(...)")
    return spec
