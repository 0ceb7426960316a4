"""No trial is a repeat: every strategy, across a kill and a resume, and when the space runs out.

The search loop is killed part-way (an evaluator raising a `BaseException`, as in
test_loop.py), the process state is dropped, and a fresh strategy resumes on the same run
directory; the run's trials must all be distinct architectures.
"""

import os

import numpy as np
import pytest

from nascell.search.core import dedupe
from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.core.loop import run_search
from nascell.search.core.space import Categorical, SearchSpace, Skips
from nascell.search.core.strategy import Proposal, SpaceExhausted, create_strategy
from nascell.search.spaces import create_space

#: every built-in strategy that ask/tell drives (reinforce: its default preset and the paper's).
STRATEGIES = {
    "random": {}, "evolution": {}, "local_search": {},
    "local_search_predictor": {"order": "predictor"},
    "reinforce": {"jit_compile": False}, "reinforce_paper": {"preset": "paper",
                                                             "jit_compile": False},
    "enas": {"jit_compile": False},
}


def _create(key, space, seed=0):
    name = key.replace("_predictor", "").replace("_paper", "")
    return create_strategy(name, space, seed=seed, **STRATEGIES[key])


def small_space():
    """324 architectures: a 300-trial run must find nearly all of them."""
    return SearchSpace("small", [Categorical("a", list(range(9))), Skips("s0", 0),
                                 Categorical("b", list(range(9))), Skips("s1", 1),
                                 Categorical("c", [0, 1])], options={"tag": "small"})


class _Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


class _Table(Evaluator):
    """A deterministic reward of the decisions; raises `_Crash` at trial ``crash_on``."""

    name = "table"

    def __init__(self, reward_fn, crash_on=-1):
        self.reward_fn, self.crash_on = reward_fn, crash_on

    def config(self):
        return {"name": self.name}

    def evaluate(self, spec, trial_id=0):
        if trial_id == self.crash_on:
            raise _Crash()
        return EvalResult(reward=float(self.reward_fn(spec)))


def _small_reward(spec):
    # rugged on purpose: pairwise terms, so policies converge and keep hitting repeats
    return ((spec["a"] * 7 + spec["b"] * 3) % 11 + 2 * len(spec["s1"]) * (spec["c"] == 1)
            + (spec["a"] == spec["b"])) / 20.0


def _run_with_kill(space, key, reward_fn, run_dir, num_trials, crash_on):
    with pytest.raises(_Crash):
        run_search(space, _create(key, space), _Table(reward_fn, crash_on), run_dir,
                   num_trials=num_trials, m=25, progress=False, checkpoint_every=40,
                   tensorboard=False)
    # the process is gone: a fresh strategy object resumes on the same run directory
    return run_search(space, _create(key, space), _Table(reward_fn), run_dir,
                      num_trials=num_trials, m=25, progress=False, checkpoint_every=40,
                      tensorboard=False)


def _keys(space, trials):
    return [dedupe.arch_key(space, t.decisions) for t in trials]


@pytest.mark.parametrize("key", sorted(STRATEGIES))
@pytest.mark.slow
def test_300_trials_are_300_architectures_across_a_kill(key, tmp_path):
    space = small_space()
    result = _run_with_kill(space, key, _small_reward, str(tmp_path / "run"), 300, 137)
    assert result.resumed and not result.exhausted
    keys = _keys(space, result.trials)
    assert len(result.trials) == 300 and len(set(keys)) == 300, key


@pytest.mark.parametrize("key", sorted(STRATEGIES))
@pytest.mark.slow
def test_nasbench201_300_trials_are_300_architectures(key, tmp_path, shared_data):
    from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
    table = NASBench201Evaluator(str(shared_data("nasbench201", "nb201_cifar10.csv")))
    space = create_space("nasbench201")
    result = _run_with_kill(space, key, lambda arch: table.accuracy(arch) / 100,
                            str(tmp_path / "run"), 300, 180)
    keys = _keys(space, result.trials)
    assert len(result.trials) == 300 and len(set(keys)) == 300, key


