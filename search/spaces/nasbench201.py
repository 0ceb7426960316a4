"""The NAS-Bench-201 cell space, declared as an ordinary user space.

A cell is a DAG of 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of 5 ops.
The spec is NAS-Bench-201's architecture string, exactly as its tables write it::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

(node 1's input edge, then node 2's, then node 3's; ``op~j`` is the op on the edge from node j).
15,625 architectures; the best scores 94.37% on CIFAR-10 (see `NASBench201Evaluator`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from nascell.search.core.space import Categorical, SearchSpace, SpaceError

OPS: Tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
# (to, from) for every edge, in the order the architecture string lists them.
EDGES: Tuple[Tuple[int, int], ...] = tuple((i, j) for i in range(1, NUM_NODES) for j in range(i))


def edge_name(i: int, j: int) -> str:
    return f"edge_{j}_{i}"


def decode(decisions: Dict[str, Any]) -> str:
    parts: List[str] = []
    for i in range(1, NUM_NODES):
        parts.append("|" + "|".join(f"{decisions[edge_name(i, j)]}~{j}" for j in range(i)) + "|")
    return "+".join(parts)


def encode(arch: str) -> Dict[str, Any]:
    if not isinstance(arch, str):
        raise SpaceError(f"A NAS-Bench-201 spec must be an architecture string. "
                         f"Received: arch={arch!r}")
    nodes = arch.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise SpaceError(f"bad NAS-Bench-201 string {arch!r}: expected {NUM_NODES - 1} "
                         "'+'-separated node groups like |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    out: Dict[str, Any] = {}
    for i, group in enumerate(nodes, start=1):
        edges = [e for e in group.strip("|").split("|")]
        if not (group.startswith("|") and group.endswith("|")) or len(edges) != i:
            raise SpaceError(f"bad NAS-Bench-201 string {arch!r}: node {i} needs {i} edges "
                             f"written |op~0|...|op~{i - 1}|. Received: edges={group!r}")
        for j, edge in enumerate(edges):
            op, _, src = edge.partition("~")
            if src != str(j):
                raise SpaceError(f"bad NAS-Bench-201 string {arch!r}: edge {edge!r} of node "
                                 f"{i} should read from node {j} ('{op}~{j}')")
            out[edge_name(i, j)] = op
    return out


def nasbench201_space() -> SearchSpace:
    """6 edges x 5 ops; decodes to the NAS-Bench-201 architecture string."""
    decisions = [Categorical(edge_name(i, j), OPS) for i, j in EDGES]
    return SearchSpace("nasbench201", decisions, decode=decode, encode=encode)
