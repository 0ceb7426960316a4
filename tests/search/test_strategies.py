"""Strategies: ask/tell contract, seeds, save/restore continuity, evolution's semantics, NB201."""

import pytest

from nascell.search.core.space import Categorical, SearchSpace, Skips
from nascell.search.core.strategy import available_strategies, create_strategy
from nascell.search.core.trial import Trial
from nascell.search.spaces import create_space


def _space():
    return SearchSpace("toy", [Categorical("a", [0, 1, 2, 3]), Skips("s0", 0),
                               Categorical("b", ["x", "y", "z"]), Skips("s1", 1),
                               Categorical("c", [0, 1, 2, 3]), Skips("s2", 2)])


def _reward(trial):
    d = trial.decisions
    return (d["a"] + d["c"]) / 6 + 0.1 * (d["b"] == "z") + 0.05 * len(d["s2"])


OPTIONS = {"random": {}, "evolution": {"population_size": 6, "tournament_size": 3},
           "reinforce": {"preset": "small_budget", "jit_compile": False},
           "local_search": {"order": "predictor"}}


def _drive(strategy, steps, record, in_flight=()):
    """Ask 3, tell the 2 oldest in flight (in reverse): an asynchronous pattern."""
    in_flight = list(in_flight)
    for _ in range(steps):
        trials = strategy.ask(3)
        record.extend((t.trial_id, sorted(t.decisions.items())) for t in trials)
        in_flight.extend(trials)
        told, in_flight = in_flight[:2], in_flight[2:]
        for t in reversed(told):
            strategy.tell(t, _reward(t))
    return in_flight


def test_registry_and_contract():
    assert {"random", "evolution", "reinforce", "local_search"} <= set(available_strategies())
    space = _space()
    for name, options in OPTIONS.items():
        s = create_strategy(name, space, seed=1, **options)
        trials = s.ask(4) + s.ask(2)
        assert [t.trial_id for t in trials] == list(range(6))
        for t in trials:
            assert set(t.decisions) == {d.name for d in space.decisions}
            assert t.spec == space.decode(t.decisions)
            s.tell(t, _reward(t))
        assert s.config()["name"] == name
    with pytest.raises(ValueError, match="unknown evolution option"):
        create_strategy("evolution", space, bogus=1)
    with pytest.raises(ValueError, match="unknown reinforce option"):
        create_strategy("reinforce", space, bogus=1)
    with pytest.raises(ValueError, match="unknown reinforce preset"):
        create_strategy("reinforce", space, preset="nope")
    with pytest.raises(ValueError, match="Argument `order` must be one of"):
        create_strategy("local_search", space, order="nope")


@pytest.mark.parametrize("name", ["random", "evolution", "reinforce", "local_search"])
def test_seeded_runs_reproduce_and_resume_exactly(name, tmp_path):
    space = _space()
    # uninterrupted
    full = []
    s = create_strategy(name, space, seed=5, **OPTIONS[name])
    _drive(s, 12, full)
    # a different seed gives a different run
    other = []
    if name == "reinforce":
        s.reseed(6)  # keeps the compiled controller (= a new strategy with seed 6)
    else:
        s = create_strategy(name, space, seed=6, **OPTIONS[name])
    _drive(s, 12, other)
    assert other != full
    # the same seed again, saved and restored into a new object half way, trials in flight
    part = []
    if name == "reinforce":
        a = s
        a.reseed(5)
    else:
        a = create_strategy(name, space, seed=5, **OPTIONS[name])
    in_flight = _drive(a, 6, part)
    assert in_flight
    a.save(str(tmp_path))
    b = create_strategy(name, space, seed=123, **OPTIONS[name])
    assert b.restore(str(tmp_path))
    assert not create_strategy("random", space).restore(str(tmp_path / "none"))
    # the trials in flight at the save are told to the restored strategy as the run goes on
    _drive(b, 6, part, in_flight)
    assert part == full


def test_reinforce_get_state_is_complete_json():
    import json
    space = _space()
    a = create_strategy("reinforce", space, seed=2, **OPTIONS["reinforce"])
    for t in a.ask(8):
        a.tell(t, _reward(t))
    state = json.loads(json.dumps(a.get_state()))
    ta = a.ask(4)
    for t in ta:
        a.tell(t, _reward(t))  # moves the controller on
    a.set_state(state)  # everything comes back: weights, optimizer, baseline, seeds
    tb = a.ask(4)
    assert [t.decisions for t in ta] == [t.decisions for t in tb]
    assert [t.trial_id for t in ta] == [t.trial_id for t in tb]


def test_evolution_population_and_aging():
    space = _space()
    s = create_strategy("evolution", space, seed=0, population_size=4, tournament_size=2)
    first = s.ask(6)  # nothing told yet: all random
    assert all(t.meta["origin"] == "random" for t in first)
    for t in first[:3]:
        s.tell(t, 1.0)
    assert s.ask(1)[0].meta["origin"] == "random"  # 3 told < population 4
    # the best member is told first, so it is the oldest and dies first: age, not fitness
    s2 = create_strategy("evolution", space, seed=0, population_size=4, tournament_size=4)
    trials = s2.ask(6)
    rewards = [0.9, 0.1, 0.2, 0.3, 0.4, 0.5]
    for t, r in zip(trials[:4], rewards[:4]):
        s2.tell(t, r)
    child = s2.ask(1)[0]
    assert child.meta["origin"] == "mutation" and child.meta["parent"] == trials[0].trial_id
    parent = trials[0].decisions
    changed = [k for k in parent if parent[k] != child.decisions[k]]
    assert changed == [child.meta["mutated"]]
    if isinstance(space[changed[0]], Skips):
        assert len(set(parent[changed[0]]) ^ set(child.decisions[changed[0]])) == 1
    s2.tell(trials[4], rewards[4])
    assert [m[0] for m in s2.population] == [t.trial_id for t in trials[1:5]]
    # now the tournament over the whole population picks the best survivor (reward 0.4)
    assert s2.ask(1)[0].meta["parent"] == trials[4].trial_id


