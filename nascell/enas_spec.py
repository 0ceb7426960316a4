"""Specs of the ENAS search spaces (Pham et al., 2018), in the style of `nascell.spec`.

Three kinds, each a frozen dataclass validated on construction and round-tripping through JSON
(registered with `register_spec_kind`, so `nascell.spec.spec_from_json` reads them):

* `ENASRNNCellSpec` (``"kind": "enas_rnn_cell"``): the recurrent cell, a DAG of N nodes.
  Node 0 reads ``x_t`` and ``h_{t-1}``; node ``i > 0`` reads one earlier node. Every node has
  an activation among tanh, relu, identity, sigmoid. The cell output (and the next state)
  is the average of the loose ends, the nodes no other node reads::

      {"kind": "enas_rnn_cell",
       "nodes": [{"activation": "tanh"}, {"input": 0, "activation": "relu"}, ...]}

* `ENASConvCellSpec` (``"kind": "enas_conv_cell"``): the micro space, a normal and a
  reduction cell of B nodes each. Indices 0 and 1 are the cell's two inputs (the outputs of
  the previous two cells); node ``k`` is index ``k + 2``. Each node picks two earlier
  indices and one op for each, and sums the two results. The cell output concatenates the
  loose ends (nodes no other node of the cell reads)::

      {"kind": "enas_conv_cell",
       "normal": [{"inputs": [0, 1], "ops": ["sep_conv_3x3", "identity"]}, ...],
       "reduction": [...]}

* `ENASMacroSpec` (``"kind": "enas_macro"``): the macro space, L layers in a chain, each one
  of six ops, plus skip connections from any earlier layers (summed into its output)::

      {"kind": "enas_macro",
       "layers": [{"op": "conv_3x3", "skips": []}, {"op": "max_pool_3x3", "skips": [0]}, ...]}
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from nascell.spec import register_spec_kind
from nascell.spec_base import SpecError, _check_keys, _fail, _SpecBase

ENAS_RNN_ACTIVATIONS: Tuple[str, ...] = ("tanh", "relu", "identity", "sigmoid")
ENAS_CONV_OPS: Tuple[str, ...] = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3",
                                  "max_pool_3x3", "identity")
ENAS_MACRO_OPS: Tuple[str, ...] = ("conv_3x3", "conv_5x5", "sep_conv_3x3", "sep_conv_5x5",
                                   "max_pool_3x3", "avg_pool_3x3")

DEFAULT_RNN_NODES = 12
DEFAULT_CONV_NODES = 5
DEFAULT_MACRO_LAYERS = 12


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def _int_list(field: str, value: Any) -> Tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        _fail(field, value, "expected a list of integers")
    for v in value:
        if not _is_int(v):
            _fail(field, list(value), "expected a list of integers")
    return tuple(value)


def _check_kind(cls, data: Dict[str, Any]) -> None:
    if data.get("kind", cls.kind) != cls.kind:
        _fail("kind", data["kind"], f"expected {cls.kind!r}")


# ---------------------------------------------------------------------------------------------
# Recurrent cell.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ENASRNNNode:
    """One node of an ENAS recurrent cell: the earlier node it reads and its activation.

    ``input`` is None for node 0 (which reads ``x_t`` and ``h_{t-1}``), else an index of an
    earlier node; `ENASRNNCellSpec` checks the range.
    """

    activation: str
    input: Optional[int] = None

    def __post_init__(self):
        if self.activation not in ENAS_RNN_ACTIVATIONS:
            _fail("activation", self.activation, f"allowed: {list(ENAS_RNN_ACTIVATIONS)}")
        if self.input is not None and (not _is_int(self.input) or self.input < 0):
            _fail("input", self.input, "expected None (node 0) or an earlier node index >= 0")

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"activation": self.activation}
        if self.input is not None:
            out["input"] = self.input
        return out


@register_spec_kind
@dataclasses.dataclass(frozen=True)
class ENASRNNCellSpec(_SpecBase):
    """An ENAS recurrent cell: a DAG of ``len(nodes)`` nodes (12 in the paper).

    With ``c = sigmoid(.)`` a highway gate, node 0 computes
    ``h_0 = c_0 * f_0(x W_x + h_prev W_h) + (1 - c_0) * h_prev`` and node ``i > 0`` reading
    node ``j`` computes ``h_i = c_i * f_i(h_j W_i) + (1 - c_i) * h_j``. The output is the mean
    of the loose ends (see `loose_ends`).
    """

    kind: ClassVar[str] = "enas_rnn_cell"

    nodes: Tuple[ENASRNNNode, ...]

    def __post_init__(self):
        if isinstance(self.nodes, (str, bytes)) or not isinstance(self.nodes, (list, tuple)):
            _fail("nodes", self.nodes, "expected a list of ENASRNNNode(activation, input)")
        nodes = tuple(self.nodes)
        if not nodes:
            _fail("nodes", [], "an ENAS recurrent cell needs at least one node")
        for i, node in enumerate(nodes):
            if not isinstance(node, ENASRNNNode):
                _fail(f"nodes[{i}]", node, "expected an ENASRNNNode(activation, input)")
            if i == 0 and node.input is not None:
                _fail("nodes[0].input", node.input, "node 0 reads x and h_prev: use None")
            if i > 0 and (node.input is None or not 0 <= node.input < i):
                _fail(f"nodes[{i}].input", node.input,
                      f"expected an earlier node index in [0, {i - 1}]")
        object.__setattr__(self, "nodes", nodes)

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def inputs(self) -> Tuple[Optional[int], ...]:
        return tuple(n.input for n in self.nodes)

    @property
    def activations(self) -> Tuple[str, ...]:
        return tuple(n.activation for n in self.nodes)

    def loose_ends(self) -> List[int]:
        """Nodes that no other node reads; the cell averages them."""
        read = {n.input for n in self.nodes if n.input is not None}
        return [i for i in range(self.num_nodes) if i not in read]

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "nodes": [n.to_dict() for n in self.nodes]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ENASRNNCellSpec":
        _check_keys(cls.kind, data, ("nodes",), ("kind",))
        _check_kind(cls, data)
        if not isinstance(data["nodes"], list):
            _fail("nodes", data["nodes"], "expected a list of {activation, input} objects")
        nodes = []
        for i, raw in enumerate(data["nodes"]):
            _check_keys(f"nodes[{i}]", raw, ("activation",), ("input",))
            try:
                nodes.append(ENASRNNNode(activation=raw["activation"], input=raw.get("input")))
            except SpecError as e:
                raise SpecError(f"nodes[{i}]: {e}") from None
        return cls(nodes=tuple(nodes))


def enas_rnn_cell_spec(inputs: Sequence[int], activations: Sequence[str]) -> ENASRNNCellSpec:
    """Shorthand: ``inputs`` for nodes 1..N-1 and ``activations`` for nodes 0..N-1."""
    if len(activations) != len(inputs) + 1:
        raise SpecError(f"invalid spec field 'activations': give one activation per node "
                        f"(len(inputs) + 1). Received: {len(activations)} activations for "
                        f"{len(inputs)} inputs")
    nodes = [ENASRNNNode(activations[0])]
    nodes += [ENASRNNNode(a, i) for i, a in zip(inputs, activations[1:])]
    return ENASRNNCellSpec(nodes=tuple(nodes))


# ---------------------------------------------------------------------------------------------
# Micro (conv cell) space.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ENASConvNode:
    """One node of an ENAS conv cell: ``ops[0](inputs[0]) + ops[1](inputs[1])``.

    Inputs index the cell's hidden states: 0 and 1 are the cell inputs, node ``k`` is ``k+2``.
    """

    inputs: Tuple[int, int]
    ops: Tuple[str, str]

    def __post_init__(self):
        inputs = _int_list("inputs", self.inputs)
        if len(inputs) != 2 or min(inputs) < 0:
            _fail("inputs", list(inputs), "expected two indices >= 0 (0, 1 = cell inputs)")
        ops = self.ops
        if isinstance(ops, (str, bytes)) or not isinstance(ops, (list, tuple)) or len(ops) != 2:
            _fail("ops", ops, f"expected two ops among {list(ENAS_CONV_OPS)}")
        for op in ops:
            if op not in ENAS_CONV_OPS:
                _fail("ops", op, f"allowed: {list(ENAS_CONV_OPS)}")
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "ops", tuple(ops))

    def to_dict(self) -> Dict[str, Any]:
        return {"inputs": list(self.inputs), "ops": list(self.ops)}


def _check_cell(field: str, nodes: Any) -> Tuple[ENASConvNode, ...]:
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, (list, tuple)):
        _fail(field, nodes, "expected a list of ENASConvNode(inputs, ops)")
    nodes = tuple(nodes)
    if not nodes:
        _fail(field, [], "a cell needs at least one node")
    for k, node in enumerate(nodes):
        if not isinstance(node, ENASConvNode):
            _fail(f"{field}[{k}]", node, "expected an ENASConvNode(inputs, ops)")
        if max(node.inputs) > k + 1:
            _fail(f"{field}[{k}].inputs", list(node.inputs),
                  f"node {k} may read indices 0..{k + 1} (0, 1 = cell inputs, then nodes)")
    return nodes


def conv_cell_loose_ends(nodes: Sequence[ENASConvNode]) -> List[int]:
    """Node indices (0-based, not counting the two cell inputs) that no later node reads."""
    read = {i - 2 for node in nodes for i in node.inputs if i >= 2}
    return [k for k in range(len(nodes)) if k not in read]


@register_spec_kind
@dataclasses.dataclass(frozen=True)
class ENASConvCellSpec(_SpecBase):
    """The ENAS micro space: a normal cell and a reduction cell (B nodes each, 5 in the paper).

    Both lists must have the same length. See `ENASConvNode` for a node's meaning; the cell
    output concatenates `conv_cell_loose_ends` along channels.
    """

    kind: ClassVar[str] = "enas_conv_cell"

    normal: Tuple[ENASConvNode, ...]
    reduction: Tuple[ENASConvNode, ...]

    def __post_init__(self):
        object.__setattr__(self, "normal", _check_cell("normal", self.normal))
        object.__setattr__(self, "reduction", _check_cell("reduction", self.reduction))
        if len(self.normal) != len(self.reduction):
            _fail("reduction", f"{len(self.reduction)} nodes",
                  f"both cells need the same number of nodes (normal has {len(self.normal)})")

    @property
    def num_nodes(self) -> int:
        return len(self.normal)

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "normal": [n.to_dict() for n in self.normal],
                "reduction": [n.to_dict() for n in self.reduction]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ENASConvCellSpec":
        _check_keys(cls.kind, data, ("normal", "reduction"), ("kind",))
        _check_kind(cls, data)
        cells = {}
        for name in ("normal", "reduction"):
            if not isinstance(data[name], list):
                _fail(name, data[name], "expected a list of {inputs, ops} objects")
            nodes = []
            for k, raw in enumerate(data[name]):
                _check_keys(f"{name}[{k}]", raw, ("inputs", "ops"))
                try:
                    nodes.append(ENASConvNode(inputs=raw["inputs"], ops=raw["ops"]))
                except SpecError as e:
                    raise SpecError(f"{name}[{k}]: {e}") from None
            cells[name] = tuple(nodes)
        return cls(**cells)


# ---------------------------------------------------------------------------------------------
# Macro space.
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ENASMacroLayer:
    """One macro layer: ``op`` on the previous layer, plus the outputs of ``skips`` (summed)."""

    op: str
    skips: Tuple[int, ...] = ()

    def __post_init__(self):
        if self.op not in ENAS_MACRO_OPS:
            _fail("op", self.op, f"allowed: {list(ENAS_MACRO_OPS)}")
        skips = _int_list("skips", self.skips)
        if len(set(skips)) != len(skips) or any(s < 0 for s in skips):
            _fail("skips", list(skips), "expected distinct earlier layer indices >= 0")
        object.__setattr__(self, "skips", tuple(sorted(skips)))

    def to_dict(self) -> Dict[str, Any]:
        return {"op": self.op, "skips": list(self.skips)}


@register_spec_kind
@dataclasses.dataclass(frozen=True)
class ENASMacroSpec(_SpecBase):
    """The ENAS macro space: ``len(layers)`` layers (12 in the paper's small setting)."""

    kind: ClassVar[str] = "enas_macro"

    layers: Tuple[ENASMacroLayer, ...]

    def __post_init__(self):
        if isinstance(self.layers, (str, bytes)) or not isinstance(self.layers, (list, tuple)):
            _fail("layers", self.layers, "expected a list of ENASMacroLayer(op, skips)")
        layers = tuple(self.layers)
        if not layers:
            _fail("layers", [], "a macro network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, ENASMacroLayer):
                _fail(f"layers[{i}]", layer, "expected an ENASMacroLayer(op, skips)")
            if layer.skips and max(layer.skips) >= i:
                _fail(f"layers[{i}].skips", list(layer.skips),
                      f"a layer may only skip from earlier layers (indices 0..{i - 1})")
        object.__setattr__(self, "layers", layers)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "layers": [layer.to_dict() for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ENASMacroSpec":
        _check_keys(cls.kind, data, ("layers",), ("kind",))
        _check_kind(cls, data)
        if not isinstance(data["layers"], list):
            _fail("layers", data["layers"], "expected a list of {op, skips} objects")
        layers = []
        for i, raw in enumerate(data["layers"]):
            _check_keys(f"layers[{i}]", raw, ("op",), ("skips",))
            try:
                layers.append(ENASMacroLayer(op=raw["op"], skips=raw.get("skips", [])))
            except SpecError as e:
                raise SpecError(f"layers[{i}]: {e}") from None
        return cls(layers=tuple(layers))
