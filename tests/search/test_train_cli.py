"""nascell-train: spec resolution, the grid, resuming, and the one test evaluation."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from absl import app

from nascell.search.bin import train
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir.store import TrialStore
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC


def _tiny_lm_flags(f, ptb_dir):
    f.data_dir = str(ptb_dir)
    f.child_units = 4
    f.child_num_layers = 1
    f.child_steps_per_epoch = 2
    f.child_batch_size = 128
    f.child_seq_len = 5
    f.child_max_valid_steps = 2
    f.child_optimizer = "sgd"
    f.epochs = 1
    f.lr_grid = ["0.5", "1.0"]


def _grid_files(final_dir):
    grid = os.path.join(final_dir, "grid")
    return {name: os.stat(os.path.join(grid, name)).st_mtime_ns for name in os.listdir(grid)}


@pytest.mark.slow
def test_grid_then_final_and_resume(parsed_flags, shared_data, tmp_path):
    _tiny_lm_flags(parsed_flags, shared_data("ptb"))
    final_dir = str(tmp_path / "final")
    out = io.StringIO()
    final_model = train.final_stage(FIGURE5_SPEC, final_dir, out=out)
    record = final_model.record
    # The final stage ends with the trained model in memory and its best weights on disk.
    assert isinstance(final_model.model, keras.Model)
    assert final_model.model.count_params() == record["metrics"]["params"]
    assert os.path.isfile(final_model.weights_path)
    grid = _grid_files(final_dir)
    assert len(grid) == 2 and out.getvalue().count("grid point") == 2
    with open(os.path.join(final_dir, "final.json")) as f:
        final = json.load(f)
    assert final == json.loads(json.dumps(record))
    assert final["spec"] == FIGURE5_SPEC.to_dict() and final["kind"] == "rnn_lm"
    assert final["point"]["lr"] in (0.5, 1.0) and final["metrics"]["test_ppl"] > 1
    grid_records = []
    for name in grid:
        with open(os.path.join(final_dir, "grid", name)) as f:
            grid_records.append(json.load(f))
    assert final["grid_reward"] == max(r["reward"] for r in grid_records)

    # A restart after a crash before the final training: the grid is not retrained.
    os.remove(os.path.join(final_dir, "final.json"))
    out = io.StringIO()
    train.run_final(FIGURE5_SPEC, final_dir, out=out)
    assert out.getvalue().count("done before") == 2
    assert _grid_files(final_dir) == grid
    assert os.path.exists(os.path.join(final_dir, "final.json"))
    # Everything done: nothing is trained at all.
    out = io.StringIO()
    again = train.final_stage(FIGURE5_SPEC, final_dir, out=out)
    assert "already done" in out.getvalue() and again.model is None
    assert again.weights_path == final_model.weights_path


def test_spec_from_run_dir_best_json_then_store(parsed_flags, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "best").mkdir(parents=True)
    parsed_flags.run_dir = str(run_dir)
    parsed_flags.spec_json = None
    with pytest.raises(app.UsageError, match="neither best/best.json nor trials.sqlite"):
        train.resolve_spec()
    with TrialStore(str(run_dir / "trials.sqlite")) as store:
        store.add([Trial(0, {}, FIGURE5_SPEC), Trial(1, {}, NAS_CELL_SPEC),
                   Trial(2, {}, FIGURE5_SPEC), Trial(3, {}, None)])
        for trial_id, status, reward in ((0, TrialStatus.DONE, 0.1),
                                         (1, TrialStatus.DONE, 0.5),
                                         (2, TrialStatus.FAILED, 0.0)):
            store.mark_running(trial_id)
            trial = store.get(trial_id)
            trial.status, trial.reward = status, reward
            store.finish(trial)
    assert train.resolve_spec() == NAS_CELL_SPEC
    (run_dir / "best" / "best.json").write_text(json.dumps(
        {"trial_id": 0, "reward": 0.9, "spec": FIGURE5_SPEC.to_dict()}))
    assert train.resolve_spec() == FIGURE5_SPEC
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(NAS_CELL_SPEC.to_json())
    parsed_flags.spec_json = str(spec_file)
    assert train.resolve_spec() == NAS_CELL_SPEC


def test_grid_flags_are_checked(parsed_flags):
    parsed_flags.bn_epsilon_grid = ["1e-3"]
    with pytest.raises(app.UsageError, match="conv specs only"):
        train.grid_points("rnn_lm", {"lr": 1.0})
    parsed_flags.bn_epsilon_grid = ["1e-3", "1e-5"]
    parsed_flags.lr_grid = ["0.1", "0.05"]
    parsed_flags.lr_decay_epoch_grid = ["none", "30"]
    points = train.grid_points("conv_classifier", {"lr": 0.1, "weight_decay": 1e-4})
    assert len(points) == 8
    assert {p["lr_decay_epoch"] for p in points} == {None, 30}
    parsed_flags.lr_grid = ["fast"]
    with pytest.raises(app.UsageError, match="--lr_grid"):
        train.grid_points("conv_classifier", {"lr": 0.1})


@pytest.mark.slow
def test_cli_reports_a_missing_spec_source(tmp_path):
    # cwd=tmp_path: `python -m` puts the cwd first on sys.path, and a checkout's own nascell/
    # (which has no search/ inside; setup.py maps it) must not shadow the installed package.
    proc = subprocess.run([sys.executable, "-m", "nascell.search.bin.train",
                           f"--run_dir={tmp_path}"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    assert "nascell-train:" in proc.stderr and "best/best.json" in proc.stderr


def _tiny_corpus(folder):
    """A small character corpus as Tiny Shakespeare's input.txt (fast to load and train on)."""
    rng = np.random.default_rng(0)
    words = ["the", "cell", "search", "found", "a", "state", "carried", "over"]
    text = "".join(" ".join(rng.choice(words, size=8)) + "\n" for _ in range(600))
    (folder / "input.txt").write_text(text)
    return folder


