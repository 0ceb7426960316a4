"""`Oracle`: a KerasTuner oracle whose proposals come from any nascell search strategy.

KerasTuner drives the loop (`Tuner.search` asks the oracle for a trial, builds and trains the
model, reports the objective); this oracle turns each request into ``strategy.ask(1)`` and each
finished trial into ``strategy.tell(trial, reward)``.

* The search space is KerasTuner's: the oracle translates the `HyperParameters` it has
  collected (see `nascell.search.integrations.keras_tuner.hp_space` for the rule, Floats
  included). A Tuner
  builds the hypermodel once before searching, so the space is normally known at the first
  trial. Hyperparameters first declared later (in ``run_trial`` or ``HyperModel.fit``) run with
  their defaults until KerasTuner registers them at the end of that trial; the oracle then sees
  a different space, makes a fresh strategy over it (same name, options and seed) and tells it
  every trial finished so far (their values mapped onto the new space; a new hp takes its
  default), so nothing learned is lost except the old strategy's internal state.
* Reward. The strategy maximizes: a ``"max"`` objective's score is the reward, a ``"min"``
  objective's (a loss, KerasTuner's default objective, a multi-objective sum) is negated. A
  failed trial (KerasTuner's FAILED: it raised, or kept returning NaN through its retries) is
  told the lowest reward of the completed trials so far, so a failure never looks better than a
  result; failures before the first completed trial are told when it arrives. A trial that
  KerasTuner sends for a retry is told once, when it ends for good.
* Repeats. Like KerasTuner's own oracles, this one never runs the same hp values twice: when
  the strategy proposes values already tried, the strategy is told that trial's known reward (it
  learns from the sample; nothing is trained) and asked again, up to ``max_repeats`` times;
  then values are drawn uniformly at random among the untried ones; after 100 draws without a
  new one (or once every configuration has run) the search stops, as KerasTuner's do when the
  space is exhausted. A repeat of a trial still running is skipped without a tell.
* State. Everything the strategy needs to continue (``strategy.get_state()``: for ``reinforce``
  the controller's weights, optimizer and baseline) goes into KerasTuner's ``oracle.json`` with
  the oracle's own state, so a Tuner re-created with ``overwrite=False`` continues where the
  last one stopped. Reloading with a different strategy or options is refused.

Default strategy options (explicit ``strategy_options`` override them key by key): KerasTuner
budgets are tens of trials, so ``reinforce`` gets the library's default preset, ``guided`` (the
controller settings tuned for small budgets, see `nascell.search.strategies.reinforce`), and
``random`` and ``evolution`` get ``dedupe=True``; other strategies get their own defaults.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Optional

import keras_tuner as kt
import numpy as np
from absl import logging
from keras_tuner.engine import trial as kt_trial

from nascell.search.core.dedupe import SpaceExhausted
from nascell.search.core.space import Categorical, SearchSpace
from nascell.search.core.strategy import Strategy, available_strategies, create_strategy
from nascell.search.core.trial import Trial
from nascell.search.integrations.keras_tuner.hp_space import (
    FLOAT_POINTS,
    MAX_CHOICES,
    HPSpace,
    values_key,
)
from nascell.search.strategies.reinforce import DEFAULT_PRESET

DEFAULT_STRATEGY_OPTIONS: Dict[str, Dict[str, Any]] = {
    "reinforce": {"preset": DEFAULT_PRESET},
    "random": {"dedupe": True},
    "evolution": {"dedupe": True},
}

#: uniform draws tried for an untried configuration before the space counts as exhausted.
RANDOM_DRAWS = 100

_RUNNING = kt_trial.TrialStatus.RUNNING
_STOPPED = kt_trial.TrialStatus.STOPPED


class Oracle(kt.Oracle):
    """A KerasTuner oracle backed by a nascell strategy (``reinforce``, ``evolution``, ...).

    Example:

        tuner = kt.Tuner(
            oracle=nascell.search.keras_tuner.Oracle(
                "reinforce", objective="val_accuracy", max_trials=50),
            hypermodel=build_model, directory="tuning", project_name="run1")

    Args:
      strategy: a name from `nascell.search.available_strategies()`.
      objective, max_trials, seed, hyperparameters, allow_new_entries, tune_new_entries,
        max_retries_per_trial, max_consecutive_failed_trials: as for every KerasTuner oracle
        (``seed`` also seeds the strategy).
      strategy_options: keyword options of the strategy (e.g. ``{"population_size": 10}``),
        merged over `DEFAULT_STRATEGY_OPTIONS`.
      float_points: how many values a Float without ``step`` becomes (see `hp_space`).
      max_choices: the largest numeric grid kept whole (larger ones are thinned).
      max_repeats: proposals of already-tried values accepted per trial before drawing at
        random.
    """

    def __init__(self, strategy: str = "reinforce", objective: Any = None,
                 max_trials: Optional[int] = 10, *,
                 strategy_options: Optional[Dict[str, Any]] = None, seed: Optional[int] = None,
                 float_points: int = FLOAT_POINTS, max_choices: int = MAX_CHOICES,
                 max_repeats: int = 5, hyperparameters: Any = None,
                 allow_new_entries: bool = True, tune_new_entries: bool = True,
                 max_retries_per_trial: int = 0, max_consecutive_failed_trials: int = 3):
        names = available_strategies()
        if strategy not in names:
            raise ValueError(f"Argument `strategy` must be one of {names}. "
                             f"Received: strategy={strategy!r}")
        if strategy_options is not None and not isinstance(strategy_options, dict):
            raise ValueError("Argument `strategy_options` must be a dict of the strategy's "
                             f"options. Received: strategy_options={strategy_options!r}")
        for arg, value, low in (("float_points", float_points, 2),
                                ("max_choices", max_choices, 2), ("max_repeats", max_repeats, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"Argument `{arg}` must be an integer >= {low}. "
                                 f"Received: {arg}={value!r}")
        super().__init__(objective=objective, max_trials=max_trials,
                         hyperparameters=hyperparameters, allow_new_entries=allow_new_entries,
                         tune_new_entries=tune_new_entries, seed=seed,
                         max_retries_per_trial=max_retries_per_trial,
                         max_consecutive_failed_trials=max_consecutive_failed_trials)
        if seed is not None:  # KerasTuner reads a seed of 0 as "no seed"; nascell does not
            self.seed = self._seed_state = seed
        self.strategy_name = strategy
        # JSON round trip: what is compared with a reloaded project's options.
        self.strategy_options = json.loads(json.dumps(
            {**DEFAULT_STRATEGY_OPTIONS.get(strategy, {}), **(strategy_options or {})}))
        try:  # bad options fail here, not at the first trial (the real space comes later)
            create_strategy(strategy, SearchSpace("check", [Categorical("x", (0, 1))]),
                            **self.strategy_options)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Argument `strategy_options` does not suit strategy {strategy!r}: "
                             f"{e}. Received: strategy_options={strategy_options!r}") from e
        self.float_points = float_points
        self.max_choices = max_choices
        self.max_repeats = max_repeats
        #: the nascell strategy, made when the first trial is asked for (None: nothing to tune).
        self.strategy: Optional[Strategy] = None
        #: the nascell view of the KerasTuner space the strategy was made for.
        self.hp_space: Optional[HPSpace] = None
        self._live: Dict[str, Trial] = {}  # KerasTuner trial id -> strategy trial, not yet told
        self._told: set = set()  # KerasTuner trial ids told to the strategy

    # --- KerasTuner's hooks --------------------------------------------------------------------

    def populate_space(self, trial_id: str) -> Dict[str, Any]:
        """Values for a new trial: the strategy's proposal, never one tried before."""
        self._sync()
        if self.strategy is None:  # only Fixed hps (or none yet): one configuration
            if self.trials:
                return {"status": _STOPPED, "values": None}
            return {"status": _RUNNING, "values": self.hp_space.values({})}
        tried = self._tried()
        total = self.hp_space.num_configurations()
        if total is not None and len(tried) >= total:
            logging.info("nascell oracle: all %d configurations have been tried; stopping", total)
            return {"status": _STOPPED, "values": None}
        for _ in range(self.max_repeats):
            try:
                trial = self.strategy.ask(1)[0]
            except SpaceExhausted:
                # The strategy has proposed every architecture of its space, but conditional
                # hyperparameters can make two of them the same values: look for untried ones.
                break
            values = self.hp_space.values(trial.decisions)
            key = values_key(values)
            if key not in tried:
                self._live[trial_id] = trial
                return {"status": _RUNNING, "values": values}
            if tried[key] is not None:  # a repeat: learn its known reward, ask again
                self.strategy.tell(trial, tried[key])
        rng = np.random.default_rng([self.seed, len(self.trials)])
        for _ in range(RANDOM_DRAWS):
            decisions = self.hp_space.space.sample(rng)
            values = self.hp_space.values(decisions)
            if values_key(values) not in tried:
                logging.info("nascell oracle: the %s strategy repeated tried values %d times; "
                             "trial %s has random values", self.strategy_name, self.max_repeats,
                             trial_id)
                self._live[trial_id] = _foreign_trial(trial_id, decisions)
                return {"status": _RUNNING, "values": values}
        logging.info("nascell oracle: no untried values found; the space looks exhausted")
        return {"status": _STOPPED, "values": None}

    @kt.synchronized
    def end_trial(self, trial: Any) -> None:
        """KerasTuner's bookkeeping, then the reward goes to the strategy and is saved."""
        super().end_trial(trial)
        self._sync()
        self._catch_up()
        self.save()

    def get_state(self) -> Dict[str, Any]:
        state = super().get_state()
        state["nascell"] = {
            "strategy": self.strategy_name, "options": self.strategy_options,
            "signature": None if self.hp_space is None else self.hp_space.signature,
            "state": None if self.strategy is None else self.strategy.get_state(),
            "live": {tid: {"trial_id": t.trial_id, "decisions": t.decisions, "meta": t.meta}
                     for tid, t in self._live.items()},
            "told": sorted(self._told)}
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        self.strategy, self.hp_space, self._live, self._told = None, None, {}, set()
        saved = state.get("nascell")
        if saved is None:
            logging.warning("nascell oracle: the project holds no nascell strategy state (it was "
                            "searched by another oracle); the %s strategy starts fresh and "
                            "learns from its %d finished trials", self.strategy_name,
                            len(self.end_order))
            return
        if (saved["strategy"], saved["options"]) != (self.strategy_name, self.strategy_options):
            raise ValueError(
                f"The KerasTuner project was searched with strategy {saved['strategy']!r} and "
                f"options {saved['options']}; this oracle has strategy {self.strategy_name!r} "
                f"and options {self.strategy_options}. Use the same strategy and "
                "strategy_options to continue it, or another `project_name` (or "
                "`overwrite=True`) for a new search.")
        hp_space = self._new_hp_space()
        if hp_space.signature != saved["signature"] or hp_space.space is None:
            return  # the space differs (e.g. other float_points): `_sync` replays the trials
        self.hp_space = hp_space
        self.strategy = create_strategy(self.strategy_name, hp_space.space, seed=self.seed,
                                        **self.strategy_options)
        self.strategy.set_state(saved["state"])
        self._live = {tid: Trial(trial_id=t["trial_id"], decisions=hp_space.space.check(
            t["decisions"]), spec=t["decisions"], meta=t["meta"])
            for tid, t in saved["live"].items()}
        self._told = set(saved["told"])

    # --- the strategy's side -------------------------------------------------------------------

    def _new_hp_space(self) -> HPSpace:
        return HPSpace(self.hyperparameters, float_points=self.float_points,
                       max_choices=self.max_choices)

    def _sync(self) -> None:
        """Make the strategy for the current KerasTuner space (again, if the space changed)."""
        hp_space = self._new_hp_space()
        if self.hp_space is not None and hp_space.signature == self.hp_space.signature:
            return
        if self.strategy is not None or self.end_order:
            logging.info("nascell oracle: the search space has %d tunable hyperparameters now; "
                         "a fresh %s strategy learns from the %d finished trials",
                         len(hp_space.signature), self.strategy_name, len(self.end_order))
        self.hp_space, self.strategy, self._live, self._told = hp_space, None, {}, set()
        if hp_space.space is not None:
            self.strategy = create_strategy(self.strategy_name, hp_space.space, seed=self.seed,
                                            **self.strategy_options)
            self._catch_up()

    def _catch_up(self) -> None:
        """Tell the strategy every ended trial it has not been told, in the order they ended."""
        if self.strategy is None:
            return
        worst = self._worst()
        for tid in self.end_order:
            if tid in self._told:
                continue
            reward = self._reward(self.trials[tid], worst)
            if reward is None:  # a failure before any completed trial: told later
                continue
            trial = self._live.pop(tid, None)
            if trial is None:  # asked of an earlier strategy, or values chosen by the user
                decisions = self.hp_space.decisions(self.trials[tid].hyperparameters.values)
                trial = _foreign_trial(tid, decisions)
            self.strategy.tell(trial, reward)
            self._told.add(tid)

    def _sign(self) -> float:
        return 1.0 if self.objective.direction == "max" else -1.0

    def _worst(self) -> Optional[float]:
        rewards = [self._sign() * t.score for t in self.trials.values()
                   if t.status == kt_trial.TrialStatus.COMPLETED and _finite(t.score)]
        return min(rewards) if rewards else None

    def _reward(self, trial: Any, worst: Optional[float]) -> Optional[float]:
        """The reward of an ended trial; None while it has none (running, or failed too soon)."""
        if trial.status == kt_trial.TrialStatus.COMPLETED and _finite(trial.score):
            return self._sign() * float(trial.score)
        if trial.status in (kt_trial.TrialStatus.COMPLETED, kt_trial.TrialStatus.FAILED):
            return worst
        return None

    def _tried(self) -> Dict[str, Optional[float]]:
        """Values key -> reward of every trial so far (None: running, or no reward yet).

        Keys are taken in the current space: a trial that ran before an hp was declared ran
        with its default, so it counts as the configuration with that default."""
        worst, out = self._worst(), {}
        for t in self.trials.values():
            key = self.hp_space.key(t.hyperparameters.values)
            if out.get(key) is None:
                out[key] = self._reward(t, worst)
        return out


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(float(x))


def _foreign_trial(kt_trial_id: str, decisions: Dict[str, Any]) -> Trial:
    """A trial the strategy did not propose; negative ids never clash with the strategy's."""
    number = int(kt_trial_id) if str(kt_trial_id).isdigit() else abs(hash(kt_trial_id))
    return Trial(trial_id=-1 - number, decisions=decisions, spec=decisions)
