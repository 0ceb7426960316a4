"""nascell-train's last step: the found cell with its final weights and the whole trained model
as a SavedModel whose ``serving_default`` TensorFlow alone serves (checked in a process where
``nascell`` cannot be imported), and ``nascell-export --run_dir`` picking the final model up."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import runs_helpers as h

from nascell.export import load_metadata
from nascell.search import handover
from nascell.search.bin import train
from nascell.search.core.loop import run_search
from nascell.search.core.strategy import create_strategy
from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator
from nascell.search.training import final_model
from nascell.spec import ConvLayer, ConvSpec

HERE = os.path.dirname(os.path.abspath(__file__))
# Run with `python -I` from an empty folder: no PYTHONPATH, no user site, no script folder on
# sys.path; and a finder that refuses nascell, which an installed (not only an editable)
# nascell would otherwise still offer from site-packages.
SERVE = textwrap.dedent("""
    import importlib.abc, json, sys

    class NoNascell(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "nascell" or name.startswith("nascell."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoNascell())
    try:
        import nascell  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        sys.exit("nascell is importable")
    import numpy as np
    import tensorflow as tf

    for job in json.loads(sys.argv[1]):
        serve = tf.saved_model.load(job["saved_model"]).signatures["serving_default"]
        inputs = {k: tf.constant(np.load(v)) for k, v in job["inputs"].items()}
        for name, value in serve(**inputs).items():
            np.save(job["outputs"] + "." + name + ".npy", value.numpy())
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "nascell")
    sys.exit(f"nascell modules were loaded: {loaded}" if loaded else 0)
""")


def serve_without_nascell(tmp_path, jobs):
    """Run each ``{"saved_model", "inputs": {name: npy}, "outputs": prefix}`` in a fresh
    `python -I` process that cannot import nascell; returns its outputs per job."""
    cwd = tmp_path / "neutral"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run([sys.executable, "-I", "-c", SERVE, json.dumps(jobs)], cwd=str(cwd),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-1000:]
    return [{name: np.load(job["outputs"] + "." + name + ".npy")
             for name in ("logits", "probabilities")
             if os.path.exists(job["outputs"] + "." + name + ".npy")} for job in jobs]


@pytest.mark.slow
def test_final_stage_exports_a_model_tensorflow_alone_serves(parsed_flags, shared_data,
                                                              tmp_path):
    data = h.tiny_corpus(tmp_path / "text")
    options = h.tiny_lm_options(data)
    run_dir = tmp_path / "run"
    space = h.two_cells()
    result = run_search(space, create_strategy("random", space, seed=1),
                        RNNLanguageModelEvaluator(**options), str(run_dir), num_trials=1,
                        progress=False, tensorboard=False)
    best = result.best

    # nascell-train --run_dir=run (tiny): a one-point grid, then the final training, then export.
    f = parsed_flags
    f.data_dir, f.child_dataset, f.epochs = str(data), "tiny_shakespeare", 2
    f.child_units, f.child_num_layers, f.child_steps_per_epoch = 8, 2, 10
    f.child_batch_size, f.child_seq_len, f.child_max_valid_steps = 8, 5, 3
    f.child_optimizer, f.child_lr = "adam", 0.1
    final_dir = str(run_dir / "final")
    final = train.final_stage(best.spec, final_dir)
    lm_export = final_model.export(best.spec, final_dir)
    assert lm_export == os.path.join(final_dir, "export")
    meta = load_metadata(lm_export)
    training = meta["weights"]["training"]
    assert meta["weights"]["trained"] is True and training["stage"] == "final"
    assert training["trial_id"] == best.trial_id  # the search trial it was found as
    assert training["reward"] == final.record["reward"]
    assert training["score"]["valid_ppl"] == final.record["metrics"]["valid_ppl"]
    assert meta["model"]["serving_default"]["inputs"][0]["name"] == "tokens"
    # the export holds the final model's weights: its own model equals the one in memory
    rebuilt = handover.load_model(lm_export, return_state=True)
    for a, b in zip(rebuilt.weights, final.model.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # nascell-export --run_dir picks the final model up (and --nofinal the search's child).
    from nascell.export.bin import export as cli
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", f"--run_dir={run_dir}"])
    handover.exporting.main(["nascell-export"])
    picked = load_metadata(str(run_dir / "export" / "final"))["weights"]["training"]
    assert picked["stage"] == "final" and picked["final_dir"] == os.path.abspath(final_dir)
    searched = load_metadata(handover.export_best(str(run_dir), final=False))
    assert searched["weights"]["training"]["stage"] == "search"

    # The conv final stage exports an images -> probabilities model.
    f.cifar_npz = str(shared_data("cifar10", "cifar10_subset.npz"))
    f.child_subset, f.child_steps_per_epoch, f.child_batch_size = 100, 2, 16
    f.child_max_valid_steps, f.epochs, f.child_lr = 1, 2, None
    conv_spec = ConvSpec(layers=(ConvLayer(3, 3, 4), ConvLayer(1, 3, 4, inputs=(0,))))
    conv_dir = str(tmp_path / "conv_final")
    conv = train.final_stage(conv_spec, conv_dir)
    conv_export = final_model.export(conv_spec, conv_dir)
    conv_meta = load_metadata(conv_export)
    assert conv_meta["weights"]["trained"] and conv_meta["shapes"]["input_shape"] == [32, 32, 3]

    # Served by TensorFlow alone, both answer as the models in memory do.
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, final.record["metrics"]["model_args"]["vocab_size"], (2, 7),
                          dtype=np.int32)
    pixels = rng.uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "tokens.npy", tokens)
    np.save(tmp_path / "pixels.npy", pixels)
    served_lm, served_conv = serve_without_nascell(tmp_path, [
        {"saved_model": os.path.join(lm_export, "model", "saved_model"),
         "inputs": {"tokens": str(tmp_path / "tokens.npy")}, "outputs": str(tmp_path / "lm")},
        {"saved_model": os.path.join(conv_export, "model", "saved_model"),
         "inputs": {"images": str(tmp_path / "pixels.npy")}, "outputs": str(tmp_path / "cv")}])
    states = [np.zeros((2, int(x.shape[-1])), np.float32) for x in final.model.inputs[1:]]
    expected = final.model([tokens, *states], training=False)[0]
    np.testing.assert_allclose(served_lm["logits"], np.asarray(expected), rtol=1e-5, atol=1e-5)
    prep = conv.record["metrics"]["preprocessing"]
    whitened = (pixels / prep["pixel_scale"] - np.float32(prep["mean"])) / np.float32(prep["std"])
    expected = conv.model(whitened.astype(np.float32), training=False)
    np.testing.assert_allclose(served_conv["probabilities"], np.asarray(expected), rtol=1e-5,
                               atol=1e-6)
    assert served_conv["probabilities"].shape == (3, 10)