def _train_args(spec_file, final_dir, data_dir, epochs):
    return [sys.executable, "-m", "nascell.search.bin.train", f"--spec_json={spec_file}",
            f"--final_dir={final_dir}", f"--data_dir={data_dir}",
            "--child_dataset=tiny_shakespeare", "--child_units=8", "--child_num_layers=1",
            "--child_steps_per_epoch=30", "--child_batch_size=20", "--child_seq_len=5",
            "--child_max_valid_steps=4", "--child_optimizer=sgd", f"--epochs={epochs}"]


@pytest.mark.slow
def test_killed_final_training_resumes_after_its_last_finished_epoch(tmp_path):
    """kill -9 during the final training; started again, it resumes after the last finished
    epoch (the history before the kill is kept, not retrained), keeps the best weights."""
    data_dir = _tiny_corpus(tmp_path)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(FIGURE5_SPEC.to_json())
    final_dir = tmp_path / "final"
    args = _train_args(spec_file, final_dir, data_dir, epochs=4)
    progress = final_dir / "train" / "progress.json"
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (progress.exists() and json.loads(progress.read_text())["epoch"] >= 1):
            assert proc.poll() is None, f"it ended before it was killed: {proc.stderr.read()}"
            assert time.time() < deadline, "no epoch finished in 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = json.loads(progress.read_text())
    assert 1 <= before["epoch"] < 4 and not (final_dir / "final.json").exists()

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resumed after epoch {before['epoch']}" in again.stdout
    assert f"final training epoch {before['epoch'] + 1}/4" in again.stdout
    assert "final training epoch 1/4" not in again.stdout
    # ... and ends with the export of the resumed model (served by TensorFlow alone:
    # test_final_export.py).
    assert "signature serving_default" in again.stdout
    export_meta = json.loads((final_dir / "export" / "metadata.json").read_text())
    assert export_meta["weights"]["training"]["stage"] == "final"
    assert (final_dir / "export" / "model" / "saved_model" / "saved_model.pb").exists()
    final = json.loads((final_dir / "final.json").read_text())
    metrics = final["metrics"]
    assert metrics["resumed_after_epoch"] == before["epoch"]
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["history"][:before["epoch"]] == before["history"]
    ppls = [h["valid_ppl"] for h in metrics["history"]]
    assert metrics["valid_ppl"] == min(ppls) and metrics["best_epoch"] == 1 + ppls.index(min(ppls))
    assert final["weights"] == os.path.join("train", "best.weights.h5")
    assert sorted(p.name for p in (final_dir / "train").iterdir() if p.name.startswith("epoch-")) \
        <= sorted({f"epoch-{e:04d}.{s}" for e in (4, metrics["best_epoch"])
                   for s in ("weights.h5", "optimizer.npz")})

    # The best weights on disk reproduce the best validation perplexity.
    from nascell.search.evaluators.rnn_lm import load_corpus
    from nascell.search.training.final_model import load_final_model
    from nascell.search.training.stateful_lm import StatefulLMTrainer

    loaded = load_final_model(str(final_dir))
    _, ids = load_corpus("tiny_shakespeare", str(data_dir))
    trainer = StatefulLMTrainer(loaded.model, keras.optimizers.SGD(1.0))
    valid = trainer.evaluate(ids["valid"], 20, 5, max_batches=4)
    assert valid.ppl == pytest.approx(metrics["valid_ppl"], rel=1e-4)


def test_conv_final_training_checkpoints_and_keeps_the_best(parsed_flags, shared_data,
                                                            tmp_path):
    from nascell.search.training.final_model import load_final_model
    from nascell.spec import ConvLayer, ConvSpec

    spec = ConvSpec(layers=(ConvLayer(3, 3, 4), ConvLayer(1, 3, 4, inputs=(0,))))
    parsed_flags.cifar_npz = str(shared_data("cifar10", "cifar10_subset.npz"))
    parsed_flags.child_subset = 100
    parsed_flags.child_steps_per_epoch = 2
    parsed_flags.child_batch_size = 16
    parsed_flags.child_max_valid_steps = 1
    parsed_flags.epochs = 3
    final_dir = tmp_path / "final"
    record = train.run_final(spec, str(final_dir), out=io.StringIO())
    metrics = record["metrics"]
    assert record["kind"] == "conv_classifier" and record["grid_reward"] is None
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    accs = [h["val_accuracy"] for h in metrics["history"]]
    assert metrics["best_valid_acc"] == max(accs) and 0 <= metrics["test_acc"] <= 1
    assert (final_dir / "train" / "best.weights.h5").exists()
    loaded = load_final_model(str(final_dir))
    assert loaded.model.count_params() == metrics["params"]


def test_final_stage_without_size_flags_is_the_papers_size(parsed_flags):
    # No --child_units / --child_target_params: the paper's ~20M parameters, not the proxy's
    # units as well (an evaluator given both refuses them).
    from nascell.search.evaluators import create_evaluator

    options = train.base_options("rnn_lm")
    assert options["target_params"] == 20_000_000 and "units" not in options
    assert create_evaluator("rnn_lm", **options).config()["target_params"] == 20_000_000
    parsed_flags.child_units = 8
    options = train.base_options("rnn_lm")
    assert options["units"] == 8 and "target_params" not in options
