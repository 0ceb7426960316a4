"""Executors: sequential, process pool and Ray give the same results; lost workers count once."""

import builtins
import math
import os

import pytest
import runs_helpers as h

from nascell.search.core.evaluator import EvalResult, FunctionEvaluator
from nascell.search.core.loop import run_search
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.executors import (
    LocalExecutor,
    available_executors,
    create_executor,
    evaluate_trial,
)

HELPERS = os.path.dirname(os.path.abspath(__file__))


def _outcomes(result):
    return [(t.trial_id, t.decisions, t.status, t.reward) for t in result.trials]


def _search(run_dir, executor, evaluator=None, n=10):
    space = h.toy_space()
    return run_search(space, h.ToyRandomStrategy(space, seed=7),
                      evaluator or h.BusyEvaluator(), run_dir, num_trials=n, m=4,
                      executor=executor, progress=False)


def test_evaluate_trial_turns_every_failure_into_a_result():
    def boom(spec):
        raise ValueError("bad spec")
    r = evaluate_trial(FunctionEvaluator(boom), "x", 0)
    assert r.failed and r.reward == 0.0 and "ValueError: bad spec" in r.error
    r = evaluate_trial(FunctionEvaluator(lambda s: math.nan), "x", 0)
    assert r.failed and "non-finite" in r.error
    r = evaluate_trial(FunctionEvaluator(lambda s: EvalResult.failure("oom")), "x", 0)
    assert r.failed and r.error == "oom"
    r = evaluate_trial(FunctionEvaluator(lambda s: 0.25), "x", 0)
    assert not r.failed and r.reward == 0.25 and r.seconds >= 0


def test_registry():
    assert available_executors() == ["local", "ray"]
    assert isinstance(create_executor("local", workers=2), LocalExecutor)
    with pytest.raises(ValueError, match=r"Argument `name` must be a registered executor, one of "
                                         r"\['local', 'ray'\]\. Received: name='slurm'"):
        create_executor("slurm")
    with pytest.raises(ValueError, match=r"Argument `workers` must be >= 1\. Received: workers=0"):
        LocalExecutor(workers=0)


def test_ray_missing_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    from nascell.search.executors.ray_executor import import_ray
    with pytest.raises(ImportError, match=r"pip install nascell\[ray\]"):
        import_ray()


@pytest.mark.slow
def test_process_pool_matches_sequential(tmp_path):
    sequential = _search(str(tmp_path / "seq"), LocalExecutor())
    with LocalExecutor(workers=2) as pool:
        parallel = _search(str(tmp_path / "pool"), pool)
    assert _outcomes(parallel) == _outcomes(sequential)
    assert all(t.metrics["pid"] != os.getpid() for t in parallel.trials)
    assert all(t.metrics["pid"] == os.getpid() for t in sequential.trials)


@pytest.mark.slow
def test_process_pool_worker_death_is_retried_and_counted_once(tmp_path):
    marker = tmp_path / "markers"
    marker.mkdir()
    # One worker process (cheaper to restart than two); the search itself survives.
    with LocalExecutor(workers=1, processes=True, max_retries=1) as pool:
        result = _search(str(tmp_path / "run"), pool, h.DieOnceEvaluator(str(marker), (2,)), 4)
    assert [t.status for t in result.trials] == [TrialStatus.DONE] * 4
    assert [t.reward for t in result.trials] == [h.toy_reward(t.spec) for t in result.trials]
    attempts = [int(x) for x in (marker / "attempts.log").read_text().split()]
    assert attempts.count(2) == 2  # died once, ran again


@pytest.mark.slow
def test_process_pool_gives_up_after_max_retries(tmp_path):
    marker = tmp_path / "m"
    marker.mkdir()
    ex = LocalExecutor(workers=1, processes=True, max_retries=0)
    trial = Trial(0, {"a": 1, "b": 2}, "1-2")
    ex.submit(trial, h.DieOnceEvaluator(str(marker), (0,)))
    out = []
    while not out:
        out = ex.wait(timeout=30)
    ex.shutdown()
    assert out[0][0] is trial and out[0][1].failed and "worker process died" in out[0][1].error


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="the ray executor's tests need `pip install ray`")
    # Ray workers import the test helpers by module name.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [HELPERS] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    # Ray puts the driver's cwd on its workers' sys.path: start it from an empty folder so a
    # checkout's own nascell/ (no search/ inside; setup.py maps it) cannot shadow the install.
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray_cwd"))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
    finally:
        os.chdir(cwd)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_matches_sequential_and_retries_lost_workers(tmp_path, ray_cluster):
    from nascell.search.executors.ray_executor import RayExecutor
    sequential = _search(str(tmp_path / "seq"), LocalExecutor())
    ex = RayExecutor(max_in_flight=2)
    assert ex.parallelism == 2 and ex.resources()["num_cpus"] == 2
    distributed = _search(str(tmp_path / "ray"), ex)
    assert _outcomes(distributed) == _outcomes(sequential)
    # A task whose worker process dies on its first attempt is retried once, counted once.
    marker = tmp_path / "markers"
    marker.mkdir()
    lost = _search(str(tmp_path / "lost"), RayExecutor(max_in_flight=2, max_retries=1),
                   h.DieOnceEvaluator(str(marker), (1,)), n=4)
    assert [t.status for t in lost.trials] == [TrialStatus.DONE] * 4
    attempts = [int(x) for x in (marker / "attempts.log").read_text().split()]
    assert attempts.count(1) == 2 and sorted(set(attempts)) == [0, 1, 2, 3]
    # The Ray executor did not shut down a Ray it did not start.
    assert ray_cluster.is_initialized()
