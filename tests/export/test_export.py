"""export_spec / export_best: the folder, round trips in fresh processes, the SavedModel
without nascell, atomic writes."""

import json
import os

import numpy as np
import pytest
from tolerance import assert_float32_close

from nascell.export import artifacts


def test_cell_export_folder(cell_export):
    path = cell_export["path"]
    for name in ("spec.json", "metadata.json", "weights.npz", "layer.keras",
                 "saved_model/saved_model.pb", "architecture.dot"):
        assert os.path.exists(os.path.join(path, name)), name
    from nascell.spec import NAS_CELL_SPEC, spec_from_json
    with open(os.path.join(path, "spec.json")) as f:
        assert spec_from_json(f.read()) == NAS_CELL_SPEC
    with open(os.path.join(path, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["kind"] == "rnn_cell"
    assert meta["shapes"] == {"input_dim": 5, "units": 6, "projection": 4, "h_dim": 4,
                              "state_size": [4, 6]}
    assert set(meta["endpoints"]) == {"sequence", "sequence_with_state", "step"}
    assert meta["endpoints"]["step"]["inputs"] == [
        {"name": "x", "shape": [None, 5], "dtype": "float32"},
        {"name": "h", "shape": [None, 4], "dtype": "float32"},
        {"name": "c", "shape": [None, 6], "dtype": "float32"}]
    assert [i["name"] for i in meta["endpoints"]["sequence_with_state"]["inputs"]] == [
        "inputs", "h", "c"]
    assert meta["endpoints"]["sequence"]["outputs"]["outputs"] == [None, None, 4]
    assert meta["weights"]["variables"] == {"kernel": [5, 48], "recurrent_kernel": [4, 48],
                                            "bias": [48], "projection_kernel": [6, 4]}
    assert meta["parameters"] == 5 * 48 + 4 * 48 + 48 + 6 * 4
    assert meta["nascell_version"]
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.startswith(".")]


def test_cell_diagram_marks_inject_and_output(cell_export):
    with open(os.path.join(cell_export["path"], "architecture.dot")) as f:
        dot = f.read()
    assert "cell inject" in dot and "add, tanh" in dot
    assert "c_t" in dot and "c_{t-1}" in dot and "h_t" in dot
    # NAS cell: node 8 feeds the inject; node 12's pre-activation is c_t.
    assert "n8 -> inject" in dot and "inject -> n12" in dot and "n12 -> c_t" in dot
    assert "node 14 (root)" in dot


def test_conv_export_folder_and_diagram(conv_export):
    path = conv_export["path"]
    with open(os.path.join(path, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["kind"] == "conv"
    assert list(meta["endpoints"]) == ["features"]
    assert meta["shapes"]["input_shape"] == [9, 8, 3]
    assert meta["endpoints"]["features"]["inputs"] == [
        {"name": "images", "shape": [None, 9, 8, 3], "dtype": "float32"}]
    assert "layer1_bn/moving_mean" in meta["weights"]["variables"]
    with open(os.path.join(path, "architecture.dot")) as f:
        dot = f.read()
    assert "image -> l0" in dot and "l1 -> l3" in dot
    assert "l0 -> l2 [color=\"#c0504d\" style=dashed]" in dot  # a skip connection
    assert "l2 -> features" in dot and "l3 -> features" in dot


# Runs in a fresh interpreter where `import nascell` fails: the SavedModel must work with
# TensorFlow (and Keras' TFSMLayer) alone.
_WITHOUT_NASCELL = """
r = np.load(refs); out = {}
m = tf.saved_model.load(path + "/saved_model")
out["trainable"] = [v.trainable for v in m.trainable_variables]
if kind == "rnn_cell":
    got = m.sequence(r["x"])
    for k in ("outputs", "h", "c"):
        out["sequence:" + k] = tolerance_used(got[k].numpy(), r["seq_" + k])
    got = m.sequence_with_state(r["x"], r["h0"], r["c0"])
    for k in ("outputs", "h", "c"):
        out["with_state:" + k] = tolerance_used(got[k].numpy(), r["state_" + k])
    got = m.step(r["x"][:, 0], r["h0"], r["c0"])
    for k in ("output", "h", "c"):
        out["step:" + k] = tolerance_used(got[k].numpy(), r["step_" + k])
    layer = keras.layers.TFSMLayer(path + "/saved_model", call_endpoint="sequence")
    out["tfsm:outputs"] = tolerance_used(np.asarray(layer(r["x"])["outputs"]), r["seq_outputs"])
    sig = m.signatures["step"](x=tf.constant(r["x"][:, 0]), h=tf.constant(r["h0"]),
                               c=tf.constant(r["c0"]))
    out["signature:step_c"] = tolerance_used(sig["c"].numpy(), r["step_c"])
else:
    got = m.features(r["images"])["features"].numpy()
    out["saved_model:features"] = tolerance_used(got, r["features"])
    layer = keras.layers.TFSMLayer(path + "/saved_model", call_endpoint="features")
    got = np.asarray(layer(r["images"])["features"])
    out["tfsm:features"] = tolerance_used(got, r["features"])
"""

# Then, in the same fresh interpreter with nascell unblocked: the .keras file and `load`.
_WITH_NASCELL = """
r = np.load(refs); out = {}
model = keras.saving.load_model(path + "/layer.keras")
layer = load(path)
if kind == "rnn_cell":
    for tag, fn in (("keras", model), ("loaded", layer)):
        for k, g in zip(("seq_outputs", "seq_h", "seq_c"), fn(r["x"])):
            out[tag + ":" + k] = tolerance_used(np.asarray(g), r[k])
    got = layer(r["x"], initial_state=[r["h0"], r["c0"]])
    for k, g in zip(("state_outputs", "state_h", "state_c"), got):
        out["loaded:" + k] = tolerance_used(np.asarray(g), r[k])
    out["trainable"] = len(layer.trainable_weights)
else:
    out["keras:features"] = tolerance_used(np.asarray(model(r["images"])), r["features"])
    out["loaded:features"] = tolerance_used(np.asarray(layer(r["images"], training=False)),
                                            r["features"])
"""

_ROUND_TRIP = """
import json, sys, numpy as np, tensorflow as tf, keras
from tolerance import tolerance_used  # tests/tolerance.py, on the PYTHONPATH
results = {{}}
for path, refs, kind in {exports!r}:
    exec(WITHOUT, globals())
    results["without:" + kind] = out
sys.meta_path = [f for f in sys.meta_path if type(f).__name__ != "_BlockNascell"]
import nascell  # registers TreeCell / ConvNet for the .keras file
from nascell.export import load
for path, refs, kind in {exports!r}:
    exec(WITH, globals())
    results["with:" + kind] = out
print(json.dumps(results))
"""


@pytest.mark.slow
def test_round_trips_in_fresh_process(cell_export, conv_export, tmp_path, run_python):
    """SavedModel (without nascell), .keras file and reloaded layer reproduce the source
    layers, in an interpreter that never saw them, at the float32 tolerance
    (tests/tolerance.py): the SavedModel runs as a graph and the loaded cell on the fast path,
    each rounding differently from the eager, step-by-step source."""
    exports = [(cell_export["path"], cell_export["refs"], "rnn_cell"),
               (conv_export["path"], conv_export["refs"], "conv")]
    code = (f"WITHOUT = {_WITHOUT_NASCELL!r}\nWITH = {_WITH_NASCELL!r}\n"
            + _ROUND_TRIP.format(exports=exports))
    results = run_python(code, cwd=str(tmp_path), block_nascell=True)
    for kind, checks in (("rnn_cell", 20), ("conv", 4)):
        without, with_nascell = results["without:" + kind], results["with:" + kind]
        diffs = {k: v for k, v in {**without, **with_nascell}.items() if ":" in k}
        # Each value: the share of the tolerance used by the largest difference.
        assert len(diffs) == checks and all(v <= 1.0 for v in diffs.values()), (kind, diffs)
        assert without["trainable"] and all(without["trainable"]), kind
    assert results["with:rnn_cell"]["trainable"] == 4
    assert len(results["without:rnn_cell"]["trainable"]) == 4


def test_refuses_to_overwrite_unless_asked(cell_export, tmp_path):
    from nascell.export import export_spec
    from nascell.spec import FIGURE5_SPEC
    target = tmp_path / "fig5"
    export_spec(FIGURE5_SPEC, str(target), units=3, input_dim=2)
    before = (target / "weights.npz").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        export_spec(FIGURE5_SPEC, str(target), units=3, input_dim=2)
    assert (target / "weights.npz").read_bytes() == before
    export_spec(FIGURE5_SPEC, str(target), units=4, input_dim=2, overwrite=True)
    with open(target / "metadata.json") as f:
        assert json.load(f)["shapes"]["units"] == 4
    assert sorted(os.listdir(tmp_path)) == ["fig5"]


@pytest.mark.parametrize("step", ["_write_keras", "_write_saved_model", "_write_diagram"])
def test_failure_midway_leaves_nothing(step, tmp_path, monkeypatch):
    from nascell.export import exporter
    from nascell.spec import FIGURE5_SPEC

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(exporter, step, boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        exporter.export_spec(FIGURE5_SPEC, str(tmp_path / "out"), units=3, input_dim=2)
    assert os.listdir(tmp_path) == []  # no target, no temporary folder


def test_failed_overwrite_keeps_the_old_export(tmp_path, monkeypatch):
    from nascell.export import exporter
    from nascell.spec import FIGURE5_SPEC
    target = tmp_path / "out"
    exporter.export_spec(FIGURE5_SPEC, str(target), units=3, input_dim=2)
    files = sorted(os.listdir(target))

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(exporter, "_write_saved_model", boom)
    with pytest.raises(RuntimeError):
        exporter.export_spec(FIGURE5_SPEC, str(target), units=5, input_dim=2, overwrite=True)
    assert sorted(os.listdir(target)) == files
    assert os.listdir(tmp_path) == ["out"]
    with open(target / "metadata.json") as f:
        assert json.load(f)["shapes"]["units"] == 3


def test_bad_arguments_write_nothing(tmp_path):
    from nascell.export import export_spec
    from nascell.spec import FIGURE5_SPEC, SpecError
    with pytest.raises(ValueError, match=r"Argument `units` must be a positive integer\. "
                       r"Received: units=None\. It is required"):
        export_spec(FIGURE5_SPEC, str(tmp_path / "a"), input_dim=2)
    with pytest.raises(ValueError, match="Argument `input_shape` must be .* It is required"):
        export_spec({"kind": "conv", "layers": [{}]}, str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"Argument `input_dim` must be left out for a spec of "
                       r"kind 'conv' \(an image network takes input_shape"):
        export_spec({"kind": "conv", "layers": [{}]}, str(tmp_path / "c"),
                    input_shape=(8, 8, 3), input_dim=3)
    bad = FIGURE5_SPEC.to_dict()
    bad["nodes"][1]["activation"] = "swish"
    with pytest.raises(SpecError, match="activation"):
        export_spec(bad, str(tmp_path / "d"), units=3, input_dim=2)
    assert os.listdir(tmp_path) == []


def test_weights_from_export_folder_and_npz(cell_export, tmp_path):
    from nascell.export import export_spec, load
    from nascell.spec import NAS_CELL_SPEC
    src = os.path.join(cell_export["path"], "weights.npz")
    a = export_spec(NAS_CELL_SPEC, str(tmp_path / "a"), units=6, input_dim=5, projection=4,
                    weights_from=src)
    b = export_spec(NAS_CELL_SPEC, str(tmp_path / "b"), weights_from=cell_export["path"])
    ref = np.load(src)
    for path in (a, b):
        got = artifacts.weight_arrays(load(path).cell)
        assert all(np.array_equal(got[k], ref[k]) for k in ref.files)
    with pytest.raises(artifacts.WeightsMismatchError, match="recurrent_kernel"):
        export_spec(NAS_CELL_SPEC, str(tmp_path / "c"), units=6, input_dim=5,
                    weights_from=src)  # no projection: the recurrent kernel is [6, 48]
    assert not os.path.exists(tmp_path / "c")


def test_loaded_cell_runs_on_the_fast_path(cell_export):
    """`load` and the folder's layer.keras give a `nascell.RNN`: the input projection of every
    step before the loop, the same numbers as the step-by-step loop."""
    import keras

    import nascell
    from nascell.export import load
    refs = np.load(cell_export["refs"])
    layer = load(cell_export["path"])
    assert isinstance(layer, nascell.RNN) and layer._takes_fast_path(refs["x"])
    step_by_step = nascell.RNN.from_rnn(layer, fast_path=False)
    for fast, slow in zip(layer(refs["x"]), step_by_step(refs["x"])):
        assert_float32_close(fast, slow)
    model = keras.saving.load_model(os.path.join(cell_export["path"], "layer.keras"))
    assert [type(x) for x in model.layers if isinstance(x, keras.layers.RNN)] == [nascell.RNN]
    with open(os.path.join(cell_export["path"], "metadata.json")) as f:
        assert json.load(f)["layer"]["class"].startswith("nascell.RNN(")


def test_export_best_and_trial(tmp_path, make_run):
    from nascell.export import load
    from nascell.search.handover import export_best
    from nascell.spec import FIGURE5_SPEC
    run_dir = tmp_path / "run"
    make_run(run_dir, FIGURE5_SPEC, {0: 0.1, 1: 0.3, 2: 0.2})
    path = export_best(str(run_dir))
    assert path == str(run_dir / "export" / "best")
    with open(os.path.join(path, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["provenance"]["trial_id"] == 1 and meta["provenance"]["reward"] == 0.3
    assert meta["shapes"]["units"] == 7 and meta["shapes"]["input_dim"] == 7
    assert meta["weights"]["source"] == "random initialization"
    path2 = export_best(str(run_dir), trial=2, units=3, input_dim=4)
    assert path2 == str(run_dir / "export" / "trial_2")
    assert load(path2).cell.units == 3


def test_the_moved_names_still_work_with_a_warning(tmp_path, make_run):
    """nascell.export.export_best / load_model moved to nascell.search.handover in 0.2.0: the
    old names forward there, and warn that they go in 0.3.0."""
    import nascell.export
    from nascell.search import handover
    from nascell.spec import FIGURE5_SPEC
    for name in ("export_best", "load_model"):
        with pytest.warns(FutureWarning, match=rf"nascell.search.handover.{name}.*0\.3\.0"):
            assert getattr(nascell.export, name) is getattr(handover, name)
    assert "export_best" not in nascell.export.__all__
    run_dir = tmp_path / "run"
    make_run(run_dir, FIGURE5_SPEC, {0: 0.1, 1: 0.3})
    with pytest.warns(FutureWarning):
        path = nascell.export.export_best(str(run_dir))
    assert path == str(run_dir / "export" / "best")
    with open(os.path.join(path, "metadata.json")) as f:
        assert json.load(f)["provenance"]["trial_id"] == 1


def test_export_best_takes_the_trials_saved_weights(tmp_path, make_run):
    """A trial that saved its child model (<run_dir>/weights/trial_<id>.keras) is exported
    with the trained weights of its first recurrent layer."""
    import keras

    from nascell.export import load
    from nascell.search.handover import export_best
    from nascell.spec import FIGURE5_SPEC
    from nascell.tree_cell import TreeCell
    run_dir = tmp_path / "run"
    make_run(run_dir, FIGURE5_SPEC, {0: 0.5}, units=4)
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(11, 4)(tokens)
    for i in range(2):
        x = keras.layers.RNN(TreeCell(FIGURE5_SPEC, 4, name=f"tree_cell_{i}"),
                             return_sequences=True, name=f"rnn_{i}")(x)
    model = keras.Model(tokens, keras.layers.Dense(11)(x))
    os.makedirs(run_dir / "weights")
    model.save(str(run_dir / "weights" / "trial_0.keras"))
    path = export_best(str(run_dir))
    with open(os.path.join(path, "metadata.json")) as f:
        assert json.load(f)["weights"]["source"].endswith("trial_0.keras")
    first = model.get_layer("rnn_0").cell
    got = artifacts.weight_arrays(load(path).cell)
    want = artifacts.weight_arrays(first)
    assert got.keys() == want.keys()
    assert all(np.array_equal(got[k], want[k]) for k in want)
