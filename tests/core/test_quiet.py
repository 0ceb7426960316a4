"""Quiet processes: which ones are quiet, which lines count as native logs, a real TensorFlow
import that prints none of them while Python's own stderr output survives, quiet binaries and
workers, and ``import nascell`` deciding nothing about the process."""

import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import _nascell_launch as _quiet

NATIVE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795940759.551632   25630 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1795940766.249140   25630 cuda_platform.cc:52] failed call to cuInit: ...",
    "(evaluate_trial pid=4242) I0000 00:00:1795940767.260352   25630 service.cc:153] XLA ...",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
PYTHON = [
    "W1129 08:26:13.206747 140542077610880 loop.py:95] trial 3 failed: diverged",
    "trials 1/2  failed 0  best 0.0000  3.3 trials/min  ETA 0m18s",
    "Traceback (most recent call last):",
    "/x/y.py:3: UserWarning: something",
    "INFO: trial 3 finished",
]


def test_native_log_lines_are_told_from_python_output():
    assert all(_quiet.is_native_log_line(ln) for ln in NATIVE)
    assert not any(_quiet.is_native_log_line(ln) for ln in PYTHON)


def test_who_is_quiet():
    env = {}
    assert _quiet.wanted(["/venv/bin/nascell-search", "--run_dir=r"], env)
    assert _quiet.wanted(["nascell-export", "--verbosity=-1"], env)
    assert not _quiet.wanted(["nascell-search", "-v", "0"], env)
    assert not _quiet.wanted(["nascell-train", "--verbosity=1"], env)
    assert not _quiet.wanted(["python", "script.py"], env)
    assert _quiet.wanted(["python", "-c"], {"NASCELL_QUIET": "1"})  # a worker of a quiet run
    assert not _quiet.wanted(["nascell-search"], {"NASCELL_QUIET": "0"})


# The launcher imports nothing but the standard library: a fresh process imports it first.
_LOAD = "import _nascell_launch as _quiet\n"


def _env(**env):
    full = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                             "NASCELL_QUIET")}
    full.update(env)
    return full


def _run(code, **env):
    # cwd: this test's folder, not the checkout's root, whose nascell/ (without search/ and
    # export/) would shadow the installed package for `python -c`
    return subprocess.run([sys.executable, "-c", _LOAD + textwrap.dedent(code)], env=_env(**env),
                          capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.abspath(__file__)))


def _native(stderr):
    return [ln for ln in stderr.splitlines() if _quiet.is_native_log_line(ln)]


