"""`NASCell`: the recurrent cell Zoph & Le found on Penn Treebank, as a Keras 3 RNN cell.

It is `TreeCell` fixed to `nascell.spec.NAS_CELL_SPEC` and matches TensorFlow 1's
``tf.contrib.rnn.NASCell`` (same fused weights, same optional projection, no bias by default),
so its numbers agree with TensorFlow's own test values (docs/tree_cell.md).

    layer = nascell.RNN(NASCell(units=256), return_sequences=True)   # or keras.layers.RNN
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import keras

from nascell.spec import NAS_CELL_SPEC
from nascell.tree_cell import TreeCell, as_rnn_cell_spec


@keras.saving.register_keras_serializable(package="nascell")
class NASCell(TreeCell):
    """The NAS cell (base 8, memory injected at node 8, ``c_t`` from node 12).

    Args:
        units: width of every tree node and of the memory state ``c``.
        projection: if set, ``h_t`` is projected to this width (as TensorFlow's ``num_proj``).
        use_bias: whether the recurrent product gets a bias (TensorFlow's default: no).
        **kwargs: the remaining `TreeCell` arguments (initializers, dropout, recurrent_dropout,
            seed) and Keras layer arguments.
    """

    def __init__(self, units: int, projection: Optional[int] = None, use_bias: bool = False,
                 **kwargs):
        spec = kwargs.pop("spec", None)
        if spec is not None and as_rnn_cell_spec(spec) != NAS_CELL_SPEC:
            raise ValueError("NASCell is fixed to nascell.spec.NAS_CELL_SPEC; to run another "
                             "spec use nascell.tree_cell.TreeCell(spec, units).")
        super().__init__(NAS_CELL_SPEC, units, projection=projection, use_bias=use_bias, **kwargs)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.pop("spec")
        return config
