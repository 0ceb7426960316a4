"""nascell: Neural Architecture Search with reinforcement learning for Keras 3.

The cell Zoph & Le found on Penn Treebank, as a drop-in Keras RNN cell:

    import nascell
    from nascell import NASCell

    layer = nascell.RNN(NASCell(units=256), return_sequences=True)

A named cell with its card (`nascell.named_cells`: the paper's cells and the ones nascell's
searches found):

    layer = nascell.RNN(nascell.named_cell("nas", units=200), return_sequences=True)

Any searched cell, from its spec:

    from nascell import TreeCell, FIGURE5_SPEC
    layer = nascell.RNN(TreeCell(FIGURE5_SPEC, units=128))

`nascell.RNN` is ``keras.layers.RNN`` with the input projection of every time step computed
before the loop (the fast path); ``keras.layers.RNN(cell)`` also works, step by step.

Importing `nascell` registers its layers with Keras, so a `.keras` file that uses them loads
with `keras.saving.load_model(path)` and no `custom_objects`.
"""

from nascell import kinds
from nascell.conv import ConvNet, build_conv_classifier, plan_conv_shapes
from nascell.enas_cells import ENASConvNet, ENASMacroNet, ENASRNNCell
from nascell.enas_spec import (
                               ENASConvCellSpec,
                               ENASConvNode,
                               ENASMacroLayer,
                               ENASMacroSpec,
                               ENASRNNCellSpec,
                               ENASRNNNode,
)
from nascell.fast_rnn import RNN
from nascell.named_cells import (
                               CellCard,
                               available_cells,
                               cell_card,
                               named_cell,
                               register_cell,
)
from nascell.nas_cell import NASCell
from nascell.spec import (
                               FIGURE5_SPEC,
                               NAS_CELL_SPEC,
                               CellIndex,
                               ConvLayer,
                               ConvSpec,
                               NodeOp,
                               RNNCellSpec,
                               SpecError,
                               coerce_spec,
                               rnn_cell_spec,
                               spec_from_dict,
                               spec_from_json,
)
from nascell.tree_cell import TreeCell

__version__ = "0.1.0"

__all__ = [
    "CellCard", "available_cells", "cell_card", "named_cell", "register_cell",
    "CellIndex", "ConvLayer", "ConvNet", "ConvSpec", "ENASConvCellSpec", "ENASConvNet",
    "ENASConvNode", "ENASMacroLayer", "ENASMacroNet", "ENASMacroSpec", "ENASRNNCell",
    "ENASRNNCellSpec", "ENASRNNNode", "FIGURE5_SPEC", "NASCell", "NAS_CELL_SPEC",
    "NodeOp", "RNN", "RNNCellSpec", "SpecError", "TreeCell", "build_conv_classifier",
    "coerce_spec", "kinds", "plan_conv_shapes", "rnn_cell_spec", "spec_from_dict",
    "spec_from_json",
]
