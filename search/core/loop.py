"""The search loop: ask the strategy, evaluate through an executor, tell rewards as they come.

    result = run_search(space, strategy, evaluator, "runs/nb201-reinforce", num_trials=500)
    result.best.spec, result.best.reward

Up to ``executor.parallelism`` trials are in flight at once; the strategy is told each reward
as soon as it arrives (asynchronous, as the paper's K replicas x m children), and asked for
``m`` new trials whenever the queue runs dry. Every state change goes to the run directory's
trial store first, so a run killed at any point resumes on the same directory:

* finished trials are never evaluated again, and their rewards are never lost;
* trials that were pending or running when the run died are evaluated again with the *same*
  decisions (not resampled), so nothing is counted twice;
* finished trials that the last strategy checkpoint had not seen are told again, in the order
  they finished, before anything new is asked;
* the strategy's dedupe ledger learns every architecture the store holds (`Strategy.remember`),
  so no architecture evaluated or in flight before the kill is proposed again.

A space with fewer new architectures than the trials asked for ends the search early: the
strategy raises `SpaceExhausted`, the loop logs why, finishes what is in flight, and the
result's ``exhausted`` says so.

A failed evaluation (an exception, a NaN reward, a lost worker) is recorded as failed with
reward 0 and its error text; the strategy is told 0 and the search goes on, unless the last
``max_consecutive_failures`` trials all failed (`nascell.search.core.failures`): then it stops with
`SearchFailedError`, quoting the first errors, and a rerun resumes it.

Trained weights an evaluator returns with a result (``EvalResult.weights``, from whichever
machine trained the child) are kept for the ``keep_weights`` best trials under
``run_dir/weights/`` (`nascell.search.rundir.weights`), crash-safe like the rest.

The loop calls the strategy's and the evaluator's hooks (`Strategy`, `Evaluator`: abstract
classes whose optional hooks are documented no-ops); it never probes them for attributes.
Before anything else, the evaluator's shared task (`Evaluator.shared_task`: ENAS' supernet and
its data, built once) is handed to the strategy (`Strategy.bind`), which trains it, and
`Strategy.before_evaluate` runs before each evaluation; the strategy's ``result_phase``, when
set, makes the best-trial files rank only the trials of that phase (ENAS' derived candidates).
docs/search.md follows a search from flags to export.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any, Dict, List, Optional, TextIO

from absl import logging

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.failures import DEFAULT_LIMIT, FailureStreak, all_failed_message
from nascell.search.core.progress import Progress, score_text
from nascell.search.core.space import SearchSpace
from nascell.search.core.strategy import SpaceExhausted, Strategy
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.executors.base import Executor
from nascell.search.executors.local import LocalExecutor
from nascell.search.rundir.run_dir import RunDir
from nascell.search.rundir.weights import DEFAULT_KEEP, WeightsKeeper


@dataclasses.dataclass
class SearchResult:
    """What a search produced (everything is also in the run directory)."""

    run_dir: str
    best: Optional[Trial]
    trials: List[Trial]
    num_done: int
    num_failed: int
    seconds: float
    resumed: bool
    #: set when the search stopped short of num_trials because the space has no new
    #: architecture left (every one was evaluated): the reason, else "".
    exhausted: str = ""

    @property
    def all_failed(self) -> bool:
        """True when trials finished and every one failed: the search found nothing (the
        trials' errors say why: ``trials[i].error``). `run_search` logs it as an error;
        ``nascell-search`` exits non-zero."""
        return self.num_failed > 0 and self.num_done == 0

    @property
    def best_reward(self) -> Optional[float]:
        return None if self.best is None else self.best.reward

    @property
    def best_spec(self) -> Any:
        return None if self.best is None else self.best.spec


def search_config(space: SearchSpace, strategy: Any, evaluator: Evaluator, m: int,
                  extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The run directory's config: what makes two searches the same search."""
    config = {"space": space.config(), "strategy": strategy.config(),
              "evaluator": evaluator.config(), "m": int(m)}
    if extra:
        config.update(extra)
    return config


def run_search(space: SearchSpace, strategy: Strategy, evaluator: Evaluator, run_dir: str,
               num_trials: int, executor: Optional[Executor] = None, m: int = 1,
               progress: bool = True, checkpoint_every: int = 1, top_k: int = 5,
               tensorboard: bool = True, extra_config: Optional[Dict[str, Any]] = None,
               progress_stream: Optional[TextIO] = None,
               max_consecutive_failures: Optional[int] = DEFAULT_LIMIT,
               keep_weights: int = DEFAULT_KEEP) -> SearchResult:
    """Run (or resume) a search until `num_trials` trials have finished.

    Args:
      space: the search space (its `config()` goes into the run config; its `decode` rebuilds
        the spec of a trial resumed from the store).
      strategy: a `nascell.search.core.strategy.Strategy`.
      evaluator: the `Evaluator` giving each trial its reward.
      run_dir: the run directory; created, or resumed if it holds this same search.
      num_trials: finished trials (done + failed) to reach, counting those of earlier runs.
      executor: where evaluations run; default an in-process `LocalExecutor`. A given
        executor is left running (the caller shuts it down); the default one is shut down.
      m: trials asked of the strategy at a time (the controller's batch).
      progress: print a progress line (done/total, failed, best, trials/min, ETA) to stderr.
      checkpoint_every: save the strategy after every this many tells (always at the end).
      top_k: how many best trials best/top_k.json keeps.
      tensorboard: write scalar summaries under run_dir/tensorboard, and one HParams
        session per finished trial under run_dir/tensorboard/trials/<id>.
      extra_config: more keys for the run config (compared on resume).
      max_consecutive_failures: stop with `SearchFailedError` once this many trials in a
        row have failed (None or 0: never).
      keep_weights: keep the trained weights of this many best trials (those the evaluator
        returns, ``EvalResult.weights``) under run_dir/weights (`nascell.search.rundir.weights`);
        0: keep none, and ask the evaluator not to return them.

    Returns:
      A `SearchResult`. When every trial failed, it is still returned (its ``all_failed`` is
      True, ``best`` None) and the first errors are logged with `absl.logging.error`.

    Raises:
      nascell.search.data.DataError: the evaluator's `Evaluator.check_data` found the data
        unusable for any architecture (a split too short for one batch, ...); raised before
        the run directory is created or resumed, so nothing is trained or written.
      nascell.search.rundir.run_dir.RunDirError: an unusable run directory (a different
        search, a corrupt file), before anything is evaluated.
      nascell.search.core.failures.SearchFailedError: the failure guard stopped the search.
    """
    for name, value in (("num_trials", num_trials), ("m", m),
                        ("checkpoint_every", checkpoint_every)):
        if int(value) <= 0:
            raise ValueError(f"Argument `{name}` must be a positive integer. Received: "
                             f"{name}={value!r}")
    num_trials, m = int(num_trials), int(m)
    if keep_weights is None or int(keep_weights) < 0:
        raise ValueError(f"Argument `keep_weights` must be a non-negative integer. Received: "
                         f"keep_weights={keep_weights!r}")
    if not isinstance(space, SearchSpace):
        raise TypeError(f"Argument `space` must be a nascell.search.SearchSpace (create_space, "
                        f"or your own from Categorical and friends). Received: space={space!r}")
    if not isinstance(strategy, Strategy):
        raise TypeError(f"Argument `strategy` must be a nascell.search.Strategy. Received: "
                        f"strategy={strategy!r}")
    if not isinstance(evaluator, Evaluator):
        raise TypeError(f"Argument `evaluator` must be a nascell.search.Evaluator (wrap a "
                        f"function in FunctionEvaluator). Received: evaluator={evaluator!r}")
    streak = FailureStreak(max_consecutive_failures)
    # Data every child would fail on stops the search here, before anything is written.
    evaluator.check_data()
    own_executor = executor is None
    if executor is None:
        executor = LocalExecutor()
    if evaluator.in_process_only and not executor.in_process:
        if own_executor:
            executor.shutdown()
        raise ValueError(f"Argument `executor` must evaluate in this process for the "
                         f"{evaluator.name or type(evaluator).__name__} evaluator (its "
                         f"strategy trains the same object between trials); received "
                         f"{type(executor).__name__} with parallelism {executor.parallelism}. "
                         "Use LocalExecutor(workers=1), the default.")
    strategy.bind(evaluator.shared_task(space))  # before the run directory restores it
    run = RunDir.open_or_create(run_dir, search_config(space, strategy, evaluator, m,
                                                       extra_config))
    evaluator.return_weights = int(keep_weights) > 0  # no time packing weights nobody keeps
    evaluator.save_run_files(run.path)  # what an export needs besides the config
    loop = _Loop(space, strategy, evaluator, run, num_trials, executor, m, checkpoint_every,
                 top_k, tensorboard,
                 Progress(num_trials, progress_stream or sys.stderr) if progress else None,
                 streak)
    loop.weights = WeightsKeeper(run.path, int(keep_weights), loop.result_phase)
    try:
        return loop.run()
    finally:
        if own_executor:
            executor.shutdown()
        run.close()


class _Loop:
    """The state of one `run_search` call."""

    def __init__(self, space, strategy, evaluator, run: RunDir, num_trials: int,
                 executor: Executor, m: int, checkpoint_every: int, top_k: int,
                 tensorboard: bool, progress: Optional[Progress], streak: FailureStreak):
        self.space, self.strategy, self.evaluator = space, strategy, evaluator
        self.run_dir, self.store = run, run.store
        self.num_trials, self.executor, self.m = num_trials, executor, m
        self.checkpoint_every, self.top_k = checkpoint_every, top_k
        self.tensorboard, self.progress = tensorboard, progress
        self.streak = streak
        self.result_phase = strategy.result_phase
        self.told_since_checkpoint: List[int] = []
        self.best_reward: Optional[float] = None
        self.best_score = ""  # the best trial's score_text, shown beside its reward
        self.in_flight: Dict[int, Trial] = {}
        self.started: Dict[int, float] = {}
        #: why no new trial can be asked (the space is exhausted), or "" while some can.
        self.exhausted = ""
        self.weights = WeightsKeeper(run.path, 0)  # run_search sets the real one

    # -- resume ----------------------------------------------------------------------------

    def _resume(self) -> List[Trial]:
        """Restore the strategy, re-tell what it missed; returns the trials to evaluate again."""
        self.weights.reconcile(self.store)  # kept weights in line with the store
        generation = self.run_dir.restore_strategy(self.strategy)
        # Trials the strategy asked for after its checkpoint are in the store: never reuse ids.
        self.strategy.next_trial_id = max(int(self.strategy.next_trial_id),
                                          self.store.max_trial_id() + 1)
        unfinished = self.store.unfinished()
        # the store knows what was evaluated: never propose it again
        self.strategy.remember(self.store.finished(), unfinished)
        retold = self.run_dir.untold_trials(generation)
        for trial in retold:
            self.strategy.tell(trial, float(trial.reward or 0.0))
        if retold:
            logging.info("re-told %d finished trials the strategy checkpoint had not seen",
                         len(retold))
            self.told_since_checkpoint.extend(t.trial_id for t in retold)
            self._checkpoint()
        for trial in unfinished:
            trial.spec = self._spec_of(trial)
            trial.status = TrialStatus.PENDING
        if unfinished:
            logging.info("evaluating again %d trials left unfinished by the last run: %s",
                         len(unfinished), [t.trial_id for t in unfinished][:20])
        best = self.store.best(1)
        self.best_reward = best[0].reward if best else None
        self.best_score = score_text(self.evaluator.score_metric,
                                     best[0].metrics if best else None)
        return unfinished

    def _spec_of(self, trial: Trial) -> Any:
        """The spec of a stored trial: decoded again from its decisions where the space can."""
        try:
            return self.space.decode(trial.decisions)
        except Exception as e:  # fall back to the stored spec
            logging.warning("trial %d: could not decode its decisions again (%s); using "
                            "the stored spec", trial.trial_id, e)
        return trial.spec

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> SearchResult:
        start = time.time()
        queue = self._resume()
        counts = self.store.counts()
        finished = counts["done"] + counts["failed"]
        failed = counts["failed"]
        if self.run_dir.resumed:
            logging.info("resuming %s: %d trials finished (%d failed), %d to evaluate again",
                         self.run_dir.path, finished, failed, len(queue))
        if self.progress:
            self.progress.start(finished, failed, self.best_reward, self.best_score)
        parallel = max(1, int(self.executor.parallelism))
        while finished < self.num_trials:
            while (len(self.in_flight) < parallel
                   and finished + len(self.in_flight) < self.num_trials):
                if not queue:
                    if self.exhausted:
                        break
                    n = min(self.m, self.num_trials - finished - len(self.in_flight))
                    queue = list(self._ask(n))
                    if not queue:
                        break
                self._submit(queue.pop(0))
            if not self.in_flight and self.exhausted:
                break
            if not self.in_flight:
                raise RuntimeError(f"{type(self.strategy).__name__}.ask returned no trials; "
                                   "the search cannot go on")
            for trial, result in self.executor.wait():
                if trial.trial_id not in self.in_flight:
                    logging.warning("trial %d finished twice; ignoring the second result",
                                    trial.trial_id)
                    continue
                own = self.in_flight.pop(trial.trial_id)
                finished += 1
                self._finish(own, result, step=finished)
                failed += int(own.status == TrialStatus.FAILED)
                if self.progress:
                    self.progress.update(finished, failed, self.best_reward,
                                         score=self.best_score)
                self.streak.record(own.trial_id, own.status == TrialStatus.FAILED, own.error)
                if self.streak.exceeded:
                    self._stop()
        if self.told_since_checkpoint:
            self._checkpoint()
        best = self.run_dir.update_best(self.top_k, self.result_phase)
        if self.progress:
            self.progress.close()
        trials = self.store.finished()
        trials.sort(key=lambda t: t.trial_id)
        result = SearchResult(
            run_dir=self.run_dir.path, best=best, trials=trials,
            num_done=sum(t.status == TrialStatus.DONE for t in trials),
            num_failed=sum(t.status == TrialStatus.FAILED for t in trials),
            seconds=time.time() - start, resumed=self.run_dir.resumed,
            exhausted=self.exhausted)
        if result.all_failed:
            logging.error("%s", all_failed_message(result.run_dir, trials))
        return result

    def _stop(self) -> None:
        """The failure guard tripped: save what the strategy learned, then stop."""
        if self.told_since_checkpoint:
            self._checkpoint()
        self.run_dir.update_best(self.top_k, self.result_phase)
        if self.progress:
            self.progress.close()
        raise self.streak.error(self.run_dir.path)

    def _ask(self, n: int) -> List[Trial]:
        try:
            trials = list(self.strategy.ask(n))
        except SpaceExhausted as e:
            self.exhausted = str(e)
            logging.warning("stopping the search before %d trials: %s", self.num_trials, e)
            return []
        for trial in trials:
            if trial.spec is None:
                trial.spec = self.space.decode(trial.decisions)
        ids = [t.trial_id for t in trials]
        if len(set(ids)) != len(ids):
            raise RuntimeError(f"{type(self.strategy).__name__}.ask returned duplicate trial "
                               f"ids {ids}")
        self.store.add(trials)  # first the store: a crash now re-evaluates these, same ids
        self._checkpoint()  # then the strategy, which has now asked them
        return trials

    def _submit(self, trial: Trial) -> None:
        self.store.mark_running(trial.trial_id)
        trial.status = TrialStatus.RUNNING
        self.in_flight[trial.trial_id] = trial
        self.started[trial.trial_id] = time.time()
        self.strategy.before_evaluate(trial)
        self.executor.submit(trial, self.evaluator)

    def _finish(self, trial: Trial, result: EvalResult, step: int) -> None:
        reward = result.reward
        if not result.failed and (reward is None or not math.isfinite(float(reward))):
            result = EvalResult.failure(f"non-finite reward {reward!r}", result.metrics,
                                        result.seconds)
        trial.metrics = dict(result.metrics or {})
        trial.timings = dict(trial.timings or {})
        trial.timings["evaluate"] = float(result.seconds or 0.0)
        trial.timings["wall"] = time.time() - self.started.pop(trial.trial_id, time.time())
        if result.failed:
            trial.status, trial.reward, trial.error = TrialStatus.FAILED, 0.0, result.error
            logging.warning("trial %d failed: %s", trial.trial_id,
                            (result.error or "").strip().splitlines()[0:1])
        else:
            trial.status, trial.reward, trial.error = TrialStatus.DONE, float(reward), None
        self.weights.offer(trial, result)  # its weights, if among the best (before the commit)
        self.store.finish(trial)  # committed: this trial is never evaluated again
        self.weights.prune()
        self.strategy.tell(trial, float(trial.reward))
        self.told_since_checkpoint.append(trial.trial_id)
        if len(self.told_since_checkpoint) >= self.checkpoint_every:
            self._checkpoint()
        improved = trial.status == TrialStatus.DONE and (
            self.best_reward is None or trial.reward > self.best_reward)
        if improved:
            self.best_reward = trial.reward
            self.best_score = score_text(self.evaluator.score_metric, trial.metrics)
            self.run_dir.update_best(self.top_k, self.result_phase)
        elif (self.top_k > 1 or self.result_phase) and trial.status == TrialStatus.DONE:
            self.run_dir.update_best(self.top_k, self.result_phase)
        if self.tensorboard:
            self._summaries(trial, step)

    def _checkpoint(self) -> None:
        self.run_dir.save_strategy(self.strategy, self.told_since_checkpoint)
        self.told_since_checkpoint = []

    def _summaries(self, trial: Trial, step: int) -> None:
        scalars: Dict[str, float] = {"trial/reward": float(trial.reward or 0.0),
                                     "trial/failed": float(trial.status == TrialStatus.FAILED),
                                     "trial/seconds": float(trial.timings.get("evaluate", 0.0))}
        if self.best_reward is not None:
            scalars["search/best_reward"] = float(self.best_reward)
        for key, value in (trial.meta or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scalars[f"strategy/{key}"] = float(value)
        # Strategy-provided scalars (REINFORCE: the last update's baseline, loss, ...).
        for key, value in self.strategy.summary_scalars().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scalars[f"strategy/{key}"] = float(value)
        for key, value in (trial.metrics or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                scalars[f"metrics/{key}"] = float(value)
        self.run_dir.write_scalars(step, scalars)
        self.run_dir.write_trial_summary(trial, self.space)  # its HParams session
