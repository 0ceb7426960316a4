"""Export of the three ENAS spec kinds (enas_rnn_cell, enas_conv_cell, enas_macro): the folder,
round trips to the float32 tolerance (the SavedModel with TensorFlow alone, the .keras file,
`load`), fine-tuning with Adam, a derived cell from an ENAS run (`export_best`,
`nascell-export --run_dir`: its weights cut from the run's last supernet checkpoint), and the
translation example on a one-state cell. (Over 400 lines: one module-scoped fixture of
exported ENAS layers serves most tests here; splitting the file would export and trace them
twice.)"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nascell.enas_cells import ENASConvNet, ENASMacroNet, ENASRNNCell
from nascell.enas_spec import (
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroLayer,
    ENASMacroSpec,
    ENASRNNCellSpec,
    enas_rnn_cell_spec,
)
from nascell.export import export_spec, load
from nascell.search.handover import export_best

# Node 1 and node 3 both read node 0 ... loose ends 2 and 3 are averaged.
RNN_SPEC = enas_rnn_cell_spec([0, 1, 0], ["tanh", "relu", "sigmoid", "identity"])
CONV_SPEC = ENASConvCellSpec(
    normal=(ENASConvNode((0, 1), ("sep_conv_3x3", "identity")),
            ENASConvNode((2, 0), ("max_pool_3x3", "avg_pool_3x3"))),
    reduction=(ENASConvNode((1, 0), ("sep_conv_5x5", "max_pool_3x3")),
               ENASConvNode((0, 1), ("identity", "avg_pool_3x3"))))
MACRO_SPEC = ENASMacroSpec(layers=(
    ENASMacroLayer("conv_3x3"), ENASMacroLayer("sep_conv_3x3", (0,)),
    ENASMacroLayer("max_pool_3x3"), ENASMacroLayer("conv_5x5", (0, 2))))
IMAGE_SHAPE = (8, 8, 3)


@pytest.fixture(scope="module")
def enas_exports(tmp_path_factory, randomize):
    """The three ENAS layers with random weights, exported from the layers themselves;
    ``refs`` files hold inputs and the source layers' outputs."""
    root = tmp_path_factory.mktemp("enas_exports")
    out = {}
    rng = np.random.RandomState(1)

    cell = ENASRNNCell(RNN_SPEC, units=6)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    rnn.build((None, None, 4))
    randomize(rnn, 0)
    x = rng.randn(3, 5, 4).astype("float32")
    h0 = rng.randn(3, 6).astype("float32")
    refs = {"x": x, "h0": h0}
    refs["seq_outputs"], refs["seq_h"] = [np.asarray(t) for t in rnn(x)]
    refs["state_outputs"], refs["state_h"] = [np.asarray(t) for t in
                                              rnn(x, initial_state=[h0])]
    output, (h,) = cell(x[:, 0], [h0])
    refs["step_output"], refs["step_h"] = np.asarray(output), np.asarray(h)
    out["enas_rnn_cell"] = (export_spec(rnn, str(root / "rnn")), refs)

    images = rng.randn(2, *IMAGE_SHAPE).astype("float32")
    for kind, net in (("enas_conv_cell", ENASConvNet(CONV_SPEC, filters=4, include_top=False)),
                      ("enas_macro", ENASMacroNet(MACRO_SPEC, filters=4, include_top=False))):
        net.build((None,) + IMAGE_SHAPE)
        randomize(net, 2)
        # A SavedModel runs as a graph, whose optimizer (its arithmetic rewrites) may
        # reorder float operations: for the micro net that moves the features by about 1e-7
        # from the eager layer, well inside the tests' float32 tolerance.
        refs = {"images": images, "features": np.asarray(net(images, training=False))}
        out[kind] = (export_spec(net, str(root / kind)), refs)

    paths = {}
    for kind, (path, refs) in out.items():
        np.savez(str(root / f"{kind}_refs.npz"), **refs)
        paths[kind] = {"path": path, "refs": str(root / f"{kind}_refs.npz")}
    keras.backend.clear_session()
    return paths


