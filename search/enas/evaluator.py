"""The supernet evaluator: ENAS' reward, an architecture scored with shared weights.

    evaluator = SupernetEvaluator(data_dir="...", units=64)          # ``--evaluator=supernet``
    strategy = create_strategy("enas", space, epochs=10)              # trains the same supernet
    run_search(space, strategy, evaluator, "runs/enas", num_trials=strategy.planned_trials())

The evaluator owns the supernet of the space it is bound to (`supernet_task`: recurrent for
``enas_rnn``, micro for ``enas_conv``, macro for ``enas_macro``) and its data, loaded through
the same loaders as the child trainers (`nascell.search.data`: PTB, character PTB or Tiny
Shakespeare for cells; CIFAR-10 from ``cifar_npz``, ``data_dir`` or tensorflow-datasets for the
image spaces). The ENAS strategy trains the supernet between controller steps; the evaluator
only scores (`nascell.search.enas.tasks`). `run_search` hands the task, built once here
(`shared_task`), to the strategy, and asks the strategy to bring it up to date before each
evaluation (`Strategy.before_evaluate`). Because the two share one object, evaluations run in
the search's own process (``in_process_only``; the loop refuses worker processes).

After the search, `trained_weights` (the hook `nascell.search.handover` calls when exporting)
cuts a derived recurrent cell's weights out of the last supernet checkpoint, so the exported
cell computes what the supernet scored. The image supernets' layout differs from the
standalone networks' (shared ops, batch statistics), so image exports start from a fresh
initialization.
"""

from __future__ import annotations

import io
import os
from typing import Any, Dict, Optional

import numpy as np
from absl import logging

from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec
from nascell.search.core.evaluator import EvalResult, Evaluator

TEXT_DATASETS = ("ptb", "ptb_char", "tiny_shakespeare")
IMAGE_DATASETS = ("cifar10",)
# The ENAS code's shared-weight optimizer settings: plain SGD with global-norm clipping.
DEFAULT_LR = {"recurrent": 20.0, "image": 0.05}
DEFAULT_CLIPNORM = {"recurrent": 0.25, "image": 5.0}


