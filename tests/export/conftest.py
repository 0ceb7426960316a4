"""Fixtures for the export tests: one exported cell and one exported conv net per session,
with the outputs of the layers they were exported from, and a helper to run Python in a
fresh process (optionally one where nascell cannot be imported)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS_DIR = os.path.join(PROJECT_ROOT, "tests")

# Put first on sys.meta_path, this makes every `import nascell...` fail, whatever the way the
# package is installed (editable finder, .pth, or the current directory).
_BLOCK_NASCELL = textwrap.dedent("""
    import sys
    class _BlockNascell:
        def find_spec(self, name, path=None, target=None):
            if name == "nascell" or name.startswith("nascell."):
                raise ImportError("nascell is blocked in this process")
            return None
    sys.meta_path.insert(0, _BlockNascell())
    try:
        import nascell
        raise SystemExit("nascell is importable although it should be blocked")
    except ImportError:
        pass
""")


def run_python(code: str, cwd: str, block_nascell: bool = False, timeout: float = 120):
    """Run ``code`` in a fresh interpreter (tests/ on its path, for the shared tolerance);
    returns the last stdout line parsed as JSON."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    # tests/ (for `from tolerance import ...`; it holds no nascell package) before the rest.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS_DIR, env.get("PYTHONPATH")) if p)
    if block_nascell:
        empty = os.path.join(cwd, "empty_pythonpath")
        os.makedirs(empty, exist_ok=True)
        env["PYTHONPATH"] = os.pathsep.join((TESTS_DIR, empty))
        code = _BLOCK_NASCELL + textwrap.dedent(code)
    else:
        code = textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return json.loads(lines[-1])


@pytest.fixture(name="run_python")
def run_python_fixture():
    """`run_python(code, cwd, block_nascell=False)`: run code in a fresh interpreter."""
    return run_python


def _randomize(layer, seed):
    """Random weights and random batch-norm statistics, so a lost variable shows."""
    rng = np.random.RandomState(seed)
    for v in layer.weights:
        value = rng.uniform(-0.5, 0.5, size=tuple(v.shape)).astype("float32")
        if "moving_variance" in v.path:
            value = np.abs(value) + 0.5
        v.assign(value)


@pytest.fixture(name="randomize", scope="session")
def randomize_fixture():
    """`randomize(layer, seed)`: give every weight of a built layer a random value."""
    return _randomize


@pytest.fixture(scope="session")
def cell_export(tmp_path_factory):
    """The NAS cell (units 6, projection 4, with bias) exported with random weights.

    Returns a dict: ``path`` (the export folder), ``refs`` (a .npz with the inputs and the
    source layer's outputs: seq_*, state_*, step_*) and the sizes.
    """
    import keras

    from nascell.export import export_spec
    from nascell.spec import NAS_CELL_SPEC
    from nascell.tree_cell import TreeCell

    root = tmp_path_factory.mktemp("cell_export")
    cell = TreeCell(NAS_CELL_SPEC, units=6, projection=4, use_bias=True)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    rnn.build((None, None, 5))
    _randomize(rnn, 0)
    rng = np.random.RandomState(1)
    x = rng.randn(3, 7, 5).astype("float32")
    h0 = rng.randn(3, 4).astype("float32")
    c0 = rng.randn(3, 6).astype("float32")
    refs = {"x": x, "h0": h0, "c0": c0}
    for key, value in zip(("seq_outputs", "seq_h", "seq_c"), rnn(x)):
        refs[key] = np.asarray(value)
    for key, value in zip(("state_outputs", "state_h", "state_c"),
                          rnn(x, initial_state=[h0, c0])):
        refs[key] = np.asarray(value)
    out, (h, c) = cell(x[:, 0], [h0, c0])
    refs.update(step_output=np.asarray(out), step_h=np.asarray(h), step_c=np.asarray(c))
    path = export_spec(rnn, str(root / "nas"))
    np.savez(str(root / "refs.npz"), **refs)
    keras.backend.clear_session()
    return {"path": path, "refs": str(root / "refs.npz"), "root": str(root),
            "units": 6, "projection": 4, "input_dim": 5}


CONV_SPEC_DICT = {"kind": "conv", "layers": [
    {"filter_height": 3, "filter_width": 3, "filters": 4, "inputs": []},
    {"filter_height": 1, "filter_width": 3, "filters": 6, "stride_height": 2,
     "stride_width": 2, "inputs": [0]},
    {"op": "max_pool", "filter_height": 2, "filter_width": 2, "filters": None, "inputs": [0, 1]},
    {"filter_height": 5, "filter_width": 1, "filters": 4, "inputs": [1]},
]}


@pytest.fixture(scope="session")
def conv_export(tmp_path_factory):
    """A conv net with skips, strides and a max pool, exported with random weights and
    random batch-norm statistics; ``refs`` holds images and the source layer's features."""
    import keras

    from nascell.conv import ConvNet
    from nascell.export import export_spec

    root = tmp_path_factory.mktemp("conv_export")
    net = ConvNet(CONV_SPEC_DICT)
    net.build((None, 9, 8, 3))
    _randomize(net, 2)
    images = np.random.RandomState(3).randn(2, 9, 8, 3).astype("float32")
    refs = {"images": images, "features": np.asarray(net(images, training=False))}
    path = export_spec(net, str(root / "conv"))
    np.savez(str(root / "refs.npz"), **refs)
    keras.backend.clear_session()
    return {"path": path, "refs": str(root / "refs.npz"), "root": str(root),
            "input_shape": (9, 8, 3)}


def _make_run(run_dir, spec, reward_by_id, units=7):
    from nascell.search.core.trial import Trial, TrialStatus
    from nascell.search.rundir.run_dir import RunDir
    config = {"space": "rnn_cell", "evaluator": {"name": "rnn_lm", "units": units,
                                                 "tie_weights": True}}
    run = RunDir.open_or_create(str(run_dir), config)
    trials = [Trial(trial_id=i, decisions={}, spec=spec) for i in reward_by_id]
    run.store.add(trials)
    for t in trials:
        run.store.mark_running(t.trial_id)
        t.status, t.reward = TrialStatus.DONE, reward_by_id[t.trial_id]
        t.metrics = {"units": units, "valid_ppl": 1.0 / t.reward}
        run.store.finish(t)
    run.update_best()
    run.close()


@pytest.fixture(name="make_run")
def make_run_fixture():
    """`make_run(run_dir, spec, {trial_id: reward}, units=7)`: a finished search run."""
    return _make_run


@pytest.fixture
def conv_spec_dict():
    return CONV_SPEC_DICT