def _meta(path):
    with open(os.path.join(path, "metadata.json")) as f:
        return json.load(f)


def _dot(path):
    with open(os.path.join(path, "architecture.dot")) as f:
        return f.read()


def test_enas_rnn_export_folder(enas_exports):
    path = enas_exports["enas_rnn_cell"]["path"]
    with open(os.path.join(path, "spec.json")) as f:
        assert ENASRNNCellSpec.from_json(f.read()) == RNN_SPEC
    meta = _meta(path)
    assert meta["kind"] == "enas_rnn_cell"
    assert meta["shapes"] == {"input_dim": 4, "units": 6, "h_dim": 6, "state_size": [6]}
    assert meta["layer"]["states"] == ["h"] and "one state" in meta["layer"]["note"]
    assert meta["layer"]["call"] == "outputs, h = layer(inputs[, initial_state=[h]])"
    assert meta["endpoints"]["step"]["inputs"] == [
        {"name": "x", "shape": [None, 4], "dtype": "float32"},
        {"name": "h", "shape": [None, 6], "dtype": "float32"}]
    assert [i["name"] for i in meta["endpoints"]["sequence_with_state"]["inputs"]] == [
        "inputs", "h"]
    assert meta["endpoints"]["sequence"]["outputs"] == {"outputs": [None, None, 6],
                                                        "h": [None, 6]}
    assert meta["weights"]["variables"] == {
        "kernel": [4, 12], "recurrent_kernel": [6, 12], "node1_kernel": [6, 12],
        "node2_kernel": [6, 12], "node3_kernel": [6, 12]}
    assert meta["parameters"] == 4 * 12 + 4 * 6 * 12
    dot = _dot(path)
    assert "x_t -> n0" in dot and "h_prev -> n0" in dot
    assert "n0 -> n1" in dot and "n1 -> n2" in dot and "n0 -> n3" in dot
    assert "n2 -> avg" in dot and "n3 -> avg" in dot and "n1 -> avg" not in dot
    assert "relu (highway)" in dot and "avg -> h_t" in dot


def test_enas_image_export_folders(enas_exports):
    conv, macro = (_meta(enas_exports[k]["path"]) for k in ("enas_conv_cell", "enas_macro"))
    for meta, name in ((conv, "ENASConvNet"), (macro, "ENASMacroNet")):
        assert list(meta["endpoints"]) == ["features"]
        assert meta["shapes"]["input_shape"] == [8, 8, 3]
        assert meta["endpoints"]["features"]["inputs"] == [
            {"name": "images", "shape": [None, 8, 8, 3], "dtype": "float32"}]
        assert meta["layer"]["class"] == f"nascell.enas_cells.{name}"
        assert meta["layer"]["config"]["include_top"] is False
        assert meta["layer"]["config"]["filters"] == 4
    # Micro: three stages of filters 4, 8, 16; in the normal cell node 1 reads node 0, so
    # the last cell's output is its one loose end (node 1), 16 channels.
    assert conv["shapes"]["output_shape"] == [16]
    assert macro["shapes"]["output_shape"] == [4]
    # Weight keys are attribute paths, independent of Keras' per-session layer numbering.
    assert "cells.0/node_ops.0.0/conv/depthwise_kernel" in conv["weights"]["variables"]
    assert "cells.1/pre0/conv_a/kernel" in conv["weights"]["variables"]  # factorized reduce
    assert "layer_ops.3/conv/kernel" in macro["weights"]["variables"]
    assert "skip_bns.3/moving_mean" in macro["weights"]["variables"]
    assert "skip_bns.2/gamma" not in macro["weights"]["variables"]  # layer 2 has no skips
    dot = _dot(enas_exports["enas_conv_cell"]["path"])
    assert "cluster_normal" in dot and "cluster_reduction" in dot
    assert "normal_in0 -> normal_n0_op0" in dot and "normal_n0 -> normal_n1_op0" in dot
    assert "sep_conv_5x5" in dot and "normal_n1 -> normal_out" in dot
    assert "normal_n0 -> normal_out" not in dot
    dot = _dot(enas_exports["enas_macro"]["path"])
    assert "layer 3: conv_5x5" in dot and "skips 0, 2" in dot
    assert "l0 -> l3 [color=\"#c0504d\" style=dashed]" in dot
    assert "image -> stem" in dot and "l3 -> features" in dot


