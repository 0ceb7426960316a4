"""Random search: every architecture drawn uniformly from the space (the paper's control 2).

Each decision is drawn independently and uniformly (a Categorical's choices, each skip
candidate with probability 1/2), which is uniform over the space. Growing spaces sample the
decisions active after ``next_trial_id`` samples. Seeded; `get_state` holds the RNG state.
``dedupe=True`` samples without replacement (redraws an architecture proposed before, up to
100 times), the fair control when the other strategies dedupe too.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from nascell.search.strategies import _common
from nascell.search.strategy import Strategy, register_strategy
from nascell.search.trial import Trial


@register_strategy
class RandomStrategy(Strategy):
    """Uniform random sampling; `tell` only counts rewards."""

    name = "random"

    def __init__(self, space, seed: int = 0, dedupe: bool = False, **options: Any):
        if options:
            raise ValueError(f"unknown random option(s) {sorted(options)}; known: dedupe")
        super().__init__(space, seed=seed, **({"dedupe": True} if dedupe else {}))
        self.dedupe = dedupe
        self.rng = np.random.default_rng(seed)
        self.num_told = 0
        self.seen: set = set()

    def ask(self, n: int = 1) -> List[Trial]:
        trials = []
        for _ in range(n):
            for _ in range(100 if self.dedupe else 1):  # dedupe: sample without replacement
                decisions = self.space.sample(self.rng, num_samples=self.next_trial_id)
                if _common.key(decisions) not in self.seen:
                    break
            if self.dedupe:
                self.seen.add(_common.key(decisions))
            trials.append(_common.make_trial(self.space, self.next_trial_id, decisions, {}))
            self.next_trial_id += 1
        return trials

    def tell(self, trial: Trial, reward: float) -> None:
        _common.check_reward(reward)
        self.num_told += 1

    def get_state(self) -> Dict[str, Any]:
        return {"strategy": self.name, "next_trial_id": self.next_trial_id,
                "num_told": self.num_told, "rng": _common.rng_state(self.rng),
                "seen": sorted(self.seen)}

    def set_state(self, state: Dict[str, Any]) -> None:
        self.next_trial_id = int(state["next_trial_id"])
        self.num_told = int(state["num_told"])
        self.rng = _common.rng_from_state(state["rng"])
        self.seen = set(state.get("seen", []))
