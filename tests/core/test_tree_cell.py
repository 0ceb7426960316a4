"""TreeCell against an independent numpy reference of docs/tree_cell.md's cell semantics, plus
its Keras behaviour: RNN options, masking, training, dropout, config and `.keras` files."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from tolerance import ATOL, RTOL

import nascell
from nascell.nas_cell import NASCell
from nascell.spec import (
    EXTENDED_ACTIVATIONS,
    EXTENDED_COMBINES,
    FIGURE5_SPEC,
    NAS_CELL_SPEC,
    SpecError,
    rnn_cell_spec,
)
from nascell.tree_cell import TreeCell

TOL = dict(rtol=RTOL, atol=ATOL)  # the shared float32 tolerance (tests/tolerance.py)


# --- the reference: docs/tree_cell.md read literally, node by node, in float64 -----------------

def ref_activation(name, x):
    if name == "identity":
        return x
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.where(x > 0, x, 0.0)
    if name == "sin":
        return np.sin(x)
    raise AssertionError(name)


def ref_combine(name, a, b):
    if name == "add":
        return a + b
    if name == "mult":
        return a * b
    if name == "max":
        return np.where(a > b, a, b)
    raise AssertionError(name)


def ref_step(spec, weights, x, h, c):
    """One step of the cell described by `spec` (a JSON dict); returns (h_t, c_t)."""
    W, U, b, P = weights["kernel"], weights["recurrent_kernel"], weights["bias"], weights["proj"]
    base = spec["base"]
    units = W.shape[1] // base
    nodes = spec["nodes"]
    inject, output = spec["cell_index"]["inject"], spec["cell_index"]["output"]
    inj = spec["cell_inject"]
    seen_by_parent = {}   # node -> the value its parent reads
    c_new = None

    def finish(node, pre):
        nonlocal c_new
        if node == output:
            c_new = pre
        out = ref_activation(nodes[node]["activation"], pre)
        if node == inject:
            out = ref_activation(inj["activation"], ref_combine(inj["combine"], out, c))
        seen_by_parent[node] = out

    for i in range(base):
        cols = slice(i * units, (i + 1) * units)
        x_part = x @ W[:, cols]
        h_part = h @ U[:, cols]
        if b is not None:
            h_part = h_part + b[cols]
        finish(i, ref_combine(nodes[i]["combine"], x_part, h_part))
    first, width, node = 0, base, base   # first node of the level below, and its width
    while width > 1:
        for k in range(width // 2):
            left, right = first + 2 * k, first + 2 * k + 1
            finish(node, ref_combine(nodes[node]["combine"], seen_by_parent[left],
                                     seen_by_parent[right]))
            node += 1
        first, width = first + width, width // 2
    assert node == 2 * base - 1
    h_new = seen_by_parent[2 * base - 2]
    if P is not None:
        h_new = h_new @ P
    return h_new, c_new


def ref_sequence(spec, weights, xs, h, c):
    outputs = []
    for t in range(xs.shape[1]):
        h, c = ref_step(spec, weights, xs[:, t], h, c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


# --- helpers ------------------------------------------------------------------------------------

def random_spec(rng, base, inject=None, output=None):
    n = 2 * base - 1
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    return rnn_cell_spec(
        base, [(pick(EXTENDED_COMBINES), pick(EXTENDED_ACTIVATIONS)) for _ in range(n)],
        (pick(EXTENDED_COMBINES), pick(EXTENDED_ACTIVATIONS)),
        int(rng.integers(n)) if inject is None else inject,
        int(rng.integers(n)) if output is None else output)


def build_random_cell(rng, spec, units, input_dim, projection, use_bias):
    cell = TreeCell(spec, units, projection=projection, use_bias=use_bias)
    cell.build((None, input_dim))
    h_dim = projection or units
    weights = {
        "kernel": rng.normal(0, 0.4, (input_dim, spec.base * units)),
        "recurrent_kernel": rng.normal(0, 0.4, (h_dim, spec.base * units)),
        "bias": rng.normal(0, 0.4, (spec.base * units,)) if use_bias else None,
        "proj": rng.normal(0, 0.4, (units, projection)) if projection else None,
    }
    cell.kernel.assign(weights["kernel"])
    cell.recurrent_kernel.assign(weights["recurrent_kernel"])
    if use_bias:
        cell.bias.assign(weights["bias"])
    if projection:
        cell.projection_kernel.assign(weights["proj"])
    return cell, weights


def random_cases():
    """(spec, projection, use_bias) covering every base, placement and option."""
    rng = np.random.default_rng(1234)
    cases = [(FIGURE5_SPEC, None, True), (NAS_CELL_SPEC, 3, False)]
    for base in (2, 4, 8):
        n, root = 2 * base - 1, 2 * base - 2
        cases += [
            (random_spec(rng, base, inject=0, output=root), None, True),        # leaf inject
            (random_spec(rng, base, inject=base, output=1), 3, False),          # internal
            (random_spec(rng, base, inject=root, output=root), None, False),    # root, c=root
            (random_spec(rng, base, inject=root, output=base - 1), 2, True),    # c from a leaf
            (random_spec(rng, base, inject=n - 2, output=n - 2), None, True),   # same node
        ]
        cases += [(random_spec(rng, base), [None, 4][i % 2], bool(i % 3)) for i in range(3)]
    return cases


# --- numerics against the reference -------------------------------------------------------------

def test_single_step_matches_reference_for_many_specs():
    rng = np.random.default_rng(0)
    cases = random_cases()
    assert {spec.base for spec, _, _ in cases} == {2, 4, 8}
    used = {op for spec, _, _ in cases for node in spec.nodes + (spec.cell_inject,)
            for op in (node.combine, node.activation)}
    assert used == set(EXTENDED_COMBINES) | set(EXTENDED_ACTIVATIONS)
    for spec, projection, use_bias in cases:
        units, input_dim, batch = 5, 3, 4
        cell, weights = build_random_cell(rng, spec, units, input_dim, projection, use_bias)
        x = rng.uniform(-1, 1, (batch, input_dim))
        h = rng.uniform(-1, 1, (batch, projection or units))
        c = rng.uniform(-1, 1, (batch, units))
        out, (h_new, c_new) = cell(x.astype("float32"),
                                   [h.astype("float32"), c.astype("float32")])
        want_h, want_c = ref_step(spec.to_dict(), weights, x, h, c)
        np.testing.assert_allclose(np.asarray(out), want_h, **TOL, err_msg=spec.to_json())
        np.testing.assert_allclose(np.asarray(h_new), want_h, **TOL, err_msg=spec.to_json())
        np.testing.assert_allclose(np.asarray(c_new), want_c, **TOL, err_msg=spec.to_json())
        assert out.shape == (batch, projection or units) and c_new.shape == (batch, units)


def test_reference_is_not_trivially_satisfied():
    """The comparison must be able to fail: a changed op or weight gives other numbers."""
    rng = np.random.default_rng(3)
    spec = FIGURE5_SPEC
    cell, weights = build_random_cell(rng, spec, 4, 3, None, True)
    x, h, c = (rng.uniform(-1, 1, (2, 4)) for _ in range(3))
    x = x[:, :3]
    out, _ = cell(x.astype("float32"), [h.astype("float32"), c.astype("float32")])
    other = dict(spec.to_dict(), cell_inject={"combine": "mult", "activation": "relu"})
    assert not np.allclose(np.asarray(out), ref_step(other, weights, x, h, c)[0], **TOL)
    moved = dict(spec.to_dict(), cell_index={"inject": 1, "output": 1})
    assert not np.allclose(np.asarray(out), ref_step(moved, weights, x, h, c)[0], **TOL)


@pytest.mark.parametrize("rnn", [
    keras.layers.RNN,                                                        # step by step
    lambda cell, **kw: nascell.RNN(cell, batch_weight_gradients=True, **kw),  # the fast path
], ids=["keras_rnn", "nascell_rnn"])
def test_sequence_in_rnn_layer_matches_reference(rnn):
    rng = np.random.default_rng(1)
    for spec, projection, use_bias in random_cases()[::3]:
        units, input_dim, batch, steps = 4, 3, 2, 5
        cell, weights = build_random_cell(rng, spec, units, input_dim, projection, use_bias)
        layer = rnn(cell, return_sequences=True, return_state=True)
        xs = rng.uniform(-1, 1, (batch, steps, input_dim))
        h0 = rng.uniform(-1, 1, (batch, projection or units))
        c0 = rng.uniform(-1, 1, (batch, units))
        seq, h, c = layer(xs.astype("float32"), training=True,
                          initial_state=[h0.astype("float32"), c0.astype("float32")])
        want_seq, want_h, want_c = ref_sequence(spec.to_dict(), weights, xs, h0, c0)
        np.testing.assert_allclose(np.asarray(seq), want_seq, **TOL, err_msg=spec.to_json())
        np.testing.assert_allclose(np.asarray(h), want_h, **TOL)
        np.testing.assert_allclose(np.asarray(c), want_c, **TOL)


# --- Keras behaviour ------------------------------------------------------------------------------

def test_state_and_output_sizes():
    cell = TreeCell(FIGURE5_SPEC, 7)
    assert cell.state_size == [7, 7] and cell.output_size == 7
    cell = TreeCell(NAS_CELL_SPEC, 7, projection=3)
    assert cell.state_size == [3, 7] and cell.output_size == 3
    cell.build((None, 5))
    assert tuple(cell.kernel.shape) == (5, 56)
    assert tuple(cell.recurrent_kernel.shape) == (3, 56)
    assert tuple(cell.bias.shape) == (56,)
    assert tuple(cell.projection_kernel.shape) == (7, 3)
    assert len(TreeCell(FIGURE5_SPEC, 2, use_bias=False).get_initial_state(4)) == 2


def test_rnn_return_sequences_state_and_masking():
    keras.utils.set_random_seed(0)
    layer = keras.layers.RNN(TreeCell(FIGURE5_SPEC, 4, projection=3), return_sequences=True,
                             return_state=True)
    xs = np.random.default_rng(0).uniform(-1, 1, (2, 5, 3)).astype("float32")
    mask = np.array([[True] * 5, [True, True, False, False, False]])
    seq, h, c = layer(xs, mask=mask)
    assert seq.shape == (2, 5, 3) and h.shape == (2, 3) and c.shape == (2, 4)
    # Row 1 stops after two steps: its state is that of the two-step prefix...
    _, h2, c2 = layer(xs[:, :2])
    np.testing.assert_allclose(np.asarray(h)[1], np.asarray(h2)[1], **TOL)
    np.testing.assert_allclose(np.asarray(c)[1], np.asarray(c2)[1], **TOL)
    # ...and masked steps repeat the last output; the unmasked row keeps changing.
    for t in (2, 3, 4):
        np.testing.assert_allclose(np.asarray(seq)[1, t], np.asarray(seq)[1, 1], **TOL)
    assert not np.allclose(np.asarray(h)[0], np.asarray(h2)[0])


@pytest.mark.slow
def test_mask_zero_embedding_model_and_fit_lowers_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 8, (64, 6))
    tokens[::2, 4:] = 0                                   # padded rows
    labels = (tokens == 3).any(axis=1).astype("int32")    # "did token 3 occur?"
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        keras.layers.Embedding(8, 8, mask_zero=True),
        keras.layers.RNN(TreeCell(FIGURE5_SPEC, 8), return_sequences=True),
        keras.layers.RNN(NASCell(8, projection=6)),
        keras.layers.Dense(2),
    ])
    model.compile(keras.optimizers.Adam(0.02),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(tokens, labels, epochs=12, batch_size=16, verbose=0).history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses
    # Padding really is masked: a padded row gives what its unpadded prefix gives.
    def run(x):
        for layer in model.layers:
            x = layer(x)
        return np.asarray(x)
    padded = tokens[0:1]
    assert (padded[0, 4:] == 0).all() and (padded[0, :4] != 0).all()
    np.testing.assert_allclose(run(padded), run(padded[:, :4]), **TOL)
    assert not np.allclose(run(padded), run(padded[:, :3]), **TOL)


def _dropout_probe_cell(**kwargs):
    """A base-2 cell whose h_t is a linear read-out of x_t (input dropout) or h_prev
    (recurrent dropout), so the dropout mask is visible in the outputs."""
    spec = rnn_cell_spec(2, [("add", "identity"), ("add", "identity"), ("add", "identity")],
                         ("mult", "identity"), inject_node=1, output_node=0)
    cell = TreeCell(spec, 16, use_bias=False, kernel_initializer="zeros",
                    recurrent_initializer="zeros", seed=7, **kwargs)
    cell.build((None, 16))
    return cell


def test_input_dropout_is_per_sequence_and_off_at_inference():
    cell = _dropout_probe_cell(dropout=0.5)
    kernel = np.zeros((16, 32), "float32")
    kernel[:, :16] = np.eye(16)          # leaf 0 reads x, leaf 1 is zero: h_t = x_t * mask
    cell.kernel.assign(kernel)
    layer = keras.layers.RNN(cell, return_sequences=True)
    xs = np.ones((8, 6, 16), "float32")
    first = np.asarray(layer(xs, training=True))
    second = np.asarray(layer(xs, training=True))
    for seq in (first, second):
        assert set(np.unique(seq)) <= {0.0, 2.0}
        assert 0.2 < (seq == 0).mean() < 0.8
        for t in range(1, 6):                          # same mask at every step
            np.testing.assert_array_equal(seq[:, t], seq[:, 0])
    assert not np.array_equal(first, second)           # a new mask per call
    np.testing.assert_array_equal(np.asarray(layer(xs)), xs)   # inference: no dropout
    np.testing.assert_array_equal(np.asarray(layer(xs, training=False)), xs)


def test_recurrent_dropout_is_per_sequence_and_off_at_inference():
    cell = _dropout_probe_cell(recurrent_dropout=0.5)
    recurrent = np.zeros((16, 32), "float32")
    recurrent[:, :16] = np.eye(16)       # h_t = h_prev * mask
    cell.recurrent_kernel.assign(recurrent)
    layer = keras.layers.RNN(cell, return_sequences=True)
    xs = np.zeros((8, 4, 16), "float32")
    state = [np.ones((8, 16), "float32"), np.zeros((8, 16), "float32")]
    seq = np.asarray(layer(xs, initial_state=state, training=True))
    kept = seq[:, 0] != 0
    assert 0.2 < kept.mean() < 0.8
    for t in range(4):   # one mask: the same units survive, each step scaling by 1/(1-0.5)
        np.testing.assert_allclose(seq[:, t], np.where(kept, 2.0 ** (t + 1), 0.0))
    np.testing.assert_array_equal(np.asarray(layer(xs, initial_state=state)), 1.0)


def test_config_round_trip_and_spec_forms():
    cell = TreeCell(FIGURE5_SPEC.to_json(), 5, projection=2, use_bias=False, dropout=0.1,
                    recurrent_dropout=0.2, seed=3, kernel_initializer="he_normal", name="tree")
    config = cell.get_config()
    json.dumps(config)   # plain JSON
    assert config["spec"] == FIGURE5_SPEC.to_dict()
    clone = TreeCell.from_config(config)
    assert clone.spec == FIGURE5_SPEC and clone.get_config() == config
    assert TreeCell(FIGURE5_SPEC.to_dict(), 5).spec == FIGURE5_SPEC
    assert TreeCell(FIGURE5_SPEC, 5).spec == FIGURE5_SPEC
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert isinstance(restored, TreeCell) and restored.get_config() == config
    # Same weights give the same numbers.
    x = np.ones((2, 3), "float32")
    states = [np.full((2, 2), 0.3, "float32"), np.full((2, 5), -0.2, "float32")]
    cell.build((None, 3))
    clone.build((None, 3))
    clone.set_weights(cell.get_weights())
    np.testing.assert_array_equal(np.asarray(cell(x, states)[0]), np.asarray(clone(x, states)[0]))


def test_bad_constructor_arguments():
    for bad in [0, -3, 2.5, "8", True, None]:
        with pytest.raises(ValueError, match="`units`"):
            TreeCell(FIGURE5_SPEC, bad)
    for bad in [0, -1, 1.5, "5"]:
        with pytest.raises(ValueError, match="`projection`"):
            TreeCell(FIGURE5_SPEC, 4, projection=bad)
    for name in ("dropout", "recurrent_dropout"):
        for bad in [-0.1, 1.0, 2, "0.5"]:
            with pytest.raises(ValueError, match=f"`{name}`"):
                TreeCell(FIGURE5_SPEC, 4, **{name: bad})
    with pytest.raises(ValueError, match="`spec`"):
        TreeCell(42, 4)
    with pytest.raises(SpecError, match="malformed spec JSON"):
        TreeCell("{not json", 4)
    with pytest.raises(SpecError, match="'base'"):
        TreeCell(dict(FIGURE5_SPEC.to_dict(), base=3), 4)
    with pytest.raises(SpecError, match="'kind'"):
        TreeCell({"kind": "conv", "layers": [{}]}, 4)


_LOAD_IN_FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    import nascell
    model = keras.saving.load_model(sys.argv[1])
    kinds = sorted(type(layer.cell).__name__ for layer in model.layers if hasattr(layer, "cell"))
    print(",".join(kinds))
    np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
""")


@pytest.mark.slow
def test_keras_file_loads_in_fresh_process_with_only_import_nascell(tmp_path):
    keras.utils.set_random_seed(1)
    spec = random_spec(np.random.default_rng(5), 4)
    inputs = keras.Input((5, 3))
    x = keras.layers.RNN(TreeCell(spec, 6, dropout=0.1), return_sequences=True)(inputs)
    x = keras.layers.RNN(NASCell(5, projection=4, use_bias=True))(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    path, data, out = tmp_path / "m.keras", tmp_path / "x.npy", tmp_path / "y.npy"
    model.save(path)
    xs = np.random.default_rng(0).uniform(-1, 1, (4, 5, 3)).astype("float32")
    np.save(data, xs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    result = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, str(path), str(data),
                             str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "NASCell,TreeCell"
    np.testing.assert_array_equal(np.load(out), model.predict(xs, verbose=0))
