"""nascell-train: spec resolution, the grid, resuming, and the one test evaluation."""

import io
import json
import os
import subprocess
import sys

import pytest
from absl import app, flags
from absl.testing import flagsaver

from nascell.search.bin import train
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC


@pytest.fixture
def parsed_flags():
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver():
        yield flags.FLAGS


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


def test_grid_then_final_and_resume(parsed_flags, shared_data, tmp_path):
    _tiny_lm_flags(parsed_flags, shared_data("ptb"))
    final_dir = str(tmp_path / "final")
    out = io.StringIO()
    record = train.run_final(FIGURE5_SPEC, final_dir, out=out)
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
    train.run_final(FIGURE5_SPEC, final_dir, out=out)
    assert "already done" in out.getvalue()


def test_spec_from_run_dir_best_json_then_store(parsed_flags, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "best").mkdir(parents=True)
    parsed_flags.run_dir = str(run_dir)
    parsed_flags.spec_json = None
    with pytest.raises(app.UsageError, match="neither best/best.json nor trials.sqlite"):
        train.resolve_spec()
    from nascell.search.store import TrialStore
    from nascell.search.trial import Trial, TrialStatus
    store = TrialStore(str(run_dir / "trials.sqlite"))
    trials = [Trial(trial_id=i, decisions={}, spec=spec) for i, spec in
              enumerate([FIGURE5_SPEC, NAS_CELL_SPEC, FIGURE5_SPEC, None])]
    store.add(trials)
    for trial, status, reward in zip(trials[:3], ("done", "done", "failed"), (0.1, 0.5, 0.0)):
        trial.status, trial.reward = TrialStatus(status), reward
        store.finish(trial)
    store.close()
    assert train.resolve_spec() == NAS_CELL_SPEC  # the store's best, read through its API
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


def test_cli_reports_a_missing_spec_source(tmp_path):
    # cwd=tmp_path: `python -m` puts the cwd first on sys.path, and a checkout's own nascell/
    # (which has no search/ inside; setup.py maps it) must not shadow the installed package.
    proc = subprocess.run([sys.executable, "-m", "nascell.search.bin.train",
                           f"--run_dir={tmp_path}"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    assert "nascell-train:" in proc.stderr and "best/best.json" in proc.stderr
