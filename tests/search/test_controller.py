"""The LSTM controller: probabilities, the REINFORCE gradient by hand, learning, state."""

import itertools

import numpy as np
import pytest

from nascell.search.core.space import Categorical, SearchSpace, Skips
from nascell.search.core.strategy import create_strategy
from nascell.search.strategies.controller.controller import Controller


def _mixed_space():
    return SearchSpace("mixed", [Categorical("a", ["x", "y"]), Skips("s0", 0),
                                 Categorical("b", [1, 2, 3]), Skips("s1", 1), Skips("s2", 2)])


def _bias_index(c):
    return [v.path for v in c.trainable_variables].index(c.head_bias.path)


def test_probabilities_sum_to_one_and_rescore_matches():
    space = _mixed_space()
    c = Controller(space, seed=3, jit_compile=False, tanh_constant=2.0, temperature=1.5)
    rows = []
    for a, b, s1, s2 in itertools.product(["x", "y"], [1, 2, 3], [(), (0,)],
                                          [(), (0,), (1,), (0, 1)]):
        rows.append(space.to_tokens({"a": a, "s0": (), "b": b, "s1": s1, "s2": s2}))
    tokens, n = c.rows_to_tokens(rows)
    assert tokens.shape == (48, 1 + 1 + 1 + 2) and n == 5
    log_prob, entropy = c.log_prob(tokens, n)
    assert np.exp(log_prob).sum() == pytest.approx(1.0, abs=1e-4)
    out = c.sample(16, n)
    again, ent = c.log_prob(out["tokens"], n)
    np.testing.assert_allclose(again, out["log_prob"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent, out["entropy"], rtol=1e-5, atol=1e-5)
    for row in c.tokens_to_rows(out["tokens"], n):  # every sample decodes
        space.decode(space.from_tokens(row))


def test_reinforce_gradient_by_hand():
    """One softmax decision: d/d(bias) of -1/m sum_k A_k log softmax(z)[a_k]
    = -1/m sum A (e_a - p)."""
    space = SearchSpace("one", [Categorical("op", ["a", "b", "c"])])
    c = Controller(space, seed=0, jit_compile=False, learning_rate=0.01)
    p = c.probabilities()
    assert p.sum() == pytest.approx(1.0, abs=1e-6)
    tokens = np.array([[0], [2], [2]], np.int32)
    adv = np.array([1.0, -0.5, 0.25])
    _, grads, _, _ = c.gradients(tokens, adv, 1)
    hand = -np.mean([a * (np.eye(3)[k] - p) for a, k in zip(adv, tokens[:, 0])], axis=0)
    got = np.asarray(grads[_bias_index(c)])[0, :3]
    np.testing.assert_allclose(got, hand, rtol=1e-4, atol=1e-7)

    # The update: baseline starts at the batch mean, so A = R - mean(R); Adam's first step
    # moves every parameter by lr * g / (|g| + eps), i.e. about -lr * sign(g).
    rewards = np.array([0.9, 0.1, 0.5])
    before = np.array(c.head_bias)[0, :3]
    stats = c.update([(t, 1) for t in tokens], rewards)
    adv = rewards - rewards.mean()
    g = -np.mean([a * (np.eye(3)[k] - p) for a, k in zip(adv, tokens[:, 0])], axis=0)
    step = np.array(c.head_bias)[0, :3] - before
    np.testing.assert_allclose(step, -0.01 * g / (np.abs(g) + 1e-7), rtol=1e-3, atol=1e-6)
    assert stats["baseline"] == pytest.approx(0.5)
    assert c.baseline == pytest.approx(0.95 * (0.95 * 0.9 + 0.05 * 0.1) + 0.05 * 0.5)
    assert c.updates == 1


def test_skip_gradient_by_hand():
    """A Skips decision: d/d(logit) of log Bernoulli(bit) = bit - p, checked through v."""
    space = SearchSpace("skips", [Skips("s0", 0), Skips("s1", 1)])
    c = Controller(space, seed=1, jit_compile=False)
    tokens = np.array([[1], [0]], np.int32)
    adv = np.array([1.0, 2.0])
    log_prob, _ = c.log_prob(tokens, 2)
    p1 = np.exp(log_prob[0])  # P(bit = 1)
    assert np.exp(log_prob[1]) == pytest.approx(1 - p1, abs=1e-6)
    # The logit is v . tanh(W_prev h_0 + W_curr h_1) =: v . u, so dL/dv = -1/m sum A (bit - p) u.
    _, grads, _, _ = c.gradients(tokens, adv, 2)
    names = [v.path for v in c.trainable_variables]
    g_v = np.asarray(grads[names.index(c.v.path)])[:, 0]
    eps = 1e-2  # recover u numerically (log P is smooth in v; float32 needs a wide step)
    v0 = np.array(c.v)
    u = []
    for i in range(v0.shape[0]):
        c.v.assign(v0 + eps * np.eye(v0.shape[0])[:, i:i + 1])
        lp, _ = c.log_prob(tokens[:1], 2)
        c.v.assign(v0 - eps * np.eye(v0.shape[0])[:, i:i + 1])
        lm, _ = c.log_prob(tokens[:1], 2)
        # d log p / d logit = 1 - p for bit 1, so du_i = d log p / d v_i / (1 - p)
        u.append((lp[0] - lm[0]) / (2 * eps) / (1 - p1))
    c.v.assign(v0)
    hand = -np.mean([a * (b - p1) for a, b in zip(adv, tokens[:, 0])]) * np.array(u)
    np.testing.assert_allclose(g_v, hand, rtol=2e-2, atol=1e-5)


def test_sampling_is_seeded_reproducible_and_state_round_trips(tmp_path):
    space = _mixed_space()
    c = Controller(space, seed=7, jit_compile=False, learning_rate=0.05)
    first = c.sample(32)["tokens"]
    assert not np.array_equal(first, c.sample(32)["tokens"])  # next call, next seed
    c.reset(8)
    assert not np.array_equal(first, c.sample(32)["tokens"])  # another seed
    c.reset(7)  # a reset controller is a fresh one
    np.testing.assert_array_equal(c.sample(32)["tokens"], first)
    prefix = c.sample(4, num_decisions=3)
    assert prefix["tokens"].shape == (4, 1 + 0 + 1)
    with pytest.raises(ValueError, match=r"Argument `num_decisions` must be in \[1, \d+\]\. "
                       r"Received: num_decisions=9"):
        c.sample(4, num_decisions=9)

    # Save after some updates; continuing, then restoring and continuing again, is identical.
    rng = np.random.default_rng(0)
    for _ in range(3):
        out = c.sample(4)
        c.update([(t, 5) for t in out["tokens"]], rng.random(4))
    c.save_state(str(tmp_path / "c.npz"))
    saved = (c.sample_calls, c.updates, c.baseline)
    rewards = rng.random(4)

    def go_on():
        out = c.sample(4)
        c.update([(t, 5) for t in out["tokens"]], rewards)
        return out["tokens"], [np.array(w) for w in c.weights], c.sample(4)["tokens"]

    before = go_on()
    c.reset(99)
    c.load_state(str(tmp_path / "c.npz"))
    assert (c.sample_calls, c.updates, c.baseline) == saved and c.seed == 7
    after = go_on()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[2], after[2])
    for x, y in zip(before[1], after[1]):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="search space or controller options differ"):
        Controller(SearchSpace("one", [Categorical("op", [1, 2])]), jit_compile=False,
                   num_layers=1).load_state(str(tmp_path / "c.npz"))