def test_evolution_mutates_exactly_one_decision():
    space = _space()
    s = create_strategy("evolution", space, seed=3, population_size=5, tournament_size=2)
    by_id = {}
    for _ in range(30):
        for t in s.ask(1):
            by_id[t.trial_id] = t
            if t.meta["origin"] == "mutation":
                parent = by_id[t.meta["parent"]].decisions
                assert sum(parent[k] != t.decisions[k] for k in parent) == 1
            s.tell(t, _reward(t))


def test_local_search_climbs_to_the_best_neighbour_and_restarts_at_a_peak():
    space = SearchSpace("grid", [Categorical(k, list(range(5))) for k in "xyz"])
    peaks = {(4, 4, 4): 1.0, (0, 0, 0): 0.9}  # two local optima of a bumpy grid

    def reward(d):
        x, y, z = d["x"], d["y"], d["z"]
        return peaks.get((x, y, z), 0.1 * abs(x + y + z - 6) / 6)

    s = create_strategy("local_search", space, seed=3)
    trials = []
    for _ in range(60):
        for t in s.ask(1):
            trials.append(t)
            s.tell(t, reward(t.decisions))
    start = trials[0].decisions
    assert trials[0].meta["origin"] == "start"
    # the 12 trials after the start are exactly its neighbourhood (one decision changed)
    first = [t.decisions for t in trials[1:13]]
    assert all(sum(d[k] != start[k] for k in d) == 1 for d in first)
    assert len({(d["x"], d["y"], d["z"]) for d in first}) == 12
    # every move goes to the best neighbour; at a peak it restarts
    best = max(reward(t.decisions) for t in trials)
    assert best == 1.0 and s.num_restarts >= 1
    moves = [t.meta.get("current") for t in trials if t.meta["origin"] == "neighbour"]
    assert len(set(moves)) >= 2


@pytest.mark.slow
def test_dedupe_never_repeats():
    space = SearchSpace("tiny", [Categorical("a", list(range(5))), Categorical("b", [0, 1])])
    for name in ("random", "evolution", "reinforce", "local_search"):
        opts = dict(OPTIONS[name], dedupe=True)
        s = create_strategy(name, space, seed=0, **opts)
        seen = []
        for _ in range(8):
            for t in s.ask(1):
                seen.append((t.decisions["a"], t.decisions["b"]))
                s.tell(t, t.decisions["a"] / 4)
        assert len(set(seen)) == len(seen), name


def test_failed_trials_count_as_zero():
    space = _space()
    s = create_strategy("evolution", space, seed=0, population_size=2, tournament_size=1)
    for t in s.ask(2):
        s.tell(t, float("nan"))
    assert [m[2] for m in s.population] == [0.0, 0.0]
    r = create_strategy("reinforce", space, seed=0, m=1, jit_compile=False)
    t = r.ask(1)[0]
    r.tell(t, None)
    assert r.controller.updates == 1 and r.controller.baseline == 0.0
    # a trial the strategy did not sample (e.g. a hand-written seed architecture) is scored
    r.tell(Trial(trial_id=99, decisions=t.decisions), 0.5)
    assert r.controller.updates == 2


@pytest.mark.slow
def test_nasbench201_search_500_trials(shared_data):
    from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
    csv_path = str(shared_data("nasbench201", "nb201_cifar10.csv"))
    evaluator = NASBench201Evaluator(csv_path)
    space = create_space("nasbench201")
    best = {}
    for name in ("random", "evolution", "reinforce"):
        # (dedupe off here: with it the controller learns from thousands of cached rewards,
        # ~45 s of CPU; benchmarks/search_efficiency.py measures that configuration)
        options = {"reinforce": {"preset": "small_budget", "dedupe": False,
                                 "jit_compile": False}}.get(name, {})
        s = create_strategy(name, space, seed=0, **options)
        accs = []
        while len(accs) < 500:
            for t in s.ask(4):
                result = evaluator.evaluate(t.spec, t.trial_id)
                assert result.reward == pytest.approx(result.metrics["accuracy"] / 100)
                accs.append(result.metrics["accuracy"])
                s.tell(t, result.reward)
        best[name] = max(accs)
    assert best["random"] > 93.0
    assert best["evolution"] > 94.0
    assert best["reinforce"] > 93.8, best


def test_nasbench201_evaluator_errors(tmp_path, monkeypatch):
    from nascell.search.evaluators import create_evaluator
    monkeypatch.delenv("NASCELL_NB201_CSV", raising=False)
    monkeypatch.delenv("NASCELL_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="--nb201_csv"):
        create_evaluator("nasbench201")
    with pytest.raises(FileNotFoundError, match="--nb201_csv"):
        create_evaluator("nasbench201", csv_path=str(tmp_path / "missing.csv"))
    path = tmp_path / "t.csv"
    path.write_text("arch,cifar10_test_acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10.0\n")
    monkeypatch.setenv("NASCELL_DATA_DIR", str(tmp_path))
    (tmp_path / "nasbench201").mkdir()
    (tmp_path / "nasbench201" / "nb201_cifar10.csv").write_text(path.read_text())
    ev = create_evaluator("nasbench201")
    import pickle
    ev2 = pickle.loads(pickle.dumps(ev))
    res = ev2.evaluate("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert res.reward == pytest.approx(0.1) and res.metrics["accuracy"] == 10.0
    with pytest.raises(ValueError, match="not a NAS-Bench-201 architecture string"):
        ev2.evaluate("|conv~0|")
