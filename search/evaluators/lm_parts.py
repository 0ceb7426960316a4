"""The parts of the language-model children: the recurrent cell of a layer (a `TreeCell` of a
spec, or the ``"lstm"`` baseline), the tied embedding/softmax layer, and parameter counts
(to size a model by its parameters, as the paper matches its children to a baseline).

`build_language_model` assembles them into the child network; these names are also importable
from `nascell.search.evaluators.rnn_lm`.
"""

from __future__ import annotations

import functools
from typing import Optional

LSTM = "lstm"  # the baseline cell's name, accepted wherever a cell spec is


def language_model_params(vocab_size: int, units: int, base: int, num_layers: int = 2,
                          tie_weights: bool = True, embedding_dim: Optional[int] = None) -> int:
    """Parameter count of the child language model (matches ``model.count_params()``)."""
    embedding_dim = units if (tie_weights or embedding_dim is None) else embedding_dim
    total = vocab_size * embedding_dim
    input_dim = embedding_dim
    for _ in range(num_layers):
        total += (input_dim + units + 1) * base * units  # kernel, recurrent kernel, bias
        input_dim = units
    total += vocab_size if tie_weights else (units + 1) * vocab_size
    return total


def units_for_params(target_params: int, vocab_size: int, base: int, num_layers: int = 2,
                     tie_weights: bool = True, embedding_dim: Optional[int] = None) -> int:
    """The hidden size whose model is closest to ``target_params`` parameters (the smaller one
    on a tie); ``embedding_dim`` fixes the embedding width of an untied model (default: the
    hidden size), as in `language_model_params`."""
    if int(target_params) < 1:
        raise ValueError(f"Argument `target_params` must be a positive integer. Received: "
                         f"target_params={target_params}")

    def count(u):
        return language_model_params(vocab_size, u, base, num_layers, tie_weights, embedding_dim)

    lo, hi = 1, 1
    while count(hi) < target_params:
        hi *= 2
    while lo < hi:  # smallest u with count(u) >= target
        mid = (lo + hi) // 2
        if count(mid) >= target_params:
            hi = mid
        else:
            lo = mid + 1
    if lo > 1 and abs(count(lo - 1) - target_params) <= abs(count(lo) - target_params):
        return lo - 1
    return lo


def cell_base(spec) -> int:
    """Weight matrices per recurrent layer, as multiples of ``units`` (the ``base`` of a tree
    cell; 4 for the ``"lstm"`` baseline, whose gates are four such matrices)."""
    return 4 if is_lstm(spec) else as_cell_spec(spec).base


def is_lstm(spec) -> bool:
    return isinstance(spec, str) and spec.strip().lower() == LSTM


def as_cell_spec(spec):
    """``"lstm"`` (the baseline cell) or the `RNNCellSpec` of ``spec`` (a spec, dict or JSON)."""
    from nascell.tree_cell import as_rnn_cell_spec

    return LSTM if is_lstm(spec) else as_rnn_cell_spec(spec)


def recurrent_cell(spec, units: int, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                   initializer=None, seed: Optional[int] = None, name: Optional[str] = None):
    """One layer's cell: a `TreeCell` of ``spec``, or Keras' `LSTMCell` for ``"lstm"``.

    The LSTM is the baseline of Zaremba et al.: every weight drawn from ``initializer``, zero
    biases and no added forget-gate bias (as TensorFlow's PTB tutorial).
    """
    import keras

    from nascell.tree_cell import TreeCell

    inits = ({} if initializer is None
             else {"kernel_initializer": initializer, "recurrent_initializer": initializer})
    if is_lstm(spec):
        return keras.layers.LSTMCell(units, dropout=dropout, recurrent_dropout=recurrent_dropout,
                                     unit_forget_bias=False, seed=seed, name=name, **inits)
    return TreeCell(spec, units, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
                    name=name, **inits)


@functools.lru_cache(maxsize=None)
def tied_embedding_class():
    """The embedding whose matrix is also the softmax's (made on first use, so importing this
    module does not import Keras)."""
    import keras

    class TiedEmbedding(keras.layers.Layer):
        """``call(ids)``: embeddings; ``call(x, logits=True)``: ``x @ embeddings^T + bias``.

        One layer owns both weights and is called twice, which keeps the model free of
        layers that reference each other (such references kept every child's weights alive
        after `keras.backend.clear_session`).
        """

        def __init__(self, vocab_size, dim, embeddings_initializer, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.dim = int(vocab_size), int(dim)
            self.embeddings_initializer = embeddings_initializer

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.vocab_size, self.dim),
                                              initializer=self.embeddings_initializer,
                                              name="embeddings")
            self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros",
                                        name="softmax_bias")

        def call(self, inputs, logits=False):
            if logits:
                return keras.ops.matmul(inputs, keras.ops.transpose(self.embeddings)) + self.bias
            return keras.ops.take(self.embeddings, keras.ops.cast(inputs, "int32"), axis=0)

    return TiedEmbedding


def build_language_model(spec, vocab_size: int, units: int, num_layers: int = 2,
                         tie_weights: bool = True, embedding_dim: Optional[int] = None,
                         embedding_dropout: float = 0.0, dropout: float = 0.0,
                         recurrent_dropout: float = 0.0, seed: Optional[int] = None,
                         return_state: bool = False):
    """The child network: ids ``(batch, time)`` -> next-token logits ``(batch, time, vocab)``.

    ``spec``: an `RNNCellSpec` (or its dict / JSON), or ``"lstm"`` for the baseline LSTM.
    With ``return_state``, the model also takes and returns the recurrent state, so a trainer
    can carry it from one batch to the next (truncated BPTT):
    ``[ids, h_0, c_0, h_1, c_1, ...] -> [logits, h_0, c_0, h_1, c_1, ...]`` (layer 0 first; the
    weights are the same as without it, so either model loads the other's weights).
    """
    import keras

    from nascell.fast_rnn import RNN  # the fast path (keras.layers.RNN for an LSTM)

    embedding_dim = units if (tie_weights or embedding_dim is None) else embedding_dim
    init = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed)

    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    state_inputs, state_outputs = [], []
    if tie_weights:
        embedding = tied_embedding_class()(vocab_size, embedding_dim, init, name="embedding")
    else:
        embedding = keras.layers.Embedding(vocab_size, embedding_dim,
                                           embeddings_initializer=init, name="embedding")
    x = embedding(tokens)
    if embedding_dropout:
        x = keras.layers.Dropout(embedding_dropout, seed=seed, name="embedding_dropout")(x)
    for layer in range(num_layers):
        cell = recurrent_cell(spec, units, dropout, recurrent_dropout, init, seed,
                              name=f"{'lstm' if is_lstm(spec) else 'tree'}_cell_{layer}")
        if return_state:
            state = [keras.Input(shape=(size,), name=f"{part}_{layer}")
                     for part, size in zip("hc", cell.state_size)]
            x, *state_out = RNN(cell, return_sequences=True, return_state=True,
                                 name=f"rnn_{layer}")(x, initial_state=state)
            state_inputs += state
            state_outputs += state_out
            continue
        x = RNN(cell, return_sequences=True, name=f"rnn_{layer}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, noise_shape=(None, 1, units), seed=seed,
                                 name="output_dropout")(x)
    if tie_weights:
        logits = embedding(x, logits=True)
    else:
        logits = keras.layers.Dense(vocab_size, kernel_initializer=init, name="softmax")(x)
    if return_state:
        return keras.Model([tokens, *state_inputs], [logits, *state_outputs],
                           name="language_model")
    return keras.Model(tokens, logits, name="language_model")