def test_tanh_constant_bounds_probabilities():
    space = SearchSpace("one", [Categorical("op", list(range(4)))])
    c = Controller(space, seed=0, jit_compile=False, tanh_constant=1.0, learning_rate=0.5)
    tokens = np.tile(np.arange(4, dtype=np.int32), 2)[:, None]
    rewards = (tokens[:, 0] == 0).astype(float)  # choice 0 is the only good one
    for _ in range(40):
        c.update([(t, 1) for t in tokens], rewards)
    p = c.probabilities()
    bound = np.e / (np.e + 3 / np.e)  # logits within [-1, 1]
    assert p.argmax() == 0 and 0.6 < p.max() <= bound + 1e-5


@pytest.mark.slow
def test_controller_learns_synthetic_optimum_faster_than_random():
    """5 decisions x 4 choices; reward = fraction of decisions matching a hidden target."""
    space = SearchSpace("synthetic", [Categorical(f"d{i}", list(range(4))) for i in range(5)])
    target = {"d0": 3, "d1": 0, "d2": 2, "d3": 1, "d4": 3}

    def reward(trial):
        return float(np.mean([trial.decisions[k] == v for k, v in target.items()]))

    strategies = {}

    def run(name, seed, **options):
        if name in strategies:  # same settings, another seed: keep the compiled controller
            s = strategies[name]
            s.reseed(seed) if name == "reinforce" else None
        if name not in strategies or name != "reinforce":
            s = strategies[name] = create_strategy(name, space, seed=seed, **options)
        rewards = []
        while len(rewards) < 240:
            for trial in s.ask(4):
                rewards.append(reward(trial))
                s.tell(trial, rewards[-1])
        return np.mean(rewards[160:])  # the last third

    rl = np.mean([run("reinforce", seed, preset="small_budget", dedupe=False, jit_compile=False)
                  for seed in (0, 1)])
    rnd = np.mean([run("random", seed) for seed in (0, 1)])
    assert rnd < 0.35  # random: 1/4 in expectation
    assert rl > rnd + 0.3, (rl, rnd)


