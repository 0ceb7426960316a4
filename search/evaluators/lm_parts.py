"""The parts of the language-model children: the recurrent cell of a layer (the cell of a
recurrent spec kind: a `TreeCell`, an `ENASRNNCell`; or the ``"lstm"`` baseline), the tied
embedding/softmax layer, and parameter counts (to size a model by its parameters, as the paper
matches its children to a baseline).

A cell spec is dispatched on its kind (`nascell.kinds`): the `RecurrentKind` entry builds one
layer's cell and counts its weights, so every recurrent kind trains through the same model,
sizing and carried-state trainer. `build_language_model` assembles the child network; these
names are also importable from `nascell.search.evaluators.rnn_lm`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Tuple

LSTM = "lstm"  # the baseline cell's name, accepted wherever a cell spec is
LSTM_STATES = ("h", "c")


def language_model_params(vocab_size: int, units: int, base: Any, num_layers: int = 2,
                          tie_weights: bool = True, embedding_dim: Optional[int] = None) -> int:
    """Parameter count of the child language model (matches ``model.count_params()``).

    ``base``: the cell, as `build_language_model` takes it (a recurrent spec, its dict or
    JSON, or ``"lstm"``), or an int ``b`` for a cell of ``b`` biased gate matrices (a tree
    cell of base ``b``; 4 is the LSTM).
    """
    return _count(_layer_params(base), vocab_size, units, num_layers, tie_weights,
                  embedding_dim)


def units_for_params(target_params: int, vocab_size: int, base: Any, num_layers: int = 2,
                     tie_weights: bool = True, embedding_dim: Optional[int] = None) -> int:
    """The hidden size whose model is closest to ``target_params`` parameters (the smaller one
    on a tie; ``base`` as for `language_model_params`); ``embedding_dim`` fixes the embedding
    width of an untied model (default: the hidden size), as in `language_model_params`."""
    if int(target_params) < 1:
        raise ValueError(f"Argument `target_params` must be a positive integer. Received: "
                         f"target_params={target_params}")
    layer_params = _layer_params(base)  # the spec read once

    def count(u):
        return _count(layer_params, vocab_size, u, num_layers, tie_weights, embedding_dim)

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


def _count(layer_params: Callable[[int, int], int], vocab_size: int, units: int,
           num_layers: int, tie_weights: bool, embedding_dim: Optional[int] = None) -> int:
    embedding_dim = units if (tie_weights or embedding_dim is None) else embedding_dim
    total = vocab_size * embedding_dim
    input_dim = embedding_dim
    for _ in range(num_layers):
        total += layer_params(input_dim, units)
        input_dim = units
    total += vocab_size if tie_weights else (units + 1) * vocab_size
    return total


def _layer_params(base: Any) -> Callable[[int, int], int]:
    """``(input_dim, units) -> weights`` of one recurrent layer of the cell ``base``."""
    from nascell.kinds.recurrent import gate_params

    if isinstance(base, int) and not isinstance(base, bool):
        return lambda input_dim, units: gate_params(input_dim, units, base)
    spec = as_cell_spec(base)
    if spec == LSTM:
        return _layer_params(4)
    kind = cell_kind(spec)
    return lambda input_dim, units: kind.cell_params(spec, input_dim, units)


def cell_base(spec) -> int:
    """Weight matrices per recurrent layer, as multiples of ``units`` (the ``base`` of a tree
    cell; 4 for the ``"lstm"`` baseline, whose gates are four such matrices). An ENAS cell has
    no base: size it with `language_model_params` / `units_for_params` given the spec."""
    spec = as_cell_spec(spec)
    if spec == LSTM:
        return 4
    if not hasattr(spec, "base"):
        raise ValueError(f"Argument `spec` must be a tree cell's spec (kind 'rnn_cell') or "
                         f"'lstm' to have a base. Received: spec of kind {spec.kind!r}; pass "
                         "the spec itself to language_model_params / units_for_params")
    return spec.base


def is_lstm(spec) -> bool:
    return isinstance(spec, str) and spec.strip().lower() == LSTM


def as_cell_spec(spec):
    """``"lstm"`` (the baseline cell) or the spec of a recurrent kind (``rnn_cell``,
    ``enas_rnn_cell``, ...) from ``spec``: a spec, its dict or its JSON text. A dict without a
    ``"kind"`` is a tree cell's (`RNNCellSpec`), as before kinds were recorded."""
    from nascell.spec import RNNCellSpec, coerce_spec

    if is_lstm(spec):
        return LSTM
    spec = coerce_spec(spec, default=RNNCellSpec)
    cell_kind(spec)  # a recurrent kind, or a clear error
    return spec


