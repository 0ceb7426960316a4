"""The nascell-export binary: once as a user runs it (a fresh process, with a flagfile), and
in-process through `main` (its flags live in a private FlagValues) for everything else."""

import json
import os
import subprocess
import sys

import pytest
from absl import app

from nascell.export.bin import export as cli
from nascell.search.handover import exporting
from nascell.spec import FIGURE5_SPEC


def _main(*args):
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", *args])
    return exporting.main(["nascell-export"])  # nascell-export: --run_dir served


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "cell.json"
    path.write_text(FIGURE5_SPEC.to_json())
    return str(path)


@pytest.mark.slow
def test_console_script_with_flagfile(tmp_path, conv_spec_dict):
    spec = tmp_path / "conv.json"
    spec.write_text(json.dumps(conv_spec_dict))
    out = tmp_path / "out"
    flagfile = tmp_path / "export.flags"
    flagfile.write_text(f"--spec_json={spec}\n--input_shape=9,8,3\n--out={out}\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "nascell.export.bin.export",
                           f"--flagfile={flagfile}"], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "exported conv spec to" in proc.stdout
    with open(out / "metadata.json") as f:
        meta = json.load(f)
    assert meta["kind"] == "conv" and meta["shapes"]["input_shape"] == [9, 8, 3]
    assert os.path.isdir(out / "saved_model") and os.path.isfile(out / "layer.keras")


def test_run_dir_trial(tmp_path, make_run):
    run_dir = tmp_path / "run"
    make_run(run_dir, FIGURE5_SPEC, {0: 0.2, 1: 0.1}, units=5)
    assert _main(f"--run_dir={run_dir}", "--trial=1", "--projection=3", "--nouse_bias") == 0
    with open(run_dir / "export" / "trial_1" / "metadata.json") as f:
        meta = json.load(f)
    assert meta["provenance"]["trial_id"] == 1
    assert meta["shapes"]["units"] == 5 and meta["shapes"]["projection"] == 3
    assert meta["layer"]["config"]["use_bias"] is False
    # The same folder again: refused without --overwrite, before any work.
    with pytest.raises(app.UsageError, match="--overwrite"):
        _main(f"--run_dir={run_dir}", "--trial=1")
    assert _main(f"--run_dir={run_dir}", "--overwrite", f"--out={tmp_path / 'best'}") == 0
    with open(tmp_path / "best" / "metadata.json") as f:
        assert json.load(f)["provenance"]["trial_id"] == 0


def test_the_export_module_alone_reads_no_run(tmp_path, make_run):
    """`nascell.export.bin.export` imports nothing of the search: run without the search's
    run source (python -m nascell.export.bin.export), --run_dir says where it is served."""
    run_dir = tmp_path / "run"
    make_run(run_dir, FIGURE5_SPEC, {0: 0.2})
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", f"--run_dir={run_dir}"])
    with pytest.raises(app.UsageError, match="run the nascell-export command"):
        cli.main(["nascell-export"])
    assert not os.path.exists(run_dir / "export")


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of --run_dir"),
    (["--units=4", "--input_dim=3", "--out=o"], "exactly one of --run_dir"),
    (["--spec_json={spec}", "--units=4", "--input_dim=3"], "--out is required"),
    (["--spec_json={spec}", "--input_dim=3", "--out=o"],
     "Argument `--units` must be a positive integer. Received: no --units"),
    (["--spec_json={spec}", "--units=0", "--input_dim=3", "--out=o"],
     "Argument `--units` must be a positive integer. Received: --units=0"),
    (["--spec_json={spec}", "--units=4", "--input_dim=3", "--input_shape=8,8,3", "--out=o"],
     "Argument `--input_shape` must be left out for a spec of kind 'rnn_cell'"),
    (["--spec_json={spec}", "--trial=2", "--out=o"], "--trial needs --run_dir"),
    (["--spec_json=missing.json", "--units=4", "--input_dim=3", "--out=o"], "no such file"),
    (["--spec_json={{\"kind\": \"conv\", \"layers\": [{{\"op\": \"avg\"}}]}}", "--out=o"],
     "'op'"),
    (["--spec_json={{\"kind\": \"conv\", \"layers\": [{{}}]}}", "--input_shape=8,x", "--out=o"],
     "Argument `--input_shape` must be three positive integers"),
    (["--run_dir=no_such_run"], "does not exist"),
])
def test_bad_flags_are_usage_errors(args, message, spec_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(app.UsageError) as info:
        _main(*[a.format(spec=spec_file) for a in args])
    assert message in str(info.value)
    assert os.listdir(tmp_path) == ["cell.json"]
