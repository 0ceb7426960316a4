"""ENAS: spaces, weight sharing in the three supernets, and ENAS as a strategy plus the supernet
evaluator in the one engine (run_search): the schedule, one REINFORCE path, checkpoints of the
shared weights, resume, derive. nascell-search --strategy=enas killed with SIGKILL and resumed:
tests/search/test_search_cli.py."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nascell.enas_cells import ENASRNNCell
from nascell.enas_spec import (
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroSpec,
    ENASRNNCellSpec,
    enas_rnn_cell_spec,
)
from nascell.search.enas import run_enas
from nascell.search.enas.conv_supernet import ConvSupernet
from nascell.search.enas.macro_supernet import MacroSupernet
from nascell.search.enas.rnn_supernet import RNNSupernet
from nascell.search.spaces import create_space
from nascell.search.spaces.enas import enas_conv_space, enas_macro_space, enas_rnn_space

# Two cells that share node 1 (reads 0, tanh) and differ at node 2.
SPEC_A = enas_rnn_cell_spec([0, 1, 1], ["relu", "tanh", "sigmoid", "identity"])
SPEC_B = enas_rnn_cell_spec([0, 0, 2], ["relu", "tanh", "relu", "tanh"])
VOCAB = 20


def _tokens(n=400, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, n).astype(np.int32)


def _vid(v):
    """Identity of the tf.Variable behind a Keras variable (what a GradientTape watches)."""
    return id(v.value) if isinstance(v, keras.Variable) else id(v)


def _values(variables):
    return [np.array(v) for v in variables]


# --- spaces ------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory, cls", [(enas_rnn_space, ENASRNNCellSpec),
                                          (enas_conv_space, ENASConvCellSpec),
                                          (enas_macro_space, ENASMacroSpec)])
def test_spaces_decode_encode(factory, cls):
    space = factory()
    rng = np.random.default_rng(0)
    for _ in range(5):
        decisions = space.sample(rng)
        spec = space.decode(decisions)
        assert isinstance(spec, cls)
        assert space.encode(spec) == space.check(decisions)
        assert cls.from_json(spec.to_json()) == spec


def test_space_sizes_and_registry():
    rng = np.random.default_rng(1)
    assert enas_rnn_space().decode(enas_rnn_space().sample(rng)).num_nodes == 12
    # 4 activations per node and i choices for node i: 4**12 * 11!
    assert enas_rnn_space().num_architectures() == 4 ** 12 * 39916800
    assert enas_conv_space().decode(enas_conv_space().sample(rng)).num_nodes == 5
    assert len(enas_macro_space().decisions) == 24
    for name in ("enas_rnn", "enas_conv", "enas_macro"):
        assert create_space(name).name == name


# --- the recurrent supernet shares its weights --------------------------------------------------


@pytest.fixture
def rnn_net():
    return RNNSupernet(VOCAB, num_nodes=4, units=8, seed=0)


def test_rnn_subgraphs_read_exactly_their_shared_variables(rnn_net):
    x = _tokens(20).reshape(2, 10)
    used = {}
    for name, spec in (("a", SPEC_A), ("b", SPEC_B)):
        with tf.GradientTape() as tape:
            rnn_net.batch_loss(spec, x, x)
        used[name] = {_vid(v) for v in tape.watched_variables()}
        assert used[name] == {_vid(v) for v in rnn_net.shared_variables(spec)}
    common = used["a"] & used["b"]
    shared_node = rnn_net.node_weights[(1, 0, "tanh")]
    for v in (rnn_net.embedding, rnn_net.kernel, rnn_net.recurrent_kernel, shared_node):
        assert _vid(v) in common  # one tf.Variable serves both subgraphs
    assert _vid(rnn_net.node_weights[(2, 1, "sigmoid")]) in used["a"] - used["b"]
    assert _vid(rnn_net.node_weights[(2, 0, "relu")]) in used["b"] - used["a"]


def test_rnn_compiled_path_matches_subgraph_and_touches_only_it(rnn_net):
    x = _tokens(20).reshape(2, 10)
    y = _tokens(20, seed=1).reshape(2, 10)
    for spec in (SPEC_A, SPEC_B):
        eager = float(rnn_net.batch_loss(spec, x, y)[0])
        compiled = float(rnn_net.fast_loss(spec, x, y)[0])
        assert compiled == pytest.approx(eager, rel=1e-5)
    count = len(rnn_net.trainable_variables)
    space = enas_rnn_space(4)
    rng = np.random.default_rng(0)
    for _ in range(6):  # many sampled architectures: no variable is ever added
        rnn_net.train_step(space.decode(space.sample(rng)), x, y, learning_rate=0.5)
    assert len(rnn_net.trainable_variables) == count
    # A step with A changes the node weight B later reads, and nothing A does not read.
    only_b = rnn_net.node_weights[(2, 0, "relu")]
    shared = rnn_net.node_weights[(1, 0, "tanh")]
    before_b, before_shared = np.array(only_b), np.array(shared)
    loss_b = float(rnn_net.fast_loss(SPEC_B, x, y)[0])
    rnn_net.train_step(SPEC_A, x, y, learning_rate=1.0)
    np.testing.assert_array_equal(np.array(only_b), before_b)
    assert not np.array_equal(np.array(shared), before_shared)
    assert float(rnn_net.fast_loss(SPEC_B, x, y)[0]) != loss_b


def test_derived_cell_inherits_supernet_weights(rnn_net):
    """The standalone ENASRNNCell computes exactly the supernet's subgraph."""
    x = _tokens(24).reshape(3, 8)
    logits, _ = rnn_net.run(SPEC_A, x)
    cell = ENASRNNCell(SPEC_A, 8)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    emb = tf.gather(rnn_net.embedding, x)
    rnn(emb)
    cell.set_weights(rnn_net.export_cell_weights(SPEC_A))
    hs = rnn(emb)
    mine = tf.einsum("btu,vu->btv", hs, rnn_net.embedding) + rnn_net.out_bias
    np.testing.assert_allclose(np.asarray(mine), np.asarray(logits), rtol=1e-5, atol=1e-5)


