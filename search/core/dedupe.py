"""No trial spent on a repeat: the ledger of proposed architectures and fresh ones when stuck.

Every built-in strategy proposes candidates through `Strategy.propose`; `Strategy.ask` (in
`nascell.search.core.strategy`) keeps them only if this `Ledger` has not seen them, so the rule
lives in one place for all strategies (as KerasTuner's Oracle does for its tuners):

* an architecture already *evaluated* is not a new trial: the strategy is shown its known
  reward (`Strategy.observe_known`; REINFORCE learns from it) and asked again;
* an architecture *in flight* (asked, not yet told) is dropped and asked again;
* after `Strategy.max_repeat_rounds` proposal rounds in a row without a new architecture (a
  policy that has converged), the rest of the batch comes from `novel_architectures`: the
  unseen one-decision neighbours of the best architectures evaluated so far, else uniformly
  random unseen ones;
* when every architecture of the (active part of the) space has been proposed, `ask` raises
  `SpaceExhausted`, saying how many the space holds.

The ledger is part of a strategy's saved state, and the search loop refills it from the run's
trial store on resume (`Strategy.remember`), so a resumed run never re-proposes what the killed
one evaluated or had in flight.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from nascell.search.core.space import Categorical, SearchSpace

#: spaces with at most this many architectures are enumerated when random draws keep failing.
ENUMERATE_LIMIT = 2_000_000


class SpaceExhausted(RuntimeError):
    """Every architecture of the search space has been proposed; no new trial can be asked."""


def arch_key(space: SearchSpace, decisions: Dict[str, Any]) -> str:
    """A canonical, compact string of a decisions dict: one token per decision.

    A Categorical writes its choice index, a Skips decision its 0/1 mask (``-`` when it has no
    candidates), comma-separated; e.g. ``3,0,4,1,2,2`` for a NAS-Bench-201 cell.
    """
    parts = []
    for token in space.to_tokens(decisions):
        parts.append(str(token) if isinstance(token, int) else
                     ("".join(str(b) for b in token) or "-"))
    return ",".join(parts)


def decisions_from_key(space: SearchSpace, key: str) -> Dict[str, Any]:
    """Inverse of `arch_key`."""
    tokens: List[Any] = []
    for d, part in zip(space.decisions, key.split(",")):
        tokens.append(int(part) if isinstance(d, Categorical) else
                      [] if part == "-" else [int(c) for c in part])
    return space.from_tokens(tokens)


def flat_tokens(space: SearchSpace, key: str) -> List[int]:
    """The flat token row of an `arch_key`: a Categorical's index, a Skips' bits (the
    controller's token layout)."""
    out: List[int] = []
    for token in space.to_tokens(decisions_from_key(space, key)):
        out.extend([token] if isinstance(token, int) else token)
    return out


class Ledger:
    """Architectures proposed so far: key -> reward (``None`` while in flight)."""

    def __init__(self):
        self.rewards: Dict[str, Optional[float]] = {}
        self._by_length: collections.Counter = collections.Counter()

    def __len__(self) -> int:
        return len(self.rewards)

    def __contains__(self, key: str) -> bool:
        return key in self.rewards

    def is_known(self, key: str) -> bool:
        """Evaluated (told) already."""
        return self.rewards.get(key) is not None

    def reward(self, key: str) -> Optional[float]:
        return self.rewards.get(key)

    def add_pending(self, key: str) -> None:
        if key not in self.rewards:
            self.rewards[key] = None
            self._by_length[key.count(",") + 1] += 1

    def record(self, key: str, reward: float) -> None:
        self.add_pending(key)
        self.rewards[key] = float(reward)

    def count(self, num_decisions: int) -> int:
        """How many architectures of ``num_decisions`` decisions have been proposed."""
        return self._by_length[num_decisions]

    def known(self) -> List[Tuple[str, float]]:
        """(key, reward) of every evaluated architecture, best first."""
        items = [(k, r) for k, r in self.rewards.items() if r is not None]
        items.sort(key=lambda kr: -kr[1])
        return items

    def get_state(self) -> Dict[str, Any]:
        return {"keys": list(self.rewards), "rewards": list(self.rewards.values())}

    def set_state(self, state: Optional[Dict[str, Any]]) -> None:
        self.rewards, self._by_length = {}, collections.Counter()
        for key, reward in zip((state or {}).get("keys", []), (state or {}).get("rewards", [])):
            self.add_pending(key)
            self.rewards[key] = None if reward is None else float(reward)


def neighbours(space: SearchSpace, decisions: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every architecture one decision away: a Categorical to another choice, or one skip
    candidate flipped (the neighbourhood of local search, White et al. 2020)."""
    out = []
    for name, value in decisions.items():
        d = space[name]
        if isinstance(d, Categorical):
            current = d.index(value)
            for i, choice in enumerate(d.choices):
                if i != current:
                    out.append({**decisions, name: choice})
        else:
            for j in range(d.num_candidates):
                out.append({**decisions, name: tuple(sorted(set(value) ^ {j}))})
    return out


def _from_index(space: SearchSpace, index: int, num_decisions: int) -> Dict[str, Any]:
    """The ``index``-th architecture of the first ``num_decisions`` decisions (mixed radix)."""
    tokens: List[Any] = []
    for d in space.decisions[:num_decisions]:
        index, digit = divmod(index, d.num_values)
        tokens.append(digit if isinstance(d, Categorical) else
                      [(digit >> j) & 1 for j in range(d.num_candidates)])
    return space.from_tokens(tokens)


def novel_architectures(space: SearchSpace, ledger: Ledger, count: int,
                        rng: np.random.Generator, num_decisions: Optional[int] = None,
                        top: int = 10) -> List[Tuple[Dict[str, Any], str]]:
    """Up to ``count`` architectures the ledger has not seen, each with its origin.

    First the unseen neighbours of the ``top`` best evaluated architectures (best first, each
    neighbourhood in random order): where a converged policy stops, keep climbing around its
    best cells. Then uniformly random unseen ones: rejection sampling, and for spaces of at
    most `ENUMERATE_LIMIT` architectures an enumeration when that keeps failing, so the last
    few unseen architectures of a small space are still found.
    """
    n = space.num_active() if num_decisions is None else num_decisions
    out: List[Tuple[Dict[str, Any], str]] = []
    taken = set()

    def take(decisions: Dict[str, Any], origin: str) -> bool:
        key = arch_key(space, decisions)
        if key in ledger or key in taken:
            return False
        taken.add(key)
        out.append((decisions, origin))
        return len(out) >= count

    for key, _ in ledger.known()[:top]:
        if key.count(",") + 1 != n:
            continue
        cands = neighbours(space, decisions_from_key(space, key))
        for i in rng.permutation(len(cands)):
            if take(cands[int(i)], "neighbour"):
                return out
    for _ in range(64 * count):
        decisions = {d.name: d.sample(rng) for d in space.decisions[:n]}
        if take(decisions, "random"):
            return out
    total = math.prod(d.num_values for d in space.decisions[:n])
    if total <= ENUMERATE_LIMIT:
        for index in rng.permutation(total):
            if take(_from_index(space, int(index), n), "random"):
                return out
    return out
