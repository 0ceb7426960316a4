"""The paper's recurrent cell space (Zoph & Le, section 3.4), decoding to `RNNCellSpec`.

Decisions, in the controller's order: for every tree node (leaves first, level by level, the
root last) its ``combine`` then its ``activation``; then the cell inject's combine and
activation; then the cell indices: the node the memory enters (``cell_index/inject``) and the
node whose combination is ``c_t`` (``cell_index/output``). The paper's ops are
combine {add, mult}, activation {identity, tanh, sigmoid, relu}; ``extended=True`` adds
``max`` and ``sin``. With ``base=8`` (the paper's PTB search) the space holds the NAS cell.
"""

from __future__ import annotations

from typing import Any, Dict

from nascell.search.core.space import Categorical, SearchSpace, SpaceError
from nascell.spec import (
    EXTENDED_ACTIVATIONS,
    EXTENDED_COMBINES,
    PAPER_ACTIVATIONS,
    PAPER_COMBINES,
    CellIndex,
    NodeOp,
    RNNCellSpec,
)


def rnn_cell_space(base: int = 8, extended: bool = False) -> SearchSpace:
    """The cell tree with ``base`` leaves (2, 4, 8, ...); ``extended`` adds max and sin."""
    if isinstance(base, bool) or not isinstance(base, int) or base < 2 or base & (base - 1):
        raise SpaceError(f"rnn_cell space: argument `base` must be a power of two >= 2. "
                         f"Received: base={base!r}")
    combines = EXTENDED_COMBINES if extended else PAPER_COMBINES
    activations = EXTENDED_ACTIVATIONS if extended else PAPER_ACTIVATIONS
    num_nodes = 2 * base - 1
    decisions = []
    for k in range(num_nodes):
        decisions += [Categorical(f"node{k}/combine", combines),
                      Categorical(f"node{k}/activation", activations)]
    decisions += [Categorical("cell_inject/combine", combines),
                  Categorical("cell_inject/activation", activations),
                  Categorical("cell_index/inject", tuple(range(num_nodes))),
                  Categorical("cell_index/output", tuple(range(num_nodes)))]

    def decode(d: Dict[str, Any]) -> RNNCellSpec:
        return RNNCellSpec(
            base=base,
            nodes=tuple(NodeOp(d[f"node{k}/combine"], d[f"node{k}/activation"])
                        for k in range(num_nodes)),
            cell_inject=NodeOp(d["cell_inject/combine"], d["cell_inject/activation"]),
            cell_index=CellIndex(d["cell_index/inject"], d["cell_index/output"]))

    def encode(spec: RNNCellSpec) -> Dict[str, Any]:
        if not isinstance(spec, RNNCellSpec) or spec.base != base:
            raise SpaceError(f"rnn_cell space (base {base}) encodes a base-{base} RNNCellSpec. "
                             f"Received: spec={spec!r}")
        out: Dict[str, Any] = {}
        for k, node in enumerate(spec.nodes):
            out[f"node{k}/combine"], out[f"node{k}/activation"] = node.combine, node.activation
        out["cell_inject/combine"] = spec.cell_inject.combine
        out["cell_inject/activation"] = spec.cell_inject.activation
        out["cell_index/inject"] = spec.cell_index.inject
        out["cell_index/output"] = spec.cell_index.output
        return out

    return SearchSpace("rnn_cell", decisions, decode=decode, encode=encode,
                       options={"base": base, "extended": extended})
