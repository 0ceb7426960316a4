"""`RNNCellSpec` (``"kind": "rnn_cell"``): the recurrent cell tree of Zoph & Le, section 3.4.

The tree's nodes and their ops, where the memory cell enters, the shorthand `rnn_cell_spec`,
and two cells of the paper: `NAS_CELL_SPEC` (the one found on Penn Treebank) and
`FIGURE5_SPEC` (the base-2 example). docs/specs.md describes the format, docs/tree_cell.md what
it computes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from nascell.spec_base import SpecError, _check_keys, _fail, _SpecBase

PAPER_COMBINES: Tuple[str, ...] = ("add", "mult")
EXTENDED_COMBINES: Tuple[str, ...] = PAPER_COMBINES + ("max",)
PAPER_ACTIVATIONS: Tuple[str, ...] = ("identity", "tanh", "sigmoid", "relu")
EXTENDED_ACTIVATIONS: Tuple[str, ...] = PAPER_ACTIVATIONS + ("sin",)


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

