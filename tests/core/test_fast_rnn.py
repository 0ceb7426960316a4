"""`nascell.RNN` (the fast path: projections hoisted, batched weight gradients) against
``keras.layers.RNN`` running the same cell step by step: same outputs, states and gradients,
the Keras options, serialization, and a `.keras` file written before the fast path existed."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tolerance import ATOL, RTOL, skip_float16_if_onednn_capped

import nascell
from nascell import ENASRNNCell, NASCell, TreeCell
from nascell.enas_spec import ENAS_RNN_ACTIVATIONS, enas_rnn_cell_spec
from nascell.spec import EXTENDED_ACTIVATIONS, EXTENDED_COMBINES, FIGURE5_SPEC, rnn_cell_spec

TOL = dict(rtol=RTOL, atol=ATOL)  # the shared float32 tolerance (tests/tolerance.py)
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def random_tree_spec(rng, base):
    n = 2 * base - 1
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    return rnn_cell_spec(base, [(pick(EXTENDED_COMBINES), pick(EXTENDED_ACTIVATIONS))
                                for _ in range(n)],
                         (pick(EXTENDED_COMBINES), pick(EXTENDED_ACTIVATIONS)),
                         int(rng.integers(n)), int(rng.integers(n)))


def random_enas_spec(rng, num_nodes):
    inputs = [int(rng.integers(j)) for j in range(1, num_nodes)]
    return enas_rnn_cell_spec(inputs, [ENAS_RNN_ACTIVATIONS[rng.integers(4)]
                                       for _ in range(num_nodes)])


def twin_layers(make_cell, input_dim, batch_weight_gradients=True, **rnn_kwargs):
    """The step-by-step and the fast layer around two copies of one cell (same weights).

    The fast layer batches the weight gradients of every product, however small (the default,
    "auto", leaves the tiny kernels of these tests to autograd)."""
    slow = keras.layers.RNN(make_cell(), **rnn_kwargs)
    fast = nascell.RNN(make_cell(), batch_weight_gradients=batch_weight_gradients,
                       **rnn_kwargs)
    slow.build((None, None, input_dim))
    fast.build((None, None, input_dim))
    rng = np.random.default_rng(7)
    weights = [rng.normal(0, 0.5, w.shape).astype("float32") for w in slow.get_weights()]
    slow.set_weights(weights)
    fast.set_weights(weights)
    return slow, fast


def outputs_and_gradients(layer, xs, initial_state=None, mask=None, training=True):
    """The layer's outputs, and the gradients of a function of all of them with respect to
    the inputs, the initial states and every weight, computed in a tf.function as Keras' fit
    does (``training=True``: the batched weight gradients apply in training only)."""
    states = [] if initial_state is None else [tf.constant(s) for s in initial_state]

    @tf.function
    def run(xs, *states):
        with tf.GradientTape() as tape:
            tape.watch([xs, *states])
            outs = layer(xs, initial_state=list(states) or None, mask=mask, training=training)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            loss = sum(tf.reduce_sum(tf.sin(1.3 * (i + 1) * o)) for i, o in enumerate(outs))
        return outs, tape.gradient(loss, [xs, *states, *layer.trainable_weights])

    outs, grads = run(tf.constant(xs), *states)
    assert all(g is not None for g in grads)
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]


def assert_twins_agree(slow, fast, xs, **kwargs):
    want_outs, want_grads = outputs_and_gradients(slow, xs, **kwargs)
    outs, grads = outputs_and_gradients(fast, xs, **kwargs)
    assert len(outs) == len(want_outs) and len(grads) == len(want_grads)
    for got, want in zip(outs + grads, want_outs + want_grads):
        np.testing.assert_allclose(got, want, **TOL)


def tree_cases():
    """(spec, projection, use_bias): every base, with and without projection and bias."""
    rng = np.random.default_rng(2024)
    return [(random_tree_spec(rng, base), projection, use_bias)
            for base, projection, use_bias in [(2, None, True), (2, 3, False), (4, None, False),
                                               (4, 3, True), (8, None, True), (8, 2, False)]]


@pytest.mark.parametrize("spec,projection,use_bias", tree_cases())
def test_fast_path_matches_step_path_on_random_tree_specs(spec, projection, use_bias):
    slow, fast = twin_layers(lambda: TreeCell(spec, 5, projection=projection, use_bias=use_bias),
                             3, return_sequences=True, return_state=True)
    rng = np.random.default_rng(1)
    xs = rng.uniform(-1, 1, (4, 6, 3)).astype("float32")
    h0 = rng.uniform(-1, 1, (4, projection or 5)).astype("float32")
    c0 = rng.uniform(-1, 1, (4, 5)).astype("float32")
    assert_twins_agree(slow, fast, xs, initial_state=[h0, c0])


@pytest.mark.parametrize("num_nodes", [1, 3, 6])
@pytest.mark.slow
def test_fast_path_matches_step_path_on_random_enas_specs(num_nodes):
    spec = random_enas_spec(np.random.default_rng(num_nodes), num_nodes)
    slow, fast = twin_layers(lambda: ENASRNNCell(spec, 4), 3, return_sequences=True,
                             return_state=True)
    xs = np.random.default_rng(2).uniform(-1, 1, (3, 5, 3)).astype("float32")
    assert_twins_agree(slow, fast, xs)


@pytest.mark.parametrize("options", [
    dict(go_backwards=True),
    dict(return_sequences=False),
    dict(zero_output_for_mask=True),
    dict(unroll=True),
    dict(batch_weight_gradients=False),
    dict(batch_weight_gradients="auto"),
])
def test_keras_options_and_masking_match_step_path(options):
    """Masked rows (one stops after 3 steps, one after 1) with each option of the layer."""
    options = dict(dict(return_sequences=True, return_state=True), **options)
    cell = lambda: NASCell(4, projection=3, use_bias=True)  # noqa: E731
    slow, fast = twin_layers(cell, 3, **options)
    xs = np.random.default_rng(3).uniform(-1, 1, (3, 5, 3)).astype("float32")
    mask = tf.constant([[True] * 5, [True] * 3 + [False] * 2, [True] + [False] * 4])
    assert_twins_agree(slow, fast, xs, mask=mask)


@pytest.mark.slow
def test_unknown_batch_and_time_sizes():
    """The search's children read ``(None, None)`` token batches: the batched loop traced
    with neither size known gives the step path's outputs and gradients."""
    slow, fast = twin_layers(lambda: NASCell(5, projection=3), 4, return_sequences=True)
    spec = tf.TensorSpec((None, None, 4), tf.float32)
    results = []
    for layer in (slow, fast):
        @tf.function(input_signature=[spec])
        def run(xs, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(xs)
                loss = tf.reduce_sum(tf.sin(layer(xs, training=True)))
            return loss, tape.gradient(loss, [xs, *layer.trainable_weights])
        results.append([run(np.random.default_rng(n).uniform(-1, 1, (n, n + 3, 4))
                            .astype("float32")) for n in (2, 5)])
    for (want_loss, want_grads), (loss, grads) in zip(*results):
        np.testing.assert_allclose(np.asarray(loss), np.asarray(want_loss), **TOL)
        for got, want in zip(grads, want_grads):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), **TOL)