@pytest.mark.parametrize("key", ["random", "evolution", "local_search", "reinforce"])
@pytest.mark.slow
def test_a_space_smaller_than_the_budget_is_searched_whole_then_the_search_stops(key,
                                                                                 tmp_path):
    space = SearchSpace("tiny", [Categorical("a", list(range(5))), Skips("s0", 0),
                                 Skips("s1", 1), Categorical("b", list(range(4)))])  # 40
    result = _run_with_kill(space, key, lambda s: (s["a"] + s["b"] + len(s["s1"])) / 9,
                            str(tmp_path / "run"), 100, 17)
    keys = _keys(space, result.trials)
    assert len(keys) == len(set(keys)) == 40
    assert "all 40 architectures" in result.exhausted
    strategy = _create(key, space)
    assert strategy.restore(os.path.join(str(tmp_path / "run"), "strategy",
                                         sorted(os.listdir(tmp_path / "run" / "strategy"))[-1]))
    with pytest.raises(SpaceExhausted, match="all 40 architectures of the search space 'tiny'"):
        strategy.ask(1)


def test_a_policy_that_only_repeats_still_gets_new_architectures():
    space = SearchSpace("pair", [Categorical("a", list(range(4))),
                                 Categorical("b", list(range(4)))])
    s = create_strategy("random", space, seed=0)
    s.propose = lambda n: [Proposal({"a": 0, "b": 0}) for _ in range(n)]  # a collapsed policy
    seen = []
    for _ in range(16):
        for t in s.ask(1):
            seen.append((t.decisions["a"], t.decisions["b"]))
            s.tell(t, 1.0 if seen[-1] == (0, 0) else 0.1 * t.decisions["a"])
    assert len(set(seen)) == 16 and s.num_novel == 15
    # the fallback climbs around the best cells first: the neighbours of (0, 0) come first
    assert set(seen[1:7]) == {(0, b) for b in (1, 2, 3)} | {(a, 0) for a in (1, 2, 3)}


def test_known_repeats_teach_reinforce_and_in_flight_ones_are_dropped():
    space = SearchSpace("pair", [Categorical("a", list(range(3))),
                                 Categorical("b", list(range(3)))])
    s = create_strategy("reinforce", space, seed=1, preset="paper", m=2, jit_compile=False)
    trials = s.ask(8)
    for t in trials:
        s.tell(t, 0.1 * t.decisions["a"])
    assert s.controller.updates == 4 and s.num_cached == 0
    last = s.ask(1)  # one unseen architecture left; the policy keeps proposing known ones
    assert len(last) == 1 and s.num_cached > 0
    assert s.controller.updates == 4 + s.num_cached // 2  # it learned from their rewards
    everything = {(t.decisions["a"], t.decisions["b"]) for t in trials + last}
    assert len(everything) == 9
    with pytest.raises(SpaceExhausted, match="all 9 architectures"):
        s.ask(1)  # the last one is in flight: nothing new is left


def test_ledger_state_round_trips_and_neighbours():
    space = small_space()
    led = dedupe.Ledger()
    a = {"a": 1, "s0": (), "b": 2, "s1": (0,), "c": 0}
    key = dedupe.arch_key(space, a)
    assert key == "1,-,2,1,0" and dedupe.decisions_from_key(space, key) == space.check(a)
    led.add_pending(key)
    assert key in led and not led.is_known(key) and led.count(5) == 1
    led.record(key, 0.25)
    other = dedupe.Ledger()
    other.set_state(led.get_state())
    assert other.reward(key) == 0.25 and other.count(5) == 1
    nbrs = dedupe.neighbours(space, space.check(a))
    assert len(nbrs) == 8 + 8 + 1 + 1  # other choices of a, b, c; the one bit of s1
    assert all(sum(space.check(n)[k] != space.check(a)[k] for k in a) == 1 for n in nbrs)
    rng = np.random.default_rng(0)
    fresh = dedupe.novel_architectures(space, led, 400, rng)
    assert len(fresh) == space.num_architectures() - 1  # every unseen one, found by enumeration
    assert [o for _, o in fresh[:15]] == ["neighbour"] * 15


def test_every_architecture_of_a_space_is_enumerable():
    space = small_space()
    keys = {dedupe.arch_key(space, dedupe._from_index(space, i, len(space)))
            for i in range(space.num_architectures())}
    assert len(keys) == space.num_architectures() == 324
