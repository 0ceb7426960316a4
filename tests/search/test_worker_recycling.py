"""Worker recycling (`max_tasks_per_worker`): a long search returns its children's native
memory to the system by replacing worker processes every N trials."""

import os

import pytest
import runs_helpers as h

from nascell.search.core.trial import Trial
from nascell.search.executors import LocalExecutor, RayExecutor


def _pids(executor, n):
    pids = []
    for i in range(n):
        executor.submit(Trial(trial_id=i, decisions={}, spec=f"{i % 3}-0"),
                        h.BusyEvaluator(work=10))
        (_, result), = executor.wait()
        assert not result.failed, result.error
        pids.append(result.metrics["pid"])
    return pids


@pytest.mark.slow
def test_max_tasks_per_worker_replaces_the_worker_process():
    with LocalExecutor(max_tasks_per_worker=2) as pool:  # implies a worker process
        assert pool.processes
        pids = _pids(pool, 3)  # two worker processes (each start imports the package)
    assert os.getpid() not in pids
    assert pids[0] == pids[1] != pids[2]  # two trials per worker process, then a new one


def test_max_tasks_per_worker_is_validated():
    with pytest.raises(ValueError, match=r"Argument `max_tasks_per_worker` must be >= 1 .* "
                       r"Received: max_tasks_per_worker=0"):
        LocalExecutor(max_tasks_per_worker=0)
    with pytest.raises(ValueError, match="needs processes=True"):
        LocalExecutor(max_tasks_per_worker=3, processes=False)
    assert LocalExecutor().max_tasks_per_worker is None and not LocalExecutor().processes


def test_ray_executor_passes_max_calls(monkeypatch):
    ray = pytest.importorskip("ray")
    seen = {}

    class Task:
        def options(self, **options):
            seen.update(options)
            return self

        def remote(self, *args):
            return object()

    from nascell.search.executors import ray_executor

    def remote_evaluate(ray, max_calls=None):
        seen["declared_max_calls"] = max_calls
        return Task()

    monkeypatch.setattr(ray_executor, "_remote_evaluate", remote_evaluate)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    executor = RayExecutor(max_tasks_per_worker=5)
    executor.submit(Trial(trial_id=1, decisions={}, spec="0-0"), h.BusyEvaluator())
    assert seen["declared_max_calls"] == 5 and "max_calls" not in seen
    with pytest.raises(ValueError, match=r"Argument `max_tasks_per_worker` must be >= 1 .* "
                       r"Received: max_tasks_per_worker=0"):
        RayExecutor(max_tasks_per_worker=0)


def test_ray_accepts_the_task_options_it_is_given():
    """Real Ray objects (no cluster needed): ``max_calls`` goes where Ray takes it."""
    ray = pytest.importorskip("ray")
    from nascell.search.executors import ray_executor
    options = ray_executor._task_options({"num_cpus": 1, "num_gpus": 1})
    for max_calls in (None, 3):
        remote = ray_executor._remote_evaluate(ray, max_calls)
        remote.options(max_retries=1, retry_exceptions=False, **options)  # raises if refused
        assert remote._default_options.get("max_calls") == max_calls