# In a fresh interpreter where `import nascell` fails: the SavedModels with TensorFlow alone.
_WITHOUT_NASCELL = """
r = np.load(refs); out = {}
m = tf.saved_model.load(path + "/saved_model")
out["trainable"] = [v.trainable for v in m.trainable_variables]
if kind == "enas_rnn_cell":
    got = m.sequence(r["x"])
    out["keys"] = sorted(got)
    for k in ("outputs", "h"):
        out["sequence:" + k] = tolerance_used(got[k].numpy(), r["seq_" + k])
    got = m.sequence_with_state(r["x"], r["h0"])
    for k in ("outputs", "h"):
        out["with_state:" + k] = tolerance_used(got[k].numpy(), r["state_" + k])
    got = m.step(r["x"][:, 0], r["h0"])
    for k in ("output", "h"):
        out["step:" + k] = tolerance_used(got[k].numpy(), r["step_" + k])
    sig = m.signatures["step"](x=tf.constant(r["x"][:, 0]), h=tf.constant(r["h0"]))
    out["signature:step_h"] = tolerance_used(sig["h"].numpy(), r["step_h"])
else:
    got = m.features(r["images"])["features"].numpy()
    out["saved_model:features"] = tolerance_used(got, r["features"])
    layer = keras.layers.TFSMLayer(path + "/saved_model", call_endpoint="features")
    got = np.asarray(layer(r["images"])["features"])
    out["tfsm:features"] = tolerance_used(got, r["features"])
"""

# Then in the same interpreter with nascell unblocked: the .keras file and `load`.
_WITH_NASCELL = """
r = np.load(refs); out = {}
model = keras.saving.load_model(path + "/layer.keras")
layer = load(path)
if kind == "enas_rnn_cell":
    for tag, fn in (("keras", model), ("loaded", layer)):
        got = fn(r["x"])
        out[tag + ":n"] = len(got)
        for k, g in zip(("seq_outputs", "seq_h"), got):
            out[tag + ":" + k] = tolerance_used(np.asarray(g), r[k])
    got = layer(r["x"], initial_state=[r["h0"]])
    for k, g in zip(("state_outputs", "state_h"), got):
        out["loaded:" + k] = tolerance_used(np.asarray(g), r[k])
    out["class"] = type(layer.cell).__name__
else:
    out["keras:features"] = tolerance_used(np.asarray(model(r["images"])), r["features"])
    out["loaded:features"] = tolerance_used(np.asarray(layer(r["images"], training=False)),
                                            r["features"])
    out["class"] = type(layer).__name__
"""

_ROUND_TRIP = """
import json, sys, numpy as np, tensorflow as tf, keras
from tolerance import tolerance_used  # tests/tolerance.py, on the PYTHONPATH
results = {{}}
for path, refs, kind in {exports!r}:
    exec(WITHOUT, globals())
    results["without:" + kind] = out
sys.meta_path = [f for f in sys.meta_path if type(f).__name__ != "_BlockNascell"]
import nascell  # registers the ENAS layers for the .keras files
from nascell.export import load
for path, refs, kind in {exports!r}:
    exec(WITH, globals())
    results["with:" + kind] = out
print(json.dumps(results))
"""