def test_update_is_keras_adam_with_clipnorm():
    """The in-graph Adam step equals keras.optimizers.Adam's on the same gradients."""
    import keras
    import tensorflow as tf
    space = _mixed_space()
    c = Controller(space, seed=4, jit_compile=False, learning_rate=0.03, clipnorm=0.5)
    ref = [tf.Variable(np.array(w)) for w in c.trainable_variables]
    opt = keras.optimizers.Adam(learning_rate=0.03, clipnorm=0.5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        out = c.sample(6)
        _, grads, _, _ = c.gradients(out["tokens"], rng.normal(size=6), 5)
        opt.apply_gradients(zip([tf.constant(np.array(g)) for g in grads], ref))
        c.apply_gradients(grads)
    for mine, theirs in zip(c.trainable_variables, ref):
        np.testing.assert_allclose(np.array(mine), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert int(c.optimizer.iterations) == 3 and c.updates == 3


def test_train_step_with_ppo_steps_matches_separate_steps():
    space = _mixed_space()
    a = Controller(space, seed=2, jit_compile=False, learning_rate=0.05, entropy_weight=0.01)
    b = Controller(space, seed=2, jit_compile=False, learning_rate=0.05, entropy_weight=0.01)
    out = a.sample(5)
    adv = np.array([1.0, -1.0, 0.5, 0.0, -0.2])
    rows = [(t, 5) for t in out["tokens"]]
    _, steps = a.train_step(rows, adv, out["log_prob"], update_steps=3, ppo_clip=0.3)
    for step in range(steps):  # the same, one call per step
        lp, _ = b.log_prob(out["tokens"], 5)
        ratio = np.exp(lp - out["log_prob"])
        w = np.ones(5) if step == 0 else np.where(
            ((adv > 0) & (ratio > 1.3)) | ((adv < 0) & (ratio < 0.7)), 0.0, ratio)
        _, grads, _, _ = b.gradients(out["tokens"], adv * w, 5)
        b.apply_gradients(grads)
    assert steps >= 2 and a.updates == b.updates == steps
    for x, y in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_allclose(np.array(x), np.array(y), rtol=1e-4, atol=1e-6)


def test_controllers_share_programs_and_a_dropped_one_is_freed():
    """Same structure, same compiled programs; nothing global keeps a dropped controller."""
    import gc
    import weakref
    space = _mixed_space()
    first = Controller(space, seed=0, jit_compile=False)
    first.update([(t, 5) for t in first.sample(4)["tokens"]], np.arange(4.0))
    progs = first.programs
    traces = {k: getattr(progs, k).experimental_get_tracing_count()
              for k in ("sample", "train", "score")}
    refs = []
    for seed in range(1, 4):  # other seeds and settings, same structure
        c = Controller(space, seed=seed, jit_compile=False, tanh_constant=1.5,
                       learning_rate=0.01 * seed)
        assert c.programs is progs
        c.update([(t, 5) for t in c.sample(4)["tokens"]], np.arange(4.0))
        c.log_prob(c.sample(3)["tokens"])
        refs.append(weakref.ref(c))
        del c
    gc.collect()
    assert all(r() is None for r in refs)
    assert {k: getattr(progs, k).experimental_get_tracing_count()
            for k in ("sample", "train", "score")} == traces


@pytest.mark.slow
def test_memory_stays_flat_over_strategies_created_one_after_another():
    """RSS after the first strategies (imports, programs) grows by little over six more."""
    import gc

    def rss_mib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    space = SearchSpace("toy", [Categorical(f"d{i}", list(range(5))) for i in range(6)])
    sizes = []
    for seed in range(8):
        s = create_strategy("reinforce", space, seed=seed, jit_compile=False)
        for _ in range(4):
            for t in s.ask(s.m):
                s.tell(t, float(sum(t.decisions.values())))
        del s
        gc.collect()
        sizes.append(rss_mib())
    # a leak of a controller's graphs showed as ~70 MiB per strategy; allow allocator noise
    assert sizes[-1] - sizes[1] < 25, sizes
