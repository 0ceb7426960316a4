"""`nascell.RNN`: ``keras.layers.RNN`` with the cell's input projection hoisted out of the loop.

A tree cell computes ``x_t W`` and ``h_{t-1} U`` at every step; only the second depends on the
state. `RNN` computes ``x W`` for all time steps in one large matmul before the loop (as cuDNN
does for an LSTM) and leaves only ``h U`` and the tree's element-wise ops in the loop. With
TensorFlow it also computes the gradients of the weights used in the loop (``U``, its bias,
a projection, ENAS' node weights) as one matmul over all steps after the backward loop
instead of one per step (`nascell.batched_grad`). Same weights, same numbers (to float
rounding), same Keras options; a drop-in for ``keras.layers.RNN``:

    layer = nascell.RNN(NASCell(650, dropout=0.5), return_sequences=True)

The hook. A cell takes the fast path if it has these two methods (`TreeCell`, `NASCell` and
`ENASRNNCell` do); any other cell runs step by step, as in ``keras.layers.RNN``:

* ``project_inputs(inputs, training=False)``: the state-independent part of a step, for one
  step ``(batch, features)`` or a whole sequence ``(batch, time, features)`` at once
  (input dropout included);
* ``projected_call(projected, states, training=False, matmul=None)``: the rest of the step,
  such that ``cell.call(x, s, t) == cell.projected_call(cell.project_inputs(x, t), s, t)``.
  Every product of a state-dependent tensor with a weight goes through
  ``matmul(x, kernel, bias=None)`` (default `dense`), so that the layer can defer the
  weights' gradients.
"""

from __future__ import annotations

from typing import Any, Dict, Union

import keras
from keras import ops, tree

from nascell import _keras_private

# `batch_weight_gradients="auto"` batches kernels of at least this many entries. Measured on
# 2 CPU cores, one NAS-cell layer forward and backward, batch 20 x 35 (benchmarks/README.md):
# batching costs ~25% more CPU time at 48 units (a 48 x 384 kernel), breaks even near 100-128
# units (128 x 1024), saves ~12% at 300 units and ~25% at 650.
AUTO_MIN_KERNEL_SIZE = 2 ** 17


def dense(x, kernel, bias=None):
    """``x kernel + bias``: the default ``matmul`` of a cell's ``projected_call``."""
    y = ops.matmul(x, kernel)
    return y if bias is None else ops.add(y, bias)


def matmul_last_axis(x, kernel):
    """``x kernel`` over the last axis of a 2-D or 3-D ``x`` (a 3-D one as a single 2-D matmul)."""
    if len(x.shape) == 2:
        return ops.matmul(x, kernel)
    shape = ops.shape(x)
    flat = ops.matmul(ops.reshape(x, (-1, shape[-1])), kernel)
    return ops.reshape(flat, (shape[0], shape[1], kernel.shape[-1]))


def has_fast_path(cell: Any) -> bool:
    """Whether ``cell`` implements the hook (``project_inputs`` and ``projected_call``) and its
    ``call`` is the one the hook mirrors: a subclass that overrides ``call`` alone runs step
    by step, so that its ``call`` is what runs."""
    if not (callable(getattr(cell, "project_inputs", None))
            and callable(getattr(cell, "projected_call", None))):
        return False
    mro = type(cell).__mro__

    def definer(name: str) -> int:
        return next((i for i, k in enumerate(mro) if name in vars(k)), len(mro))

    return definer("call") >= max(definer("project_inputs"), definer("projected_call"))