@pytest.mark.slow
def test_enas_round_trips_in_fresh_process(enas_exports, tmp_path, run_python):
    """All three kinds in one fresh interpreter: SavedModel without nascell, then .keras and
    `load` with it, each equal to the source layer at the float32 tolerance
    (tests/tolerance.py): another computation (graph, fast path) rounds differently."""
    exports = [(v["path"], v["refs"], k) for k, v in enas_exports.items()]
    code = (f"WITHOUT = {_WITHOUT_NASCELL!r}\nWITH = {_WITH_NASCELL!r}\n"
            + _ROUND_TRIP.format(exports=exports))
    results = run_python(code, cwd=str(tmp_path), block_nascell=True)
    counts = {"enas_rnn_cell": 7 + 6, "enas_conv_cell": 2 + 2, "enas_macro": 2 + 2}
    for kind, checks in counts.items():
        without, with_nascell = results["without:" + kind], results["with:" + kind]
        diffs = {k: v for k, v in {**without, **with_nascell}.items()
                 if ":" in k and not k.endswith(":n")}
        # Each value: the share of the tolerance used by the largest difference.
        assert len(diffs) == checks and all(v <= 1.0 for v in diffs.values()), (kind, diffs)
        assert without["trainable"] and all(without["trainable"]), kind
    rnn = results["with:enas_rnn_cell"]
    assert results["without:enas_rnn_cell"]["keys"] == ["h", "outputs"]  # no c
    assert rnn["keras:n"] == rnn["loaded:n"] == 2 and rnn["class"] == "ENASRNNCell"
    assert len(results["without:enas_rnn_cell"]["trainable"]) == 5
    assert results["with:enas_conv_cell"]["class"] == "ENASConvNet"
    assert results["with:enas_macro"]["class"] == "ENASMacroNet"


@pytest.mark.slow
def test_enas_cell_fine_tunes_with_adam_then_reexports(enas_exports, tmp_path):
    layer = load(enas_exports["enas_rnn_cell"]["path"], return_state=False)
    assert isinstance(layer.cell, ENASRNNCell) and layer.name == "enas_rnn"
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    rng = np.random.RandomState(0)
    x = rng.randn(16, 6, 4).astype("float32")
    y = np.cumsum(x[..., :1], axis=1).astype("float32") * 0.3
    before_weights = layer.cell.node_kernels[2].numpy().copy()
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.8 * before, (before, after)
    assert not np.array_equal(layer.cell.node_kernels[2].numpy(), before_weights)

    path = export_spec(model, str(tmp_path / "tuned"))  # the cell is found inside the model
    again = load(path, return_state=False)
    assert np.abs(np.asarray(again(x)) - np.asarray(layer(x))).max() == 0
    assert _meta(path)["weights"]["source"] == "layer 'enas_rnn_cell'"


def test_enas_image_net_reexports_exactly(enas_exports, tmp_path):
    kind = "enas_macro"  # the micro net takes the same path, only slower to build
    refs = np.load(enas_exports[kind]["refs"])
    layer = load(enas_exports[kind]["path"])
    path = export_spec(layer, str(tmp_path / "again"))
    again = load(path)
    got = np.asarray(again(refs["images"], training=False))
    assert np.abs(got - refs["features"]).max() == 0
    assert _meta(path)["layer"]["config"] == _meta(enas_exports[kind]["path"])["layer"]["config"]


def test_enas_bad_arguments_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="projection is for tree cells"):
        export_spec(RNN_SPEC, str(tmp_path / "a"), units=3, input_dim=2, projection=2)
    with pytest.raises(ValueError, match="Argument `units` must be a positive integer. "
                       "Received: units=None. It is required"):
        export_spec(RNN_SPEC.to_json(), str(tmp_path / "b"), input_dim=2)
    with pytest.raises(ValueError, match="Argument `input_shape` must be .* It is required"):
        export_spec(CONV_SPEC.to_dict(), str(tmp_path / "c"))
    with pytest.raises(ValueError, match="Argument `units` must be left out for a spec of kind "
                       "'enas_macro'"):
        export_spec(MACRO_SPEC, str(tmp_path / "d"), input_shape=(8, 8, 3), units=3)
    with pytest.raises(ValueError, match="layer_config does not fit"):
        export_spec(MACRO_SPEC, str(tmp_path / "e"), input_shape=(8, 8, 3),
                    layer_config={"num_cells": 2})
    assert os.listdir(tmp_path) == []


