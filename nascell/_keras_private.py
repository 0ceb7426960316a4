"""The private Keras APIs nascell relies on, fenced in this one module, each with its reason.

Keras 3 has no public equivalent of either; everything else in the package uses the public
API (``keras``, ``keras.ops``, ``keras.tree``). If a Keras release moves one of these, this is
the one file to change.

* `DropoutRNNCell`: the mixin behind the dropout of Keras' own recurrent cells (LSTMCell,
  GRUCell). ``keras.layers.RNN`` draws a cell's dropout masks once per sequence and resets
  them between batches only for cells that are instances of this class
  (``RNN._maybe_config_dropout_masks`` and ``_maybe_reset_dropout_masks`` test
  ``isinstance(cell, DropoutRNNCell)``), so `nascell.TreeCell`'s ``dropout`` and
  ``recurrent_dropout`` behave as an LSTMCell's only by inheriting it.
* `rnn`: the active backend's time loop (``keras.src.backend.<backend>.rnn``), the loop
  ``keras.layers.RNN`` itself runs, with its masking, ``go_backwards``, ``unroll`` and
  ``zero_output_for_mask`` semantics. `nascell.RNN`'s fast path runs the same loop over
  pre-projected inputs, so that it matches ``keras.layers.RNN`` step for step.
"""

from keras.src.backend import rnn
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["DropoutRNNCell", "rnn"]
