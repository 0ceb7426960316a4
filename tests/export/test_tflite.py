"""TensorFlow Lite: the ``step`` endpoint of every recurrent cell kind and the ``features``
endpoint of every image net convert with builtin ops and match the SavedModel to 1e-5; the
``sequence`` endpoints fail with an error naming the op and the way out."""

import os
import shutil
import stat

import numpy as np
import pytest

from nascell.enas_spec import (
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroLayer,
    ENASMacroSpec,
    enas_rnn_cell_spec,
)
from nascell.export.tflite import (
    TFLiteConversionError,
    compare_with_saved_model,
    default_endpoint,
    run_tflite,
    to_tflite,
)
from nascell.spec import rnn_cell_spec

# Every combine (add, mult, max) and activation (identity, tanh, sigmoid, relu, sin).
EXTENDED_CELL = rnn_cell_spec(
    4, [("max", "sin"), ("add", "identity"), ("mult", "relu"), ("max", "tanh"),
        ("add", "sin"), ("max", "sigmoid"), ("mult", "sin")], ("max", "sin"), 5, 6)
ENAS_CELL = enas_rnn_cell_spec([0, 0, 1, 1], ["tanh", "relu", "identity", "sigmoid", "tanh"])
MICRO = ENASConvCellSpec(
    normal=(ENASConvNode((0, 1), ("sep_conv_3x3", "sep_conv_5x5")),
            ENASConvNode((2, 0), ("avg_pool_3x3", "max_pool_3x3"))),
    reduction=(ENASConvNode((1, 0), ("identity", "sep_conv_3x3")),
               ENASConvNode((0, 2), ("max_pool_3x3", "avg_pool_3x3"))))
MACRO = ENASMacroSpec(layers=(
    ENASMacroLayer("conv_3x3"), ENASMacroLayer("sep_conv_5x5", (0,)),
    ENASMacroLayer("max_pool_3x3"), ENASMacroLayer("conv_5x5", (0, 2)),
    ENASMacroLayer("avg_pool_3x3", (1,)), ENASMacroLayer("sep_conv_3x3", (3, 4))))


@pytest.fixture(scope="module")
def more_exports(tmp_path_factory):
    """A tree cell with every op, an ENAS cell and the two ENAS image nets (fresh weights; the
    conv export of conftest covers random batch-norm statistics)."""
    import keras

    from nascell.export import export_spec
    root = tmp_path_factory.mktemp("tflite_exports")
    out = {}
    for name, spec, kwargs in (
            ("extended", EXTENDED_CELL, {"units": 6, "input_dim": 5, "projection": 3}),
            ("enas_cell", ENAS_CELL, {"units": 6, "input_dim": 5}),
            ("micro", MICRO, {"input_shape": (8, 8, 3),
                              "layer_config": {"filters": 4, "num_cells": 1}}),
            ("macro", MACRO, {"input_shape": (8, 8, 3), "layer_config": {"filters": 4}})):
        out[name] = export_spec(spec, str(root / name), **kwargs)
        keras.backend.clear_session()
    return out


def _check(path, endpoint):
    tflite = to_tflite(path, endpoint)
    assert tflite == os.path.join(path, f"{endpoint}.tflite")
    assert os.path.getsize(tflite) > 1000
    return tflite, compare_with_saved_model(path, tflite, endpoint, batch_size=3)


def test_nas_cell_step_converts_and_matches(cell_export):
    path = cell_export["path"]
    assert default_endpoint(path) == "step"
    tflite, diff = _check(path, "step")
    assert diff <= 1e-5
    # Against the Keras layer the export came from, through the interpreter directly.
    refs = np.load(cell_export["refs"])
    out = run_tflite(tflite, x=refs["x"][:, 0], h=refs["h0"], c=refs["c0"])
    np.testing.assert_allclose(out["output"], refs["step_output"], atol=1e-5)
    np.testing.assert_allclose(out["c"], refs["step_c"], atol=1e-5)


def test_conv_features_convert_and_match(conv_export):
    path = conv_export["path"]
    assert default_endpoint(path) == "features"
    tflite, diff = _check(path, "features")
    assert diff <= 1e-5
    refs = np.load(conv_export["refs"])
    out = run_tflite(tflite, "features", images=refs["images"])
    np.testing.assert_allclose(out["features"], refs["features"], atol=1e-5)


@pytest.mark.parametrize("name,endpoint", [("extended", "step"), ("enas_cell", "step"),
                                           ("micro", "features"), ("macro", "features")])
@pytest.mark.slow
def test_every_kind_converts_and_matches(more_exports, name, endpoint):
    path = more_exports[name]
    assert default_endpoint(path) == endpoint
    _, diff = _check(path, endpoint)
    assert diff <= 1e-5, f"{name}: TFLite differs from the SavedModel by {diff}"


def test_every_file_of_an_export_is_as_readable_as_a_new_file(cell_export, tmp_path):
    """A serving process running as another user must be able to read every file: each file
    and folder of an export (with a ``.tflite`` beside it) has the mode an ordinary new file
    or folder gets under this umask, never mkstemp's private 0600."""
    path = shutil.copytree(cell_export["path"], str(tmp_path / "export"))  # keeps the modes
    to_tflite(path, "step")
    with open(tmp_path / "plain", "w"):
        pass
    os.mkdir(tmp_path / "plain_folder")
    file_mode = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    folder_mode = stat.S_IMODE(os.stat(tmp_path / "plain_folder").st_mode)
    seen = []
    for folder, _, names in os.walk(path):
        assert stat.S_IMODE(os.stat(folder).st_mode) == folder_mode, folder
        for name in names:
            mode = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
            assert mode == file_mode, (os.path.join(folder, name), oct(mode), oct(file_mode))
            seen.append(os.path.relpath(os.path.join(folder, name), path))
    assert {"step.tflite", "weights.npz", "spec.json", "metadata.json", "layer.keras",
            "saved_model/saved_model.pb"} <= set(seen)


@pytest.mark.slow
def test_sequence_endpoint_names_the_op_and_the_way_out(cell_export, tmp_path):
    with pytest.raises(TFLiteConversionError) as info:
        to_tflite(cell_export["path"], "sequence", str(tmp_path / "seq.tflite"))
    message = str(info.value)
    assert "tf.TensorListReserve" in info.value.ops
    assert "tf.TensorListReserve" in message and "unknown batch size" in message
    assert "'step'" in message and "select_tf_ops=True" in message
    assert not os.path.exists(tmp_path / "seq.tflite")
    # With TensorFlow ops allowed, it converts (running it needs the Flex delegate).
    path = to_tflite(cell_export["path"], "sequence", str(tmp_path / "seq.tflite"),
                     select_tf_ops=True)
    assert os.path.getsize(path) > 1000


def test_bad_arguments(cell_export, tmp_path):
    with pytest.raises(ValueError, match="Argument `endpoint` must be one of"):
        to_tflite(cell_export["path"], "features")
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        to_tflite(str(tmp_path))
    # A bare SavedModel folder works too; the file goes beside it.
    path = to_tflite(os.path.join(cell_export["path"], "saved_model"), "step")
    assert path == os.path.join(cell_export["path"], "step.tflite")
