"""NASCell: TensorFlow's golden values, its fixed spec and serialization."""

import keras
import numpy as np
import pytest

import nascell
from nascell.nas_cell import NASCell
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC
from nascell.tree_cell import TreeCell

# From TensorFlow's own NASCell test (tf.contrib.rnn, rnn_cell_test.py), as in docs/tree_cell.md.
GOLDEN = {
    None: {"output": [0.576751, 0.618936, 0.627393],
           "c": [0.7157977, 0.7804162, 0.7945764]},
    5: {"output": [1.697418, 1.840037, 1.873985],
        "c": [0.69855207, 0.77073824, 0.78973997]},
}


@pytest.mark.parametrize("projection", [None, 5])
def test_golden_values_of_tensorflow(projection):
    half = keras.initializers.Constant(0.5)
    cell = NASCell(6, projection=projection, kernel_initializer=half,
                   recurrent_initializer=half, projection_initializer=half)
    assert not cell.use_bias
    x = np.array([[1.0] * 4, [2.0] * 4, [3.0] * 4], "float32")
    h = np.full((3, projection or 6), 0.1, "float32")
    c = np.full((3, 6), 0.1, "float32")
    output, (new_h, new_c) = cell(x, [h, c])
    want = GOLDEN[projection]
    expected_output = np.repeat(np.array(want["output"])[:, None], projection or 6, axis=1)
    expected_c = np.repeat(np.array(want["c"])[:, None], 6, axis=1)
    np.testing.assert_allclose(np.asarray(output), expected_output, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_h), expected_output, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_c), expected_c, rtol=0, atol=1e-5)
    names = sorted(w.path.split("/")[-1] for w in cell.weights)
    assert names == sorted(["kernel", "recurrent_kernel"] + (["projection_kernel"]
                                                             if projection else []))


@pytest.mark.parametrize("projection", [None, 5])
def test_golden_values_on_the_fast_path(projection):
    """The same numbers from a one-step sequence through nascell.RNN (x W hoisted)."""
    half = keras.initializers.Constant(0.5)
    cell = NASCell(6, projection=projection, kernel_initializer=half,
                   recurrent_initializer=half, projection_initializer=half)
    layer = nascell.RNN(cell, return_state=True, batch_weight_gradients=True)
    x = np.array([[1.0] * 4, [2.0] * 4, [3.0] * 4], "float32")[:, None, :]
    h = np.full((3, projection or 6), 0.1, "float32")
    c = np.full((3, 6), 0.1, "float32")
    output, new_h, new_c = layer(x, initial_state=[h, c], training=True)
    want = GOLDEN[projection]
    expected_output = np.repeat(np.array(want["output"])[:, None], projection or 6, axis=1)
    np.testing.assert_allclose(np.asarray(output), expected_output, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_h), expected_output, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_c),
                               np.repeat(np.array(want["c"])[:, None], 6, axis=1),
                               rtol=0, atol=1e-5)


def test_nas_cell_is_tree_cell_of_nas_spec():
    cell = NASCell(4)
    assert isinstance(cell, TreeCell)
    assert cell.spec == NAS_CELL_SPEC
    assert cell.state_size == [4, 4] and cell.output_size == 4
    assert NASCell(4, projection=2).state_size == [2, 4]
    # It equals a TreeCell of the same spec with the same weights.
    tree = TreeCell(NAS_CELL_SPEC, 4, use_bias=False)
    cell.build((None, 3))
    tree.build((None, 3))
    tree.set_weights(cell.get_weights())
    rng = np.random.default_rng(0)
    x, h, c = (rng.uniform(-1, 1, (2, n)).astype("float32") for n in (3, 4, 4))
    np.testing.assert_array_equal(np.asarray(cell(x, [h, c])[0]), np.asarray(tree(x, [h, c])[0]))


def test_nas_cell_rejects_another_spec_and_bad_arguments():
    with pytest.raises(ValueError, match="NAS_CELL_SPEC"):
        NASCell(4, spec=FIGURE5_SPEC)
    assert NASCell(4, spec=NAS_CELL_SPEC).spec == NAS_CELL_SPEC
    with pytest.raises(ValueError, match="`units`"):
        NASCell(0)
    with pytest.raises(ValueError, match="`projection`"):
        NASCell(4, projection=-2)


def test_nas_cell_serialization(tmp_path):
    cell = NASCell(5, projection=3, use_bias=True, recurrent_dropout=0.25, seed=1, name="nas")
    config = cell.get_config()
    assert "spec" not in config
    assert config["units"] == 5 and config["projection"] == 3 and config["use_bias"] is True
    clone = NASCell.from_config(config)
    assert clone.get_config() == config and clone.spec == NAS_CELL_SPEC
    serialized = keras.saving.serialize_keras_object(cell)
    assert serialized["registered_name"] == "nascell>NASCell"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is NASCell and restored.get_config() == config

    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4, 3)), keras.layers.RNN(cell, return_sequences=True)])
    path = tmp_path / "nas.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[0].cell) is NASCell
    xs = np.random.default_rng(1).uniform(-1, 1, (2, 4, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(xs)), np.asarray(model(xs)))
