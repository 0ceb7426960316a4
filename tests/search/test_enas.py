"""ENAS: spaces, weight sharing in the supernets, the two-phase alternation, resume, derive."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nascell.enas_cells import ENASRNNCell
from nascell.enas_spec import (ENASConvCellSpec, ENASConvNode, ENASMacroSpec, ENASRNNCellSpec,
                               enas_rnn_cell_spec)
from nascell.search.enas.conv_supernet import ConvSupernet
from nascell.search.enas.rnn_supernet import RNNSupernet
from nascell.search.enas.trainer import ENASOptions, ENASTrainer, run_enas
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
    assert enas_rnn_space().decode(enas_rnn_space().sample(np.random.default_rng(1))).num_nodes == 12
    # 4 activations per node and i choices for node i: 4**12 * 11!
    assert enas_rnn_space().num_architectures() == 4 ** 12 * 39916800
    assert enas_conv_space().decode(enas_conv_space().sample(np.random.default_rng(1))).num_nodes == 5
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


# --- the ENAS loop -----------------------------------------------------------------------------

TINY = dict(num_nodes=4, units=8, batch_size=2, seq_len=6, shared_steps=3, controller_steps=2,
            controller_batch=2, derive_samples=3, derive_batches=2, shared_lr=0.5,
            controller_lr=0.05, controller_jit_compile=False)


def _data():
    return {"train": _tokens(300), "valid": _tokens(200, seed=1), "vocab_size": VOCAB}


def _candidates(run_dir):
    from nascell.search.run_dir import RunDir
    run = RunDir.open_existing(str(run_dir))
    try:
        return [t.spec for t in run.store.trials() if t.meta.get("epoch") == 2]
    finally:
        run.close()


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted two-epoch run (shared by the tests below to save compile time)."""
    return run_enas("enas_rnn", str(tmp_path_factory.mktemp("enas") / "straight"), data=_data(),
                    epochs=2, **TINY)


def test_run_resumes_and_phases_update_only_their_own_weights(tmp_path, straight):
    run = tmp_path / "resumed"
    first = run_enas("enas_rnn", str(run), data=_data(), epochs=1, **TINY)
    assert first.epochs == 1
    # Resume by hand, so that each phase can be checked on its own.
    trainer = ENASTrainer("enas_rnn", str(run), ENASOptions(epochs=2, **TINY), data=_data())
    try:
        assert trainer.resumed_from == 1 and trainer.epoch == 1
        controller = _values(trainer.controller.weights)
        supernet = _values(trainer.task.supernet.weights)
        loss = trainer.train_shared(TINY["shared_steps"])
        for now, old in zip(_values(trainer.controller.weights), controller):
            np.testing.assert_array_equal(now, old)  # phase 1: controller bit-identical
        assert any(not np.array_equal(n, o) for n, o in
                   zip(_values(trainer.task.supernet.weights), supernet))
        supernet = _values(trainer.task.supernet.weights)
        updates = trainer.controller.updates
        stats = trainer.train_controller(TINY["controller_steps"])
        for now, old in zip(_values(trainer.task.supernet.weights), supernet):
            np.testing.assert_array_equal(now, old)  # phase 2: shared weights bit-identical
        assert any(not np.array_equal(n, o) for n, o in
                   zip(_values(trainer.controller.weights), controller))
        assert trainer.controller.updates == updates + TINY["controller_steps"]
        assert stats["reward"] == pytest.approx(80.0 / stats["valid_ppl"], rel=0.2)
        trainer.end_epoch(loss, stats)
        resumed = trainer.derive()
    finally:
        trainer.close()
    assert resumed.epochs == 2 and len(resumed.history) == 2
    # The interrupted run continued exactly where it stopped: same data, same samples.
    for key in ("reward", "valid_ppl", "train_loss", "entropy"):
        assert resumed.history[1][key] == pytest.approx(straight.history[1][key], rel=1e-4)
    # Derivation samples the same candidates (the winner among near-ties may differ by float
    # noise, so compare the candidates and the best score).
    assert _candidates(tmp_path / "resumed") == _candidates(straight.run_dir)
    assert resumed.metric == pytest.approx(straight.metric, rel=1e-3)
    assert isinstance(resumed.spec, ENASRNNCellSpec)
    run = tmp_path / "resumed"
    assert sorted(os.listdir(run / "enas")) == ["current.json", "derived.json", "gen-000001",
                                                 "gen-000002"]
    assert os.listdir(run / "tensorboard")
    import json
    best = json.loads((run / "best" / "best.json").read_text())
    assert ENASRNNCellSpec.from_dict(best["spec"]) == resumed.spec
    # A finished run returns its stored result without training again.
    again = run_enas("enas_rnn", str(run), data=_data(), epochs=2, **TINY)
    assert again.spec == resumed.spec and again.metric == resumed.metric
    with pytest.raises(Exception, match="differ"):
        run_enas("enas_rnn", str(run), data=_data(), epochs=2, **{**TINY, "units": 4})


def test_derived_cell_round_trips_as_keras_file(tmp_path, straight):
    # The ENAS layer also saves as a plain .keras file (nascell.export handles ENAS specs too).
    result = straight
    model = keras.Sequential([keras.Input((5, 3)),
                              keras.layers.RNN(ENASRNNCell(result.spec, 6))])
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    model.save(tmp_path / "cell.keras")
    back = keras.models.load_model(tmp_path / "cell.keras")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(model(x)), rtol=1e-6)
    assert back.layers[-1].cell.spec == result.spec


def test_conv_enas_run_derives_a_buildable_network(tmp_path):
    from nascell.enas_cells import ENASConvNet
    rng = np.random.default_rng(0)
    x = rng.random((24, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, 24).astype("int32")
    data = {"train": (x[:16], y[:16]), "valid": (x[16:], y[16:]), "num_classes": 3}
    result = run_enas("enas_conv", str(tmp_path / "run"), data=data, epochs=1, shared_steps=2,
                      controller_steps=1, controller_batch=2, derive_samples=2,
                      derive_batches=1, num_nodes=2, filters=4, batch_size=4,
                      controller_jit_compile=False)
    assert isinstance(result.spec, ENASConvCellSpec) and 0.0 <= result.metric <= 1.0
    assert result.history[0]["reward"] == result.history[0]["valid_acc"]
    net = ENASConvNet(result.spec, num_classes=3, filters=4)
    assert tuple(net(x[:2]).shape) == (2, 3)


def test_unknown_space_and_option_errors(tmp_path):
    with pytest.raises(ValueError, match="macro space has no supernet"):
        run_enas("enas_macro", str(tmp_path / "m"), data=_data())
    with pytest.raises(ValueError, match="unknown option"):
        run_enas("enas_rnn", str(tmp_path / "o"), data=_data(), epoch=3)


def test_enas_strategy_ask_tell(tmp_path):
    from nascell.search.strategy import create_strategy
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
