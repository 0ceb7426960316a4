"""Random search: every architecture drawn uniformly from the space (the paper's control 2).

Each decision is drawn independently and uniformly (a Categorical's choices, each skip
candidate with probability 1/2), which is uniform over the space. Growing spaces sample the
decisions active after ``next_trial_id`` samples. Seeded; `get_state` holds the RNG state.
No architecture is proposed twice (the base class's dedupe: a repeat is drawn again), so this
is sampling without replacement; ``dedupe=False`` samples with replacement.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from nascell.search.core.strategy import Proposal, Strategy, register_strategy
from nascell.search.core.trial import Trial
from nascell.search.strategies import _common


@register_strategy
class RandomStrategy(Strategy):
    """Uniform random sampling; `tell` only counts rewards."""

    name = "random"

    def __init__(self, space, seed: int = 0, dedupe: Optional[bool] = None, **options: Any):
        if options:
            raise ValueError(f"unknown random option(s) {sorted(options)}; known: dedupe")
        super().__init__(space, seed=seed, **_common.given(dedupe=dedupe))
        self.rng = np.random.default_rng(seed)
        self.num_told = 0

    def propose(self, n: int) -> List[Proposal]:
        return [Proposal(self.space.sample(self.rng, num_samples=self.next_trial_id + i))
                for i in range(n)]

    def observe(self, trial: Trial, reward: float) -> None:
        _common.check_reward(reward)
        self.num_told += 1

    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state.update({"num_told": self.num_told, "rng": _common.rng_state(self.rng)})
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        self.num_told = int(state["num_told"])
        self.rng = _common.rng_from_state(state["rng"])
