"""ENAS (Pham et al., 2018) as a strategy: the ENAS controller behind ask/tell, and, bound to a
supernet evaluator, the whole weight-sharing schedule.

    space = create_space("enas_rnn")
    evaluator = create_evaluator("supernet", units=64)
    strategy = create_strategy("enas", space, epochs=10)
    run_search(space, strategy, evaluator, "runs/enas", num_trials=strategy.planned_trials())

It runs through the same loop, run directory, trial store and checkpoints as every strategy
(`nascell.search.core.loop.run_search`); the controller learns by the one REINFORCE update of
`ReinforceStrategy` (one step per ``m`` rewards). With a supernet (`run_search` hands the
`SupernetEvaluator`'s task to `bind`), each of ``epochs`` epochs is:

1. the shared phase: ``shared_steps`` SGD steps on the supernet's shared weights, each on the
   next training batch with one architecture sampled from the controller (the controller does
   not change); it runs when the epoch starts: before the first trial is scored, then as the
   previous epoch's last reward is told;
2. the controller phase: ``controller_steps`` REINFORCE updates, each on ``m`` trials, every
   trial scored by the evaluator on the next validation batch with the shared weights fixed.

Then the derive phase (ENAS' "deriving architectures"): ``derive_samples`` trials sampled from
the final controller and scored with the final shared weights on the evaluator's
``derive_batches`` validation batches; they do not train the controller. Their trials carry
``meta["phase"] = "derive"`` (the search's carry "search") and `result_phase` is "derive", so
the run's best-trial files hold the best derived architecture. A search of
``planned_trials() = epochs * controller_steps * m + derive_samples`` trials is one ENAS run;
more trials are more derive candidates.

The shared weights are saved with every strategy checkpoint (hard-linked when unchanged), so
a search killed at any point resumes like any other: the restored controller and supernet are
from the same checkpoint, and an epoch whose shared phase was lost is trained again first.

Controller settings (`ENAS_CONTROLLER_DEFAULTS`), from the paper unless noted: a one-layer
LSTM of 100 units, weights uniform in [-0.1, 0.1], Adam at 3.5e-4, sampling temperature 5,
tanh constant 2.5, entropy weight 1e-4 (a bonus in the REINFORCE objective, the same gradient
as ENAS' entropy-augmented reward up to the baseline), baseline decay 0.999 (the paper states
none), ``m = 4``. Any `ReinforceStrategy` option overrides them. docs/search.md has more.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from absl import logging

from nascell.search.core.strategy import register_strategy
from nascell.search.core.trial import Trial
from nascell.search.strategies import _common
from nascell.search.strategies.reinforce import ReinforceStrategy

ENAS_CONTROLLER_DEFAULTS: Dict[str, Any] = {
    "units": 100, "num_layers": 1, "init_range": 0.1, "learning_rate": 3.5e-4,
    "temperature": 5.0, "tanh_constant": 2.5, "entropy_weight": 1e-4, "baseline_decay": 0.999,
    "m": 4,
}
# The weight-sharing schedule (used once a supernet is bound).
ENAS_SCHEDULE_DEFAULTS: Dict[str, int] = {
    "epochs": 10, "shared_steps": 100, "controller_steps": 20, "derive_samples": 16,
}

SEARCH, DERIVE = "search", "derive"


@register_strategy
class ENASStrategy(ReinforceStrategy):
    """ask/tell over the ENAS controller; with a supernet, ENAS' alternating schedule.

    Options: the schedule (``epochs``, ``shared_steps``, ``controller_steps``,
    ``derive_samples``; `ENAS_SCHEDULE_DEFAULTS`) and `ReinforceStrategy`'s options, with
    ENAS' defaults (`ENAS_CONTROLLER_DEFAULTS`).
    """

    name = "enas"
    result_phase = DERIVE

    def __init__(self, space, seed: int = 0, **options: Any):
        if options.get("preset", "paper") != "paper":
            raise ValueError("Argument `preset` must be left out for the enas strategy (it has "
                             "its own defaults; pass controller options explicitly). Received: "
                             f"preset={options['preset']!r}")
        options.pop("preset", None)
        schedule = {}
        for key, default in ENAS_SCHEDULE_DEFAULTS.items():
            value = options.pop(key, default)
            minimum = 0 if key == "derive_samples" else 1
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
                    value < minimum:
                raise ValueError(f"Argument `{key}` must be an integer >= {minimum}. "
                                 f"Received: {key}={value!r}")
            schedule[key] = int(value)
        merged = {**ENAS_CONTROLLER_DEFAULTS, **options}
        super().__init__(space, seed=seed, **merged)
        # Record the controller settings (with ENAS' defaults) and the schedule, so a resume
        # compares both.
        self.options = {**merged, **schedule}
        self.schedule = schedule
        self.task = None  # the supernet task, once bound
        self.search_told = 0  # search-phase rewards told
        self.history: List[Dict[str, float]] = []  # one entry per finished epoch
        self.derive_queue: List[Dict[str, Any]] = []  # drawn derive candidates not yet asked
        self._epoch: Dict[str, List[float]] = {"reward": [], "metric": [], "entropy": []}
        self._phase_seconds = 0.0
        self._epoch_start = time.time()
        #: called with each finished epoch's statistics (progress lines, benchmarks)
        self.on_epoch: Optional[Callable[[Dict[str, float]], None]] = None

    # --- the schedule --------------------------------------------------------------------------

    @property
    def trials_per_epoch(self) -> int:
        return self.schedule["controller_steps"] * self.m

    @property
    def search_trials(self) -> int:
        """Trials of the search phase: ids below this are scored for the controller."""
        return self.schedule["epochs"] * self.trials_per_epoch

    def planned_trials(self) -> int:
        """Trials of one ENAS run: the search phase, then the derive candidates."""
        return self.search_trials + self.schedule["derive_samples"]

    @property
    def checkpoint_every(self) -> int:
        """Rewards between strategy checkpoints the strategy suggests to the loop: one per
        controller update (a reward told after a checkpoint is re-told from the store on
        resume, so nothing is lost; writing the checkpoint after every trial cost ~0.1 s of
        fsyncs per trial on a busy disk, more than scoring one)."""
        return self.m

    def phase_of(self, trial_id: int) -> str:
        return SEARCH if trial_id < self.search_trials else DERIVE

    def bind(self, shared_task: Any) -> None:
        """Train the supernet task a `SupernetEvaluator` scores with (its `shared_task`); with
        None (another evaluator) the strategy is plain ask/tell."""
        if shared_task is None:
            return
        self.task = shared_task
        self.task.derive_from = self.search_trials

    def before_evaluate(self, trial: Trial) -> None:
        """The shared weights are those of the epoch the search is in before anything is
        scored (a resumed run catches up before it scores anything)."""
        self._catch_up()

    def _due_epochs(self) -> int:
        """Shared phases the search should have run by now (the epoch it is in)."""
        return min(self.schedule["epochs"], self.search_told // self.trials_per_epoch + 1)

    def _catch_up(self) -> None:
        """Run the shared phase of every epoch that has started but not trained yet."""
        while self.task is not None and self.task.epochs_trained < self._due_epochs():
            start = self._epoch_start = time.time()
            specs = self._sample_specs(self.schedule["shared_steps"])
            loss = self.task.train_epoch(specs)
            self._phase_seconds = time.time() - start
            logging.info("ENAS epoch %d: shared phase of %d steps, mean train loss %.4g (%.1fs)",
                         self.task.epochs_trained, len(specs), loss, self._phase_seconds)

    def _sample_specs(self, n: int) -> list:
        """``n`` architectures from the controller, without making trials of them: one draw
        per shared step, as ENAS' code takes them (a single batched draw would be as good a
        sample; this keeps the sampling sequence, and so the results, of the measured runs in
        benchmarks/README.md)."""
        num = self.space.num_active(self.next_trial_id)
        specs = []
        for _ in range(n):
            row = self.controller.tokens_to_rows(self.controller.sample(1, num)["tokens"], num)[0]
            specs.append(self.space.decode(self.space.from_tokens(row)))
        return specs

    # --- ask / tell ----------------------------------------------------------------------------

    def ask(self, n: int = 1) -> List[Trial]:
        if n < 1:
            return []
        self._catch_up()
        if self.task is None:
            return super().ask(n)
        if self.next_trial_id < self.search_trials:
            epoch = self.next_trial_id // self.trials_per_epoch + 1
            trials = super().ask(min(n, self.search_trials - self.next_trial_id))
            for trial in trials:
                trial.meta.update({"phase": SEARCH, "epoch": epoch})
            return trials
        return self._derive_trials(n)

    def _derive_trials(self, n: int) -> List[Trial]:
        """The next ``n`` derive candidates. The first derive ask draws all
        ``derive_samples`` candidates at once from the final controller (ENAS samples them
        together); later asks take from them, then draw more if the search asks for more."""
        if not self.derive_queue:
            num = self.space.num_active(self.next_trial_id)
            out = self.controller.sample(max(n, self.schedule["derive_samples"]), num)
            self.derive_queue = [
                {"tokens": [int(x) for x in out["tokens"][k]], "num_decisions": num,
                 "log_prob": float(out["log_prob"][k]), "entropy": float(out["entropy"][k])}
                for k in range(len(out["tokens"]))]
        trials = []
        for entry in self.derive_queue[:n]:
            num = entry["num_decisions"]
            row = self.controller.tokens_to_rows([entry["tokens"]], num)[0]
            trials.append(_common.make_trial(self.space, self.next_trial_id,
                                             self.space.from_tokens(row),
                                             {"phase": DERIVE, **entry}))
            self.next_trial_id += 1
        self.derive_queue = self.derive_queue[n:]
        return trials

    def tell(self, trial: Trial, reward: float) -> None:
        if self.task is None:
            super().tell(trial, reward)
            return
        if self.phase_of(trial.trial_id) == DERIVE:
            return  # derive candidates are scored, not learned from
        super().tell(trial, reward)
        self.search_told += 1
        self._epoch["reward"].append(_common.check_reward(reward))
        metric = (trial.metrics or {}).get(self.task.metric_name)
        self._epoch["metric"].append(float("nan") if metric is None else float(metric))
        self._epoch["entropy"].append(float((trial.meta or {}).get("entropy", float("nan"))))
        if self.search_told % self.trials_per_epoch == 0:
            self._end_epoch()
            self._catch_up()  # the next epoch's shared phase, saved with this tell

    def _end_epoch(self) -> None:
        from nascell.search.enas.tasks import finite_mean
        stats = {"epoch": float(self.search_told // self.trials_per_epoch),
                 "train_loss": self.task.last_loss,
                 "reward": finite_mean(self._epoch["reward"]),
                 self.task.metric_name: finite_mean(self._epoch["metric"]),
                 "entropy": finite_mean(self._epoch["entropy"]),
                 "baseline": float(self.controller.baseline or 0.0),
                 "shared_seconds": self._phase_seconds,
                 "seconds": time.time() - self._epoch_start}
        if self.task.metric_name == "valid_ppl" and np.isfinite(stats["train_loss"]):
            stats["train_ppl"] = float(np.exp(min(stats["train_loss"], 50.0)))
        self.history.append({k: (v if np.isfinite(v) else None) for k, v in stats.items()})
        self._epoch = {"reward": [], "metric": [], "entropy": []}
        logging.info("ENAS epoch %d: %s", len(self.history), ", ".join(
            f"{k}={v:.4g}" for k, v in stats.items() if k != "epoch"))
        if self.on_epoch is not None:
            self.on_epoch(stats)

    def summary_scalars(self) -> Dict[str, float]:
        """The last REINFORCE update's statistics and the last epoch's (as ``epoch/...``)."""
        out = dict(self.last_stats)
        if self.history:
            out.update({f"epoch/{k}": v for k, v in self.history[-1].items() if v is not None})
        return out

    # --- state ---------------------------------------------------------------------------------

    def get_state(self, include_controller: bool = True) -> Dict[str, Any]:
        state = super().get_state(include_controller=include_controller)
        state["enas"] = {"search_told": self.search_told, "history": self.history,
                         "derive_queue": self.derive_queue,
                         "epoch": {k: [_json_float(v) for v in vs]
                                   for k, vs in self._epoch.items()}}
        return state

    def set_state(self, state: Dict[str, Any]) -> None:
        super().set_state(state)
        enas = state.get("enas") or {}
        self.search_told = int(enas.get("search_told", 0))
        self.history = [dict(h) for h in enas.get("history", [])]
        self.derive_queue = [dict(e) for e in enas.get("derive_queue", [])]
        self._epoch = {k: [float("nan") if v is None else float(v) for v in vs]
                       for k, vs in (enas.get("epoch") or {}).items()} or {
            "reward": [], "metric": [], "entropy": []}

    def save(self, directory: str) -> None:
        """The controller and counters (`ReinforceStrategy.save`), and the shared weights."""
        super().save(directory)
        if self.task is not None:
            self.task.save(directory)

    def restore(self, directory: str) -> bool:
        if not super().restore(directory):
            return False
        if self.task is not None and not self.task.restore(directory):
            if self.search_told or self.task.epochs_trained:
                raise ValueError(f"{directory} holds the ENAS controller but no shared "
                                 "weights (supernet.npz); the checkpoint is damaged")
        return True


def _json_float(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


def run_enas(space_name: str, run_dir: str, **kwargs: Any):
    """The weight-sharing ENAS search; see `nascell.search.enas.run_enas`."""
    from nascell.search.enas import run_enas as _run_enas
    return _run_enas(space_name, run_dir, **kwargs)


__all__ = ["ENASStrategy", "ENAS_CONTROLLER_DEFAULTS", "ENAS_SCHEDULE_DEFAULTS", "run_enas"]