# --- a derived cell from an ENAS run --------------------------------------------------------------

TINY = dict(num_nodes=3, units=5, batch_size=2, seq_len=4, shared_steps=2, controller_steps=1,
            controller_batch=2, derive_samples=2, derive_batches=1, shared_lr=0.5,
            controller_lr=0.05, controller_jit_compile=False)


@pytest.fixture(scope="module")
def enas_run(tmp_path_factory):
    from nascell.search.enas import run_enas
    rng = np.random.default_rng(0)
    data = {"train": rng.integers(0, 12, 120).astype(np.int32),
            "valid": rng.integers(0, 12, 60).astype(np.int32), "vocab_size": 12}
    run_dir = str(tmp_path_factory.mktemp("enas_run") / "run")
    result = run_enas("enas_rnn", run_dir, data=data, epochs=1, **TINY)
    return run_dir, result


def test_export_best_of_an_enas_run(enas_run, tmp_path):
    run_dir, result = enas_run
    path = export_best(run_dir)
    assert path == os.path.join(run_dir, "export", "best")
    with open(os.path.join(run_dir, "best", "best.json")) as f:
        best = json.load(f)
    assert load_spec_of(path) == ENASRNNCellSpec.from_dict(best["spec"]) == result.spec
    meta = _meta(path)
    assert meta["kind"] == "enas_rnn_cell"
    assert meta["shapes"]["units"] == 5 and meta["shapes"]["input_dim"] == 5  # tied embedding
    assert meta["provenance"]["trial_id"] == best["trial_id"]
    # The cell inherits the supernet's weights: it computes the supernet's language model.
    assert meta["weights"]["source"] == "layer 'enas_supernet'"
    assert meta["provenance"]["supernet"].endswith("supernet.npz")
    from nascell.search.enas.rnn_supernet import RNNSupernet
    supernet = RNNSupernet(12, 3, 5)
    with open(meta["provenance"]["supernet"], "rb") as f:
        supernet.load_state_bytes(f.read())
    tokens = np.random.RandomState(0).randint(0, 12, (2, 4))
    want, _ = supernet.run(result.spec, tokens)
    layer = load(path)
    outputs, h = layer(tf.gather(supernet.embedding, tokens))
    assert np.array_equal(np.asarray(outputs)[:, -1], np.asarray(h))
    got = tf.einsum("btu,vu->btv", outputs, supernet.embedding) + supernet.out_bias
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    fresh = export_best(run_dir, directory=str(tmp_path / "fresh"), weights_from=False)
    assert _meta(fresh)["weights"]["source"] == "random initialization"


def load_spec_of(path):
    from nascell.export import load_spec
    return load_spec(path)


def _cli(*args):
    from nascell.export.bin import export as cli
    from nascell.search.handover import exporting
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", *args])
    return cli.main(["nascell-export"], run_source=exporting.RUN_SOURCE)


