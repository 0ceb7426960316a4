"""Parallel scaling of the search loop's executors: trials per hour with 1..N workers.

    python benchmarks/parallel_scaling.py                           # local: 1 and 2 workers
    python benchmarks/parallel_scaling.py --executor=ray --max_workers=4

Each trial is a deterministic, CPU-bound busy loop of fixed work (`--work` iterations of an
integer recurrence in pure Python; no sleeping, no I/O), so every configuration does exactly
the same computation and the ratio between them measures what the executor and the loop
cost: process start-up, pickling, the trial store's commits and strategy checkpoints, and
how well the workers overlap. Each configuration first runs a search of `workers` trials on a
fresh executor (reported as start-up: spawning workers that import nascell, and with it
TensorFlow), then the timed search of `--trials` trials on the warm executor.
Scaling efficiency = (rate with k workers / rate with 1) / k; 1.0 is perfect, and it cannot
exceed the machine's free cores / k.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from typing import Any, Dict, List

from absl import app, flags

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.loop import run_search
from nascell.search.core.space import Categorical, SearchSpace
from nascell.search.core.strategy import Proposal, Strategy
from nascell.search.core.trial import Trial
from nascell.search.executors import create_executor

FLAGS = flags.FLAGS
flags.DEFINE_enum("executor", "local", ["local", "ray"], "Executor to measure.")
flags.DEFINE_integer("max_workers", 2, "Measure 1..max_workers workers (local: 1 and "
                     "max_workers only when it is > 2).")
flags.DEFINE_integer("trials", 8, "Trials per configuration.")
flags.DEFINE_integer("work", 2_000_000, "Busy-loop iterations per trial.")
flags.DEFINE_string("out", None, "Also write the table as JSON here.")


class BusyEvaluator(Evaluator):
    """A fixed amount of pure-Python CPU work per trial; reward from the spec."""

    name = "busy"

    def __init__(self, work: int):
        self.work = int(work)

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "work": self.work}

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        cpu = time.process_time()
        acc = 0
        for i in range(self.work):
            acc = (acc * 31 + i) % 1_000_003
        return EvalResult(reward=(spec["a"] + 1) / 10.0,
                          metrics={"acc": acc, "cpu_seconds": time.process_time() - cpu})


class UniformStrategy(Strategy):
    """Uniform random sampling (kept here so the benchmark depends on nothing else)."""

    name = "uniform"

    def __init__(self, space: Any, seed: int = 0, **options: Any):
        super().__init__(space, seed=seed, **options)
        self.dedupe = False  # every proposal a trial: the measured runs' sequence

    def propose(self, n: int) -> List[Proposal]:
        return [Proposal({d.name: rng.choice(d.choices) for d in self.space.decisions})
                for rng in (random.Random(self.seed * 7919 + self.next_trial_id + i)
                            for i in range(n))]

    def observe(self, trial: Trial, reward: float) -> None:
        pass

    def get_state(self) -> Dict[str, Any]:
        return {"next_trial_id": self.next_trial_id}

    def set_state(self, state: Dict[str, Any]) -> None:
        self.next_trial_id = state["next_trial_id"]


def _search(executor, workers: int, run_dir: str, num_trials: int):
    space = SearchSpace("bench", [Categorical("a", list(range(10))),
                                  Categorical("b", list(range(10)))])
    return run_search(space, UniformStrategy(space, seed=0), BusyEvaluator(FLAGS.work),
                      run_dir, num_trials=num_trials, m=workers, executor=executor,
                      progress=False, tensorboard=False)


def measure(executor_name: str, workers: int, root: str) -> Dict[str, float]:
    """Cold: a fresh executor (worker start-up included). Warm: the same executor again."""
    if executor_name == "ray":
        executor = create_executor("ray", max_in_flight=workers)
    else:
        executor = create_executor("local", workers=workers)
    try:
        start = time.perf_counter()
        cold = _search(executor, workers, os.path.join(root, f"{executor_name}-{workers}-cold"),
                       workers)
        cold_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = _search(executor, workers, os.path.join(root, f"{executor_name}-{workers}"),
                         FLAGS.trials)
        seconds = time.perf_counter() - start
    finally:
        if executor_name == "local":
            executor.shutdown()
    assert result.num_done == FLAGS.trials and cold.num_done == workers, result
    evaluate = sum(t.timings["evaluate"] for t in result.trials) / len(result.trials)
    cpu = sum(t.metrics["cpu_seconds"] for t in result.trials) / len(result.trials)
    return {"workers": workers, "seconds": seconds, "startup_seconds": cold_seconds,
            "trials_per_hour": FLAGS.trials / seconds * 3600.0,
            "seconds_per_evaluation": evaluate, "cpu_seconds_per_evaluation": cpu}


def main(argv: List[str]) -> None:
    del argv
    if FLAGS.executor == "ray":
        import ray
        ray.init(num_cpus=FLAGS.max_workers, include_dashboard=False, log_to_driver=False)
        counts = list(range(1, FLAGS.max_workers + 1))
    else:
        counts = sorted({1, 2, FLAGS.max_workers})
    root = tempfile.mkdtemp(prefix="nascell-scaling-")
    rows = []
    try:
        for k in counts:
            rows.append(measure(FLAGS.executor, k, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0]["trials_per_hour"]
    print(f"executor={FLAGS.executor} trials={FLAGS.trials} work={FLAGS.work} "
          f"cpus={os.cpu_count()}")
    print(f"{'workers':>7} {'startup_s':>9} {'seconds':>8} {'trials/hour':>12} {'s/eval':>7} "
          f"{'cpu_s/eval':>10} {'speedup':>8} {'efficiency':>10}")
    for row in rows:
        speedup = row["trials_per_hour"] / base
        row["speedup"], row["efficiency"] = speedup, speedup / row["workers"]
        print(f"{row['workers']:>7} {row['startup_seconds']:>9.2f} {row['seconds']:>8.2f} "
              f"{row['trials_per_hour']:>12.0f} {row['seconds_per_evaluation']:>7.3f} "
              f"{row['cpu_seconds_per_evaluation']:>10.3f} {speedup:>8.2f} "
              f"{row['efficiency']:>10.2f}")
    print("startup_s: a first search of `workers` trials on the fresh executor (worker "
          "processes starting, imports); the timed search reuses the warm executor. "
          "s/eval is wall time inside the evaluator, cpu_s/eval its CPU time: a ratio well "
          "above 1 means other processes compete for the cores.")
    if FLAGS.out:
        with open(FLAGS.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