@keras.saving.register_keras_serializable(package="nascell")
class RNN(keras.layers.RNN):
    """``keras.layers.RNN`` that projects the inputs of all time steps before its loop.

    Takes the arguments of ``keras.layers.RNN`` (``return_sequences``, ``return_state``,
    ``go_backwards``, ``stateful``, ``unroll``, ``zero_output_for_mask``) and returns what it
    returns, with the same weights, so a model can switch layers and keep its weights.

    On the fast path (a cell with the hook, see the module docstring) everything
    ``keras.layers.RNN`` supports keeps working: variational dropout (one input mask and one
    recurrent mask per sequence, as the cell draws them), masking, ``return_state``,
    ``stateful``, ``go_backwards``, ``unroll`` and initial states. Falls back to the cell's
    step-by-step ``call`` (the ``keras.layers.RNN`` loop) when the cell has no hook (or
    overrides ``call`` below the class that defines it), when the inputs are nested, or
    under a mixed-precision policy (the cell's compute and variable dtypes differ). The
    batched weight gradients apply in training (``training=True``, as in ``fit``) with the
    TensorFlow backend and a symbolic loop: in inference (and so in a SavedModel from
    ``model.export``), with another backend or with ``unroll=True`` the projection is still
    hoisted but the loop's weight gradients are left to autograd.

    Args:
        cell: a recurrent cell; `TreeCell`, `NASCell` and `ENASRNNCell` take the fast path.
        fast_path: False runs the cell step by step exactly as ``keras.layers.RNN`` does
            (for comparisons and benchmarks).
        batch_weight_gradients: compute the gradients of the weights used inside the loop as
            one matmul over all steps after the backward loop (TensorFlow only). ``"auto"``
            does it for kernels of at least `AUTO_MIN_KERNEL_SIZE` entries (from 128 units
            for the NAS cell, 256 for a base-2 cell): below that the extra ops per step cost
            more than batching saves.
        **kwargs: the arguments of ``keras.layers.RNN``.
    """

    def __init__(self, cell, fast_path: bool = True,
                 batch_weight_gradients: Union[bool, str] = "auto", **kwargs):
        if batch_weight_gradients not in (True, False, "auto"):
            raise ValueError("Argument `batch_weight_gradients` must be True, False or 'auto'. "
                             f"Received: batch_weight_gradients={batch_weight_gradients!r}")
        super().__init__(cell, **kwargs)
        self.fast_path = bool(fast_path)
        self.batch_weight_gradients = batch_weight_gradients

    @classmethod
    def from_rnn(cls, layer: keras.layers.RNN, **kwargs) -> "RNN":
        """A `RNN` with the cell (the same weights) and the options of ``layer``, e.g. a
        ``keras.layers.RNN`` loaded from a ``.keras`` file; ``kwargs`` override options."""
        if not isinstance(layer, keras.layers.RNN):
            raise ValueError("Argument `layer` must be a keras.layers.RNN. "
                             f"Received: layer={layer!r}")
        config = layer.get_config()
        config.pop("cell", None)
        config.update(kwargs)
        return cls(layer.cell, **config)

    def _takes_fast_path(self, sequences) -> bool:
        cell = self.cell
        return (self.fast_path and has_fast_path(cell) and not tree.is_nested(sequences)
                and getattr(cell, "compute_dtype", None) == getattr(cell, "variable_dtype", None))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._takes_fast_path(sequences):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        if tree.is_nested(mask):
            mask = tree.flatten(mask)[0]
        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        projected = cell.project_inputs(sequences, training=training)

        # Batched weight gradients only when training: they matter only for the backward pass,
        # and a function holding them cannot be saved as a SavedModel (model.export traces
        # with training=False). Gradients taken in inference mode come from autograd.
        if (self.batch_weight_gradients and training is True and not self.unroll
                and keras.backend.backend() == "tensorflow"):
            from nascell.batched_grad import batched_rnn

            def batched_step(z, states, matmul):
                output, new_states = cell.projected_call(z, states, training=training,
                                                         matmul=matmul)
                return output, new_states if tree.is_nested(new_states) else [new_states]

            last, outputs, states = batched_rnn(
                batched_step, projected, list(initial_state), mask=mask,
                go_backwards=self.go_backwards, zero_output_for_mask=self.zero_output_for_mask,
                min_size=AUTO_MIN_KERNEL_SIZE if self.batch_weight_gradients == "auto" else 0)
            return last, (outputs if self.return_sequences else ops.expand_dims(last, 1)), states

        def step(z, states):
            output, new_states = cell.projected_call(z, states, training=training)
            return output, new_states if tree.is_nested(new_states) else [new_states]

        return _keras_private.rnn(
            step, projected, initial_state, go_backwards=self.go_backwards, mask=mask,
            unroll=self.unroll, input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "fast_path": self.fast_path,
                "batch_weight_gradients": self.batch_weight_gradients}