def test_cli_on_enas_run_and_spec_file(enas_run, tmp_path, capsys):
    from absl import app
    run_dir, result = enas_run
    assert _cli(f"--run_dir={run_dir}", f"--out={tmp_path / 'best'}") == 0
    assert "exported enas_rnn_cell spec" in capsys.readouterr().out
    assert load_spec_of(str(tmp_path / "best")) == result.spec
    spec_file = tmp_path / "cell.json"
    spec_file.write_text(RNN_SPEC.to_json())
    assert _cli(f"--spec_json={spec_file}", "--units=3", "--input_dim=2",
                f"--out={tmp_path / 'cell'}") == 0
    assert _meta(str(tmp_path / "cell"))["shapes"]["state_size"] == [3]
    macro_file = tmp_path / "macro.json"
    macro_file.write_text(MACRO_SPEC.to_json())
    with pytest.raises(app.UsageError, match="Argument `--projection` must be left out .*"
                       "projection is for tree cells"):
        _cli(f"--spec_json={spec_file}", "--units=3", "--input_dim=2", "--projection=2",
             f"--out={tmp_path / 'x'}")
    with pytest.raises(app.UsageError, match="Argument `--input_shape` must be .* Received: "
                       "no --input_shape"):
        _cli(f"--spec_json={macro_file}", f"--out={tmp_path / 'y'}")
    with pytest.raises(app.UsageError, match="Argument `--units` must be left out for a spec "
                       "of kind 'enas_macro'"):
        _cli(f"--spec_json={macro_file}", "--input_shape=8,8,3", "--units=3",
             f"--out={tmp_path / 'z'}")


def test_export_sizes_of_an_enas_image_run(tmp_path):
    """An image ENAS run records the supernet's filters and num_cells (and the images' shape in
    each trial's metrics, or CIFAR-10's for a run on it); export takes them from there."""
    import dataclasses

    from nascell.search import handover
    config = {"strategy": {"name": "enas", "units": 100},
              "evaluator": {"name": "supernet", "dataset": None, "units": 64, "filters": 6,
                            "num_cells": 2, "data": "custom"}}
    info = handover.ExportRecord(spec=CONV_SPEC, config=config,
                                 metrics={"input_shape": [8, 8, 3]})
    assert handover.export_sizes(info) == {
        "layer_config": {"filters": 6, "num_cells": 2}, "input_shape": (8, 8, 3)}
    config["evaluator"].update(dataset="cifar10", data=None)
    assert handover.export_sizes(dataclasses.replace(info, metrics={})) == {
        "layer_config": {"filters": 6, "num_cells": 2}, "input_shape": (32, 32, 3)}
    assert handover.export_sizes(dataclasses.replace(info, spec=MACRO_SPEC)) == {
        "layer_config": {"filters": 6}, "input_shape": (8, 8, 3)}
    # a recurrent run: the supernet's width (not the controller's), tied embedding
    assert handover.export_sizes(dataclasses.replace(info, spec=RNN_SPEC)) == {
        "units": 64, "input_dim": 64}


# --- the translation example on a one-state cell ----------------------------------------------


def test_translate_with_exported_enas_cell(tmp_path):
    """translate.py builds its encoder-decoder from the export folder of a cell with one
    state: the encoder's final ``h`` starts the decoder, and gradients reach both cells."""
    import importlib.util
    import sys
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "examples")
    spec = importlib.util.spec_from_file_location("nascell_example_translate_enas",
                                                  os.path.join(examples, "translate.py"))
    translate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = translate
    spec.loader.exec_module(translate)
    export_dir = export_spec(RNN_SPEC, str(tmp_path / "cell"), units=8, input_dim=6)
    cfg = translate.Config(export_dir=export_dir)
    model = translate.build_model(cfg, src_vocab=10, tgt_vocab=11, workdir=str(tmp_path))
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    assert isinstance(encoder.cell, ENASRNNCell) and isinstance(decoder.cell, ENASRNNCell)
    rng = np.random.RandomState(0)
    src = rng.randint(1, 10, (4, 5)).astype("int32")
    tgt = rng.randint(1, 11, (4, 6)).astype("int32")
    with tf.GradientTape() as tape:
        logits = model([src, tgt])
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            tgt, logits, from_logits=True))
    assert tuple(logits.shape) == (4, 6, 11) and np.isfinite(float(loss))
    grads = tape.gradient(loss, [encoder.cell.kernel, decoder.cell.kernel])
    assert all(g is not None and np.abs(np.asarray(g)).max() > 0 for g in grads)
