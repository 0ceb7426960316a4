"""Built-in search strategies; importing this package registers them with `create_strategy`.

* ``reinforce``: the LSTM controller trained by REINFORCE (Zoph & Le 2017), `ReinforceStrategy`.
* ``random``: uniform random sampling (the paper's control experiment 2), `RandomStrategy`.
* ``evolution``: regularized evolution (Real et al. 2019), `EvolutionStrategy`.
* ``local_search``: local search with restarts (White et al. 2020), `LocalSearchStrategy`.
* ``enas``: the ENAS-configured controller behind ask/tell (`nascell.search.strategies.enas`).
"""

from nascell.search.strategies.enas import ENASStrategy
from nascell.search.strategies.evolution import EvolutionStrategy
from nascell.search.strategies.local_search import LocalSearchStrategy
from nascell.search.strategies.random import RandomStrategy
from nascell.search.strategies.reinforce import ReinforceStrategy

__all__ = ["ENASStrategy", "EvolutionStrategy", "LocalSearchStrategy", "RandomStrategy",
           "ReinforceStrategy"]
