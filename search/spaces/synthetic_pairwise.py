"""A synthetic tabular space with strong pairwise interactions and a known optimum.

A guard against tuning search strategies to one table (NAS-Bench-201): a space of another
shape whose rewards follow a stated rule and seed, so anyone can rebuild it exactly.

The space: 5 nodes; node ``i`` picks an op (``Categorical op_i`` of 3 choices) and any subset
of the earlier nodes as inputs (``Skips in_i`` over ``i`` candidates): 15 variables (5 ops of 3
values, 10 input bits), ``3^5 * 2^10 = 248,832`` architectures.

The rule (``seed`` s): with ``rng = numpy.random.default_rng(s)``, in this order

1. a unary table ``u_v`` of each variable ``v`` (ops first, then the input bits in decision
   order), every entry ``~ N(0, 0.5^2)``;
2. for every pair ``v < w`` of variables (in that order), the pair interacts with probability
   0.3 (``rng.random() < 0.3``), and then has a table ``W_vw`` with entries ``~ N(0, 1)``;
3. ``f(x) = sum_v u_v[x_v] + sum_(v,w) W_vw[x_v, x_w]``, and the architecture's accuracy is
   ``50 + 45 * (f(x) - min f) / (max f - min f)`` percent, computed over the whole space.

So the best architecture scores exactly 95.0 and the worst 50.0; interactions dominate (their
spread is about twice the unary terms'), and a decision's best value depends on others,
which makes the landscape rugged (many local optima), unlike NAS-Bench-201's. The table is
built in a fraction of a second from the rule (nothing is stored or downloaded); see
`nascell.search.evaluators.synthetic_pairwise`, the tabular evaluator reading it.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Tuple

import numpy as np

from nascell.search.core.space import Categorical, SearchSpace, Skips

NUM_NODES = 5
OPS: Tuple[str, ...] = ("a", "b", "c")
UNARY_STD = 0.5
PAIR_PROBABILITY = 0.3
PAIR_STD = 1.0
WORST, BEST = 50.0, 95.0


def synthetic_pairwise_space(seed: int = 0) -> SearchSpace:
    """The 5-node space (ops and input subsets); ``seed`` selects the reward table."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Argument `seed` must be a non-negative integer. Received: "
                         f"seed={seed!r}")
    decisions: List[Any] = []
    for i in range(NUM_NODES):
        decisions.append(Categorical(f"op_{i}", OPS))
        decisions.append(Skips(f"in_{i}", i))
    return SearchSpace("synthetic_pairwise", decisions, options={"seed": int(seed)})


def variables(space: SearchSpace, decisions: Dict[str, Any]) -> List[int]:
    """The 15 variables of an architecture: 5 op indices, then the 10 input bits."""
    tokens = space.to_tokens(decisions)
    ops = [t for t in tokens if isinstance(t, int)]
    bits = [b for t in tokens if not isinstance(t, int) for b in t]
    return ops + bits


def cardinalities() -> List[int]:
    return [len(OPS)] * NUM_NODES + [2] * (NUM_NODES * (NUM_NODES - 1) // 2)


def index(values: List[int]) -> int:
    """Mixed-radix index of a variable vector into `table` (the first variable varies fastest)."""
    out, scale = 0, 1
    for v, c in zip(values, cardinalities()):
        out += int(v) * scale
        scale *= c
    return out


@functools.lru_cache(maxsize=4)
def table(seed: int = 0) -> np.ndarray:
    """Accuracy (percent) of every architecture, by `index`; built from the rule above."""
    rng = np.random.default_rng(int(seed))
    cards = cardinalities()
    unary = [rng.normal(0.0, UNARY_STD, c) for c in cards]
    pairs = []
    for v in range(len(cards)):
        for w in range(v + 1, len(cards)):
            if rng.random() < PAIR_PROBABILITY:
                pairs.append((v, w, rng.normal(0.0, PAIR_STD, (cards[v], cards[w]))))
    total = int(np.prod(cards))
    grid = np.arange(total)
    values = []
    for c in cards:  # mixed radix, first variable fastest (as `index`)
        values.append(grid % c)
        grid = grid // c
    f = np.zeros(total)
    for v, u in enumerate(unary):
        f += u[values[v]]
    for v, w, pair in pairs:
        f += pair[values[v], values[w]]
    acc = WORST + (BEST - WORST) * (f - f.min()) / (f.max() - f.min())
    acc.setflags(write=False)
    return acc


__all__ = ["BEST", "synthetic_pairwise_space", "table", "index", "variables"]
