"""`TreeCell`: a Keras 3 RNN cell compiled from any `RNNCellSpec` (Zoph & Le, section 3.4).

The cell is a binary tree of ``2*base - 1`` nodes (docs/tree_cell.md gives the semantics):

* leaf ``i`` computes ``act_i(combine_i(x W_i, h_prev U_i + b_i))``;
* an internal node computes ``act(combine(left, right))``;
* the output of node ``cell_index.inject`` is replaced, as its parent sees it, by
  ``inject_act(inject_combine(output, c_prev))`` (at the root, that value is ``h_t``);
* ``c_t`` is node ``cell_index.output``'s combination, before activation and injection;
* ``h_t`` is the root's output, optionally multiplied by a ``[units, projection]`` matrix.

The weights are fused as in TensorFlow's ``NASCell``: one ``kernel`` ``[input_dim, base*units]``
and one ``recurrent_kernel`` ``[h_dim, base*units]`` so that a single matmul for ``x`` and a
single one for ``h`` serve all leaves; leaf ``i`` reads columns ``i*units:(i+1)*units``. The
bias is added to the recurrent product only. States follow ``keras.layers.LSTMCell``: ``[h, c]``.

    cell = TreeCell(nascell.spec.FIGURE5_SPEC, units=128)
    layer = nascell.RNN(cell, return_sequences=True)

`nascell.RNN` runs the cell on the fast path (`project_inputs` for all time steps before the
loop, `projected_call` in it); ``keras.layers.RNN(cell)`` runs `call` step by step, with the
same numbers.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Optional, Union

import keras
from keras import ops

from nascell._keras_private import DropoutRNNCell

# The ops a spec may name (paper space plus the extended `max` and `sin`): one shared table.
from nascell.activations import ACTIVATIONS, COMBINES
from nascell.fast_rnn import dense, matmul_last_axis
from nascell.spec import RNNCellSpec, coerce_spec

SpecLike = Union[RNNCellSpec, Dict[str, Any], str]


def as_rnn_cell_spec(spec: SpecLike) -> RNNCellSpec:
    """An `RNNCellSpec` from the spec itself, its dict form or its JSON text."""
    return coerce_spec(spec, RNNCellSpec)


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        hint = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"Argument `{name}` must be {hint}. Received: {name}={value!r}")
    return int(value)


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"Argument `{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="nascell")
class TreeCell(keras.layers.Layer, DropoutRNNCell):
    """A recurrent cell whose computation is an `RNNCellSpec` tree (Zoph & Le 2017).

    Args:
        spec: an `RNNCellSpec`, its dict or its JSON string (any base, paper or extended ops).
        units: width of every tree node and of the memory state ``c``.
        projection: if set, ``h_t`` is projected to this width (no activation), and the
            recurrent kernel reads the projected ``h``.
        use_bias: whether the recurrent product of each leaf gets a bias.
        kernel_initializer, recurrent_initializer, bias_initializer, projection_initializer:
            initializers of the fused input kernel, recurrent kernel, bias and projection.
        dropout: fraction of the inputs dropped (one mask per sequence, training only).
        recurrent_dropout: fraction of ``h_prev`` dropped (one mask per sequence, training only).
        seed: random seed for dropout.

    Call arguments:
        inputs: ``(batch, input_dim)``.
        states: ``[h, c]`` with shapes ``(batch, h_dim)`` and ``(batch, units)``, where
            ``h_dim`` is ``projection`` or ``units``.
        training: whether dropout applies.

    Returns ``h_t, [h_t, c_t]``.
    """

    def __init__(self, spec: SpecLike, units: int, projection: Optional[int] = None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 projection_initializer="glorot_uniform", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: Optional[int] = None, **kwargs):
        spec = as_rnn_cell_spec(spec)
        units = _check_positive_int("units", units)
        projection = _check_positive_int("projection", projection, allow_none=True)
        dropout = _check_rate("dropout", dropout)
        recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        super().__init__(**kwargs)
        self.spec = spec
        self.units = units
        self.projection = projection
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.projection_initializer = keras.initializers.get(projection_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

        h_dim = self.projection or self.units
        self.state_size = [h_dim, self.units]
        self.output_size = h_dim
        self._compile_plan()

    # --- the compiled tree -----------------------------------------------------------------------

    def _compile_plan(self) -> None:
        """Turn the spec into flat tuples of ops and child indices that `call` walks in order."""
        spec = self.spec
        base, units = spec.base, self.units
        combines = [spec.nodes[i].combine for i in range(base)]
        # The most common leaf combine runs once over all base*units columns, followed by one
        # split; leaves with another combine slice their own columns.
        self._leaf_combine = collections.Counter(combines).most_common(1)[0][0]
        self._leaf_slices = tuple(None if c == self._leaf_combine else (i * units, (i + 1) * units)
                                  for i, c in enumerate(combines))
        self._node_ops = tuple((COMBINES[n.combine], ACTIVATIONS[n.activation])
                               for n in spec.nodes)
        self._children = tuple(spec.children(k) for k in range(spec.num_nodes))
        self._inject_combine = COMBINES[spec.cell_inject.combine]
        self._inject_activation = ACTIVATIONS[spec.cell_inject.activation]

    # --- Keras layer API -------------------------------------------------------------------------

    def build(self, input_shape):
        super().build(input_shape)
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError("TreeCell needs a known input feature size (the last axis of its "
                             f"input). Received: input_shape={input_shape}")
        width = self.spec.base * self.units
        self.kernel = self.add_weight(shape=(input_dim, width), name="kernel",
                                      initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(
            shape=(self.projection or self.units, width), name="recurrent_kernel",
            initializer=self.recurrent_initializer)
        self.bias = (self.add_weight(shape=(width,), name="bias",
                                     initializer=self.bias_initializer)
                     if self.use_bias else None)
        self.projection_kernel = (
            self.add_weight(shape=(self.units, self.projection), name="projection_kernel",
                            initializer=self.projection_initializer)
            if self.projection else None)

    def call(self, inputs, states, training=False):
        return self.projected_call(self.project_inputs(inputs, training=training), states,
                                   training=training)

    # --- the fast-path hook (used by nascell.RNN; see nascell/fast_rnn.py) -----------------------

    def project_inputs(self, inputs, training=False):
        """``x W``, the part of every leaf that does not read the state, input dropout applied.

        ``inputs`` is one step ``(batch, input_dim)`` or a whole sequence
        ``(batch, time, input_dim)``: `nascell.RNN` projects all time steps in one large matmul
        before its loop, which then only computes ``h U``.
        """
        if training and self.dropout > 0.0:
            mask = self.get_dropout_mask(inputs if len(inputs.shape) == 2 else inputs[:, 0])
            inputs = inputs * (mask if len(inputs.shape) == 2 else ops.expand_dims(mask, 1))
        return matmul_last_axis(inputs, self.kernel)

    def projected_call(self, projected, states, training=False, matmul=None):
        """One step from ``projected = project_inputs(x_t)``; returns ``h_t, [h_t, c_t]``.

        ``matmul(x, kernel, bias=None)`` computes every product of the state with a weight
        (``h U + b`` and the projection); `nascell.RNN` passes one that defers the weights'
        gradients to one matmul over all time steps. Default: `dense`.
        """
        matmul = matmul or dense
        h_prev, c_prev = states[0], states[1]
        if training and self.recurrent_dropout > 0.0:
            h_prev = h_prev * self.get_recurrent_dropout_mask(h_prev)

        # One matmul for x (done by project_inputs) and one for h serve every leaf.
        zx = projected
        zh = matmul(h_prev, self.recurrent_kernel, self.bias if self.use_bias else None)

        combined = ops.split(COMBINES[self._leaf_combine](zx, zh), self.spec.base, axis=-1)
        spec = self.spec
        inject, output = spec.cell_index.inject, spec.cell_index.output
        values: List[Any] = [None] * spec.num_nodes
        c = None
        for node in range(spec.num_nodes):
            combine, activation = self._node_ops[node]
            if node < spec.base:
                cols = self._leaf_slices[node]
                pre = (combined[node] if cols is None
                       else combine(zx[:, cols[0]:cols[1]], zh[:, cols[0]:cols[1]]))
            else:
                left, right = self._children[node]
                pre = combine(values[left], values[right])
            if node == output:
                c = pre
            out = activation(pre)
            if node == inject:
                out = self._inject_activation(self._inject_combine(out, c_prev))
            values[node] = out

        h = values[spec.root]
        if self.projection_kernel is not None:
            h = matmul(h, self.projection_kernel)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self) -> Dict[str, Any]:
        config = {
            "spec": self.spec.to_dict(),
            "units": self.units,
            "projection": self.projection,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "projection_initializer": keras.initializers.serialize(self.projection_initializer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
