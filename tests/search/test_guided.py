"""The guided reinforce preset's stall rule: once the best reward stops improving, part of the
proposals check the best architecture's untried one-decision neighbours."""

import numpy as np
import pytest

from nascell.search.core.dedupe import neighbours
from nascell.search.core.space import Categorical, SearchSpace
from nascell.search.core.strategy import create_strategy
from nascell.search.core.trial import Trial

SPACE = SearchSpace("six", [Categorical(f"d{i}", list(range(4))) for i in range(6)])


def _distance(a, b):
    return sum(a[k] != b[k] for k in a)


def _tell(strategy, decisions, reward, trial_id):
    """A trial told by hand (as a resume or a seeded architecture would be)."""
    strategy.tell(Trial(trial_id=trial_id, decisions=dict(decisions),
                        spec=SPACE.decode(decisions)), reward)


def _strategy(**options):
    # A short warm-up so that the pool (and with it the stall rule) is on after a few rewards.
    return create_strategy("reinforce", SPACE, seed=0, warmup=4,
                           **{"stall": 3, "stall_every": 2, **options})


def _filler(rng, avoid, n):
    """``n`` random architectures at distance >= 3 from every one of ``avoid``."""
    out = []
    while len(out) < n:
        d = {f"d{i}": int(rng.integers(4)) for i in range(6)}
        if all(_distance(d, a) >= 3 for a in avoid + out):
            out.append(d)
    return out


@pytest.mark.slow
def test_a_stalled_search_checks_the_best_architectures_neighbours():
    rng = np.random.default_rng(0)
    best = {f"d{i}": 0 for i in range(6)}
    s = _strategy()
    _tell(s, best, 0.9, 100)
    for k, d in enumerate(_filler(rng, [best], 3)):
        _tell(s, d, 0.1, 101 + k)
    # 3 rewards since the best: stalled. Trial ids 0 and 2 of the next 4 are neighbours.
    trials = s.ask(4)
    assert [t.trial_id for t in trials] == [0, 1, 2, 3]
    origins = [t.meta.get("origin") for t in trials]
    assert origins[0] == origins[2] == "stall_neighbour", origins
    assert "stall_neighbour" not in origins[1::2]
    for t in trials[::2]:
        assert _distance(t.decisions, best) == 1
    # A new best ends the stall.
    _tell(s, trials[1].decisions, 0.95, trials[1].trial_id)
    assert all(t.meta.get("origin") != "stall_neighbour" for t in s.ask(4))


@pytest.mark.slow
def test_at_a_local_optimum_the_next_best_architectures_neighbours_are_checked():
    rng = np.random.default_rng(1)
    best = {f"d{i}": 0 for i in range(6)}
    second = {f"d{i}": (3 if i < 3 else 0) for i in range(6)}  # distance 3 from the best
    s = _strategy()
    _tell(s, best, 0.9, 100)
    _tell(s, second, 0.8, 101)
    for k, d in enumerate(neighbours(SPACE, best)):  # the best is a local optimum
        _tell(s, d, 0.1, 200 + k)
    for k, d in enumerate(_filler(rng, [best, second], 3)):
        _tell(s, d, 0.1, 300 + k)
    first = s.ask(2)[0]
    assert first.meta.get("origin") == "stall_neighbour"
    assert _distance(first.decisions, second) == 1


def test_the_guided_preset_stalls_after_20_rewards_and_stall_0_turns_it_off():
    from nascell.search.strategies import _guided
    rng = np.random.default_rng(2)
    best = {f"d{i}": 0 for i in range(6)}
    for stall, expected in ((None, 2), (0, 0)):
        s = (create_strategy("reinforce", SPACE, seed=0) if stall is None else
             create_strategy("reinforce", SPACE, seed=0, stall=stall))
        _tell(s, best, 0.9, 100)
        for k, d in enumerate(_filler(rng, [best], 19)):
            _tell(s, d, 0.1, 101 + k)
        assert _guided.stall_slots(s, 4, 6) == 0  # 19 rewards since the best
        _tell(s, _filler(rng, [best], 1)[0], 0.1, 200)
        assert _guided.stall_slots(s, 4, 6) == expected


def test_stall_options_are_checked():
    with pytest.raises(ValueError, match="stall"):
        create_strategy("reinforce", SPACE, stall=-1)
    with pytest.raises(ValueError, match="stall_every"):
        create_strategy("reinforce", SPACE, stall_every=0)