@pytest.mark.slow
def test_a_quiet_tensorflow_import_prints_no_native_line():
    proc = _run("""
        import sys, warnings
        with _quiet.quietly():
            import tensorflow as tf
            warnings.warn("kept: a Python warning during the import")
            print("kept: plain stderr output", file=sys.stderr)
        tf.config.list_logical_devices("GPU")  # the CUDA probe logs an error when unquiet
        print(tf.reduce_sum(tf.ones((2, 2))).numpy())
    """, NASCELL_QUIET="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "4.0"
    lines = proc.stderr.splitlines()
    assert not [ln for ln in lines if _quiet.is_native_log_line(ln)], proc.stderr
    assert any("kept: a Python warning" in ln for ln in lines)
    assert "kept: plain stderr output" in lines


@pytest.mark.slow
def test_a_failed_import_shows_everything_it_printed():
    proc = _run("""
        import os
        with _quiet.muted_native_logs():
            os.write(2, b"I0000 00:00:1.5   1 x.cc:1] shown because the body failed\\n")
            raise ImportError("boom")
    """)
    assert proc.returncode == 1
    assert "shown because the body failed" in proc.stderr and "ImportError: boom" in proc.stderr


CELL_JSON = ('{"kind": "rnn_cell", "base": 2, "nodes": [{"combine": "add", "activation": "tanh"}, '
             '{"combine": "mult", "activation": "relu"}, {"combine": "mult", "activation": '
             '"sigmoid"}], "cell_inject": {"combine": "add", "activation": "relu"}, '
             '"cell_index": {"inject": 0, "output": 1}}')


def _binary(name):
    """The installed console script (`_nascell_launch`'s entry point), beside this Python."""
    path = os.path.join(sysconfig.get_path("scripts"), name)
    assert os.path.exists(path), f"{path} is missing: install the package (pip install -e .)"
    return path


@pytest.mark.slow
def test_a_quiet_binary(tmp_path):
    """``nascell-export`` as a user runs it: status and summary lines, no native log line and
    no INFO line (TensorFlow Lite's interpreter included); with -v 0, absl's INFO lines
    again."""
    spec = tmp_path / "cell.json"
    spec.write_text(CELL_JSON)
    cli = [_binary("nascell-export"), f"--spec_json={spec}", "--units=4", "--input_dim=3"]
    env = _env()
    quiet = subprocess.run(cli + [f"--out={tmp_path / 'quiet'}", "--tflite"], env=env,
                           cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout.startswith("exported rnn_cell spec to")
    assert "step.tflite (TensorFlow Lite; largest difference" in quiet.stdout
    assert quiet.stderr.splitlines() == [
        "nascell-export: exporting rnn_cell spec (SavedModel, layer.keras, picture) ...",
        "nascell-export: converting endpoint 'step' to TensorFlow Lite ..."]
    verbose = subprocess.run(cli + [f"--out={tmp_path / 'verbose'}", "-v", "0"], env=env,
                             cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "exporter.py" in verbose.stderr and "] exported rnn_cell spec" in verbose.stderr
    assert _native(verbose.stderr), "-v 0 leaves TensorFlow's own logging as it is"


@pytest.mark.slow
def test_a_quiet_binary_run_as_a_module_logs_no_info(tmp_path):
    """``python -m nascell.export.bin.export``: Python imports nascell (and TensorFlow) before
    the module runs, so TensorFlow's import lines show, but the binary is quiet from there on:
    no INFO line, the status lines as from the console script."""
    spec = tmp_path / "cell.json"
    spec.write_text(CELL_JSON)
    proc = subprocess.run([sys.executable, "-m", "nascell.export.bin.export",
                           f"--spec_json={spec}", "--units=4", "--input_dim=3",
                           f"--out={tmp_path / 'out'}"], env=_env(), cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    python_lines = [ln for ln in proc.stderr.splitlines() if not _quiet.is_native_log_line(ln)]
    assert python_lines == [
        "nascell-export: exporting rnn_cell spec (SavedModel, layer.keras, picture) ..."]


@pytest.mark.slow
def test_a_quiet_binarys_worker_processes_are_quiet():
    """A local worker process of a quiet binary imports TensorFlow with its native lines
    hidden (its pool initializer is `worker_setup`), though it shares the binary's stderr."""
    proc = _run("""
        _quiet.start("nascell-search")  # as the console script does, before nascell
        from nascell.search.core.evaluator import FunctionEvaluator
        from nascell.search.executors import LocalExecutor
        from nascell.search.core.trial import Trial
        with LocalExecutor(workers=1, processes=True) as pool:
            pool.submit(Trial(0, {}, "2.5"), FunctionEvaluator(float))
            done = []
            while not done:
                done = pool.wait(timeout=60)
        print(done[0][1].reward)
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "2.5"
    assert not _native(proc.stderr), proc.stderr


@pytest.mark.slow
def test_a_worker_of_an_unquiet_process_keeps_tensorflows_logging():
    """`worker_setup` hides nothing unless the binary was quiet (``NASCELL_QUIET=1``): with
    ``NASCELL_QUIET=0`` TensorFlow's import lines show, as they do for any Python process."""
    code = """
        _quiet.worker_setup()
        import tensorflow
        print(tensorflow.__name__)
    """
    loud = _run(code, NASCELL_QUIET="0")
    quiet = _run(code, NASCELL_QUIET="1")
    assert loud.returncode == quiet.returncode == 0, loud.stderr + quiet.stderr
    assert _native(loud.stderr) and not _native(quiet.stderr), quiet.stderr


def test_ray_workers_of_a_quiet_process_run_worker_setup_first(monkeypatch):
    monkeypatch.setenv("NASCELL_QUIET", "1")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    runtime_env = _quiet.ray_init_options()["runtime_env"]
    assert runtime_env["worker_process_setup_hook"] == "_nascell_launch.worker_setup"
    assert runtime_env["env_vars"] == {"NASCELL_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    module, name = runtime_env["worker_process_setup_hook"].rsplit(".", 1)
    assert getattr(sys.modules[module], name) is _quiet.worker_setup
    monkeypatch.setenv("NASCELL_QUIET", "0")
    assert _quiet.ray_init_options() == {}


# Runs ``body`` in a fresh process started as ``nascell-search --run_dir=r`` would be, with
# NASCELL_QUIET=1; prints as JSON every call of os.dup2, and every read of sys.argv (or
# sys.orig_argv) made by code of the launcher or of the nascell package (TensorFlow's own
# import reads sys.argv: not ours to judge).
_AUDIT = """
import json, os, sys
events = []
class Argv(list):
    pass
def spy(method):
    def read(self, *args, **kwargs):
        events.append(["sys.argv." + method, sys._getframe(1).f_code.co_filename])
        return getattr(list, method)(self, *args, **kwargs)
    return read
for method in ("__getitem__", "__iter__", "__len__", "__contains__", "__eq__", "__add__",
               "__reversed__", "index", "count", "copy"):
    setattr(Argv, method, spy(method))
real_dup2 = os.dup2
def dup2(*args, **kwargs):
    events.append(["os.dup2", sys._getframe(1).f_code.co_filename])
    return real_dup2(*args, **kwargs)
os.dup2 = dup2
argv = [os.path.join(os.path.dirname(sys.executable), "nascell-search"), "--run_dir=r"]
sys.orig_argv = Argv([sys.executable] + argv)
sys.argv = Argv(argv)
BODY
os.dup2 = real_dup2
ours = [os.path.abspath(_quiet.__file__)] + [
    os.path.join(os.path.abspath(p), "") for name in ("nascell", "nascell.search", "nascell.export")
    for p in getattr(sys.modules.get(name), "__path__", [])]
print(json.dumps([f"{what} from {where}" for what, where in events if what == "os.dup2" or any(
    os.path.abspath(where) == o or os.path.abspath(where).startswith(o) for o in ours)]))
"""


def _audit(body, tmp_path):
    proc = subprocess.run([sys.executable, "-c", _LOAD + _AUDIT.replace("BODY", body)],
                          env=_env(NASCELL_QUIET="1"), cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow
def test_import_nascell_decides_nothing_about_the_process(tmp_path):
    """``import nascell`` in a process that looks like a quiet binary (its command line, its
    NASCELL_QUIET=1) neither reads the command line nor touches file descriptor 2: that is
    the binaries' entry points' business, which the same audit sees doing both."""
    assert _audit("import nascell, nascell.search, nascell.export", tmp_path) == []
    launched = _audit("_quiet.start('nascell-search')", tmp_path)
    assert any(e.startswith("sys.argv.") and e.endswith("_nascell_launch.py") for e in launched)
    assert any(e.startswith("os.dup2 from") for e in launched), launched
