r"""Character-level Penn Treebank: an exported cell against an LSTM of equal parameter count.

The recurrent layer comes from an export folder (`nascell.export.load`): one you pass with
--export_dir (its trained weights are the starting point), or one made here from --spec_json
or, by default, from the NAS cell (`NAS_CELL_SPEC`, no bias, as TensorFlow's NASCell). A tree
cell (``rnn_cell``) or an ENAS cell (``enas_rnn_cell``, e.g. exported from an ENAS run) both
work: the layer is loaded with ``return_state=False``, so how many states the cell carries
(``h, c`` or ``h``) does not matter here (--projection is for tree cells only). The
baseline is ``keras.layers.LSTM`` whose units are solved so that the whole language model
(embedding + recurrent layer + softmax) has the same number of parameters. Both are trained
the same way (Adam, gradient clipping, the same batches) and reported in bits per character
on the validation and test splits (the paper's Table: NAS cell 1.228 vs LSTM 1.243 bpc at
6.57M parameters).

    # seconds, on a slice of the data (the defaults):
    python examples/char_ptb.py
    # the full data at a real size (hours on CPU; use a GPU):
    python examples/char_ptb.py --max_train_chars=0 --max_eval_chars=0 --units=800 \
        --embedding_dim=128 --seq_len=100 --batch_size=64 --epochs=20 --steps=0 --dropout=0.25

Data: ``ptb.char.{train,valid,test}.txt`` in --data_dir if present, else the word-level PTB
(--data_dir or the ``treebank`` package) turned into characters by the published rule: the
search's ``ptb_char`` corpus (`nascell.search.evaluators.rnn_lm.load_corpus`), cut to the first
--max_train_chars / --max_eval_chars characters. ``benchmarks/char_ptb.py`` runs the same
comparison for the registry's cells over seeds, as a resumable benchmark.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from typing import Any, Dict, Optional

from absl import app, flags, logging


@dataclasses.dataclass
class Config:
    data_dir: Optional[str] = None
    export_dir: Optional[str] = None   # an export folder to load (sizes come from it)
    spec_json: Optional[str] = None    # else a spec to export first; else the NAS cell
    units: int = 48
    embedding_dim: int = 16
    projection: Optional[int] = None
    batch_size: int = 32
    seq_len: int = 50
    steps: int = 200                   # training steps per epoch; 0: a full pass
    epochs: int = 1
    learning_rate: float = 1e-2
    clipnorm: float = 1.0
    dropout: float = 0.0               # on the recurrent outputs, both models
    max_train_chars: int = 100_000     # 0: all
    max_eval_chars: int = 20_000       # 0: all
    seed: int = 0
    baseline: bool = True


def define_flags() -> None:
    """The flags of `Config` (defined only when run as a script)."""
    c = Config()
    flags.DEFINE_string("data_dir", c.data_dir, "PTB folder (char or word files); default: "
                        "the treebank package.")
    flags.DEFINE_string("export_dir", c.export_dir, "An export folder (nascell-export) whose "
                        "cell to use; its units and input size override --units/--embedding_dim.")
    flags.DEFINE_string("spec_json", c.spec_json, "A cell spec JSON file to export and use "
                        "(default: the NAS cell).")
    flags.DEFINE_integer("units", c.units, "Cell units (when not from --export_dir).")
    flags.DEFINE_integer("embedding_dim", c.embedding_dim, "Character embedding size (the "
                         "cell's input size).")
    flags.DEFINE_integer("projection", c.projection, "Optional projection of the cell output.")
    flags.DEFINE_integer("batch_size", c.batch_size, "Batch size.")
    flags.DEFINE_integer("seq_len", c.seq_len, "Truncated BPTT length.")
    flags.DEFINE_integer("steps", c.steps, "Training steps per epoch (0: one full pass).")
    flags.DEFINE_integer("epochs", c.epochs, "Epochs.")
    flags.DEFINE_float("learning_rate", c.learning_rate, "Adam learning rate.")
    flags.DEFINE_float("clipnorm", c.clipnorm, "Global gradient norm clip.")
    flags.DEFINE_float("dropout", c.dropout, "Dropout on the recurrent outputs.")
    flags.DEFINE_integer("max_train_chars", c.max_train_chars, "Use the first N training "
                         "characters (0: all 5.0M).")
    flags.DEFINE_integer("max_eval_chars", c.max_eval_chars, "Use the first N validation and "
                         "test characters (0: all).")
    flags.DEFINE_integer("seed", c.seed, "Random seed.")
    flags.DEFINE_boolean("baseline", c.baseline, "Also train the equal-size LSTM.")


# --- the models ---------------------------------------------------------------------------------


def exported_cell_layer(cfg: Config, workdir: str):
    """The cell, loaded from an export folder (made here from a spec unless --export_dir): a
    `nascell.RNN`, the loaded cell and weights on the fast path."""
    from nascell.export import export_spec, load
    from nascell.spec import NAS_CELL_SPEC
    path = cfg.export_dir
    if path is None:
        spec = NAS_CELL_SPEC if cfg.spec_json is None else cfg.spec_json
        layer_config = {"use_bias": False} if cfg.spec_json is None else None
        path = export_spec(spec, os.path.join(workdir, "cell"), units=cfg.units,
                           input_dim=cfg.embedding_dim, projection=cfg.projection,
                           layer_config=layer_config)
    return load(path, name="exported_cell", return_state=False)


def lstm_units_for(target: int, vocab: int, embedding_dim: int) -> int:
    """The LSTM width whose language model (`language_model` of a ``keras.layers.LSTM``) is
    closest in size to ``target`` parameters: the package's count of a one-layer untied model
    (`nascell.search.evaluators.rnn_lm.units_for_params`)."""
    from nascell.search.evaluators.rnn_lm import units_for_params
    return units_for_params(target, vocab, base=4, num_layers=1, tie_weights=False,
                            embedding_dim=embedding_dim)


def language_model(vocab: int, embedding_dim: int, recurrent, dropout: float, name: str):
    import keras
    tokens = keras.Input((None,), dtype="int32", name="chars")
    x = keras.layers.Embedding(vocab, embedding_dim, name="embedding")(tokens)
    x = recurrent(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    logits = keras.layers.Dense(vocab, name="softmax")(x)
    return keras.Model(tokens, logits, name=name)


# --- training and evaluation ----------------------------------------------------------------------


def _bpc(model, ids, cfg: Config) -> float:
    from nascell.search.data.text import lm_dataset
    loss = model.evaluate(lm_dataset(ids, cfg.batch_size, cfg.seq_len), verbose=0)
    return float(loss) / math.log(2.0)


def train_and_evaluate(model, data: Dict[str, Any], cfg: Config) -> Dict[str, float]:
    import keras

    from nascell.search.data.text import lm_dataset, num_lm_batches
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = cfg.steps or num_lm_batches(len(data["train"]), cfg.batch_size, cfg.seq_len)
    start = time.time()
    history = model.fit(lm_dataset(data["train"], cfg.batch_size, cfg.seq_len).repeat(),
                        epochs=cfg.epochs, steps_per_epoch=steps, shuffle=False,
                        verbose=0).history
    seconds = time.time() - start
    return {"params": int(model.count_params()),
            "train_bpc": history["loss"][-1] / math.log(2.0),
            "valid_bpc": _bpc(model, data["valid"], cfg),
            "test_bpc": _bpc(model, data["test"], cfg),
            "train_seconds": seconds}


def load_data(cfg: Config) -> Dict[str, Any]:
    """Character-level PTB as the search's children read it (`rnn_lm.load_corpus`: the
    vocabulary of the training split, 50 symbols), each split cut to its first N characters."""
    from nascell.search.evaluators.rnn_lm import load_corpus
    vocab, ids = load_corpus("ptb_char", cfg.data_dir)
    limits = {"train": cfg.max_train_chars, "valid": cfg.max_eval_chars,
              "test": cfg.max_eval_chars}
    return {"vocab": vocab, **{s: (t[:limits[s]] if limits[s] else t) for s, t in ids.items()}}


def run(cfg: Config, workdir: Optional[str] = None) -> Dict[str, Dict[str, float]]:
    """Train the exported cell's LM (and the equal-size LSTM LM); returns their metrics."""
    import keras
    keras.utils.set_random_seed(cfg.seed)
    data = load_data(cfg)
    vocab = len(data["vocab"])
    with tempfile.TemporaryDirectory() as tmp:
        cell = exported_cell_layer(cfg, workdir or tmp)
        embedding_dim = int(cell.cell.kernel.shape[0])
        model = language_model(vocab, embedding_dim, cell, cfg.dropout, "exported_cell_lm")
        results = {"cell": train_and_evaluate(model, data, cfg)}
        results["cell"]["units"] = cell.cell.units
    if cfg.baseline:
        units = lstm_units_for(results["cell"]["params"], vocab, embedding_dim)
        lstm = keras.layers.LSTM(units, return_sequences=True, name="lstm")
        model = language_model(vocab, embedding_dim, lstm, cfg.dropout, "lstm_lm")
        results["lstm"] = train_and_evaluate(model, data, cfg)
        results["lstm"]["units"] = units
    results["data"] = {s: int(len(data[s])) for s in ("train", "valid", "test")}
    results["data"]["vocab"] = vocab
    return results


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # the library's INFO lines, unless asked
    cfg = Config(**{f.name: flags.FLAGS[f.name].value for f in dataclasses.fields(Config)})
    if cfg.export_dir is not None and cfg.spec_json is not None:
        raise app.UsageError("pass --export_dir or --spec_json, not both")
    results = run(cfg)
    d = results["data"]
    print(f"char-level PTB: {d['train']} / {d['valid']} / {d['test']} chars, vocab {d['vocab']}")
    for name in ("cell", "lstm"):
        if name in results:
            r = results[name]
            print(f"{name:5s} units {r['units']:4d}  params {r['params']:8d}  train bpc "
                  f"{r['train_bpc']:.4f}  valid bpc {r['valid_bpc']:.4f}  test bpc "
                  f"{r['test_bpc']:.4f}  ({r['train_seconds']:.1f}s)", flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
