"""Regularized (aging) evolution, Real et al. 2019: the strongest simple baseline.

* Until ``population_size`` trials have been *told*, `ask` proposes uniformly random
  architectures (asking more before the rewards arrive just gives more random ones).
* Afterwards each proposal is a mutated copy of a tournament winner: ``tournament_size``
  members are drawn from the population without replacement, the one with the highest reward
  is the parent, and exactly one of its decisions changes: a Categorical to a different
  choice, a Skips decision by flipping one candidate (adding or removing one connection).
  Only decisions with more than one possible value mutate.
* Every told trial joins the population and, once it holds more than ``population_size``,
  the *oldest* member (the earliest told) leaves, whatever its reward: age, not fitness,
  decides who dies.

Defaults: ``population_size=20``, ``tournament_size=5`` (Real et al. used 100/25 with 20,000
trials; these keep the same 1/4 ratio for budgets of hundreds of trials). With a growing
space, a parent from an earlier stage gets random values for the decisions added since.
No child is evaluated twice (the base class's dedupe): a child that repeats an architecture
proposed before is drawn again (a new tournament and mutation), and when mutations keep
repeating, the unseen neighbours of the best architectures are proposed instead
(`nascell.search.core.dedupe`). ``dedupe=False``: Real et al.'s loop, repeats included.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Optional

import numpy as np

from nascell.search.core.space import Categorical
from nascell.search.core.strategy import Proposal, Strategy, register_strategy
from nascell.search.core.trial import Trial
from nascell.search.strategies import _common


@register_strategy
class EvolutionStrategy(Strategy):
    """Regularized evolution: tournament selection, one-decision mutation, oldest dies."""

    name = "evolution"

    def __init__(self, space, seed: int = 0, population_size: int = 20,
                 tournament_size: int = 5, dedupe: Optional[bool] = None, **options: Any):
        if options:
            raise ValueError(f"unknown evolution option(s) {sorted(options)}; known: "
                             "population_size, tournament_size, dedupe")
        if population_size < 1:
            raise ValueError(f"Argument `population_size` must be >= 1. "
                             f"Received: population_size={population_size}")
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"Argument `tournament_size` must be in [1, population_size="
                             f"{population_size}]. Received: tournament_size={tournament_size}")
        super().__init__(space, seed=seed, population_size=population_size,
                         tournament_size=tournament_size, **_common.given(dedupe=dedupe))
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.rng = np.random.default_rng(seed)
        #: (trial_id, decisions, reward), oldest first.
        self.population: collections.deque = collections.deque()
        self.num_told = 0

    # --- propose -------------------------------------------------------------------------------

    def propose(self, n: int) -> List[Proposal]:
        out = []
        for i in range(n):
            if self.num_told < self.population_size:
                decisions = self.space.sample(self.rng, num_samples=self.next_trial_id + i)
                out.append(Proposal(decisions, {"origin": "random"}))
            else:
                parent = self._tournament()
                decisions, mutated = self._mutate(parent[1])
                out.append(Proposal(decisions, {"origin": "mutation", "parent": parent[0],
                                                "mutated": mutated}))
        return out

    def _tournament(self):
        idx = self.rng.choice(len(self.population), size=self.tournament_size, replace=False)
        # Highest reward wins; ties go to the earliest drawn.
        best = max(idx, key=lambda i: (self.population[i][2], -list(idx).index(i)))
        return self.population[best]

    def _mutate(self, parent: Dict[str, Any]):
        active = self.space.decisions_at(self.next_trial_id)
        child = {}
        for d in active:  # decisions added since the parent's stage get random values
            child[d.name] = parent[d.name] if d.name in parent else d.sample(self.rng)
        mutable = [d for d in active if d.num_values > 1]
        if not mutable:
            return child, None
        d = mutable[int(self.rng.integers(len(mutable)))]
        if isinstance(d, Categorical):
            others = [c for c in d.choices if d.index(c) != d.index(child[d.name])]
            child[d.name] = others[int(self.rng.integers(len(others)))]
        else:
            flip = int(self.rng.integers(d.num_candidates))
            chosen = set(child[d.name]) ^ {flip}
            child[d.name] = tuple(sorted(chosen))
        return child, d.name

    # --- observe -------------------------------------------------------------------------------

    def observe(self, trial: Trial, reward: float) -> None:
        self.population.append((trial.trial_id, dict(trial.decisions),
                                _common.check_reward(reward)))
        while len(self.population) > self.population_size:
            self.population.popleft()
        self.num_told += 1

    # --- state ---------------------------------------------------------------------------------

    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state.update({"num_told": self.num_told, "rng": _common.rng_state(self.rng),
                      "population": [[tid, _common.jsonable(d), r]
                                     for tid, d, r in self.population]})
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        self.num_told = int(state["num_told"])
        self.rng = _common.rng_from_state(state["rng"])
        self.population = collections.deque(
            (int(tid), self.space.check(d), float(r)) for tid, d, r in state["population"])
