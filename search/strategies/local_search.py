"""Local search (White, Nolen & Savani 2020): climb to the best neighbour, restart at a peak.

The simplest strategy that is state of the art on the NAS benchmarks at small budgets:

1. evaluate a uniformly random architecture; it is the *current* one;
2. evaluate every neighbour of the current architecture (one decision changed: a Categorical
   to another choice, or one skip candidate flipped; `nascell.search.core.dedupe.neighbours`), in
   random order;
3. move to the best of them if it beats the current one, and go to 2; otherwise the current
   architecture is a local optimum: restart at 1.

Neighbours evaluated before (reached from another architecture) are not evaluated again: their
known rewards count (the base class's ledger). With several trials in flight, a neighbourhood
is handed out as fast as it is asked for; when all of it is in flight, `propose` has nothing
and the base class proposes unseen neighbours of the best architectures (its dedupe fallback).

``order="predictor"`` is the predictor-guided variant: each neighbourhood is evaluated in the
order a Gaussian-process reward predictor fitted to every reward so far ranks it
(`nascell.search.strategies._predictor`), and the search moves at the first neighbour that
beats the current architecture (first improvement) instead of evaluating them all.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from nascell.search.core import dedupe
from nascell.search.core.strategy import Proposal, Strategy, register_strategy
from nascell.search.core.trial import Trial
from nascell.search.strategies import _common

ORDERS = ("random", "predictor")


@register_strategy
class LocalSearchStrategy(Strategy):
    """Best-improvement local search with random restarts; options ``order``, ``dedupe``."""

    name = "local_search"

    def __init__(self, space, seed: int = 0, order: str = "random",
                 dedupe: Optional[bool] = None, **options: Any):
        if options:
            raise ValueError(f"unknown local_search option(s) {sorted(options)}; known: "
                             "order, dedupe")
        if order not in ORDERS:
            raise ValueError(f"Argument `order` must be one of {ORDERS}. Received: "
                             f"order={order!r}")
        super().__init__(space, seed=seed, **_common.given(dedupe=dedupe),
                         **({} if order == "random" else {"order": order}))
        self.order = order
        self.rng = np.random.default_rng(seed)
        self.num_told = 0
        self.num_restarts = 0
        self.current: Optional[List[Any]] = None  # [key, reward] of the current architecture
        self.start: Optional[str] = None  # key of the random start in flight
        self.queue: List[str] = []  # neighbours of current not yet proposed
        self.waiting: List[str] = []  # neighbours proposed, reward not yet known
        self.results: Dict[str, float] = {}  # neighbour -> reward, for the current one
        self.history: List[List[Any]] = []  # [key, reward] of every told trial (predictor)
        self._predictor = None

    # --- propose -------------------------------------------------------------------------------

    def propose(self, n: int) -> List[Proposal]:
        out: List[Proposal] = []
        for _ in range(50 * n + 50):  # bounded: a nearly exhausted space may offer nothing
            if len(out) >= n:
                break
            if self.current is None:
                if self.start is not None:
                    break  # the start is in flight: nothing to climb from yet
                decisions = self.space.sample(self.rng, num_samples=self.next_trial_id)
                self.start = dedupe.arch_key(self.space, decisions)
                if self.start in self.ledger:  # an evaluated start: climb from it at once
                    self._begin(self.start, self.ledger.reward(self.start))
                    continue
                out.append(Proposal(decisions, {"origin": "start"}))
                continue
            if not self.queue:
                if self.waiting:
                    break  # the rest of the neighbourhood is in flight
                self._move()
                continue
            key = self.queue.pop(0)
            if key in self.ledger:  # reached before: its known reward counts, no trial
                if self.ledger.is_known(key):
                    self.results[key] = self.ledger.reward(key)
                else:
                    self.waiting.append(key)
                continue
            self.waiting.append(key)
            out.append(Proposal(dedupe.decisions_from_key(self.space, key),
                                {"origin": "neighbour", "current": self.current[0]}))
            if self.order == "predictor":
                break  # first improvement: one at a time, to move as soon as one is better
        return out

    def _begin(self, key: str, reward: float) -> None:
        """Make ``key`` the current architecture and queue its neighbourhood."""
        self.current, self.start = [key, float(reward)], None
        cands = [dedupe.arch_key(self.space, d) for d in
                 dedupe.neighbours(self.space, dedupe.decisions_from_key(self.space, key))]
        if self.order == "predictor" and len(self.history) >= 2:
            from nascell.search.strategies._predictor import GPPredictor
            if self._predictor is None:
                self._predictor = GPPredictor()  # kept: each fit extends the last one
            gp = self._predictor
            x = np.array([dedupe.flat_tokens(self.space, k) for k, _ in self.history])
            gp.fit(x, np.array([r for _, r in self.history]))
            rows = np.array([dedupe.flat_tokens(self.space, k) for k in cands])
            score = gp.acquisition(rows, "mean")
            cands = [cands[int(i)] for i in np.argsort(-score, kind="stable")]
        else:
            cands = [cands[int(i)] for i in self.rng.permutation(len(cands))]
        self.queue, self.waiting, self.results = cands, [], {}

    def _move(self) -> None:
        """The neighbourhood is done: climb to its best, or restart at a local optimum."""
        best = max(self.results.items(), key=lambda kr: kr[1], default=None)
        if best is not None and best[1] > self.current[1]:
            self._begin(*best)
        else:
            self.current, self.queue, self.waiting, self.results = None, [], [], {}
            self.num_restarts += 1

    # --- observe -------------------------------------------------------------------------------

    def observe(self, trial: Trial, reward: float) -> None:
        reward = _common.check_reward(reward)
        key = dedupe.arch_key(self.space, trial.decisions)
        self.num_told += 1
        if self.order == "predictor":
            self.history.append([key, reward])
        if key == self.start and self.current is None:
            self._begin(key, reward)
        elif key in self.waiting:
            self.waiting.remove(key)
            self.results[key] = reward
            if self.order == "predictor" and self.current and reward > self.current[1]:
                self._begin(key, reward)  # first improvement

    # --- state ---------------------------------------------------------------------------------

    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state.update({"rng": _common.rng_state(self.rng), "num_told": self.num_told,
                      "num_restarts": self.num_restarts, "current": self.current,
                      "start": self.start, "queue": list(self.queue),
                      "waiting": list(self.waiting), "results": dict(self.results),
                      "history": [list(h) for h in self.history]})
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        self.rng = _common.rng_from_state(state["rng"])
        self.num_told = int(state["num_told"])
        self.num_restarts = int(state["num_restarts"])
        self.current = None if state["current"] is None else list(state["current"])
        self.start = state["start"]
        self.queue, self.waiting = list(state["queue"]), list(state["waiting"])
        self.results = {k: float(v) for k, v in state["results"].items()}
        self.history = [list(h) for h in state.get("history", [])]
        self._predictor = None