class SupernetEvaluator(Evaluator):
    """Scores an ENAS architecture with the shared weights of its space's supernet.

    Args:
      dataset: "ptb" (default for cells), "ptb_char", "tiny_shakespeare", or "cifar10"
        (default for the image spaces).
      data_dir, cifar_npz, download, subset: where the data is, as for the child trainers
        (``subset``: CIFAR-10 training images used, 10 % held out for validation).
      units: recurrent supernet width (embedding, nodes and state; the embedding is tied).
      filters, num_cells: image supernet width, and normal cells per stage (micro space).
      batch_size, seq_len: shared-weight and scoring batches.
      max_train_tokens, max_valid_tokens: truncate the corpus (a proxy run).
      shared_lr, shared_clipnorm: SGD of the shared weights (default: 20 and 0.25 for cells,
        0.05 and 5 for images, as ENAS' code).
      derive_batches: validation batches scoring each derive candidate.
      per_activation: one recurrent matrix per (node, input, activation) (default) or per
        (node, input).
      seed: supernet initialization seed.
      data: in-memory data instead of a data set (tests, custom corpora): recurrent
        ``{"train": ids, "valid": ids, "vocab_size": V}``; image ``{"train": (x, y), "valid":
        (x, y), "num_classes": C}``.
      corpus: your own text for the recurrent supernet, as for the language-model children
        (a `nascell.search.data.TextCorpus`, a path, a dict of texts or of ``text_corpus``
        options; `nascell.search.data.sources`).
      images: your own images for the image supernets, as for the conv children (an
        `ImageData`, arrays, `tf.data`, or ``load_images`` options); held out and whitened by
        `nascell.search.data.ImageData.split` (``subset``, ``seed``).
      The provenance record of ``corpus`` / ``images`` goes into `config` (``"data"``).
    """

    name = "supernet"
    in_process_only = True

    def __init__(self, dataset: Optional[str] = None, data_dir: Optional[str] = None,
                 cifar_npz: Optional[str] = None, download: bool = False,
                 subset: Optional[int] = None, units: int = 64, filters: int = 8,
                 num_cells: int = 1, batch_size: int = 32, seq_len: int = 35,
                 max_train_tokens: Optional[int] = None, max_valid_tokens: Optional[int] = None,
                 shared_lr: Optional[float] = None, shared_clipnorm: Optional[float] = None,
                 derive_batches: int = 1, per_activation: bool = True, seed: int = 0,
                 data: Optional[Dict[str, Any]] = None, corpus: Any = None, images: Any = None):
        from nascell._args import positive_int
        if dataset is not None and dataset not in TEXT_DATASETS + IMAGE_DATASETS:
            raise ValueError(f"Argument `dataset` must be one of "
                             f"{list(TEXT_DATASETS + IMAGE_DATASETS)}. Received: "
                             f"dataset={dataset!r}")
        for name, value in (("units", units), ("filters", filters), ("num_cells", num_cells),
                            ("batch_size", batch_size), ("seq_len", seq_len),
                            ("derive_batches", derive_batches)):
            positive_int(name, value)
        for name, value in (("max_train_tokens", max_train_tokens),
                            ("max_valid_tokens", max_valid_tokens), ("subset", subset)):
            positive_int(name, value, required=False)
        self.dataset, self.data_dir, self.cifar_npz = dataset, data_dir, cifar_npz
        self.download, self.subset = bool(download), subset
        self.units, self.filters, self.num_cells = int(units), int(filters), int(num_cells)
        self.batch_size, self.seq_len = int(batch_size), int(seq_len)
        self.max_train_tokens, self.max_valid_tokens = max_train_tokens, max_valid_tokens
        self.shared_lr, self.shared_clipnorm = shared_lr, shared_clipnorm
        self.derive_batches, self.per_activation = int(derive_batches), bool(per_activation)
        self.seed, self.data = int(seed), data
        given = [n for n, v in (("dataset", dataset), ("data_dir", data_dir),
                                ("cifar_npz", cifar_npz), ("data", data), ("corpus", corpus),
                                ("images", images)) if v is not None]
        if (corpus is not None or images is not None) and len(given) > 1:
            raise ValueError(f"Arguments {', '.join(f'`{n}`' for n in given)} name more than one "
                             "data set: pass one of them")
        from nascell.search.data import sources
        self.corpus = None if corpus is None else sources.text_arg(corpus)
        self.images = None if images is None else sources.image_arg(images)
        self.input_shape: Optional[list] = None  # the images' shape, once loaded
        self._task = None

    @property
    def score_metric(self) -> Optional[str]:  # type: ignore[override]
        """The shared task's metric (``valid_ppl`` or ``valid_acc``), once the task is built."""
        return None if self._task is None else self._task.metric_name

    def config(self) -> Dict[str, Any]:
        keys = ("dataset", "data_dir", "cifar_npz", "subset", "units", "filters", "num_cells",
                "batch_size", "seq_len", "max_train_tokens", "max_valid_tokens", "shared_lr",
                "shared_clipnorm", "derive_batches", "per_activation", "seed")
        config = {"name": self.name, **{k: getattr(self, k) for k in keys}}
        if self.data is not None:
            config["data"] = "custom"
        from nascell.search.data import sources
        if self.corpus is not None:  # the data's provenance record (loads it, once)
            config["data"] = sources.record_of(self.corpus, sources.load_text(self.corpus))
        if self.images is not None:
            config["data"] = sources.record_of(self.images, sources.load_images(self.images))
        return config

    def save_run_files(self, run_dir: str) -> None:
        """Write the vocabulary of this evaluator's own text into the run directory (for the
        export; `nascell.search.data.sources.save_run_vocabulary`)."""
        if self.corpus is not None:
            from nascell.search.data import sources
            sources.save_run_vocabulary(run_dir, self.corpus)

    # --- the supernet of a space ---------------------------------------------------------------

    def supernet_task(self, space_or_spec: Any):
        """The task (supernet + data) for an ENAS space (or a spec of one), built once."""
        if self._task is None:
            self._task = self._build_task(_example_spec(space_or_spec))
        return self._task

    def shared_task(self, space: Any):
        """The supernet task, which the ENAS strategy trains (`supernet_task`)."""
        return self.supernet_task(space)

    def _build_task(self, spec):
        from nascell.search.enas import tasks
        family = "recurrent" if spec.kind == ENASRNNCellSpec.kind else "image"
        lr = DEFAULT_LR[family] if self.shared_lr is None else float(self.shared_lr)
        clip = DEFAULT_CLIPNORM[family] if self.shared_clipnorm is None else self.shared_clipnorm
        if family == "recurrent":
            from nascell.search.enas.rnn_supernet import RNNSupernet
            train, valid, vocab_size = self._text()
            supernet = RNNSupernet(vocab_size, spec.num_nodes, self.units,
                                   per_activation=self.per_activation, seed=self.seed)
            return tasks.RecurrentTask(supernet, train, valid, self.batch_size, self.seq_len,
                                       lr, clip, self.derive_batches)
        train, valid, num_classes = self._images()
        shape = tuple(int(d) for d in np.asarray(train[0]).shape[1:])
        supernet = SUPERNETS[spec.kind](self, spec, num_classes, shape)
        self.input_shape = list(shape)
        return tasks.ImageTask(supernet, train, valid, self.batch_size, lr, clip,
                               self.derive_batches)

    def _text(self):
        if self.dataset in IMAGE_DATASETS:
            raise ValueError(f"Argument `dataset` must be a text corpus for the recurrent "
                             f"supernet ({list(TEXT_DATASETS)}). Received: "
                             f"dataset={self.dataset!r}")
        if self.cifar_npz is not None:
            raise ValueError("Argument `cifar_npz` must be left out for the recurrent "
                             f"supernet (it reads text). Received: cifar_npz={self.cifar_npz!r}")
        if self.images is not None:
            raise ValueError("Argument `images` is for the image spaces; a recurrent-cell "
                             "search reads text (pass `corpus`)")
        if self.data is not None or self.corpus is not None:
            from nascell.search.data import sources
            data = self.data or sources.load_text(self.corpus).enas_data()
            train, valid = np.asarray(data["train"]), np.asarray(data["valid"])
            vocab_size = int(data["vocab_size"])
        else:
            from nascell.search.evaluators.rnn_lm import load_corpus
            vocab, ids = load_corpus(self.dataset or "ptb", self.data_dir, self.download)
            train, valid, vocab_size = ids["train"], ids["valid"], vocab.size
        if self.max_train_tokens:
            train = train[:self.max_train_tokens]
        if self.max_valid_tokens:
            valid = valid[:self.max_valid_tokens]
        return train, valid, vocab_size

    def _images(self):
        if self.dataset in TEXT_DATASETS:
            raise ValueError(f"Argument `dataset` must be {list(IMAGE_DATASETS)} for an image "
                             f"supernet. Received: dataset={self.dataset!r}")
        if self.corpus is not None:
            raise ValueError("Argument `corpus` is for the recurrent space; an image search "
                             "reads images (pass `images`)")
        if self.data is not None:
            return self.data["train"], self.data["valid"], int(self.data["num_classes"])
        if self.images is not None:
            from nascell.search.evaluators.conv_classifier import image_splits
            splits = image_splits(self.images, self.subset, seed=self.seed)
            return ((splits.x_train, splits.y_train), (splits.x_valid, splits.y_valid),
                    splits.num_classes)
        from nascell.search.evaluators.conv_classifier import load_splits
        splits = load_splits(self.data_dir, self.cifar_npz, self.subset, seed=self.seed,
                             download=self.download)
        return ((splits.x_train, splits.y_train), (splits.x_valid, splits.y_valid),
                splits.num_classes)

    # --- scoring -------------------------------------------------------------------------------

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        task = self.supernet_task(spec)
        metric, reward = task.evaluate(spec, trial_id)
        metrics: Dict[str, Any] = {}
        if np.isfinite(metric):
            metrics[task.metric_name] = float(metric)
        else:  # a cell the shared weights cannot run: a bad architecture, not a failure
            metrics["diverged"] = 1.0
        if self.input_shape:
            metrics["input_shape"] = list(self.input_shape)
        return EvalResult(reward=float(reward), metrics=metrics)

    # --- after the search: the weights of a derived cell -----------------------------------------

    @classmethod
    def trained_weights(cls, record: Any, sizes: Dict[str, Any]):
        """``(built ENASRNNCell, provenance facts)`` holding the subgraph of a recurrent trial's
        cell in the run's last supernet checkpoint, or None (image specs; no checkpoint)."""
        spec, run_dir, config = record.spec, record.run_dir, record.config or {}
        if not isinstance(spec, ENASRNNCellSpec) or not run_dir:
            return None
        from nascell.search.rundir.run_dir import RunDir
        run = RunDir.open_existing(run_dir)
        try:
            folder = run.strategy_dir()
        finally:
            run.close()
        path = None if folder is None else os.path.join(folder, "supernet.npz")
        if path is None or not os.path.isfile(path):
            logging.info("%s holds no supernet checkpoint; the cell is exported with fresh "
                         "weights", run_dir)
            return None
        evaluator = config.get("evaluator") or {}
        units = int(evaluator.get("units") or sizes.get("units") or 0)
        cell = cell_from_supernet(path, spec, units, bool(evaluator.get("per_activation", True)))
        return cell, {"supernet": path}


