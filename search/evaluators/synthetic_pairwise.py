"""The synthetic pairwise table as a tabular evaluator: a reward is a look-up, in microseconds.

Pairs with the ``synthetic_pairwise`` space (`nascell.search.spaces.synthetic_pairwise`, which
states the rule that builds the table from a seed). The reward is the architecture's accuracy
divided by 100, in [0.5, 0.95] (the best architecture scores exactly 95%), on the same scale
as NAS-Bench-201's evaluator; ``metrics`` keeps ``accuracy`` (percent) and ``regret`` (to 95).
"""

from __future__ import annotations

from typing import Any, Dict

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.spaces import synthetic_pairwise as _table


class SyntheticPairwiseEvaluator(Evaluator):
    """Reward = accuracy / 100 of a ``synthetic_pairwise`` architecture (its decisions dict)."""

    name = "synthetic_pairwise"

    def __init__(self, seed: int = 0):
        self.space = _table.synthetic_pairwise_space(seed)  # checks the seed
        self.seed = int(seed)

    def accuracy(self, spec: Dict[str, Any]) -> float:
        """Accuracy in percent of a decisions dict (the space's spec)."""
        try:
            values = _table.variables(self.space, spec)
        except Exception as e:
            raise ValueError(f"not a synthetic_pairwise architecture: {spec!r} ({e})") from None
        return float(_table.table(self.seed)[_table.index(values)])

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        acc = self.accuracy(spec)
        return EvalResult(reward=acc / 100.0, metrics={"accuracy": acc,
                                                       "regret": _table.BEST - acc})

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "seed": self.seed}
