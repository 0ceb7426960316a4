"""The run directory: config checks, corrupt files, strategy checkpoints, best specs, summaries."""

import glob
import json
import os

import pytest

from nascell.search.core.strategy import Strategy
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir.run_dir import ConfigMismatchError, RunDir, RunDirError

CONFIG = {"space": {"name": "toy", "options": {"size": 3}}, "strategy": {"name": "r", "seed": 0},
          "evaluator": {"name": "e"}, "m": 2}


class _Counter(Strategy):
    name = "counter"

    def __init__(self):
        super().__init__(None)
        self.n = 0

    def propose(self, n):
        return []

    def observe(self, trial, reward):
        self.n += 1

    def get_state(self):
        return {"n": self.n}

    def set_state(self, state):
        self.n = state["n"]


def test_create_then_reopen_same_config(tmp_path):
    path = str(tmp_path / "run")
    run = RunDir.open_or_create(path, CONFIG)
    assert not run.resumed
    assert json.load(open(os.path.join(path, "config.json"))) == CONFIG
    run.close()
    # Tuples vs lists and key order do not make a different search.
    same = dict(CONFIG, space={"options": {"size": 3}, "name": "toy"})
    run = RunDir.open_or_create(path, same)
    assert run.resumed
    run.close()


def test_different_config_is_refused_and_nothing_changes(tmp_path):
    path = str(tmp_path / "run")
    RunDir.open_or_create(path, CONFIG).close()
    before = open(os.path.join(path, "config.json")).read()
    other = dict(CONFIG, m=4, strategy={"name": "r", "seed": 1})
    with pytest.raises(ConfigMismatchError) as e:
        RunDir.open_or_create(path, other)
    message = str(e.value)
    assert "m, strategy.seed" in message and "new --run_dir" in message
    assert "same flags" in message
    assert open(os.path.join(path, "config.json")).read() == before


def test_corrupt_config_is_named(tmp_path):
    path = tmp_path / "run"
    RunDir.open_or_create(str(path), CONFIG).close()
    (path / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match=r"config.json is unreadable.*Restore it"):
        RunDir.open_or_create(str(path), CONFIG)
    assert (path / "config.json").read_text() == "{not json"
    assert (path / "trials.sqlite").exists()


def test_store_without_config_and_foreign_dirs_are_refused(tmp_path):
    path = tmp_path / "run"
    RunDir.open_or_create(str(path), CONFIG).close()
    os.remove(path / "config.json")
    with pytest.raises(RunDirError, match="has trials.sqlite but no config.json"):
        RunDir.open_or_create(str(path), CONFIG)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_text("meow")
    with pytest.raises(RunDirError, match="not a nascell run directory"):
        RunDir.open_or_create(str(foreign), CONFIG)


def test_corrupt_store_is_named_and_kept(tmp_path):
    path = tmp_path / "run"
    RunDir.open_or_create(str(path), CONFIG).close()
    for f in glob.glob(str(path / "trials.sqlite*")):
        os.remove(f)
    (path / "trials.sqlite").write_bytes(b"garbage" * 500)
    with pytest.raises(RunDirError, match=r"trials.sqlite is not a readable trial store"):
        RunDir.open_or_create(str(path), CONFIG)
    assert (path / "trials.sqlite").read_bytes() == b"garbage" * 500


def _finish(store, i, reward):
    t = Trial(i, {"a": i}, f"s{i}")
    store.add([t])
    store.mark_running(i)
    t.status, t.reward = TrialStatus.DONE, reward
    store.finish(t)


def test_strategy_checkpoints_and_fallback(tmp_path):
    run = RunDir.open_or_create(str(tmp_path / "run"), CONFIG)
    s = _Counter()
    assert run.restore_strategy(s) == 0
    for i in range(3):
        _finish(run.store, i, i / 10)
        s.observe(None, 0)
        run.save_strategy(s, [i])
    assert run.strategy_generation == 3
    assert len(os.listdir(os.path.join(run.path, "strategy"))) == 2  # the newest two
    fresh = _Counter()
    assert run.restore_strategy(fresh) == 3 and fresh.n == 3
    assert run.untold_trials(3) == []
    # The newest checkpoint is corrupt: fall back to the one before, re-tell what it missed.
    with open(os.path.join(run.path, "strategy", "gen-00000003", "strategy_state.json"), "w") as f:
        f.write("{")
    fresh = _Counter()
    assert run.restore_strategy(fresh) == 2 and fresh.n == 2
    assert [t.trial_id for t in run.untold_trials(2)] == [2]
    # Both corrupt: a clear error naming the folder; the trials are still there.
    with open(os.path.join(run.path, "strategy", "gen-00000002", "strategy_state.json"), "w") as f:
        f.write("{")
    with pytest.raises(RunDirError, match=r"no readable strategy checkpoint.*trials are safe"):
        run.restore_strategy(_Counter())
    assert run.store.counts()["done"] == 3


def test_best_files_and_summaries(tmp_path):
    run = RunDir.open_or_create(str(tmp_path / "run"), CONFIG)
    for i, r in enumerate([0.2, 0.9, 0.5]):
        _finish(run.store, i, r)
    best = run.update_best(k=2)
    assert best.trial_id == 1
    entry = json.load(open(os.path.join(run.path, "best", "best.json")))
    assert entry["trial_id"] == 1 and entry["reward"] == 0.9 and entry["spec"] == "s1"
    top = json.load(open(os.path.join(run.path, "best", "top_k.json")))
    assert [e["trial_id"] for e in top] == [1, 2]
    run.write_scalars(1, {"trial/reward": 0.5, "nan": float("nan")})
    run.write_scalars(2, {"trial/reward": 0.7})
    run.close()
    files = glob.glob(os.path.join(run.path, "tensorboard", "events.out.tfevents.*"))
    assert len(files) == 1
    # Read the event file back with TensorFlow's own record reader and Event proto: scalars
    # as tf.summary.scalar writes them (a float tensor, the scalars plugin's metadata).
    import tensorflow as tf
    from tensorflow.core.util import event_pb2
    events = [event_pb2.Event.FromString(r.numpy()) for r in tf.data.TFRecordDataset(files[0])]
    assert events[0].file_version == "brain.Event:2"
    values = [(e.step, v.tag, v.metadata.plugin_data.plugin_name,
               round(float(tf.make_ndarray(v.tensor)), 4))
              for e in events[1:] for v in e.summary.value]
    assert values == [(1, "trial/reward", "scalars", 0.5), (2, "trial/reward", "scalars", 0.7)]


def test_open_existing_for_readers(tmp_path):
    with pytest.raises(RunDirError, match="not a nascell run directory"):
        RunDir.open_existing(str(tmp_path))
    run = RunDir.open_or_create(str(tmp_path / "run"), CONFIG)
    _finish(run.store, 0, 0.3)
    reader = RunDir.open_existing(str(tmp_path / "run"))
    assert reader.config == CONFIG and reader.store.best(1)[0].reward == 0.3
