"""The evaluator interface: how a trial's architecture becomes a reward.

Strategies never train anything themselves; a search loop hands each trial to an evaluator
(through an executor) and tells the strategy the reward. A tabular benchmark, a real child
trainer on PTB or CIFAR-10, or a user's own function all implement this one interface.

Evaluators must be picklable (they are shipped to worker processes and Ray tasks), so keep
heavy state (datasets, models) out of ``__init__`` and build it lazily in ``evaluate``.

An evaluator that trains a model may return its trained weights with the result
(``EvalResult.weights``: file name -> bytes, `nascell.search.rundir.weights`), so they come home
from whichever machine trained them; the search loop keeps those of the best trials in the run
directory (`nascell.search.rundir.weights`) and sets ``return_weights`` to False when it keeps
none, so that no time is spent packing them.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple


@dataclasses.dataclass
class EvalResult:
    """What an evaluation produced. A failed evaluation has ``reward == 0.0`` and an error.

    ``weights``: the trained model as files (name -> bytes, `nascell.search.rundir.weights`), or
    None (a tabular benchmark, an evaluator asked not to, a failed child).
    """

    reward: float
    metrics: Dict[str, Any] = dataclasses.field(default_factory=dict)
    failed: bool = False
    error: Optional[str] = None
    seconds: float = 0.0
    weights: Optional[Dict[str, bytes]] = dataclasses.field(default=None, repr=False)

    @classmethod
    def failure(cls, error: str, metrics: Optional[Dict[str, Any]] = None,
                seconds: float = 0.0) -> "EvalResult":
        return cls(reward=0.0, metrics=dict(metrics or {}), failed=True, error=error,
                   seconds=seconds)


class Evaluator(abc.ABC):
    """Turns a trial's spec into a reward (higher is better).

    One abstract method, `evaluate`; the rest are optional hooks with documented defaults,
    which `run_search` and the export call (they never probe an evaluator for attributes).
    """

    #: the name the evaluator registry and the `--evaluator` flag know it by.
    name: str = ""
    #: whether `evaluate` should return the trained weights (``EvalResult.weights``), for
    #: evaluators that train a model; `run_search` sets it from its ``keep_weights``. Not part
    #: of `config` (keeping weights or not does not change the search).
    return_weights: bool = True
    #: whether evaluations must run in the search's own process (the strategy trains the
    #: evaluator's shared task between trials: ENAS); `run_search` refuses other executors.
    in_process_only: bool = False
    #: the key of ``EvalResult.metrics`` a user reads beside the reward (``"valid_ppl"``,
    #: ``"valid_acc"``): the progress line and `nascell-search`'s summary show the best trial's
    #: value of it. None: the reward alone.
    score_metric: Optional[str] = None

    @abc.abstractmethod
    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        """Evaluate one architecture. May raise; the caller records the error as a failure."""

    def check_data(self) -> None:
        """Check, once, before the first trial, what every child will train on: an optional
        hook, a no-op here (a benchmark table or a function has no data to check).

        `run_search` calls it before the run directory is created or resumed. An evaluator that
        trains children on data overrides it to load that data and raise
        `nascell.search.data.DataError` for a problem that does not depend on the
        architecture (a split too short for one batch, an empty class, a vocabulary over its
        cap), naming the split and the fix: the search then stops before it trains anything,
        instead of recording the same error as a failure of every trial.
        """
        return None  # an optional hook: nothing to check by default

    def config(self) -> Dict[str, Any]:
        """JSON-serializable settings, stored in the run directory and compared on resume."""
        return {"name": self.name}

    def resources(self) -> Dict[str, float]:
        """What one evaluation needs from an executor, e.g. {"num_cpus": 1, "num_gpus": 1}."""
        return {"num_cpus": 1}

    def save_run_files(self, run_dir: str) -> None:
        """Called by `run_search` once the run directory is open: write what an export needs
        besides the config (a text evaluator's vocabulary). Default: nothing."""
        return None

    def shared_task(self, space: Any) -> Any:
        """State the evaluator scores with and the strategy trains, built once and handed to
        the strategy by `run_search` (`nascell.search.core.strategy.Strategy.bind`): the ENAS
        supernet evaluator's supernet and data. Default: None (nothing shared)."""
        return None

    @classmethod
    def trained_weights(cls, record: Any, sizes: Dict[str, Any]) -> Optional[Tuple[Any, Dict]]:
        """After the search: trained weights of a trial the run kept no model of, rebuilt from
        what the evaluator left in the run directory, or None (the default: the export starts
        from a fresh initialization).

        Args:
          record: the trial, a `nascell.search.handover.ExportRecord` (its ``spec``,
            ``run_dir``, ``config``, ``metrics``).
          sizes: the sizes the export builds the layer at (``units``, ``input_shape``, ...).

        Returns:
          ``(a built Keras layer or a weights file path, provenance facts for
          metadata.json)``, or None.
        """
        return None


class FunctionEvaluator(Evaluator):
    """Wraps a plain ``fn(spec) -> float`` (or -> EvalResult) as an evaluator."""

    name = "function"

    def __init__(self, fn: Callable[[Any], Any], name: str = "function"):
        self.fn = fn
        self.name = name

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        out = self.fn(spec)
        return out if isinstance(out, EvalResult) else EvalResult(reward=float(out))
