"""Helpers shared by the built-in strategies: JSON-safe decisions and RNG state."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from nascell.search.core.space import SearchSpace
from nascell.search.core.trial import Trial


def jsonable(decisions: Dict[str, Any]) -> Dict[str, Any]:
    """Decisions with Skips tuples as lists (what JSON gives back anyway)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in decisions.items()}


def make_trial(space: SearchSpace, trial_id: int, decisions: Dict[str, Any],
               meta: Dict[str, Any]) -> Trial:
    decisions = space.check(decisions)
    return Trial(trial_id=trial_id, decisions=decisions, spec=space.decode(decisions),
                 meta=meta)


def check_reward(reward: Any) -> float:
    """A finite float; None/NaN (a failed trial) count as 0 (docs/search.md, "Rewards")."""
    if reward is None:
        return 0.0
    reward = float(reward)
    return reward if np.isfinite(reward) else 0.0


def rng_state(rng: np.random.Generator) -> Dict[str, Any]:
    return rng.bit_generator.state


def rng_from_state(state: Dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def key(decisions: Dict[str, Any]) -> str:
    """A canonical string for a decisions dict (for "seen before?" sets kept in JSON state)."""
    import json
    return json.dumps(jsonable(decisions), sort_keys=True)


def given(**options: Any) -> Dict[str, Any]:
    """The options a caller actually passed (None: left to the default), for `config()`."""
    return {k: v for k, v in options.items() if v is not None}
