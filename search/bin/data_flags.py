"""Flags for your own data, shared by nascell-search and nascell-train (through child_flags).

    nascell-search --text_dir=corpus/ --text_level=char              # recurrent cells
    nascell-search --text_dir=novel.txt --vocab_size=10000           # one file, cut 90/5/5
    nascell-search --image_dir=photos/ --image_size=64x64            # conv nets
    nascell-search --tfds_name=mnist --tfds_data_dir=~/tensorflow_datasets
    nascell-search --strategy=enas --text_dir=corpus/                # ENAS, shared weights

Text (``--text_*``, ``--vocab_size``) replaces ``--child_dataset`` / ``--data_dir`` for the
recurrent-cell children, ENAS' recurrent supernet and nascell-train; images (``--image_dir`` or
``--tfds_name``) replace CIFAR-10 (``--data_dir``, ``--cifar_npz``) for the conv children and
ENAS' image supernets. The rules (split files, vocabulary and ``<unk>``, held-out splits) are
those of `nascell.search.data.corpus`, `nascell.search.data.images` and
`nascell.search.data.image_sources`. Everything is checked before any work starts; nothing
waits on the network unless ``--tfds_download``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from absl import app, flags, logging

FLAGS = flags.FLAGS

flags.DEFINE_string("text_dir", None, "Your own text for recurrent-cell searches: a folder "
                    "with train / valid / test files (any name with train, valid|validation|"
                    "val|dev, test as a dot-separated part, e.g. ptb.train.txt), a folder of "
                    "documents, or one file (cut by --text_fractions).")
flags.DEFINE_enum("text_level", None, ["word", "char"], "Tokens of --text_dir: words "
                  "(whitespace-separated, <eos> per line; default) or characters.")
flags.DEFINE_integer("vocab_size", None, "Vocabulary cap of --text_dir, <unk> included: the "
                     "most frequent training tokens are kept, the rest map to <unk> (default: "
                     "every training token).")
flags.DEFINE_bool("text_unk", None, "Allow mapping tokens to <unk> (over --vocab_size, or "
                  "unseen in training); --notext_unk makes either an error (default: allowed).")
flags.DEFINE_string("text_pattern", None, "Exact split file names in --text_dir, e.g. "
                    "'ptb.{split}.txt' (split: train, valid, test).")
flags.DEFINE_list("text_fractions", None, "train,valid,test shares for splits cut from the "
                  "training text (default 0.9,0.05,0.05).")
flags.DEFINE_string("text_encoding", None, "Encoding of the --text_dir files (default utf-8).")
flags.DEFINE_string("image_dir", None, "Your own images for conv searches: a folder of class "
                    "sub-folders (or train/ and test/ folders of them), read with "
                    "keras.utils.image_dataset_from_directory.")
flags.DEFINE_string("image_size", None, "HxW (or one number): resize every image of "
                    "--image_dir / --tfds_name to it (needed when their sizes differ).")
flags.DEFINE_string("tfds_name", None, "A tensorflow-datasets image classification data set "
                    "(e.g. mnist, cifar100, or name:version) prepared in --tfds_data_dir.")
flags.DEFINE_string("tfds_data_dir", None, "Where --tfds_name is prepared (default: "
                    "$TFDS_DATA_DIR or ~/tensorflow_datasets).")
flags.DEFINE_bool("tfds_download", False, "Let tensorflow-datasets download and prepare "
                  "--tfds_name when it is not prepared (off: nothing waits on the network).")
flags.DEFINE_float("image_test_fraction", None, "Share of the images held out as the test split "
                   "when the source has none (default 0.1; seeded by --child_seed).")

TEXT_FLAGS = {"text_dir": "path", "text_level": "level", "vocab_size": "vocab_size",
              "text_unk": "unk", "text_pattern": "pattern", "text_fractions": "fractions",
              "text_encoding": "encoding"}
IMAGE_FLAGS = {"image_dir": "image_dir", "tfds_name": "tfds_name",
               "tfds_data_dir": "tfds_data_dir", "tfds_download": "tfds_download",
               "image_size": "image_size", "image_test_fraction": "test_fraction"}


def _usage(message: str) -> None:
    raise app.UsageError(message)


def _given(names) -> List[str]:
    return [n for n in names if FLAGS[n].present]


def own_modality() -> Optional[str]:
    """"sequence" when text flags are given, "image" for image flags, None for neither."""
    text, image = _given(TEXT_FLAGS), _given(IMAGE_FLAGS)
    if text and image:
        _usage(f"{', '.join('--' + f for f in text + image)}: pass text flags or image flags, "
               "not both (one search searches one kind of data)")
    return "sequence" if text else "image" if image else None


def image_size(value: Optional[str]) -> Optional[List[int]]:
    """``"64x48"``, ``"64,48"`` or ``"64"`` as ``[height, width]``; app.UsageError otherwise."""
    if value is None:
        return None
    parts = [p for p in value.lower().replace("x", ",").split(",") if p.strip()]
    try:
        size = [int(p) for p in parts]
    except ValueError:
        size = []
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        _usage(f"--image_size={value}: give HxW (two positive integers, e.g. 64x64) or one "
               "number")
    return size


def validate_data_flags(modality: Optional[str] = None) -> Optional[str]:
    """Check the data flags (for a search of ``modality`` when known); returns the modality
    they give (`own_modality`). Raises app.UsageError naming the flag; touches no data."""
    own = own_modality()
    if own is None:
        return None
    if modality is not None and own != modality:
        what = "text" if own == "sequence" else "images"
        searches = "recurrent cells" if modality == "sequence" else "image networks"
        _usage(f"{', '.join('--' + f for f in _given(TEXT_FLAGS) + _given(IMAGE_FLAGS))} "
               f"give {what}, but this search trains {searches}")
    builtin = _given(["data_dir", "cifar_npz", "child_dataset"])
    if builtin:
        _usage(f"{', '.join('--' + f for f in builtin)} name a built-in data set; your own data "
               f"({', '.join('--' + f for f in _given(TEXT_FLAGS) + _given(IMAGE_FLAGS))}) "
               "replaces it: pass one or the other")
    if own == "sequence":
        if FLAGS.text_dir is None:
            _usage(f"{', '.join('--' + f for f in _given(TEXT_FLAGS))} describe --text_dir: "
                   "pass --text_dir too")
        if not os.path.exists(os.path.expanduser(FLAGS.text_dir)):
            _usage(f"--text_dir={FLAGS.text_dir}: no such folder or file")
        if FLAGS.vocab_size is not None and FLAGS.vocab_size < 2:
            _usage(f"Argument `--vocab_size` must be >= 2. "
                   f"Received: --vocab_size={FLAGS.vocab_size}")
        if FLAGS.text_pattern is not None and "{split}" not in FLAGS.text_pattern:
            _usage(f"--text_pattern={FLAGS.text_pattern} must contain {{split}}, e.g. "
                   "ptb.{split}.txt")
        if FLAGS.text_fractions is not None:
            try:
                fractions = [float(f) for f in FLAGS.text_fractions]
            except ValueError:
                fractions = []
            if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
                _usage(f"--text_fractions={','.join(FLAGS.text_fractions)} must be three "
                       "positive numbers (train,valid,test) summing to 1")
        return own
    if (FLAGS.image_dir is None) == (FLAGS.tfds_name is None):
        _usage("pass --image_dir (a folder of class sub-folders) or --tfds_name (a "
               "tensorflow-datasets name), exactly one")
    if FLAGS.image_dir is not None:
        if not os.path.isdir(os.path.expanduser(FLAGS.image_dir)):
            _usage(f"--image_dir={FLAGS.image_dir}: no such folder")
        extra = _given(["tfds_data_dir", "tfds_download"])
        if extra:
            _usage(f"{', '.join('--' + f for f in extra)} go with --tfds_name, not --image_dir")
    else:
        from nascell.search.data.image_sources import default_tfds_dir, tfds_prepared
        where = os.path.abspath(os.path.expanduser(FLAGS.tfds_data_dir or default_tfds_dir()))
        if not FLAGS.tfds_download and tfds_prepared(FLAGS.tfds_name, where) is None:
            base = FLAGS.tfds_name.partition(":")[0]
            _usage(f"--tfds_name={FLAGS.tfds_name} is not prepared in {where}: pass "
                   f"--tfds_data_dir=DIR holding a prepared {base}/ folder (made with `tfds build "
                   f"{base} --data_dir=DIR` where there is network), or --tfds_download")
    image_size(FLAGS.image_size)
    fraction = FLAGS.image_test_fraction
    if fraction is not None and not 0 < fraction < 1:
        _usage(f"Argument `--image_test_fraction` must be in (0, 1). "
               f"Received: --image_test_fraction={fraction}")
    return own


def data_options() -> Dict[str, Any]:
    """The evaluator argument the data flags give: ``{"corpus": text_corpus options}``,
    ``{"images": load_images options}``, or {} (a built-in data set). Call
    `validate_data_flags` first."""
    own = own_modality()
    if own == "sequence":
        options = {arg: FLAGS[flag].value for flag, arg in TEXT_FLAGS.items()
                   if FLAGS[flag].value is not None}
        if "fractions" in options:
            options["fractions"] = [float(f) for f in options["fractions"]]
        return {"corpus": options}
    if own == "image":
        options = {arg: FLAGS[flag].value for flag, arg in IMAGE_FLAGS.items()
                   if FLAGS[flag].present and FLAGS[flag].value is not None}
        if "image_size" in options:
            options["image_size"] = image_size(options["image_size"])
        if FLAGS.child_seed is not None:
            options["seed"] = FLAGS.child_seed
        return {"images": options}
    return {}


def run_data_options(run_dir: Optional[str], kind: str) -> Dict[str, Any]:
    """``{"corpus": ...}`` / ``{"images": ...}``: the own data the search in ``run_dir`` ran on
    (its config's data record holds the options that read it), for nascell-train when no data
    flag is given; {} for a search on a built-in data set."""
    given = [f for f in ("data_dir", "cifar_npz", "child_dataset") if FLAGS[f].present]
    if not run_dir or given:
        return {}
    from nascell import _io
    from nascell.search.rundir.run_dir import CONFIG_FILE

    try:
        config = _io.read_json_or_none(os.path.join(run_dir, CONFIG_FILE)) or {}
    except ValueError:
        return {}  # resolve_spec reports a broken run directory
    evaluator = config.get("evaluator") or {}
    data = evaluator.get("data")
    if not isinstance(data, dict) or evaluator.get("name") != kind:
        return {}
    if "options" not in data:
        what = "--text_dir" if kind == "rnn_lm" else "--image_dir or --tfds_name"
        _usage(f"the search in --run_dir={run_dir} ran on data given from Python "
               f"({data.get('source')}), which nascell-train cannot read back: pass {what}")
    key = "corpus" if kind == "rnn_lm" else "images"
    logging.info("training on the search's own data: %s", data["options"])
    return {key: dict(data["options"])}
