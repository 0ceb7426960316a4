"""nascell-export --tflite: the .tflite file beside the SavedModel, checked against it; an
endpoint that does not convert leaves the export and says which op and why."""

import os

import pytest
from absl import app

from nascell.export.bin import export as cli
from nascell.spec import FIGURE5_SPEC


def _main(*args):
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["nascell-export", *args])
    return cli.main(["nascell-export"])


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "cell.json"
    path.write_text(FIGURE5_SPEC.to_json())
    return str(path)


def test_tflite_beside_the_saved_model(spec_file, tmp_path, capsys):
    out = tmp_path / "cell"
    assert _main(f"--spec_json={spec_file}", "--units=4", "--input_dim=3", f"--out={out}",
                 "--tflite") == 0
    assert os.path.getsize(out / "step.tflite") > 1000
    assert os.path.isdir(out / "saved_model")
    captured = capsys.readouterr()
    assert f"wrote {out / 'step.tflite'}" in captured.out
    diff = float(captured.out.split("random inputs: ")[1].split(")")[0])
    assert diff <= 1e-5
    assert "converting endpoint 'step' to TensorFlow Lite" in captured.err


def test_an_endpoint_that_does_not_convert(spec_file, tmp_path, capsys):
    out = tmp_path / "cell"
    assert _main(f"--spec_json={spec_file}", "--units=4", "--input_dim=3", f"--out={out}",
                 "--tflite", "--tflite_endpoint=sequence") == 1
    err = capsys.readouterr().err
    assert "the export is written, but --tflite failed" in err
    assert "tf.TensorListReserve" in err and "--tflite_select_tf_ops" in err
    assert os.path.exists(out / "metadata.json") and not os.path.exists(out / "sequence.tflite")


def test_tflite_options_need_tflite(spec_file, tmp_path):
    with pytest.raises(app.UsageError, match="--tflite_endpoint needs --tflite"):
        _main(f"--spec_json={spec_file}", "--units=4", "--input_dim=3",
              f"--out={tmp_path / 'o'}", "--tflite_endpoint=step")
    assert not os.path.exists(tmp_path / "o")
