"""Searches on your own data, end to end: a text folder (word level, by flags; character
level, from Python), a 3-class 24x24 grayscale image folder (by flags), a tensorflow-datasets
name (mocked by tfds' own `tfds.testing.mock_data`), and arrays from Python. Each search is
killed with SIGKILL after its first finished trial, resumed, and exported; the export's input
shape / vocabulary match the data."""

import json
import os
import subprocess
import sys
import textwrap
import time

import own_data_helpers as helpers
import pytest

from nascell.search.rundir.store import TrialStore

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = [sys.executable, "-m", "nascell.search.bin.search"]
TEXT_CHILD = ["--child_units=8", "--child_epochs=1", "--child_steps_per_epoch=2",
              "--child_batch_size=4", "--child_seq_len=5", "--child_max_valid_steps=2"]
IMAGE_CHILD = ["--child_epochs=1", "--child_steps_per_epoch=2", "--child_batch_size=8",
               "--nochild_flip"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _kill_after_first_trial(cmd, run_dir, cwd, limit=300):
    """Start ``cmd``, SIGKILL it once a trial has finished; returns the finished trial ids."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            cwd=str(cwd))
    path = os.path.join(run_dir, "trials.sqlite")
    deadline = time.time() + limit
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                if os.path.exists(path) and TrialStore(path, readonly=True).counts()["done"]:
                    break
            except Exception:  # still being created
                pass
            time.sleep(0.05)
    finally:
        proc.kill()
        _, err = proc.communicate()
    store = TrialStore(path, readonly=True)
    done = {t.trial_id for t in store.finished()}
    store.close()
    assert done, f"no trial finished before the kill: {err.decode()[-3000:]}"
    return done


def _check_resumed(run_dir, before, total):
    store = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)
    assert sorted(t.trial_id for t in store.finished()) == list(range(total))
    for trial_id in before:  # finished before the kill: not trained again
        assert store.attempts(trial_id) == 1
    store.close()


def _metadata(run_dir):
    with open(os.path.join(run_dir, "export", "best", "metadata.json")) as f:
        return json.load(f)


def _cli(args, cwd):
    return subprocess.run(CLI + args, capture_output=True, text=True, env=_env(), cwd=str(cwd),
                          timeout=400)


@pytest.mark.slow
def test_text_folder_word_level_by_flags(tmp_path):
    text_dir = helpers.write_text_folder(str(tmp_path / "text"))
    run_dir = str(tmp_path / "run")
    args = [f"--text_dir={text_dir}", "--vocab_size=10", "--space=rnn_cell",
            "--strategy=random", "--num_trials=2", f"--run_dir={run_dir}", "--noprogress",
            *TEXT_CHILD]
    before = _kill_after_first_trial(CLI + args, run_dir, tmp_path)
    done = _cli(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_resumed(run_dir, before, 2)
    meta = _metadata(run_dir)
    data = meta["provenance"]["data"]
    assert data["source"] == "folder" and data["level"] == "word" and data["vocab_size"] == 10
    with open(os.path.join(run_dir, "export", "best", "vocab.json")) as f:
        vocab = json.load(f)["tokens"]
    assert len(vocab) == 10 and vocab[-1] == "<unk>" and "<eos>" in vocab
    assert meta["shapes"]["input_dim"] == 8 and meta["kind"] == "rnn_cell"

    # Other text in the same run directory is refused; the same text elsewhere is not.
    from nascell.search import text_evaluator
    from nascell.search.rundir.run_dir import config_differences
    with open(os.path.join(run_dir, "config.json")) as f:
        stored = json.load(f)
    moved = helpers.write_text_folder(str(tmp_path / "moved"))
    other = helpers.write_text_folder(str(tmp_path / "other"), seed=1)
    for folder, refused in ((moved, False), (other, True)):
        now = dict(stored, evaluator=text_evaluator(
            {"path": folder, "vocab_size": 10}, **{k: stored["evaluator"][k] for k in (
                "units", "epochs", "steps_per_epoch", "batch_size", "seq_len",
                "max_valid_steps")}).config())
        keys = [k for k, _, _ in config_differences(stored, now)]
        assert ("evaluator.data.fingerprint" in keys) == refused, keys


@pytest.mark.slow
def test_text_folder_whose_valid_split_is_too_short_stops_before_any_child(tmp_path):
    """Data too short for one batch is found before the first child: one message naming the
    split, the batch and the fix, a non-zero exit, and no run directory (nothing trained)."""
    text_dir = helpers.write_text_folder(str(tmp_path / "text"), lines=(300, 2, 40))
    run_dir = str(tmp_path / "run")
    proc = _cli([f"--text_dir={text_dir}", "--space=rnn_cell", "--strategy=random",
                 "--num_trials=2", f"--run_dir={run_dir}", "--noprogress", *TEXT_CHILD],
                tmp_path)
    assert proc.returncode != 0, proc.stdout + proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("nascell-search: the valid split has "), last
    assert "too few for one batch of batch_size=4 x seq_len=5 (it needs 24)" in last
    assert "--child_batch_size, --child_seq_len" in last and "more text" in last
    assert proc.stderr.count("the valid split has") == 1  # once, not once per trial
    assert not os.path.exists(run_dir)  # no trial recorded, no weights, nothing to resume
    assert "trials in" not in proc.stdout


@pytest.mark.parametrize("source", ["text", "arrays"])
def test_python_data_too_small_for_a_batch_raises_before_any_child(tmp_path, source):
    """From Python (`text_evaluator` on strings, `image_evaluator` on arrays), `run_search`
    raises the DataError before anything is evaluated or written."""
    from nascell.search import (
        create_space,
        create_strategy,
        image_evaluator,
        run_search,
        text_evaluator,
    )
    from nascell.search.data import DataError

    if source == "text":
        space = create_space("rnn_cell")
        evaluator = text_evaluator({"train": "the cat sat on the mat " * 40,
                                    "valid": "the cat sat", "test": "on the mat"},
                                   units=8, batch_size=4, seq_len=5)
        match = r"the valid split has \d+ tokens, too few for one batch of batch_size=4"
    else:
        space = helpers.tiny_conv_space()
        x, y, x_test, y_test = helpers.arrays()
        evaluator = image_evaluator((x[:6], y[:6], x_test, y_test), batch_size=8)
        match = r"training images are fewer than one batch of 8: use a smaller batch_size"
    run_dir = str(tmp_path / "run")
    with pytest.raises(DataError, match=match):
        run_search(space, create_strategy("random", space, seed=0), evaluator, run_dir,
                   num_trials=2, progress=False)
    assert not os.path.exists(run_dir)


@pytest.mark.slow
def test_text_folder_char_level_from_python(tmp_path):
    text_dir = helpers.write_text_folder(str(tmp_path / "text"), lines=(120, 20, 20))
    run_dir = str(tmp_path / "run")
    script = ("import own_data_helpers as h, sys; "
              "h.char_search(sys.argv[1], sys.argv[2], 2)")
    before = _kill_after_first_trial([sys.executable, "-c", script, text_dir, run_dir],
                                     run_dir, tmp_path)
    result = helpers.char_search(text_dir, run_dir, 2)  # resumed in this process
    assert result.num_done + result.num_failed == 2
    _check_resumed(run_dir, before, 2)
    from nascell.search import handover
    path = handover.export_best(run_dir)
    with open(os.path.join(path, "vocab.json")) as f:
        vocab = json.load(f)["tokens"]
    text = open(os.path.join(text_dir, "train.txt")).read()
    assert set(vocab) == set(text) | {"<unk>"}  # characters; "zebra" adds unseen "z", "e"...
    meta = json.load(open(os.path.join(path, "metadata.json")))
    assert meta["provenance"]["data"]["level"] == "char"
    assert meta["provenance"]["data"]["vocab_size"] == len(vocab)


@pytest.mark.slow
def test_image_folder_24x24_grayscale_by_flags(tmp_path):
    image_dir = helpers.write_image_folder(str(tmp_path / "images"))
    run_dir = str(tmp_path / "run")
    args = ["--import=own_data_helpers", f"--image_dir={image_dir}", "--space=tiny_conv",
            "--strategy=random", "--num_trials=2", f"--run_dir={run_dir}", "--noprogress",
            *IMAGE_CHILD]
    before = _kill_after_first_trial(CLI + args, run_dir, tmp_path)
    done = _cli(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_resumed(run_dir, before, 2)
    meta = _metadata(run_dir)
    assert meta["shapes"]["input_shape"] == [24, 24, 1]
    data = meta["provenance"]["data"]
    assert data["num_classes"] == 3 and data["class_names"] == list(helpers.CLASSES)
    assert data["image_shape"] == [24, 24, 1] and data["color_mode"] == "grayscale"


@pytest.mark.slow
def test_tfds_name_through_mock_data(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    meta_dir = str(tmp_path / "tfds")
    version = helpers.prepare_tfds_metadata(meta_dir)
    run_dir = str(tmp_path / "run")
    argv = ["--import=own_data_helpers", "--tfds_name=mnist", f"--tfds_data_dir={meta_dir}",
            "--space=tiny_conv", "--strategy=random", "--num_trials=2", f"--run_dir={run_dir}",
            "--noprogress", *IMAGE_CHILD]
    script = "import own_data_helpers as h, sys; h.tfds_cli(sys.argv[1], sys.argv[2:])"
    cmd = [sys.executable, "-c", script, meta_dir, *argv]
    before = _kill_after_first_trial(cmd, run_dir, tmp_path)
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=str(tmp_path),
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    _check_resumed(run_dir, before, 2)
    meta = _metadata(run_dir)
    assert meta["shapes"]["input_shape"] == [28, 28, 1]
    data = meta["provenance"]["data"]
    assert data["source"] == "tfds" and data["tfds_name"] == "mnist"
    assert data["tfds_version"] == version and data["num_classes"] == 10


@pytest.mark.slow
def test_arrays_from_python(tmp_path):
    run_dir = str(tmp_path / "run")
    script = "import own_data_helpers as h, sys; h.arrays_search(sys.argv[1], 2)"
    before = _kill_after_first_trial([sys.executable, "-c", script, run_dir], run_dir,
                                     tmp_path)
    result = helpers.arrays_search(run_dir, 2)
    assert result.num_done + result.num_failed == 2
    _check_resumed(run_dir, before, 2)
    from nascell.search import handover
    meta = json.load(open(os.path.join(handover.export_best(run_dir), "metadata.json")))
    assert meta["shapes"]["input_shape"] == [10, 10, 2]
    data = meta["provenance"]["data"]
    assert data["source"] == "arrays" and data["num_classes"] == 4
    assert "options" not in data  # nothing to read back: the arrays came from Python


@pytest.mark.slow
def test_enas_on_own_text_and_images(tmp_path):
    """ENAS (the enas strategy + the supernet evaluator) on a text folder and on arrays."""
    from nascell.search import create_space, create_strategy, enas_evaluator, handover, run_search

    text_dir = helpers.write_text_folder(str(tmp_path / "text"), lines=(200, 40, 40))
    schedule = dict(epochs=1, shared_steps=4, controller_steps=1, m=2, derive_samples=1,
                    jit_compile=False)
    for name, data, options in (
            ("enas_rnn", {"path": text_dir, "vocab_size": 12}, dict(units=8, batch_size=4,
                                                                    seq_len=5)),
            ("enas_conv", helpers.arrays(), dict(filters=4, batch_size=4))):
        space = create_space(name, num_nodes=2)
        strategy = create_strategy("enas", space, seed=0, **schedule)
        evaluator = enas_evaluator(data, **options)
        run_dir = str(tmp_path / name)
        result = run_search(space, strategy, evaluator, run_dir,
                            num_trials=strategy.planned_trials(), progress=False,
                            tensorboard=False)
        assert result.num_done == strategy.planned_trials()
        meta = json.load(open(os.path.join(handover.export_best(run_dir), "metadata.json")))
        data_record = meta["provenance"]["data"]
        if name == "enas_rnn":
            assert data_record["vocab_size"] == 12 and meta["shapes"]["units"] == 8
            assert os.path.isfile(os.path.join(run_dir, "export", "best", "vocab.json"))
        else:
            assert meta["shapes"]["input_shape"] == [10, 10, 2]
            assert data_record["num_classes"] == 4


@pytest.mark.slow
def test_data_flags_are_checked_before_any_work(tmp_path):
    script = textwrap.dedent("""
        import io, json, sys
        from absl import app, flags
        from nascell.search.bin import search
        cases = json.loads(sys.argv[1])
        out = {}
        for name, argv in cases.items():
            flags.FLAGS.unparse_flags()
            try:
                search.resolve(flags.FLAGS(["nascell-search"] + argv))
                out[name] = "OK"
            except (app.UsageError, flags.Error) as e:
                out[name] = str(e)
        flags.FLAGS.unparse_flags()  # bad data is found when the run starts: one line, exit 1
        flags.FLAGS(["nascell-search", "--text_dir=" + sys.argv[2], "--run_dir=" + sys.argv[3]])
        sys.stderr, err = io.StringIO(), sys.stderr
        try:
            search.main(["nascell-search"])
        except SystemExit as e:
            out["bad_data"] = str(e.code)
        sys.stderr = err
        print(json.dumps(out))
    """)
    text = helpers.write_text_folder(str(tmp_path / "text"))
    images = helpers.write_image_folder(str(tmp_path / "images"), per_class=1)
    empty = tmp_path / "empty_valid"
    empty.mkdir()
    (empty / "train.txt").write_text("a b c\n" * 50)
    (empty / "valid.txt").write_text("\n")
    (empty / "test.txt").write_text("a b\n")
    cases = {
        "text_ok": [f"--text_dir={text}", "--text_level=char", "--vocab_size=20"],
        "image_ok": [f"--image_dir={images}", "--image_size=16x16"],
        "enas_text_ok": ["--strategy=enas", f"--text_dir={text}"],
        "enas_image_ok": ["--strategy=enas", f"--image_dir={images}"],
        "both": [f"--text_dir={text}", f"--image_dir={images}"],
        "missing": [f"--text_dir={tmp_path}/nope"],
        "level_alone": ["--text_level=char"],
        "builtin": [f"--text_dir={text}", "--child_dataset=ptb_char"],
        "dataset": [f"--text_dir={text}", "--dataset=cifar10"],
        "space": [f"--image_dir={images}", "--space=rnn_cell"],
        "size": [f"--image_dir={images}", "--image_size=big"],
        "two_sources": [f"--image_dir={images}", "--tfds_name=mnist"],
        "tfds": ["--tfds_name=mnist", f"--tfds_data_dir={tmp_path}"],
        "vocab": [f"--text_dir={text}", "--vocab_size=1"],
        "fractions": [f"--text_dir={text}", "--text_fractions=0.5,0.5"],
        "foreign": [f"--image_dir={images}", "--child_seq_len=5"],
    }
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases), str(empty),
                           str(tmp_path / "never")], capture_output=True, text=True,
                          env=_env(), timeout=240, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    expected = {
        "text_ok": "OK", "image_ok": "OK", "enas_text_ok": "OK", "enas_image_ok": "OK",
        "both": "pass text flags or image flags, not both",
        "missing": "no such folder or file",
        "level_alone": "describe --text_dir: pass --text_dir too",
        "builtin": "--child_dataset name a built-in data set",
        "dataset": "--dataset=cifar10 and your own text name two data sets",
        "space": "give images, but this search trains recurrent cells",
        "size": "--image_size=big: give HxW",
        "two_sources": "exactly one",
        "tfds": "--tfds_name=mnist is not prepared in",
        "vocab": "Argument `--vocab_size` must be >= 2. Received: --vocab_size=1",
        "fractions": "must be three positive numbers",
        "foreign": "--child_seq_len do not apply to the conv_classifier children",
        "bad_data": "the valid split of the text is empty (valid.txt)",
    }
    for name, message in expected.items():
        assert message in got[name], (name, got[name])
    assert not (tmp_path / "never" / "trials.sqlite").exists()