# --- the conv supernet shares its weights -------------------------------------------------------


def test_conv_supernet_shares_weights():
    net = ConvSupernet(num_nodes=2, num_classes=3, filters=4, input_shape=(8, 8, 3), seed=0)
    count = len(net.trainable_variables)
    a = ENASConvCellSpec(normal=(ENASConvNode((0, 1), ("sep_conv_3x3", "identity")),
                                 ENASConvNode((2, 0), ("sep_conv_5x5", "max_pool_3x3"))),
                         reduction=(ENASConvNode((0, 1), ("sep_conv_3x3", "avg_pool_3x3")),
                                    ENASConvNode((1, 2), ("identity", "identity"))))
    b = ENASConvCellSpec(normal=(ENASConvNode((1, 1), ("sep_conv_3x3", "sep_conv_3x3")),
                                 ENASConvNode((0, 1), ("identity", "identity"))),
                         reduction=a.reduction)
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 4)
    used_a = {_vid(v): v for v in net.used_variables(a, x)}
    used_b = {_vid(v): v for v in net.used_variables(b, x)}
    common = set(used_a) & set(used_b)
    assert common and set(used_a) != set(used_b)
    shared = net.cells[0].ops[0][0]["sep_conv_3x3"].conv.depthwise_kernel
    assert _vid(shared) in common  # node 0, slot a, sep 3x3: read by both, whatever the input
    only_b = [v for k, v in used_b.items() if k not in used_a]
    assert only_b
    before_shared, before_only_b = np.array(shared), _values(only_b)
    net.train_step(a, x, y, learning_rate=0.1)
    assert not np.array_equal(np.array(shared), before_shared)
    for v, old in zip(only_b, before_only_b):
        np.testing.assert_array_equal(np.array(v), old)
    space = enas_conv_space(2)
    for _ in range(3):
        net.accuracy(space.decode(space.sample(rng)), [(x, y)])
    assert len(net.trainable_variables) == count


