"""Test helpers for the run machinery: a tiny space, a bookkeeping strategy, slow evaluators.

Imported by tests/search/test_{loop,executors,search_cli,...}.py, and by `nascell-search`
subprocesses through ``--import=runs_helpers`` (with this folder on PYTHONPATH), where it
registers the space ``toy``, the strategy ``toy_random`` and the evaluator ``toy_slow``.
"""

from __future__ import annotations

import math
import os
import random
import time
from typing import Any, Dict, List

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.space import Categorical, SearchSpace
from nascell.search.core.strategy import Proposal, Strategy, register_strategy
from nascell.search.core.trial import Trial
from nascell.search.evaluators import register_evaluator


def toy_space(size: int = 10) -> SearchSpace:
    """Two categorical decisions of `size` choices each; decodes to "a-b"."""
    return SearchSpace("toy", [Categorical("a", list(range(size))),
                               Categorical("b", list(range(size)))],
                       decode=lambda d: f"{d['a']}-{d['b']}", options={"size": size})


try:
    from nascell.search.spaces import register_space
    register_space("toy", toy_space)
except ImportError:  # the spaces registry is not there yet
    pass


@register_strategy
class ToyRandomStrategy(Strategy):
    """Random sampling that remembers every id it asked and was told (to check resumes).

    Repeats are allowed (no dedupe), so proposal ``i`` of an ask becomes trial
    ``next_trial_id + i``, drawn from a generator seeded by that id."""

    name = "toy_random"

    def __init__(self, space: Any, seed: int = 0, **options: Any):
        super().__init__(space, seed=seed, **options)
        self.dedupe = False
        self.asked: List[int] = []
        self.told: List[int] = []
        self.rewards: List[float] = []

    def propose(self, n: int) -> List[Proposal]:
        out = []
        for i in range(n):
            tid = self.next_trial_id + i
            out.append(Proposal(self._decisions(random.Random(self.seed * 100003 + tid)),
                                {"asked_at": len(self.asked)}))
            self.asked.append(tid)
        return out

    def _decisions(self, rng: random.Random) -> Dict[str, Any]:
        return {d.name: rng.choice(d.choices) for d in self.space.decisions}

    def observe(self, trial: Trial, reward: float) -> None:
        if trial.trial_id in self.told:
            raise AssertionError(f"trial {trial.trial_id} told twice")
        self.told.append(trial.trial_id)
        self.rewards.append(float(reward))

    def summary_scalars(self) -> Dict[str, float]:
        return {"num_told": float(len(self.told))}

    def get_state(self) -> Dict[str, Any]:
        return {"next_trial_id": self.next_trial_id, "asked": self.asked, "told": self.told,
                "rewards": self.rewards}

    def set_state(self, state: Dict[str, Any]) -> None:
        self.next_trial_id = state["next_trial_id"]
        self.asked, self.told = list(state["asked"]), list(state["told"])
        self.rewards = list(state["rewards"])


def toy_reward(spec: str) -> float:
    a, b = (int(x) for x in spec.split("-"))
    return (a * 10 + b) / 100.0


class ToySlowEvaluator(Evaluator):
    """Deterministic reward from the spec; sleeps `sleep` seconds; logs each completed
    evaluation's trial id to `log_path` (appended after the work, before returning).

    Options also come from the environment (NASCELL_TEST_SLEEP, NASCELL_TEST_LOG,
    NASCELL_TEST_FAIL) so the binary can create it with no arguments. `fail_a`: specs whose
    first decision is this value raise ("all": every spec raises); `nan_a`: those give a NaN
    reward.
    """

    name = "toy_slow"

    def __init__(self, sleep: float = None, log_path: str = None, fail_a: int = -1,
                 nan_a: int = -1):
        self.sleep = float(os.environ.get("NASCELL_TEST_SLEEP", 0.0) if sleep is None
                           else sleep)
        self.log_path = os.environ.get("NASCELL_TEST_LOG") if log_path is None else log_path
        fail = os.environ.get("NASCELL_TEST_FAIL", fail_a)
        self.fail_a = fail if fail == "all" else int(fail)
        self.nan_a = nan_a

    def config(self) -> Dict[str, Any]:
        return {"name": self.name, "fail_a": self.fail_a, "nan_a": self.nan_a}

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        if self.sleep:
            time.sleep(self.sleep)
        a = int(spec.split("-")[0])
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(f"{trial_id} {os.getpid()}\n")
        if self.fail_a in (a, "all"):
            raise RuntimeError(f"toy failure for {spec}")
        if a == self.nan_a:
            return EvalResult(reward=math.nan)
        weights = None
        if os.environ.get("NASCELL_TEST_WEIGHTS") and self.return_weights:
            # stand-ins for a trained model's files: what the run keeps for the best trials
            weights = {"spec.txt": spec.encode(), "pad.bin": bytes(4096)}
        return EvalResult(reward=toy_reward(spec), metrics={"a": a}, weights=weights)


