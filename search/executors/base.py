"""The executor interface: where and how trials are evaluated.

A search loop submits trials and collects ``(trial, EvalResult)`` pairs as they finish, in
whatever order they finish; it keeps up to `Executor.parallelism` trials in flight. An
executor never raises for a failed evaluation: an exception in the evaluator, a non-finite
reward or a lost worker comes back as a failed `EvalResult` with the error text, so one bad
child never stops a search.
"""

from __future__ import annotations

import abc
import math
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.trial import Trial

Finished = Tuple[Trial, EvalResult]


def evaluate_trial(evaluator: Evaluator, spec: Any, trial_id: int) -> EvalResult:
    """Run one evaluation and turn every way it can fail into a failed `EvalResult`.

    A module-level function, so process pools and Ray can ship it to workers.
    """
    start = time.perf_counter()
    try:
        result = evaluator.evaluate(spec, trial_id=trial_id)
    except Exception as e:  # the search goes on; the error is recorded with the trial
        tb = traceback.format_exc(limit=6)
        return EvalResult.failure(f"{type(e).__name__}: {e}\n{tb}",
                                  seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if not isinstance(result, EvalResult):
        try:
            result = EvalResult(reward=float(result))
        except (TypeError, ValueError):
            return EvalResult.failure(
                f"{type(evaluator).__name__}.evaluate returned {type(result).__name__}; "
                "return an EvalResult or a number", seconds=seconds)
    if not result.seconds:
        result.seconds = seconds
    if result.failed:
        result.reward = 0.0
        result.error = result.error or "the evaluator reported a failure without a message"
        return result
    try:
        reward = float(result.reward)
    except (TypeError, ValueError):
        reward = float("nan")
    if not math.isfinite(reward):
        return EvalResult.failure(f"non-finite reward {result.reward!r} (NaN or inf loss?)",
                                  metrics=result.metrics, seconds=result.seconds)
    result.reward = reward
    return result


class Executor(abc.ABC):
    """Runs evaluations; `submit` hands a trial over, `wait` collects finished ones."""

    #: registry name (``--executor``).
    name: str = ""

    @property
    @abc.abstractmethod
    def parallelism(self) -> int:
        """How many trials the loop should keep in flight."""

    @property
    def in_process(self) -> bool:
        """Whether evaluations run in the calling process, on the evaluator object itself
        (not a copy): what an evaluator that shares state with its strategy needs."""
        return False

    @abc.abstractmethod
    def submit(self, trial: Trial, evaluator: Evaluator) -> None:
        """Start evaluating `trial.spec` with `evaluator` (returns at once)."""

    @abc.abstractmethod
    def wait(self, timeout: Optional[float] = None) -> List[Finished]:
        """Block until at least one submitted trial finishes (or `timeout` seconds pass);
        return every finished (trial, result) pair not returned before, each trial once."""

    def poll(self) -> List[Finished]:
        """The trials finished so far, without blocking."""
        return self.wait(timeout=0)

    @property
    @abc.abstractmethod
    def num_in_flight(self) -> int:
        """Submitted trials whose results have not been returned yet."""

    def shutdown(self) -> None:
        """Release workers; in-flight evaluations are abandoned (a resumed run redoes them)."""
        return None

    def resources(self) -> Dict[str, float]:
        """What this executor has to hand out (e.g. {"num_cpus": 4, "num_gpus": 1})."""
        return {}

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
