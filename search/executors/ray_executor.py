"""The Ray executor: each evaluation is a Ray task, so children run across a cluster.

    executor = RayExecutor(address="auto")        # an existing cluster (`ray start --head`)
    executor = RayExecutor(num_cpus=8)            # a local Ray instance

Each task asks Ray for the evaluator's `Evaluator.resources()` (``num_cpus``, ``num_gpus``,
custom resources), so a GPU child lands on a GPU node and Ray's scheduler does the packing.
Results are consumed as they arrive (``ray.wait``), so the strategy learns asynchronously. A
worker lost mid-trial (a node gone, a process killed) is retried by Ray up to `max_retries`
times, on the same task (one object ref per trial): the result of a trial is returned once,
whatever happened, and a trial id can be in flight only once. ``max_tasks_per_worker=N``
makes Ray replace a worker process after N evaluations (Ray's ``max_calls``), returning what
the children left in native memory to the system.
Ray is an optional dependency: ``pip install nascell[ray]``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set

from absl import logging

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.trial import Trial
from nascell.search.executors.base import Executor, Finished, evaluate_trial


def import_ray():
    """`ray`, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"the ray executor needs Ray ({e}); install it with "
                          "`pip install nascell[ray]` (or `pip install ray`), or use "
                          "--executor=local") from None
    return ray


_REMOTE: Dict[Optional[int], Any] = {}


def _remote_evaluate(ray, max_calls: Optional[int] = None):
    """The remote evaluation function, declared with ``max_calls`` when given: Ray takes
    ``max_calls`` only where a function is declared (``.options(max_calls=...)`` raises
    "Setting 'max_calls' is not supported in '.options()'" in current Ray)."""
    if max_calls not in _REMOTE:
        _REMOTE[max_calls] = (ray.remote(evaluate_trial) if max_calls is None
                              else ray.remote(max_calls=int(max_calls))(evaluate_trial))
    return _REMOTE[max_calls]


class RayExecutor(Executor):
    """Runs each evaluation as a Ray task.

    Args:
      address: the cluster to join ("auto", "ray://host:10001", ...); None starts a local
        Ray instance (or uses the one `ray.init` already started in this process).
      num_cpus: CPUs for a local instance (None: all of this machine's).
      max_in_flight: trials kept in flight; None: the cluster's CPUs divided by what one
        evaluation asks for (at least 1).
      max_retries: how many times Ray re-runs a task whose worker died.
      max_tasks_per_worker: a Ray worker process exits after this many evaluations and Ray
        starts a fresh one (``max_calls``); None: workers are reused for the whole search
        (GPU children too: the function is declared without GPUs, which each task asks for
        through ``.options``, so Ray's one-call default for GPU functions does not apply).
    """

    name = "ray"

    def __init__(self, address: Optional[str] = None, num_cpus: Optional[int] = None,
                 max_in_flight: Optional[int] = None, max_retries: int = 1,
                 max_tasks_per_worker: Optional[int] = None):
        if max_tasks_per_worker is not None and int(max_tasks_per_worker) < 1:
            raise ValueError(f"Argument `max_tasks_per_worker` must be >= 1 (or None). "
                             f"Received: max_tasks_per_worker={max_tasks_per_worker}")
        self._ray = import_ray()
        self.max_tasks_per_worker = (None if max_tasks_per_worker is None
                                     else int(max_tasks_per_worker))
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = int(max_retries)
        self._max_in_flight = max_in_flight
        self._started_ray = False
        self._refs: Dict[Any, Trial] = {}  # one ref per submitted trial, until it returns
        self._per_task_cpus = 1.0

    def _init(self) -> None:
        ray = self._ray
        if not ray.is_initialized():
            import _nascell_launch as _quiet
            kwargs: Dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                                      **_quiet.ray_init_options()}
            if self.address is not None:
                kwargs["address"] = self.address
            elif self.num_cpus is not None:
                kwargs["num_cpus"] = int(self.num_cpus)
            ray.init(**kwargs)
            self._started_ray = True

    @property
    def parallelism(self) -> int:
        if self._max_in_flight is not None:
            return int(self._max_in_flight)
        self._init()
        cpus = self._ray.cluster_resources().get("CPU", 1.0)
        return max(1, int(cpus // max(self._per_task_cpus, 1e-9)))

    @property
    def num_in_flight(self) -> int:
        return len(self._refs)

    def resources(self) -> Dict[str, float]:
        self._init()
        names = {"CPU": "num_cpus", "GPU": "num_gpus"}
        return {names.get(k, k): v for k, v in self._ray.cluster_resources().items()}

    def submit(self, trial: Trial, evaluator: Evaluator) -> None:
        self._init()
        if any(t.trial_id == trial.trial_id for t in self._refs.values()):
            raise ValueError(f"trial {trial.trial_id} is already in flight; submit it once")
        options = _task_options(evaluator.resources())
        self._per_task_cpus = options.get("num_cpus", 1.0) or 1e-9
        remote = _remote_evaluate(self._ray, self.max_tasks_per_worker)
        task = remote.options(max_retries=self.max_retries, retry_exceptions=False, **options)
        self._refs[task.remote(evaluator, trial.spec, trial.trial_id)] = trial

    def wait(self, timeout: Optional[float] = None) -> List[Finished]:
        if not self._refs:
            return []
        ray = self._ray
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is ready too
            ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        out: List[Finished] = []
        seen: Set[int] = set()
        for ref in ready:
            trial = self._refs.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # the worker died more than max_retries times, ...
                logging.warning("trial %d: Ray task failed: %s", trial.trial_id, e)
                result = EvalResult.failure(f"Ray task failed after {self.max_retries} "
                                            f"retries: {type(e).__name__}: {e}")
            if trial.trial_id in seen:
                logging.warning("trial %d came back twice; counting it once", trial.trial_id)
                continue
            seen.add(trial.trial_id)
            out.append((trial, result))
        return out

    def shutdown(self) -> None:
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished or gone
                pass
        self._refs.clear()
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()
            self._started_ray = False


def _task_options(resources: Dict[str, float]) -> Dict[str, Any]:
    """Evaluator.resources() as Ray task options (num_cpus, num_gpus, memory, custom)."""
    options: Dict[str, Any] = {}
    custom: Dict[str, float] = {}
    for key, value in (resources or {}).items():
        if key in ("num_cpus", "num_gpus", "memory"):
            options[key] = value
        else:
            custom[key] = float(value)
    if custom:
        options["resources"] = custom
    options.setdefault("num_cpus", 1)
    return options