def cell_kind(spec):
    """The `nascell.kinds.RecurrentKind` of a spec object (not ``"lstm"``); ValueError naming
    the recurrent kinds for a spec of any other kind."""
    from nascell import kinds

    kind = kinds.find_kind(spec)
    if not isinstance(kind, kinds.RecurrentKind):
        recurrent = [k for k in kinds.available_kinds()
                     if isinstance(kinds.get_kind(k), kinds.RecurrentKind)]
        raise ValueError(f"Argument `spec` must be 'lstm' or the spec of a recurrent cell (kind "
                         f"{' or '.join(repr(k) for k in recurrent)}), its dict or its JSON, to "
                         f"be a language model's cell. Received: spec of kind "
                         f"{getattr(spec, 'kind', type(spec).__name__)!r}")
    return kind


def cell_states(spec) -> Tuple[str, ...]:
    """Names of one layer's states, in order: ``("h", "c")`` for the LSTM and a tree cell,
    ``("h",)`` for an ENAS cell (`nascell.kinds.RecurrentKind.states`)."""
    spec = as_cell_spec(spec)
    return LSTM_STATES if spec == LSTM else tuple(cell_kind(spec).states)


def recurrent_cell(spec, units: int, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                   initializer=None, seed: Optional[int] = None, name: Optional[str] = None):
    """One layer's cell: the cell of ``spec``'s kind (`nascell.kinds.RecurrentKind.cell`), or
    Keras' `LSTMCell` for ``"lstm"``.

    The LSTM is the baseline of Zaremba et al.: every weight drawn from ``initializer``, zero
    biases and no added forget-gate bias (as TensorFlow's PTB tutorial).
    """
    import keras

    spec = as_cell_spec(spec)
    if spec == LSTM:
        inits = ({} if initializer is None
                 else {"kernel_initializer": initializer, "recurrent_initializer": initializer})
        return keras.layers.LSTMCell(units, dropout=dropout, recurrent_dropout=recurrent_dropout,
                                     unit_forget_bias=False, seed=seed, name=name, **inits)
    return cell_kind(spec).cell(spec, units, initializer=initializer, dropout=dropout,
                                recurrent_dropout=recurrent_dropout, seed=seed, name=name)


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

    ``spec``: the spec of a recurrent kind (an `RNNCellSpec`, an `ENASRNNCellSpec`; or its
    dict / JSON), or ``"lstm"`` for the baseline LSTM. With ``return_state``, the model also
    takes and returns the recurrent state, so a trainer can carry it from one batch to the next
    (truncated BPTT): ``[ids, *states_0, *states_1, ...] -> [logits, *states_0, ...]``, layer 0
    first, each layer's states as its cell has them (`cell_states`): ``h_0, c_0, h_1, c_1`` for
    the LSTM and a tree cell, ``h_0, h_1`` for an ENAS cell. The weights are the same as
    without it, so either model loads the other's weights.
    """
    import keras

    from nascell.fast_rnn import RNN  # the fast path (keras.layers.RNN for an LSTM)

    spec = as_cell_spec(spec)  # a bad spec fails here, before anything is built
    states = cell_states(spec)
    prefix = LSTM if spec == LSTM else cell_kind(spec).cell_name
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
                              name=f"{prefix}_{layer}")
        if return_state:
            sizes = cell.state_size
            sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
            state = [keras.Input(shape=(int(size),), name=f"{part}_{layer}")
                     for part, size in zip(states, sizes, strict=True)]
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
