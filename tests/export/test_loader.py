"""nascell.export.load: the rebuilt Python layer (trainable with Adam, re-exportable) and its
errors, each naming what is wrong."""

import json
import os
import shutil

import keras
import numpy as np
import pytest
from tolerance import assert_float32_close, float32_close

from nascell.export import ExportFormatError, WeightsMismatchError, export_spec, load
from nascell.spec import SpecError
from nascell.tree_cell import TreeCell


def _copy(export, tmp_path, name="copy"):
    dst = str(tmp_path / name)
    shutil.copytree(export["path"], dst)
    return dst


def test_load_cell_matches_source(cell_export):
    """The loaded cell runs on the fast path (nascell.RNN: one input matmul for the whole
    sequence), the source on keras.layers.RNN (one per step): equal to the float32 tolerance,
    not bitwise (the sums round differently on some CPUs)."""
    refs = np.load(cell_export["refs"])
    layer = load(cell_export["path"])
    assert isinstance(layer, keras.layers.RNN) and isinstance(layer.cell, TreeCell)
    assert layer.cell.units == 6 and layer.cell.projection == 4 and layer.cell.use_bias
    assert all(v.trainable for v in layer.weights) and len(layer.trainable_weights) == 4
    outputs, h, c = layer(refs["x"])
    assert_float32_close(outputs, refs["seq_outputs"])
    assert_float32_close(h, refs["seq_h"])
    assert_float32_close(c, refs["seq_c"])
    # Drop-in form: outputs only.
    plain = load(cell_export["path"], name="plain", return_state=False)
    assert_float32_close(plain(refs["x"]), refs["seq_outputs"])


@pytest.mark.parametrize("damage", ["one_weight", "swapped_gates", "no_bias"])
def test_tolerance_catches_a_wrong_weight(cell_export, damage):
    """The float32 tolerance that the export tests use is tight enough to catch a wrong
    weight (one of 240 input weights off by 1e-3), two swapped nodes (gates) or a lost
    bias."""
    refs = np.load(cell_export["refs"])
    layer = load(cell_export["path"], return_state=False)
    assert float32_close(layer(refs["x"]), refs["seq_outputs"])
    cell = layer.cell
    if damage == "one_weight":
        kernel = cell.kernel.numpy()
        kernel[2, 7] += 1e-3
        cell.kernel.assign(kernel)
    elif damage == "swapped_gates":  # the columns of nodes 0 and 1 (units 6 each)
        kernel = cell.kernel.numpy()
        cell.kernel.assign(np.concatenate([kernel[:, 6:12], kernel[:, :6], kernel[:, 12:]], 1))
    else:
        cell.bias.assign(np.zeros(cell.bias.shape, "float32"))
    assert not float32_close(layer(refs["x"]), refs["seq_outputs"]), damage


def test_load_conv_matches_source_exactly(conv_export):
    """The same layer class with the same weights on the same inputs, in the same process:
    the same ops, so bitwise equal."""
    from nascell.conv import ConvNet
    refs = np.load(conv_export["refs"])
    layer = load(conv_export["path"])
    assert isinstance(layer, ConvNet)
    got = np.asarray(layer(refs["images"], training=False))
    assert np.abs(got - refs["features"]).max() == 0


@pytest.mark.slow
def test_fine_tune_with_adam_then_reexport(cell_export, tmp_path):
    """Adam trains the reloaded layer (the loss drops); the trained layer exports again and
    reloads with exactly its new weights."""
    layer = load(cell_export["path"], return_state=False)
    inputs = keras.Input((None, 5))
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    rng = np.random.RandomState(0)
    x = rng.randn(16, 6, 5).astype("float32")
    y = np.cumsum(x[..., :1], axis=1).astype("float32") * 0.3
    before_weights = layer.cell.kernel.numpy().copy()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.8 * before, (before, after)
    assert not np.array_equal(layer.cell.kernel.numpy(), before_weights)

    path = export_spec(model, str(tmp_path / "tuned"))  # found inside the model
    again = load(path, return_state=False)  # the same ops as `layer`: bitwise equal
    assert np.abs(np.asarray(again(x)) - np.asarray(layer(x))).max() == 0
    with open(os.path.join(path, "metadata.json")) as f:
        assert json.load(f)["weights"]["source"] == "layer 'tree_cell'"


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no export folder at .*nowhere"):
        load(str(tmp_path / "nowhere"))


def test_missing_spec_json(cell_export, tmp_path):
    path = _copy(cell_export, tmp_path)
    os.remove(os.path.join(path, "spec.json"))
    with pytest.raises(FileNotFoundError, match="spec file .*spec.json is missing"):
        load(path)


def test_corrupt_spec_json(cell_export, tmp_path):
    path = _copy(cell_export, tmp_path)
    with open(os.path.join(path, "spec.json"), "w") as f:
        f.write('{"kind": "rnn_cell", "base": 8, "nodes": [')
    with pytest.raises(ExportFormatError, match="spec.json is corrupt"):
        load(path)


def test_spec_with_a_bad_field(cell_export, tmp_path):
    path = _copy(cell_export, tmp_path)
    spec_path = os.path.join(path, "spec.json")
    with open(spec_path) as f:
        data = json.load(f)
    data["nodes"][3]["combine"] = "concat"
    with open(spec_path, "w") as f:
        json.dump(data, f)
    with pytest.raises(SpecError, match=r"spec.json: .*'combine'.*'concat'"):
        load(path)


def test_missing_and_corrupt_weights(cell_export, tmp_path):
    path = _copy(cell_export, tmp_path)
    weights = os.path.join(path, "weights.npz")
    with open(weights, "wb") as f:
        f.write(b"not a zip file")
    with pytest.raises(ExportFormatError, match="weights.npz is unreadable"):
        load(path)
    os.remove(weights)
    with pytest.raises(ExportFormatError, match="weights.npz is missing"):
        load(path)


def test_weights_that_do_not_match_the_spec(cell_export, tmp_path):
    path = _copy(cell_export, tmp_path)
    weights = os.path.join(path, "weights.npz")
    arrays = dict(np.load(weights))
    arrays["recurrent_kernel"] = np.zeros((6, 48), "float32")
    np.savez(weights, **arrays)
    with pytest.raises(WeightsMismatchError,
                       match=r"'recurrent_kernel' has shape \(6, 48\) in the weights but "
                             r"\(4, 48\) in the layer"):
        load(path)
    del arrays["recurrent_kernel"]
    np.savez(weights, **arrays)
    with pytest.raises(WeightsMismatchError, match=r"missing \['recurrent_kernel'\]"):
        load(path)


def test_metadata_sizes_that_do_not_match_the_weights(cell_export, tmp_path):
    path = _copy(cell_export, tmp_path)
    meta_path = os.path.join(path, "metadata.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["shapes"]["input_dim"] = 7
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(WeightsMismatchError, match=r"'kernel' has shape \(5, 48\) .* \(7, 48\)"):
        load(path)
