"""The synthetic pairwise table: the stated rule rebuilt by hand, the optimum, the registries."""

import numpy as np
import pytest

from nascell.search.core import dedupe
from nascell.search.evaluators import create_evaluator
from nascell.search.spaces import create_space
from nascell.search.spaces import synthetic_pairwise as sp


def _by_the_rule(seed, values):
    """The docstring's rule, written out again: unary tables, then pairs with p = 0.3."""
    rng = np.random.default_rng(seed)
    cards = [3] * 5 + [2] * 10
    unary = [rng.normal(0.0, 0.5, c) for c in cards]
    pairs = []
    for v in range(15):
        for w in range(v + 1, 15):
            if rng.random() < 0.3:
                pairs.append((v, w, rng.normal(0.0, 1.0, (cards[v], cards[w]))))
    return (sum(u[x] for u, x in zip(unary, values))
            + sum(t[values[v], values[w]] for v, w, t in pairs))


def test_the_table_follows_its_stated_rule():
    space = create_space("synthetic_pairwise")
    assert space.num_architectures() == 3 ** 5 * 2 ** 10 == len(sp.table(0))
    table = sp.table(0)
    assert table.max() == 95.0 and table.min() == 50.0
    assert np.sum(table == 95.0) == 1  # one optimum
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(20)]
    f = np.array([_by_the_rule(0, sp.variables(space, a)) for a in archs])
    acc = np.array([sp.table(0)[sp.index(sp.variables(space, a))] for a in archs])
    # accuracy is an increasing affine map of f: 50 + 45 (f - min) / (max - min)
    slope, intercept = np.polyfit(f, acc, 1)
    assert slope > 0
    np.testing.assert_allclose(acc, slope * f + intercept, atol=1e-9)


def test_the_evaluator_reads_the_table_and_finds_the_optimum():
    space = create_space("synthetic_pairwise", seed=3)
    evaluator = create_evaluator("synthetic_pairwise", seed=3)
    assert evaluator.config() == {"name": "synthetic_pairwise", "seed": 3}
    best = int(np.argmax(sp.table(3)))
    values, rest = [], best
    for c in sp.cardinalities():
        rest, digit = divmod(rest, c)
        values.append(digit)
    ops, bits = values[:5], values[5:]
    decisions, k = {}, 0
    for i in range(5):
        decisions[f"op_{i}"] = sp.OPS[ops[i]]
        decisions[f"in_{i}"] = tuple(j for j in range(i) if bits[k + j])
        k += i
    result = evaluator.evaluate(space.decode(decisions))
    assert result.metrics["accuracy"] == 95.0 and result.reward == pytest.approx(0.95)
    assert result.metrics["regret"] == 0.0
    # a JSON round trip (tuples become lists) reads the same
    as_json = {k: list(v) if isinstance(v, tuple) else v for k, v in decisions.items()}
    assert evaluator.evaluate(as_json).metrics["accuracy"] == 95.0
    # every neighbour of the optimum is worse
    for n in dedupe.neighbours(space, space.check(decisions)):
        assert evaluator.evaluate(n).metrics["accuracy"] < 95.0
    with pytest.raises(ValueError, match="not a synthetic_pairwise architecture"):
        evaluator.evaluate({"op_0": "z"})
    with pytest.raises(ValueError, match="Argument `seed` must be a non-negative integer"):
        create_space("synthetic_pairwise", seed=-1)


@pytest.mark.slow
def test_the_cli_searches_the_synthetic_table(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from nascell.search.rundir.store import TrialStore
    run_dir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "nascell.search.bin.search", "--space=synthetic_pairwise",
         "--strategy=local_search", "--local_search_order=predictor", "--num_trials=40",
         f"--run_dir={run_dir}", "--noexport", "--noprogress", "--checkpoint_every=10"],
        capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    finished = TrialStore(str(run_dir / "trials.sqlite"), readonly=True).finished()
    assert len(finished) == 40
    assert len({json.dumps(t.decisions, sort_keys=True) for t in finished}) == 40
    assert json.load(open(run_dir / "config.json"))["evaluator"] == {
        "name": "synthetic_pairwise", "seed": 0}
    assert "best reward" in proc.stdout