def test_dropout_draws_the_same_masks_as_the_step_path():
    """Input and recurrent dropout on: same seeds give the same masks, so the same numbers."""
    cell = lambda: TreeCell(FIGURE5_SPEC, 6, dropout=0.4, recurrent_dropout=0.3, seed=5)  # noqa
    slow, fast = twin_layers(cell, 4, return_sequences=True)
    xs = np.random.default_rng(4).uniform(-1, 1, (5, 7, 4)).astype("float32")
    assert_twins_agree(slow, fast, xs, training=True)
    train = np.asarray(fast(xs, training=True))
    assert not np.allclose(train, np.asarray(fast(xs, training=True)))   # a new mask per call
    assert not np.allclose(train, np.asarray(fast(xs)))                  # none at inference
    np.testing.assert_allclose(np.asarray(fast(xs)), np.asarray(slow(xs)), **TOL)


@pytest.mark.slow
def test_training_under_a_mirrored_strategy_matches_step_path():
    """The search trains children under tf.distribute.MirroredStrategy on GPU machines: the
    batched weight gradients must reach its mirrored variables."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    rng = np.random.default_rng(8)
    tokens, targets = rng.integers(0, 12, (4, 6)), rng.integers(0, 12, (4, 6))
    trained = []
    fast = lambda cell, **kwargs: nascell.RNN(cell, batch_weight_gradients=True, **kwargs)  # noqa
    for rnn in (keras.layers.RNN, fast):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = keras.Sequential([
                keras.Input((6,), dtype="int32"), keras.layers.Embedding(12, 5),
                rnn(TreeCell(FIGURE5_SPEC, 4, projection=3), return_sequences=True),
                keras.layers.Dense(12)])
            model.compile(keras.optimizers.SGD(0.5),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(tokens, targets, batch_size=4, epochs=2, verbose=0)
        trained.append(model.get_weights())
    for fast, slow in zip(*trained):
        np.testing.assert_allclose(fast, slow, **TOL)


def test_stateful_layer_carries_its_state_across_calls():
    keras.utils.set_random_seed(0)
    whole = nascell.RNN(TreeCell(FIGURE5_SPEC, 4), return_sequences=True)
    parts = nascell.RNN(TreeCell(FIGURE5_SPEC, 4), return_sequences=True, stateful=True,
                        batch_weight_gradients=True)
    xs = np.random.default_rng(5).uniform(-1, 1, (2, 6, 3)).astype("float32")
    whole(xs[:, :1])
    parts.build((2, None, 3))
    parts.set_weights(whole.get_weights())
    first, second = np.asarray(parts(xs[:, :4])), np.asarray(parts(xs[:, 4:]))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), np.asarray(whole(xs)),
                               **TOL)
    parts.reset_state()
    np.testing.assert_allclose(np.asarray(parts(xs[:, :4])), first, **TOL)


class DoubledTreeCell(TreeCell):
    """A subclass that changes `call` only: the fast path would skip the change."""

    def call(self, inputs, states, training=False):
        return super().call(2.0 * inputs, states, training=training)


def test_cells_without_the_hook_run_step_by_step():
    assert nascell.fast_rnn.has_fast_path(NASCell(3))
    assert not nascell.fast_rnn.has_fast_path(DoubledTreeCell(FIGURE5_SPEC, 3))
    xs = np.random.default_rng(6).uniform(-1, 1, (2, 4, 5)).astype("float32")
    for make_cell in (lambda: keras.layers.SimpleRNNCell(3),
                      lambda: DoubledTreeCell(FIGURE5_SPEC, 3)):
        keras.utils.set_random_seed(0)
        layer = nascell.RNN(make_cell(), return_sequences=True)
        reference = keras.layers.RNN(make_cell(), return_sequences=True)
        layer(xs), reference(xs)
        reference.set_weights(layer.get_weights())
        np.testing.assert_allclose(np.asarray(layer(xs, training=True)),
                                   np.asarray(reference(xs, training=True)), **TOL)


@skip_float16_if_onednn_capped
def test_mixed_precision_runs_step_by_step():
    """Under a mixed policy the cell's variables are float32 and its math float16: the layer
    falls back to the cell's own call, whose Keras autocasting handles that."""
    keras.utils.set_random_seed(0)
    layer = nascell.RNN(TreeCell(FIGURE5_SPEC, 4, dtype="mixed_float16"), return_sequences=True)
    reference = keras.layers.RNN(TreeCell(FIGURE5_SPEC, 4, dtype="mixed_float16"),
                                 return_sequences=True)
    xs = np.random.default_rng(9).uniform(-1, 1, (2, 3, 5)).astype("float16")
    layer(xs), reference(xs)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(layer(xs, training=True), "float32"),
                               np.asarray(reference(xs, training=True), "float32"), atol=1e-3)