def cell_from_supernet(path: str, spec: ENASRNNCellSpec, units: int,
                       per_activation: bool = True):
    """A built `ENASRNNCell` named ``enas_supernet`` holding the subgraph of ``spec`` in the
    supernet checkpoint ``path`` (input size ``units``: the supernet's embedding is tied)."""
    from nascell.enas_cells import ENASRNNCell
    from nascell.search.enas.rnn_supernet import RNNSupernet
    with open(path, "rb") as f:
        data = f.read()
    try:
        with np.load(io.BytesIO(data)) as arrays:
            vocab_size = int(arrays["w0"].shape[0])  # the embedding, the supernet's first
        supernet = RNNSupernet(vocab_size, spec.num_nodes, int(units),
                               per_activation=per_activation)
        supernet.load_state_bytes(data)
        weights = supernet.export_cell_weights(spec)
    except (ValueError, KeyError) as e:
        raise ValueError(f"the supernet checkpoint {path} does not fit a {spec.num_nodes}-node "
                         f"cell of {units} units ({e}); pass weights_from, or export a fresh "
                         "initialization with weights_from=False") from None
    cell = ENASRNNCell(spec, int(units), name="enas_supernet")
    cell.build((None, int(units)))
    cell.set_weights(weights)
    return cell


def _conv_supernet(evaluator: SupernetEvaluator, spec, num_classes: int, shape):
    from nascell.search.enas.conv_supernet import ConvSupernet
    return ConvSupernet(spec.num_nodes, num_classes, evaluator.filters, evaluator.num_cells,
                        shape, seed=evaluator.seed)


def _macro_supernet(evaluator: SupernetEvaluator, spec, num_classes: int, shape):
    from nascell.search.enas.macro_supernet import MacroSupernet
    return MacroSupernet(spec.num_layers, num_classes, evaluator.filters, shape,
                         seed=evaluator.seed)


# The image supernet of each ENAS spec kind (the recurrent one is built with its text above).
SUPERNETS = {ENASConvCellSpec.kind: _conv_supernet, ENASMacroSpec.kind: _macro_supernet}
ENAS_KINDS = (ENASRNNCellSpec.kind, *SUPERNETS)


def _example_spec(space_or_spec: Any):
    """A spec of the space (decoded from its first choices) or the spec itself."""
    spec = space_or_spec
    if getattr(spec, "kind", None) not in ENAS_KINDS and hasattr(spec, "decode"):
        spec = spec.decode(spec.sample(np.random.default_rng(0)))
    if getattr(spec, "kind", None) in ENAS_KINDS and hasattr(spec, "to_dict"):
        return spec
    raise ValueError(f"The supernet evaluator searches the ENAS spaces (enas_rnn, enas_conv, "
                     f"enas_macro). Received: space="
                     f"{getattr(space_or_spec, 'name', space_or_spec)!r}")
