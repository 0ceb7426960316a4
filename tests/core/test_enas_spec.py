"""ENAS specs (validation, JSON) and the standalone ENAS layers (math, .keras round trip)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from tolerance import assert_float32_close

from nascell.enas_cells import ENASConvNet, ENASMacroNet, ENASRNNCell
from nascell.enas_spec import (
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroLayer,
    ENASMacroSpec,
    ENASRNNCellSpec,
    ENASRNNNode,
    enas_rnn_cell_spec,
)
from nascell.spec import SpecError, spec_from_json

RNN_SPEC = enas_rnn_cell_spec([0, 0, 1], ["tanh", "relu", "identity", "sigmoid"])
CONV_SPEC = ENASConvCellSpec(
    normal=(ENASConvNode((0, 1), ("sep_conv_3x3", "identity")),
            ENASConvNode((2, 1), ("max_pool_3x3", "sep_conv_5x5"))),
    reduction=(ENASConvNode((0, 1), ("avg_pool_3x3", "identity")),
               ENASConvNode((0, 2), ("identity", "sep_conv_3x3"))))
MACRO_SPEC = ENASMacroSpec(layers=(
    ENASMacroLayer("conv_3x3"), ENASMacroLayer("sep_conv_5x5", (0,)),
    ENASMacroLayer("max_pool_3x3"), ENASMacroLayer("avg_pool_3x3", (0, 2)),
    ENASMacroLayer("conv_5x5", (1,)), ENASMacroLayer("sep_conv_3x3", (3, 0))))


@pytest.mark.parametrize("spec", [RNN_SPEC, CONV_SPEC, MACRO_SPEC])
def test_round_trip_json(spec):
    text = spec.to_json()
    assert type(spec).from_json(text) == spec
    assert spec_from_json(text) == spec  # registered kind: generic dispatch works
    assert json.loads(text)["kind"] == spec.kind


def test_rnn_structure():
    assert RNN_SPEC.num_nodes == 4
    assert RNN_SPEC.inputs == (None, 0, 0, 1)
    assert RNN_SPEC.loose_ends() == [2, 3]


@pytest.mark.parametrize("build, words", [
    (lambda: ENASRNNNode("softplus"), ["'activation'", "softplus", "tanh"]),
    (lambda: ENASRNNCellSpec(nodes=(ENASRNNNode("tanh", 0),)), ["nodes[0].input", "None"]),
    (lambda: ENASRNNCellSpec(nodes=(ENASRNNNode("tanh"), ENASRNNNode("relu", 1))),
     ["nodes[1].input", "[0, 0]"]),
    (lambda: ENASRNNCellSpec(nodes=()), ["'nodes'", "at least one"]),
    (lambda: ENASConvNode((0, 1), ("conv_7x7", "identity")), ["'ops'", "conv_7x7",
                                                              "sep_conv_3x3"]),
    (lambda: ENASConvCellSpec(normal=(ENASConvNode((0, 2), ("identity", "identity")),),
                              reduction=(ENASConvNode((0, 1), ("identity", "identity")),)),
     ["normal[0].inputs", "0..1"]),
    (lambda: ENASConvCellSpec(normal=CONV_SPEC.normal, reduction=CONV_SPEC.reduction[:1]),
     ["'reduction'", "same number"]),
    (lambda: ENASMacroLayer("conv_7x7"), ["'op'", "conv_7x7", "max_pool_3x3"]),
    (lambda: ENASMacroLayer("conv_3x3", (1, 1)), ["'skips'", "distinct"]),
    (lambda: ENASMacroSpec(layers=(ENASMacroLayer("conv_3x3", (0,)),)),
     ["layers[0].skips", "earlier"]),
])
def test_validation_errors_name_field_value_and_fix(build, words):
    with pytest.raises(SpecError) as e:
        build()
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("text, words", [
    ('{"kind": "enas_rnn_cell", "nodes": [{"activation": "tanh", "inputs": 0}]}',
     ["unknown key", "inputs"]),
    ('{"kind": "enas_rnn_cell", "nodes": [{"activation": "tanh"}, {"activation": "x", '
     '"input": 0}]}', ["nodes[1]", "'x'"]),
    ('{"kind": "enas_macro", "layers": [{"op": "conv_3x3", "skips": "0"}]}',
     ["layers[0]", "'skips'"]),
    ('{"kind": "enas_conv_cell", "normal": []}', ["missing key", "reduction"]),
])
def test_json_errors(text, words):
    with pytest.raises(SpecError) as e:
        spec_from_json(text)
    for w in words:
        assert w in str(e.value)


def test_from_json_refuses_another_kind():
    with pytest.raises(SpecError, match="expects kind 'enas_macro'"):
        ENASMacroSpec.from_json(RNN_SPEC.to_json())


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_rnn_cell_computes_the_highway_dag():
    units, dim = 3, 2
    cell = ENASRNNCell(RNN_SPEC, units)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    x = np.random.default_rng(0).normal(size=(2, 4, dim)).astype("float32")
    seq, h_last = rnn(x)
    w = [np.asarray(v) for v in cell.weights]  # kernel, recurrent, node1..3
    acts = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "identity": lambda v: v,
            "sigmoid": _sigmoid}

    def hw(p, h_in, act):
        c = _sigmoid(p[:, :units])
        return c * acts[act](p[:, units:]) + (1 - c) * h_in

    h = np.zeros((2, units), np.float32)
    for t in range(4):
        outs = [hw(x[:, t] @ w[0] + h @ w[1], h, "tanh")]
        for i, (src, act) in enumerate([(0, "relu"), (0, "identity"), (1, "sigmoid")], 1):
            outs.append(hw(outs[src] @ w[1 + i], outs[src], act))
        h = (outs[2] + outs[3]) / 2  # loose ends 2 and 3
        assert_float32_close(seq[:, t], h)
    assert_float32_close(h_last, h)


@pytest.mark.slow
def test_layers_reload_from_keras_files_in_a_fresh_process(tmp_path):
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(2, 5, 3)).astype("float32")
    img = rng.random((2, 16, 16, 3)).astype("float32")
    models = {
        "rnn": keras.Sequential([keras.Input((5, 3)),
                                 keras.layers.RNN(ENASRNNCell(RNN_SPEC, 6))]),
        "conv": keras.Sequential([keras.Input((16, 16, 3)),
                                  ENASConvNet(CONV_SPEC, num_classes=4, filters=4)]),
        "macro": keras.Sequential([keras.Input((16, 16, 3)),
                                   ENASMacroNet(MACRO_SPEC, num_classes=4, filters=4)]),
    }
    for name, model in models.items():
        x = seq if name == "rnn" else img
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", x)
        np.save(tmp_path / f"{name}_y.npy", np.asarray(model(x, training=False)))
        assert model.count_params() > 0
    code = f"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras
import nascell
for name in ("rnn", "conv", "macro"):
    m = keras.models.load_model(os.path.join({str(tmp_path)!r}, name + ".keras"))
    x = np.load(os.path.join({str(tmp_path)!r}, name + "_x.npy"))
    y = np.load(os.path.join({str(tmp_path)!r}, name + "_y.npy"))
    np.testing.assert_allclose(np.asarray(m(x, training=False)), y, rtol=1e-5, atol=1e-5)
    assert type(m.layers[-1]).__name__ in ("RNN", "ENASConvNet", "ENASMacroNet")
print("OK")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout


def test_layer_config_holds_the_spec():
    cell = ENASRNNCell(RNN_SPEC.to_json(), 4)
    config = cell.get_config()
    assert config["spec"] == RNN_SPEC.to_dict()
    assert ENASRNNCell.from_config(config).spec == RNN_SPEC
    with pytest.raises(SpecError, match="ENASRNNCellSpec"):
        ENASRNNCell(MACRO_SPEC, 4)