def test_fast_path_is_taken(monkeypatch):
    """The whole sequence is projected in one call and the batched recurrence runs."""
    from nascell import batched_grad
    calls = {"project": [], "batched": 0}
    cell = TreeCell(FIGURE5_SPEC, 4)
    original_project, original_batched = cell.project_inputs, batched_grad.batched_rnn

    def project(inputs, training=False):
        calls["project"].append(tuple(inputs.shape))
        return original_project(inputs, training=training)

    def batched(*args, **kwargs):
        calls["batched"] += 1
        return original_batched(*args, **kwargs)

    monkeypatch.setattr(cell, "project_inputs", project)
    monkeypatch.setattr(batched_grad, "batched_rnn", batched)
    layer = nascell.RNN(cell)
    layer(np.zeros((2, 5, 3), "float32"), training=True)
    assert calls == {"project": [(2, 5, 3)], "batched": 1}
    layer(np.zeros((2, 5, 3), "float32"))          # inference: hoisted, autograd loop
    assert calls == {"project": [(2, 5, 3)] * 2, "batched": 1}


def test_auto_batches_only_big_kernels(monkeypatch):
    from nascell import batched_grad
    products = []
    original = batched_grad._product

    def product(x, kernel, kernel_transposed):
        products.append(tuple(kernel.shape))
        return original(x, kernel, kernel_transposed)

    monkeypatch.setattr(batched_grad, "_product", product)
    xs = np.zeros((1, 2, 3), "float32")
    for units, batch_weight_gradients, want in [(8, "auto", []), (8, True, [(8, 64)]),
                                                (128, "auto", [(128, 1024)]), (128, False, [])]:
        products.clear()
        nascell.RNN(NASCell(units), batch_weight_gradients=batch_weight_gradients)(
            xs, training=True)
        assert sorted(set(products)) == want, (units, batch_weight_gradients)
    assert 128 * 1024 >= nascell.fast_rnn.AUTO_MIN_KERNEL_SIZE > 8 * 64
    with pytest.raises(ValueError, match="`batch_weight_gradients`"):
        nascell.RNN(NASCell(4), batch_weight_gradients="yes")


