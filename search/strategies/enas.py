"""ENAS (Pham et al., 2018) as a strategy: the ENAS-configured controller behind ask/tell.

Two ways to run ENAS:

* `run_enas(space_name, run_dir, ...)` (what ``nascell-search --strategy=enas`` calls): the
  real weight-sharing loop of `nascell.search.enas.trainer`, alternating shared-weight
  training and controller training on one supernet, then deriving the final cell.
* ``create_strategy("enas", space)`` (`ENASStrategy`): the same controller and REINFORCE
  update, exposed through ask/tell so the generic search loop, any evaluator (a tabular
  benchmark, real child training, a supernet scorer of your own) and the run directory's
  resume machinery can drive it. Each ``tell`` batch of ``m`` rewards is one controller step.

ENAS' controller settings are the defaults (see `nascell.search.enas.trainer`): one-layer
LSTM of 100 units, weights uniform in [-0.1, 0.1], Adam 3.5e-4, temperature 5, tanh
constant 2.5, entropy weight 1e-4, baseline decay 0.999; ``m`` defaults to 4. Any
`ReinforceStrategy` option overrides them.
"""

from __future__ import annotations

from typing import Any, Dict

from nascell.search.strategy import register_strategy
from nascell.search.strategies.reinforce import ReinforceStrategy

ENAS_CONTROLLER_DEFAULTS: Dict[str, Any] = {
    "units": 100, "num_layers": 1, "init_range": 0.1, "learning_rate": 3.5e-4,
    "temperature": 5.0, "tanh_constant": 2.5, "entropy_weight": 1e-4, "baseline_decay": 0.999,
    "m": 4,
}


@register_strategy
class ENASStrategy(ReinforceStrategy):
    """ask/tell over the ENAS controller; options as `ReinforceStrategy` with ENAS defaults."""

    name = "enas"

    def __init__(self, space, seed: int = 0, **options: Any):
        if options.get("preset", "paper") != "paper":
            raise ValueError("the enas strategy has its own defaults; pass controller options "
                             "explicitly instead of a reinforce preset")
        options.pop("preset", None)
        merged = {**ENAS_CONTROLLER_DEFAULTS, **options}
        super().__init__(space, seed=seed, **merged)
        # Record what the user asked for plus the ENAS defaults, so a resume compares both.
        self.options = {k: v for k, v in merged.items()}


def run_enas(space_name: str, run_dir: str, **kwargs: Any):
    """The weight-sharing ENAS search; see `nascell.search.enas.trainer.run_enas`."""
    from nascell.search.enas.trainer import run_enas as _run_enas
    return _run_enas(space_name, run_dir, **kwargs)


__all__ = ["ENASStrategy", "ENAS_CONTROLLER_DEFAULTS", "run_enas"]
