"""The three ENAS search spaces (Pham et al., 2018), declared from Categorical/Skips parts.

* ``enas_rnn`` (`enas_rnn_space`, N nodes, 12 by default) -> `ENASRNNCellSpec`. Decisions in
  controller order: ``node0/activation``, then for every node ``i > 0``: ``node{i}/input``
  (one of the earlier nodes ``0..i-1``) and ``node{i}/activation``. 4**N * (N-1)! cells.
* ``enas_conv`` (`enas_conv_space`, B nodes per cell, 5 by default) -> `ENASConvCellSpec`.
  For the normal cell, then the reduction cell, per node ``k``: ``{cell}/node{k}/input_a``
  (``0..k+1``; 0 and 1 are the cell inputs), ``{cell}/node{k}/op_a``, then ``input_b`` and
  ``op_b``.
* ``enas_macro`` (`enas_macro_space`, L layers, 12 by default) -> `ENASMacroSpec`. Per layer
  ``i``: ``layer{i}/op`` then ``layer{i}/skips`` (a `Skips` decision over layers ``0..i-1``, the
  layer's anchor point).

Each factory is registered with `nascell.search.spaces.register_space` when this module is
imported (``import nascell.search.spaces.enas``).
"""

from __future__ import annotations

from typing import Any, Dict

from nascell.enas_spec import (
    DEFAULT_CONV_NODES,
    DEFAULT_MACRO_LAYERS,
    DEFAULT_RNN_NODES,
    ENAS_CONV_OPS,
    ENAS_MACRO_OPS,
    ENAS_RNN_ACTIVATIONS,
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroLayer,
    ENASMacroSpec,
    ENASRNNCellSpec,
    ENASRNNNode,
)
from nascell.search.core.space import Categorical, SearchSpace, Skips, SpaceError

CELLS = ("normal", "reduction")


def _check_count(space: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpaceError(f"{space} space: argument `{name}` must be an integer >= {minimum}. "
                         f"Received: {name}={value!r}")
    return value


def enas_rnn_space(num_nodes: int = DEFAULT_RNN_NODES) -> SearchSpace:
    """The ENAS recurrent cell space with ``num_nodes`` nodes (the paper: 12)."""
    n = _check_count("enas_rnn", "num_nodes", num_nodes)
    decisions = [Categorical("node0/activation", ENAS_RNN_ACTIVATIONS)]
    for i in range(1, n):
        decisions += [Categorical(f"node{i}/input", tuple(range(i))),
                      Categorical(f"node{i}/activation", ENAS_RNN_ACTIVATIONS)]

    def decode(d: Dict[str, Any]) -> ENASRNNCellSpec:
        nodes = [ENASRNNNode(d["node0/activation"])]
        nodes += [ENASRNNNode(d[f"node{i}/activation"], d[f"node{i}/input"]) for i in range(1, n)]
        return ENASRNNCellSpec(nodes=tuple(nodes))

    def encode(spec: ENASRNNCellSpec) -> Dict[str, Any]:
        if not isinstance(spec, ENASRNNCellSpec) or spec.num_nodes != n:
            raise SpaceError(f"enas_rnn space ({n} nodes) encodes an ENASRNNCellSpec with {n} "
                             f"nodes. Received: spec={spec!r}")
        out: Dict[str, Any] = {"node0/activation": spec.nodes[0].activation}
        for i in range(1, n):
            out[f"node{i}/input"] = spec.nodes[i].input
            out[f"node{i}/activation"] = spec.nodes[i].activation
        return out

    return SearchSpace("enas_rnn", decisions, decode=decode, encode=encode,
                       options={"num_nodes": n})


def enas_conv_space(num_nodes: int = DEFAULT_CONV_NODES) -> SearchSpace:
    """The ENAS micro space: normal and reduction cells of ``num_nodes`` nodes (paper: 5)."""
    b = _check_count("enas_conv", "num_nodes", num_nodes)
    decisions = []
    for cell in CELLS:
        for k in range(b):
            for slot in ("a", "b"):
                decisions += [Categorical(f"{cell}/node{k}/input_{slot}", tuple(range(k + 2))),
                              Categorical(f"{cell}/node{k}/op_{slot}", ENAS_CONV_OPS)]

    def decode(d: Dict[str, Any]) -> ENASConvCellSpec:
        cells = {cell: tuple(ENASConvNode(
            inputs=(d[f"{cell}/node{k}/input_a"], d[f"{cell}/node{k}/input_b"]),
            ops=(d[f"{cell}/node{k}/op_a"], d[f"{cell}/node{k}/op_b"])) for k in range(b))
            for cell in CELLS}
        return ENASConvCellSpec(**cells)

    def encode(spec: ENASConvCellSpec) -> Dict[str, Any]:
        if not isinstance(spec, ENASConvCellSpec) or spec.num_nodes != b:
            raise SpaceError(f"enas_conv space ({b} nodes) encodes an ENASConvCellSpec with {b} "
                             f"nodes per cell. Received: spec={spec!r}")
        out: Dict[str, Any] = {}
        for cell in CELLS:
            for k, node in enumerate(getattr(spec, cell)):
                for s, slot in enumerate(("a", "b")):
                    out[f"{cell}/node{k}/input_{slot}"] = node.inputs[s]
                    out[f"{cell}/node{k}/op_{slot}"] = node.ops[s]
        return out

    return SearchSpace("enas_conv", decisions, decode=decode, encode=encode,
                       options={"num_nodes": b})


def enas_macro_space(num_layers: int = DEFAULT_MACRO_LAYERS) -> SearchSpace:
    """The ENAS macro space with ``num_layers`` layers (the paper's small setting: 12)."""
    n = _check_count("enas_macro", "num_layers", num_layers)
    decisions = []
    for i in range(n):
        decisions += [Categorical(f"layer{i}/op", ENAS_MACRO_OPS),
                      Skips(f"layer{i}/skips", num_candidates=i)]

    def decode(d: Dict[str, Any]) -> ENASMacroSpec:
        return ENASMacroSpec(layers=tuple(
            ENASMacroLayer(op=d[f"layer{i}/op"], skips=tuple(d[f"layer{i}/skips"]))
            for i in range(n)))

    def encode(spec: ENASMacroSpec) -> Dict[str, Any]:
        if not isinstance(spec, ENASMacroSpec) or spec.num_layers != n:
            raise SpaceError(f"enas_macro space ({n} layers) encodes an ENASMacroSpec with {n} "
                             f"layers. Received: spec={spec!r}")
        out: Dict[str, Any] = {}
        for i, layer in enumerate(spec.layers):
            out[f"layer{i}/op"], out[f"layer{i}/skips"] = layer.op, layer.skips
        return out

    return SearchSpace("enas_macro", decisions, decode=decode, encode=encode,
                       options={"num_layers": n})


def _register() -> None:
    from nascell.search.spaces import register_space
    register_space("enas_rnn", enas_rnn_space)
    register_space("enas_conv", enas_conv_space)
    register_space("enas_macro", enas_macro_space)


_register()
