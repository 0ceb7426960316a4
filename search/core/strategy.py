"""The ask/tell interface every search strategy implements, and the strategy registry.

    strategy = nascell.search.create_strategy("reinforce", space, seed=0)
    for trial in strategy.ask(8):
        strategy.tell(trial, my_evaluator(trial.spec))

A strategy proposes trials and learns from their rewards; it never trains children itself, so
any evaluator (a tabular benchmark, a real child trainer, a user's function) can drive any
strategy. A strategy's whole state saves to and restores from a folder, so a run resumes.

`Strategy` is an abstract class, as Optuna's samplers are: a strategy implements the two
abstract methods, `propose` (candidate architectures) and `observe` (learn from a reward).
No trial is a repeat: `ask` and `tell`, here, keep a `nascell.search.core.dedupe.Ledger` of what
was proposed and turn only *new* architectures into trials, for every strategy alike (see
`nascell.search.core.dedupe`). ``dedupe=False`` (an option of every built-in strategy) turns the
rule off: every proposal becomes a trial, as in the paper's loop.

Everything else is an optional hook with a documented default, which `run_search` and
``nascell-search`` call (they never probe a strategy for attributes): `observe_known`,
`observe_in_flight`, `bind` and `before_evaluate` (ENAS' shared weights), `summary_scalars`
(TensorBoard), `planned_trials`, `m` and `checkpoint_every` (the loop's defaults), and
`result_phase`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Dict, Iterable, List, Optional, Type

import numpy as np
from absl import logging

from nascell.search.core import dedupe as _dedupe
from nascell.search.core.trial import Trial

SpaceExhausted = _dedupe.SpaceExhausted


@dataclasses.dataclass
class Proposal:
    """A candidate a strategy proposes: decisions and what to remember about it (meta)."""

    decisions: Dict[str, Any]
    meta: Dict[str, Any] = dataclasses.field(default_factory=dict)


class Strategy(abc.ABC):
    """Base class: subclasses implement `propose` and `observe` (and extend the state).

    Subclasses that keep state extend `get_state` / `set_state` (calling ``super()``), which
    hold the trial counter and the dedupe ledger.
    """

    #: registry name, e.g. "reinforce".
    name: str = ""
    #: proposal rounds in a row without a new architecture before `ask` falls back to
    #: `nascell.search.core.dedupe.novel_architectures` for the rest of the batch.
    max_repeat_rounds: int = 8

    #: when set, the run's best-trial files rank only the trials whose ``meta["phase"]`` is
    #: this (once there are any): the strategy's answer is chosen among them (ENAS: "derive").
    result_phase: Optional[str] = None

    #: the trials to ask at a time (a controller's batch of rewards per update), or None: the
    #: caller's default (``nascell-search --m`` overrides it when given).
    m: Optional[int] = None

    #: rewards between strategy checkpoints the strategy suggests to the loop (``nascell-search
    #: --checkpoint_every`` overrides it when given).
    checkpoint_every: int = 1

    def __init__(self, space: Any, seed: int = 0, **options: Any):
        self.space = space
        self.seed = seed
        self.options = options
        self.next_trial_id = 0
        self.dedupe = bool(options.get("dedupe", True))
        self.ledger = _dedupe.Ledger()
        self._novelty_rng = np.random.default_rng([int(seed), 0x6e6f76])
        #: proposals that repeated a known / in-flight architecture; trials from the fallback.
        self.num_repeats = 0
        self.num_novel = 0

    # --- what a strategy implements ------------------------------------------------------------

    @abc.abstractmethod
    def propose(self, n: int) -> List[Proposal]:
        """Up to ``n`` candidate architectures (repeats are filtered by `ask`)."""

    @abc.abstractmethod
    def observe(self, trial: Trial, reward: float) -> None:
        """Learn from a finished trial's reward (0.0 for a failed one)."""

    def observe_known(self, proposal: Proposal, reward: float) -> None:
        """A proposal repeated an architecture evaluated before, with this reward: learn from
        it if the strategy can (REINFORCE does); it is not a trial. Default: nothing."""
        return None

    def observe_in_flight(self, proposal: Proposal) -> None:
        """A proposal repeated an architecture still in flight; it is dropped. Default: nothing."""
        return None

    # --- optional hooks (documented no-ops) ------------------------------------------------------

    def bind(self, shared_task: Any) -> None:
        """Called by `run_search` before anything else (before a resume restores this
        strategy) with the evaluator's shared task (`Evaluator.shared_task`; None for most
        evaluators): a strategy that trains what the evaluator scores with (ENAS' supernet)
        keeps it here. Default: nothing."""
        return None

    def before_evaluate(self, trial: Trial) -> None:
        """Called by `run_search` just before ``trial`` goes to the evaluator: a strategy that
        trains the shared task brings it up to date here (ENAS runs the shared phase of the
        epoch the search is in, so a resumed run catches up before it scores anything).
        Default: nothing."""
        return None

    def summary_scalars(self) -> Dict[str, float]:
        """Scalars the loop writes to TensorBoard (as ``strategy/<name>``) after each trial,
        e.g. REINFORCE's baseline and entropy. Default: none."""
        return {}

    def planned_trials(self) -> Optional[int]:
        """How many trials one run of this strategy takes, for a strategy with a schedule
        (ENAS: its search phase and derive candidates), or None (the caller decides)."""
        return None

    # --- ask / tell ------------------------------------------------------------------------------

    def ask(self, n: int = 1) -> List[Trial]:
        """Propose ``n`` new trials (ids `next_trial_id...`), each with decisions and a spec.

        With dedupe (the default) none repeats an architecture proposed before; fewer than
        ``n`` come back only when the space has fewer new architectures left, and
        `SpaceExhausted` is raised when it has none.
        """
        n = int(n)
        trials: List[Trial] = []
        idle = 0
        while len(trials) < n:
            if self.dedupe and self._exhausted():
                if trials:
                    break
                total = self.space.num_architectures(self.next_trial_id)
                raise SpaceExhausted(
                    f"all {total} architectures of the search space "
                    f"{self.space.name!r} have been proposed; no new one is "
                    f"left to evaluate ({self.next_trial_id} trials asked so far)")
            want = n - len(trials)
            if self.dedupe and idle >= self.max_repeat_rounds:
                proposals = self._novel(want)
            else:
                proposals = self.propose(want)
            new = 0
            for proposal in proposals:
                decisions = self.space.check(proposal.decisions)
                key = _dedupe.arch_key(self.space, decisions)
                if self.dedupe and key in self.ledger:
                    self.num_repeats += 1
                    if self.ledger.is_known(key):
                        self.observe_known(proposal, self.ledger.reward(key))
                    else:
                        self.observe_in_flight(proposal)
                    continue
                self.ledger.add_pending(key)
                trials.append(Trial(trial_id=self.next_trial_id, decisions=decisions,
                                    spec=self.space.decode(decisions),
                                    meta=dict(proposal.meta)))
                self.next_trial_id += 1
                new += 1
                if len(trials) == n:
                    break
            idle = 0 if new else idle + 1
        return trials

    def tell(self, trial: Trial, reward: float) -> None:
        """Report a finished trial's reward (0.0 for a failed trial). Order may differ from ask."""
        value = _finite(reward)
        try:
            self.ledger.record(_dedupe.arch_key(self.space, trial.decisions), value)
        except Exception:  # not this space's decisions: observe() decides what to do
            logging.debug("trial %s: decisions not of this space, not in the ledger",
                          trial.trial_id)
        self.observe(trial, reward)

    def remember(self, finished: Iterable[Trial], in_flight: Iterable[Trial] = ()) -> int:
        """Put trials of a run directory into the ledger without learning from them.

        The search loop calls this on resume with the run's trial store, so architectures the
        killed run evaluated (``finished``, with their rewards) or had in flight are never
        proposed again, whatever the strategy checkpoint had seen. Returns how many were new
        to the ledger.
        """
        added = 0
        for trials, done in ((finished, True), (in_flight, False)):
            for trial in trials:
                try:
                    key = _dedupe.arch_key(self.space, trial.decisions)
                except Exception as e:
                    logging.warning("trial %s: its decisions do not fit the space (%s)",
                                    trial.trial_id, e)
                    continue
                added += key not in self.ledger
                if done and not self.ledger.is_known(key):
                    self.ledger.record(key, _finite(trial.reward))
                else:
                    self.ledger.add_pending(key)
        return added

    def _exhausted(self) -> bool:
        num_decisions = self.space.num_active(self.next_trial_id)
        return self.ledger.count(num_decisions) >= self.space.num_architectures(
            self.next_trial_id)

    def _novel(self, n: int) -> List[Proposal]:
        found = _dedupe.novel_architectures(
            self.space, self.ledger, n, self._novelty_rng,
            num_decisions=self.space.num_active(self.next_trial_id))
        self.num_novel += len(found)
        return [Proposal(d, {"origin": f"novelty_{origin}"}) for d, origin in found]

    # --- state -----------------------------------------------------------------------------------

    def get_state(self) -> Dict[str, Any]:
        """Everything needed to continue exactly where this strategy is (JSON-serializable).

        Subclasses extend the dict (``state = super().get_state(); state[...] = ...``).
        """
        return {"strategy": self.name, "next_trial_id": self.next_trial_id,
                "ledger": self.ledger.get_state(), "num_repeats": self.num_repeats,
                "num_novel": self.num_novel,
                "novelty_rng": self._novelty_rng.bit_generator.state}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Restore what `get_state` returned."""
        self.next_trial_id = int(state["next_trial_id"])
        self.ledger.set_state(state.get("ledger"))
        self.num_repeats = int(state.get("num_repeats", 0))
        self.num_novel = int(state.get("num_novel", 0))
        if "novelty_rng" in state:
            self._novelty_rng.bit_generator.state = state["novelty_rng"]

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


def _finite(reward: Any) -> float:
    """A failed trial's None / NaN reward counts as 0.0."""
    try:
        value = float(reward)
    except (TypeError, ValueError):
        return 0.0
    return value if np.isfinite(value) else 0.0


_REGISTRY: Dict[str, Type[Strategy]] = {}


def register_strategy(cls: Type[Strategy]) -> Type[Strategy]:
    """Class decorator: make a strategy available by its `name` to `create_strategy`."""
    _REGISTRY[cls.name] = cls
    return cls


def available_strategies() -> List[str]:
    _import_builtin()
    return sorted(_REGISTRY)


def create_strategy(name: str, space: Any, seed: int = 0, **options: Any) -> Strategy:
    """Create a registered strategy by name (reinforce, random, evolution, local_search, ...)."""
    _import_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"Argument `name` must be a registered strategy, one of "
                         f"{sorted(_REGISTRY)}. Received: name={name!r}")
    return _REGISTRY[name](space, seed=seed, **options)


def _import_builtin() -> None:
    # Importing the package registers the built-in strategies.
    import nascell.search.strategies  # noqa: F401


__all__ = ["Proposal", "SpaceExhausted", "Strategy", "available_strategies",
           "create_strategy", "register_strategy"]
