"""nascell: Neural Architecture Search with reinforcement learning for Keras 3.

    from nascell import NASCell
    layer = keras.layers.RNN(NASCell(units=256), return_sequences=True)
"""

from nascell.spec import (ConvLayer, ConvSpec, NAS_CELL_SPEC, CellIndex, NodeOp, RNNCellSpec,
                          SpecError, spec_from_json)

__version__ = "0.1.0"
