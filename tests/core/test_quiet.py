"""Quiet processes: which ones are quiet, which lines count as native logs, and a real
TensorFlow import that prints none of them while Python's own stderr output survives."""

import os
import subprocess
import sys
import textwrap

from nascell import _quiet

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


# Loads nascell/_quiet.py alone: importing the package itself would import TensorFlow first.
_LOAD = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("_quiet", {_quiet.__file__!r})
_quiet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(_quiet)
"""


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                             "NASCELL_QUIET")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", _LOAD + textwrap.dedent(code)], env=full,
                          capture_output=True, text=True, timeout=300)


def test_a_quiet_tensorflow_import_prints_no_native_line():
    proc = _run("""
        import sys, warnings
        with _quiet.early():
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


def test_a_failed_import_shows_everything_it_printed():
    proc = _run("""
        import os
        with _quiet.muted_native_logs():
            os.write(2, b"I0000 00:00:1.5   1 x.cc:1] shown because the body failed\\n")
            raise ImportError("boom")
    """)
    assert proc.returncode == 1
    assert "shown because the body failed" in proc.stderr and "ImportError: boom" in proc.stderr


def test_a_quiet_binary_run_as_a_module(tmp_path):
    """`python -m nascell.export.bin.export` (as a user, or a test, runs it): status and
    summary lines, no native log line and no INFO line (TensorFlow Lite's interpreter
    included); with -v 0, absl's INFO lines again."""
    spec = tmp_path / "cell.json"
    spec.write_text('{"kind": "rnn_cell", "base": 2, "nodes": [{"combine": "add", '
                    '"activation": "tanh"}, {"combine": "mult", "activation": "relu"}, '
                    '{"combine": "mult", "activation": "sigmoid"}], "cell_inject": '
                    '{"combine": "add", "activation": "relu"}, "cell_index": '
                    '{"inject": 0, "output": 1}}')
    cli = [sys.executable, "-m", "nascell.export.bin.export", f"--spec_json={spec}",
           "--units=4", "--input_dim=3"]
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            "NASCELL_QUIET")}
    # (cwd: from a checkout's root, `-m` would find its nascell/ folder, not the install)
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