register_evaluator("toy_slow", "runs_helpers:ToySlowEvaluator")


class BusyEvaluator(Evaluator):
    """A fixed amount of CPU work per trial (for the executors' equivalence test)."""

    name = "busy"

    def __init__(self, work: int = 20000):
        self.work = work

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        acc = 0
        for i in range(self.work):
            acc = (acc * 31 + i) % 1000003
        return EvalResult(reward=toy_reward(spec), metrics={"pid": os.getpid(), "acc": acc})


class DieOnceEvaluator(Evaluator):
    """Kills its own worker process (os._exit) on the first attempt of each trial in `die_ids`;
    a marker file per trial remembers the first attempt. Each attempt is logged."""

    name = "die_once"

    def __init__(self, marker_dir: str, die_ids=(0,)):
        self.marker_dir = marker_dir
        self.die_ids = tuple(die_ids)

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        with open(os.path.join(self.marker_dir, "attempts.log"), "a") as f:
            f.write(f"{trial_id}\n")
        marker = os.path.join(self.marker_dir, f"died-{trial_id}")
        if trial_id in self.die_ids and not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write("x")
            os._exit(1)
        return EvalResult(reward=toy_reward(spec))


class WeightsEvaluator(Evaluator):
    """The toy reward, returning "weights" files that name the trial and its spec (to check
    which trials' weights a search keeps); optionally a NaN reward for specs with a == nan_a."""

    name = "toy_weights"

    def __init__(self, nan_a: int = -1):
        self.nan_a = nan_a

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        weights = None
        if self.return_weights:
            weights = {"model.json": f'{{"trial": {trial_id}}}'.encode(),
                       "model.weights.h5": f"{spec}".encode() * 1000}
        a = int(spec.split("-")[0])
        reward = math.nan if a == self.nan_a else toy_reward(spec)
        return EvalResult(reward=reward, weights=weights)


def tiny_corpus(folder):
    """A small character corpus as Tiny Shakespeare's input.txt in ``folder`` (a pathlib
    path; fast to load and train on)."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = ["the", "cell", "search", "found", "a", "state", "carried", "over"]
    text = "".join(" ".join(rng.choice(words, size=8)) + "\n" for _ in range(600))
    (folder / "input.txt").write_text(text)
    return folder


def tiny_lm_options(data_dir, **overrides) -> Dict[str, Any]:
    """`RNNLanguageModelEvaluator` arguments of a tiny two-layer child on `tiny_corpus` that
    learns it in a few seconds (with the NAS cell)."""
    options = dict(dataset="tiny_shakespeare", data_dir=str(data_dir), units=8, num_layers=2,
                   epochs=2, steps_per_epoch=20, batch_size=8, seq_len=5, max_valid_steps=3,
                   optimizer="adam", lr=0.1)
    options.update(overrides)
    return options


def two_cells() -> SearchSpace:
    """A space of two cells: the NAS cell (learns `tiny_corpus` in a few steps) and the
    Figure 5 cell (learns it slowly at that size). Random search with seed 1 asks both."""
    from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC

    cells = {"nas": NAS_CELL_SPEC, "figure5": FIGURE5_SPEC}
    return SearchSpace("two_cells", [Categorical("cell", sorted(cells))],
                       decode=lambda d: cells[d["cell"]])


def four_cells() -> SearchSpace:
    """Four cells: `two_cells`' NAS and Figure 5 cells and two base-2 variants of Figure 5
    (strategies never repeat an architecture, so a search of four trials needs four)."""
    from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC, rnn_cell_spec

    cells = {
        "nas": NAS_CELL_SPEC, "figure5": FIGURE5_SPEC,
        "tanh2": rnn_cell_spec(2, [("add", "tanh"), ("add", "tanh"), ("mult", "sigmoid")],
                               ("add", "tanh"), 0, 1),
        "sigmoid2": rnn_cell_spec(2, [("add", "sigmoid"), ("mult", "tanh"), ("add", "tanh")],
                                  ("mult", "sigmoid"), 1, 0),
    }
    return SearchSpace("four_cells", [Categorical("cell", sorted(cells))],
                       decode=lambda d: cells[d["cell"]])


def node_tagged_lm(**options):
    """An ``rnn_lm`` evaluator whose results record the Ray node that trained the child
    (``metrics["node_id"]``), for the multi-node tests."""
    return NodeTaggedLM(**options)


try:
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    class NodeTaggedLM(RNNLanguageModelEvaluator):
        """`RNNLanguageModelEvaluator` (same name and config) that tags each result with the
        id of the Ray node it ran on."""

        def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
            import ray

            result = super().evaluate(spec, trial_id)
            result.metrics["node_id"] = ray.get_runtime_context().get_node_id()
            return result
except ImportError:  # pragma: no cover - the evaluators are always there in this project
    pass