@pytest.mark.slow
def test_fit_with_mask_zero_embedding_lowers_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 8, (64, 6))
    tokens[::2, 4:] = 0
    labels = (tokens == 3).any(axis=1).astype("int32")
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        keras.layers.Embedding(8, 8, mask_zero=True),
        nascell.RNN(TreeCell(FIGURE5_SPEC, 8, dropout=0.1, recurrent_dropout=0.1),
                    return_sequences=True, batch_weight_gradients=True),
        nascell.RNN(NASCell(8, projection=6)),
        keras.layers.Dense(2),
    ])
    model.compile(keras.optimizers.Adam(0.02),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(tokens, labels, epochs=12, batch_size=16, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses


def test_config_and_keras_file_round_trip(tmp_path):
    layer = nascell.RNN(NASCell(4, projection=3), return_sequences=True, go_backwards=True,
                        batch_weight_gradients=False, name="fast")
    config = layer.get_config()
    assert config["fast_path"] is True and config["batch_weight_gradients"] is False
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "nascell>RNN"
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5, 2)), layer, keras.layers.Dense(1)])
    model.save(tmp_path / "fast.keras")
    loaded = keras.saving.load_model(tmp_path / "fast.keras")
    assert type(loaded.layers[0]) is nascell.RNN and type(loaded.layers[0].cell) is NASCell
    loaded_config = loaded.layers[0].get_config()
    assert {k: v for k, v in loaded_config.items() if k != "cell"} == {
        k: v for k, v in config.items() if k != "cell"}
    xs = np.random.default_rng(1).uniform(-1, 1, (3, 5, 2)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(xs)), np.asarray(model(xs)))


def test_model_with_batched_layer_exports_a_saved_model(tmp_path):
    keras.utils.set_random_seed(4)
    layer = nascell.RNN(NASCell(6, projection=4), return_sequences=True,
                        batch_weight_gradients=True)
    model = keras.Sequential([keras.Input((None, 3)), layer, keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    xs = np.random.default_rng(2).uniform(-1, 1, (2, 5, 3)).astype("float32")
    model.train_on_batch(xs, np.zeros((2, 5, 2), "float32"))   # the batched path traced
    model.export(str(tmp_path / "saved"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = loaded.serve(xs)
    np.testing.assert_allclose(np.asarray(served), np.asarray(model(xs)), **TOL)


def test_keras_file_of_the_earlier_version_loads_and_converts():
    """`legacy_cells.keras` was written before the fast path (tests/core/data/
    make_legacy_model.py): it loads, predicts what it predicted then, and its layers turned
    into `nascell.RNN` (same cells, same weights) agree, masked steps included."""
    data = np.load(os.path.join(DATA, "legacy_cells.npz"))
    model = keras.saving.load_model(os.path.join(DATA, "legacy_cells.keras"))
    cells = [type(layer.cell) for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    assert cells == [TreeCell, NASCell, ENASRNNCell]
    for inputs, outputs in (("inputs", "outputs"), ("padded", "padded_outputs")):
        np.testing.assert_allclose(model.predict(data[inputs], verbose=0), data[outputs], **TOL)

    x = inputs = keras.Input((None, 3))
    for layer in model.layers[1:]:
        x = (nascell.RNN.from_rnn(layer) if isinstance(layer, keras.layers.RNN) else layer)(x)
    fast = keras.Model(inputs, x)
    assert sum(isinstance(layer, nascell.RNN) for layer in fast.layers) == 3
    for inputs, outputs in (("inputs", "outputs"), ("padded", "padded_outputs")):
        np.testing.assert_allclose(fast.predict(data[inputs], verbose=0), data[outputs], **TOL)


def test_from_rnn_rejects_other_layers():
    with pytest.raises(ValueError, match="`layer`"):
        nascell.RNN.from_rnn(keras.layers.Dense(3))
