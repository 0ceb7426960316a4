"""The ask/tell interface every search strategy implements, and the strategy registry.

    strategy = nascell.search.create_strategy("reinforce", space, seed=0)
    for trial in strategy.ask(8):
        strategy.tell(trial, my_evaluator(trial.spec))

A strategy proposes trials and learns from their rewards; it never trains children itself, so
any evaluator (a tabular benchmark, a real child trainer, a user's function) can drive any
strategy. A strategy's whole state saves to and restores from a folder, so a run resumes.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional, Type

from nascell.search.trial import Trial


class Strategy(abc.ABC):
    """Base class: subclasses implement `ask`, `tell`, `get_state` and `set_state`."""

    #: registry name, e.g. "reinforce".
    name: str = ""

    #: when set, the run's best-trial files rank only the trials whose ``meta["phase"]`` is
    #: this (once there are any): the strategy's answer is chosen among them (ENAS: "derive").
    result_phase: Optional[str] = None

    def __init__(self, space: Any, seed: int = 0, **options: Any):
        self.space = space
        self.seed = seed
        self.options = options
        self.next_trial_id = 0

    def bind(self, evaluator: Any) -> None:
        """Called by `run_search` before anything else (before a resume restores this
        strategy): a strategy that trains together with its evaluator (ENAS' shared weights)
        takes what it needs here. Most strategies need nothing."""
        return None

    @abc.abstractmethod
    def ask(self, n: int = 1) -> List[Trial]:
        """Propose `n` new trials (ids `next_trial_id...`), each with decisions and a spec."""

    @abc.abstractmethod
    def tell(self, trial: Trial, reward: float) -> None:
        """Report a finished trial's reward (0.0 for a failed trial). Order may differ from ask."""

    @abc.abstractmethod
    def get_state(self) -> Dict[str, Any]:
        """Everything needed to continue exactly where this strategy is (JSON-serializable)."""

    @abc.abstractmethod
    def set_state(self, state: Dict[str, Any]) -> None:
        """Restore what `get_state` returned."""

    def save(self, directory: str) -> None:
        """Write the state under `directory` (atomically). Override to add weight files."""
        from nascell import _io
        _io.atomic_write_json(f"{directory}/strategy_state.json", self.get_state())

    def restore(self, directory: str) -> bool:
        """Load state saved by `save`; returns False if there is none."""
        from nascell import _io
        state = _io.read_json_or_none(f"{directory}/strategy_state.json")
        if state is None:
            return False
        self.set_state(state)
        return True

    def config(self) -> Dict[str, Any]:
        """Settings stored in the run directory; a resumed run must match them."""
        return {"name": self.name, "seed": self.seed, **self.options}


_REGISTRY: Dict[str, Type[Strategy]] = {}


def register_strategy(cls: Type[Strategy]) -> Type[Strategy]:
    """Class decorator: make a strategy available by its `name` to `create_strategy`."""
    _REGISTRY[cls.name] = cls
    return cls


def available_strategies() -> List[str]:
    _import_builtin()
    return sorted(_REGISTRY)


def create_strategy(name: str, space: Any, seed: int = 0, **options: Any) -> Strategy:
    """Create a registered strategy by name (reinforce, random, evolution, enas, ...)."""
    _import_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"Argument `name` must be a registered strategy, one of "
                         f"{sorted(_REGISTRY)}. Received: name={name!r}")
    return _REGISTRY[name](space, seed=seed, **options)


def _import_builtin() -> None:
    # Importing the package registers the built-in strategies.
    import nascell.search.strategies  # noqa: F401
