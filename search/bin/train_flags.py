"""The flags of nascell-train, defined on import.

`nascell.search.bin.train_plan` reads them (the spec, the grid, the evaluator's options) and
`nascell.search.bin.train` runs the final stage; the child trainers' flags (data, budgets,
``--child_*``) are `nascell.search.bin.child_flags`.
"""

from __future__ import annotations

from absl import flags

from nascell.search.bin import define_once

FLAGS = flags.FLAGS


define_once(flags.DEFINE_string, "run_dir", None, "Run directory of a search: its best spec "
             "is trained, and results go to <run_dir>/final unless --final_dir is given.")
define_once(flags.DEFINE_string, "spec_json", None, "File with the spec to train (a spec "
             "JSON object, or an object with a 'spec' key such as best/best.json). Default: "
             "the best trial of --run_dir.")
flags.DEFINE_string("final_dir", None, "Where the grid and final results go (default "
                    "<run_dir>/final; required with --spec_json and no --run_dir).")
flags.DEFINE_list("lr_grid", [], "Learning rates to try (default: the child's --child_lr or "
                  "the paper's).")
flags.DEFINE_list("weight_decay_grid", [], "Weight decays to try (default: one, the child's).")
flags.DEFINE_list("bn_epsilon_grid", [], "Batch-norm epsilons to try (conv specs only).")
flags.DEFINE_list("lr_decay_epoch_grid", [], "Epochs at which the learning-rate decay starts "
                  "('none': no decay).")
flags.DEFINE_integer("grid_epochs", None, "Epochs per grid point (default: --epochs).")
flags.DEFINE_integer("epochs", None, "Epochs of the final training (default: the paper's "
                     "child epochs, 35 for cells, 50 for conv nets).")
flags.DEFINE_enum("cell", None, ["lstm"], "Train a baseline cell instead of a found spec: "
                  "lstm (Keras' LSTMCell, as Zaremba et al.). Exclusive with --spec_json.")
define_once(flags.DEFINE_bool, "export", True, "At the end, export the found cell with its "
             "trained weights and the whole trained model (a SavedModel with a "
             "serving_default signature) into <final_dir>/export.")
flags.DEFINE_integer("test_batch_size", None, "Language models carrying the state: rows of the "
                     "test stream (default: the batch size; 1: the test split as one stream, "
                     "as Zaremba et al. measure it).")