def test_macro_supernet_shares_weights():
    net = MacroSupernet(num_layers=3, num_classes=3, filters=4, input_shape=(8, 8, 3), seed=0)
    count = len(net.trainable_variables)
    a = ENASMacroSpec.from_dict({"layers": [{"op": "conv_3x3"}, {"op": "sep_conv_5x5"},
                                            {"op": "max_pool_3x3", "skips": [0]}]})
    b = ENASMacroSpec.from_dict({"layers": [{"op": "conv_3x3"}, {"op": "conv_5x5"},
                                            {"op": "avg_pool_3x3", "skips": [0, 1]}]})
    rng = np.random.default_rng(0)
    x = rng.random((4, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 4)
    used_a = {_vid(v): v for v in net.used_variables(a, x)}
    used_b = {_vid(v): v for v in net.used_variables(b, x)}
    shared = net.positions[0].ops["conv_3x3"].conv.kernel
    assert _vid(shared) in set(used_a) & set(used_b)  # layer 0's conv 3x3: both read it
    only_b = [v for k, v in used_b.items() if k not in used_a]
    assert _vid(net.positions[1].ops["conv_5x5"].conv.kernel) in set(used_b) - set(used_a)
    before_shared, before_only_b = np.array(shared), _values(only_b)
    net.train_step(a, x, y, learning_rate=0.1)
    assert not np.array_equal(np.array(shared), before_shared)
    for v, old in zip(only_b, before_only_b):
        np.testing.assert_array_equal(np.array(v), old)
    space = enas_macro_space(3)
    for _ in range(3):
        assert 0.0 <= net.accuracy(space.decode(space.sample(rng)), [(x, y)]) <= 1.0
    assert len(net.trainable_variables) == count


# --- ENAS in the one engine --------------------------------------------------------------------

TINY = dict(num_nodes=4, units=8, batch_size=2, seq_len=6, shared_steps=3, controller_steps=2,
            controller_batch=2, derive_samples=3, derive_batches=2, shared_lr=0.5,
            controller_lr=0.05, controller_jit_compile=False)
# 2 epochs x 2 controller steps x m=2 = 8 search trials (ids 0-7), then 3 derive candidates.
SEARCH_TRIALS, TRIALS = 8, 11


def _data():
    return {"train": _tokens(300), "valid": _tokens(200, seed=1), "vocab_size": VOCAB}


def _trials(run_dir):
    from nascell.search.rundir.store import TrialStore
    store = TrialStore(os.path.join(str(run_dir), "trials.sqlite"), readonly=True)
    try:
        return {t.trial_id: t for t in store.trials()}
    finally:
        store.close()


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted two-epoch run (shared by the tests below to save compile time)."""
    return run_enas("enas_rnn", str(tmp_path_factory.mktemp("enas") / "straight"), data=_data(),
                    epochs=2, **TINY)


def test_enas_runs_through_the_one_engine(straight, monkeypatch):
    import json

    from nascell.search.strategies.controller.controller import Controller
    trials = _trials(straight.run_dir)
    assert sorted(trials) == list(range(TRIALS))
    assert all(t.status.value == "done" for t in trials.values())
    assert [trials[i].meta["phase"] for i in range(TRIALS)] == (
        ["search"] * SEARCH_TRIALS + ["derive"] * (TRIALS - SEARCH_TRIALS))
    assert [trials[i].meta["epoch"] for i in range(SEARCH_TRIALS)] == [1] * 4 + [2] * 4
    # The run directory is every search's: config, store, strategy generations, best files.
    run = straight.run_dir
    assert {"config.json", "trials.sqlite", "strategy", "best", "tensorboard"} <= set(
        os.listdir(run))
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["strategy"]["name"] == "enas" and config["evaluator"]["name"] == "supernet"
    assert config["strategy"]["epochs"] == 2 and config["evaluator"]["data"] == "custom"
    gens = sorted(os.listdir(os.path.join(run, "strategy")))
    newest = os.path.join(run, "strategy", gens[-1])
    assert {"strategy_state.json", "supernet.npz", "supernet.json"} <= set(os.listdir(newest))
    # The derived architecture (best derive candidate) is what the best-trial files hold.
    best = json.load(open(os.path.join(run, "best", "best.json")))
    derived = [t for t in trials.values() if t.meta["phase"] == "derive"]
    assert best["trial_id"] == max(derived, key=lambda t: (t.reward, -t.trial_id)).trial_id
    assert ENASRNNCellSpec.from_dict(best["spec"]) == straight.spec
    assert straight.metric == pytest.approx(80.0 / straight.reward)
    # One REINFORCE path: the strategy's, one update per m = 2 search trials.
    state = json.load(open(os.path.join(newest, "strategy_state.json")))
    assert state["enas"]["search_told"] == SEARCH_TRIALS
    assert len(straight.history) == 2 and straight.epochs == 2
    for epoch in straight.history:
        assert epoch["reward"] == pytest.approx(80.0 / epoch["valid_ppl"], rel=0.2)
    monkeypatch.setattr(Controller, "update", lambda *a, **k: pytest.fail("second path"))
    again = run_enas("enas_rnn", run, data=_data(), epochs=2, **TINY)  # finished: no work
    assert again.spec == straight.spec and again.history == straight.history
    from nascell.search.enas import trainer  # the old entry point still works, deprecated
    with pytest.warns(DeprecationWarning,
                      match="removed in nascell 0.3.0; use nascell.search.enas.run_enas"):
        old = trainer.run_enas("enas_rnn", run, data=_data(), epochs=2, **TINY)
    assert old.spec == straight.spec


@pytest.mark.slow
def test_an_interrupted_run_resumes_exactly(tmp_path, straight):
    """Stopped after 4 trials (mid-epoch 1), then resumed from its checkpoint: the same trials,
    rewards and derived cell as the uninterrupted run; each phase touches only its weights."""
    run = str(tmp_path / "resumed")
    run_enas("enas_rnn", run, data=_data(), epochs=2, num_trials=4, **TINY)
    gens = sorted(os.listdir(os.path.join(run, "strategy")))
    resumed = run_enas("enas_rnn", run, data=_data(), epochs=2, **TINY)
    mine, theirs = _trials(run), _trials(straight.run_dir)
    assert sorted(mine) == sorted(theirs)
    for i in theirs:
        assert mine[i].decisions == theirs[i].decisions, i
        assert mine[i].reward == pytest.approx(theirs[i].reward, rel=1e-4), i
    assert resumed.spec == straight.spec
    for key in ("reward", "valid_ppl", "train_loss", "entropy"):
        assert resumed.history[1][key] == pytest.approx(straight.history[1][key], rel=1e-4)
    assert len(gens) == 2  # older strategy generations are pruned as for every strategy
    with pytest.raises(Exception, match="differ"):
        run_enas("enas_rnn", run, data=_data(), epochs=2, **{**TINY, "units": 4})


@pytest.mark.slow
def test_the_phases_touch_only_their_own_weights():
    from nascell.search.core.strategy import create_strategy
    from nascell.search.enas.evaluator import SupernetEvaluator
    space = enas_rnn_space(4)
    evaluator = SupernetEvaluator(units=8, batch_size=2, seq_len=6, shared_lr=0.5,
                                  data=_data())
    strategy = create_strategy("enas", space, epochs=2, shared_steps=3, controller_steps=1,
                               m=2, learning_rate=0.05, jit_compile=False)
    strategy.bind(evaluator.shared_task(space))
    task = strategy.task
    controller, supernet = _values(strategy.controller.weights), _values(task.supernet.weights)
    trials = strategy.ask(2)  # the first epoch's shared phase runs before anything is scored
    assert task.epochs_trained == 1
    for now, old in zip(_values(strategy.controller.weights), controller):
        np.testing.assert_array_equal(now, old)  # shared phase: controller untouched
    assert any(not np.array_equal(n, o) for n, o in zip(_values(task.supernet.weights),
                                                         supernet))
    supernet = _values(task.supernet.weights)
    results = [evaluator.evaluate(t.spec, t.trial_id) for t in trials]
    strategy.tell(trials[0], results[0].reward)
    for now, old in zip(_values(task.supernet.weights), supernet):
        np.testing.assert_array_equal(now, old)  # scoring: shared weights untouched
    assert strategy.controller.updates == 0
    strategy.tell(trials[1], results[1].reward)  # m rewards: one update, and epoch 2 starts
    assert strategy.controller.updates == 1 and task.epochs_trained == 2
    assert trials[0].meta["phase"] == "search"
    last = strategy.ask(3)  # an ask stops at the end of the search phase
    assert [t.meta["phase"] for t in last] == ["search", "search"]
    for t in last:
        strategy.tell(t, evaluator.evaluate(t.spec, t.trial_id).reward)
    updates, weights = strategy.controller.updates, _values(task.supernet.weights)
    derive = strategy.ask(2)
    assert [t.meta["phase"] for t in derive] == ["derive", "derive"]
    for t in derive:  # scored on the derive batches; they train nothing
        strategy.tell(t, evaluator.evaluate(t.spec, t.trial_id).reward)
    assert task.batches_for(derive[0].trial_id) == [0]
    assert strategy.controller.updates == updates and task.epochs_trained == 2
    for now, old in zip(_values(task.supernet.weights), weights):
        np.testing.assert_array_equal(now, old)


@pytest.mark.parametrize("space_name, extra", [("enas_conv", {"num_nodes": 2}),
                                               ("enas_macro", {"num_layers": 3})])
@pytest.mark.slow
def test_image_spaces_search_with_their_supernets(tmp_path, space_name, extra):
    from nascell.enas_cells import ENASConvNet, ENASMacroNet
    rng = np.random.default_rng(0)
    x = rng.random((24, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 24).astype("int32")
    data = {"train": (x[:16], y[:16]), "valid": (x[16:], y[16:]), "num_classes": 3}
    result = run_enas(space_name, str(tmp_path / "run"), data=data, epochs=1, shared_steps=2,
                      controller_steps=1, controller_batch=2, derive_samples=2, filters=4,
                      batch_size=4, controller_jit_compile=False, **extra)
    assert 0.0 <= result.metric <= 1.0 and result.reward == result.metric
    assert result.history[0]["reward"] == result.history[0]["valid_acc"]
    net = (ENASConvNet if space_name == "enas_conv" else ENASMacroNet)(
        result.spec, num_classes=3, filters=4)
    assert tuple(net(x[:2]).shape) == (2, 3)
    trials = _trials(tmp_path / "run")
    assert len(trials) == 4 and trials[3].metrics["input_shape"] == [8, 8, 3]


def test_unknown_space_and_option_errors(tmp_path):
    with pytest.raises(ValueError, match="Argument `space_name` must be one of"):
        run_enas("rnn_cell", str(tmp_path / "m"), data=_data())
    with pytest.raises(ValueError, match="Argument `epoch` must be one of the ENAS settings"):
        run_enas("enas_rnn", str(tmp_path / "o"), data=_data(), epoch=3)
    with pytest.raises(ValueError, match="Argument `epochs` must be an integer >= 1"):
        run_enas("enas_rnn", str(tmp_path / "o"), data=_data(), epochs=0)


def test_enas_strategy_ask_tell_without_a_supernet(tmp_path):
    from nascell.search.core.strategy import create_strategy
    space = enas_rnn_space(4)
    strategy = create_strategy("enas", space, seed=0, learning_rate=0.05, jit_compile=False)
    assert strategy.controller.temperature == 5.0 and strategy.controller.tanh_constant == 2.5
    assert strategy.controller.entropy_weight == 1e-4
    trials = strategy.ask(4)
    assert all(isinstance(t.spec, ENASRNNCellSpec) for t in trials)
    for t in trials:
        strategy.tell(t, 1.0 / (1 + t.spec.loose_ends()[0]))
    assert strategy.controller.updates == 1
    strategy.save(str(tmp_path))
    other = create_strategy("enas", space, seed=0, learning_rate=0.05, jit_compile=False)
    assert other.restore(str(tmp_path))
    assert [t.decisions for t in other.ask(2)] == [t.decisions for t in strategy.ask(2)]
