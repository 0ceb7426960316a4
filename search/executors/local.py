"""Local executors: in-process and sequential (the default), or a pool of worker processes.

With ``workers > 1`` each trial runs in one of ``workers`` processes started with the *spawn*
method (TensorFlow is not fork-safe), each evaluating one trial at a time; the evaluator is
pickled to the worker with each trial, so keep heavy state out of its ``__init__``. A worker
that dies mid-trial (killed, out of memory, a crash in native code) breaks the pool: the pool
is rebuilt and the trials that were in flight are submitted again, up to `max_retries` times
each, after which the trial is recorded as failed. Workers end with the search process, even
when it is killed with SIGKILL, so a resumed run never races an orphan for the same trial. Each
worker's first code is `_nascell_launch.worker_setup`, so the workers of a quiet binary import
TensorFlow as quietly as the binary did.

``max_tasks_per_worker=N`` replaces each worker process after it has evaluated N trials
(`concurrent.futures.ProcessPoolExecutor`'s ``max_tasks_per_child``): whatever a child leaves
behind in native memory (TensorFlow runtime state that `keras.backend.clear_session` does not
reach) is returned to the system, so a long search cannot grow without bound. It costs a
fresh interpreter and TensorFlow import (a few seconds) every N trials.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Deque, Dict, List, Optional, Tuple

from absl import logging

import _nascell_launch
from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.trial import Trial
from nascell.search.executors.base import Executor, Finished, evaluate_trial

# The workers' initializer, run by `_nascell_launch.worker_setup` after it has imported
# TensorFlow (quietly in a quiet binary's worker): named, not pickled, so that the worker's
# first import is not this module (which imports nascell, hence TensorFlow).
_DIE_WITH_PARENT = f"{__name__}:_die_with_parent"


def _die_with_parent() -> None:
    """Worker initializer: end this worker when the search process dies, even by SIGKILL,
    so no orphaned child keeps training (and holding a GPU) after a crash. Linux uses the
    kernel's parent-death signal; elsewhere a watchdog thread polls the parent's pid."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, name="nascell-parent-watchdog", daemon=True).start()


class LocalExecutor(Executor):
    """Evaluates trials on this machine.

    Args:
      workers: how many trials run at once. 1 (without `processes`) evaluates in the calling
        process, in `wait`, one trial at a time (no concurrency, no pickling: the simplest
        and the easiest to debug). More starts a pool of that many spawned worker processes.
      max_retries: how many times a trial whose worker process died is submitted again.
      processes: run even a single worker in its own process (so a child that crashes the
        interpreter, e.g. in native code, cannot take the search down). Default: workers > 1,
        or `max_tasks_per_worker` set.
      max_tasks_per_worker: replace a worker process after it has evaluated this many trials
        (None: keep workers for the whole search). Needs worker processes.
    """

    name = "local"

    def __init__(self, workers: int = 1, max_retries: int = 1,
                 processes: Optional[bool] = None,
                 max_tasks_per_worker: Optional[int] = None):
        if int(workers) < 1:
            raise ValueError(f"Argument `workers` must be >= 1. Received: workers={workers}")
        if max_tasks_per_worker is not None and int(max_tasks_per_worker) < 1:
            raise ValueError(f"Argument `max_tasks_per_worker` must be >= 1 (or None to keep "
                             f"workers). Received: max_tasks_per_worker={max_tasks_per_worker}")
        if max_tasks_per_worker is not None and processes is False:
            raise ValueError("LocalExecutor: max_tasks_per_worker recycles worker processes; "
                             "it needs processes=True (or leave processes unset)")
        self.workers = int(workers)
        self.max_retries = int(max_retries)
        self.max_tasks_per_worker = (None if max_tasks_per_worker is None
                                     else int(max_tasks_per_worker))
        if processes is None:
            processes = self.workers > 1 or self.max_tasks_per_worker is not None
        self.processes = bool(processes)
        self._queue: Deque[Tuple[Trial, Evaluator]] = collections.deque()
        self._pool: Optional[cf.ProcessPoolExecutor] = None
        self._futures: Dict[cf.Future, Tuple[Trial, Evaluator]] = {}
        self._retries: Dict[int, int] = collections.defaultdict(int)
        self._ready: List[Finished] = []

    @property
    def parallelism(self) -> int:
        return self.workers

    @property
    def in_process(self) -> bool:
        return not self.processes

    @property
    def num_in_flight(self) -> int:
        return len(self._queue) + len(self._futures) + len(self._ready)

    def resources(self) -> Dict[str, float]:
        return {"num_cpus": float(multiprocessing.cpu_count()), "workers": float(self.workers)}

    def submit(self, trial: Trial, evaluator: Evaluator) -> None:
        if not self.processes:
            self._queue.append((trial, evaluator))
        else:
            self._submit_to_pool(trial, evaluator)

    def _submit_to_pool(self, trial: Trial, evaluator: Evaluator) -> None:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_nascell_launch.worker_setup, initargs=(_DIE_WITH_PARENT,),
                max_tasks_per_child=self.max_tasks_per_worker)
        try:
            future = self._pool.submit(evaluate_trial, evaluator, trial.spec, trial.trial_id)
        except cf.process.BrokenProcessPool as e:
            self._recover(f"worker process died: {e}")
            future = self._pool.submit(evaluate_trial, evaluator, trial.spec, trial.trial_id)
        self._futures[future] = (trial, evaluator)

    def _recover(self, error: str) -> None:
        """A worker died and broke the pool: start a new pool, resubmit what was in flight."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None  # `_submit_to_pool` starts a new one when a trial goes again
        for future, (trial, evaluator) in list(self._futures.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                continue  # finished before the break: `wait` returns its result
            del self._futures[future]
            self._retries[trial.trial_id] += 1
            if self._retries[trial.trial_id] > self.max_retries:
                self._ready.append((trial, EvalResult.failure(
                    f"{error} (gave up after {self.max_retries} retries)")))
            else:
                logging.warning("trial %d: %s; submitting it again", trial.trial_id, error)
                self._submit_to_pool(trial, evaluator)

    def wait(self, timeout: Optional[float] = None) -> List[Finished]:
        if not self.processes:
            if not self._queue:
                return []
            trial, evaluator = self._queue.popleft()
            return [(trial, evaluate_trial(evaluator, trial.spec, trial.trial_id))]
        out: List[Finished] = list(self._ready)
        self._ready.clear()
        if not self._futures:
            return out
        done, _ = cf.wait(list(self._futures), timeout=0 if out else timeout,
                          return_when=cf.FIRST_COMPLETED)
        broken = None
        for future in done:
            if future not in self._futures:
                continue
            trial, evaluator = self._futures[future]
            try:
                result = future.result()
            except cf.process.BrokenProcessPool as e:
                broken = f"worker process died: {e}"
                continue  # `_recover` resubmits it
            except Exception as e:  # e.g. the evaluator could not be pickled
                result = EvalResult.failure(f"{type(e).__name__}: {e}")
            del self._futures[future]
            out.append((trial, result))
        if broken:
            self._recover(broken)
            out.extend(self._ready)
            self._ready.clear()
        return out

    def shutdown(self) -> None:
        """Stop the workers; trials still running are abandoned (their processes ended)."""
        self._queue.clear()
        if self._pool is not None:
            if any(not f.done() for f in self._futures):
                # Don't wait for abandoned children to finish training: end their processes.
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    if process.is_alive():
                        process.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()
