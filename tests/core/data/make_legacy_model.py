"""Writes `legacy_cells.keras` and `legacy_cells.npz`: a model saved by nascell 0.1.0 as it was
before the fast recurrent path (commit be71022), kept so later versions are tested against a
file they did not write themselves.

Run it with that version of the package on the path (not with the current one):

    python tests/core/data/make_legacy_model.py tests/core/data

The model stacks `keras.layers.RNN` around a `TreeCell` (a base-4 spec with bias and input
dropout), a `NASCell` with a projection and an `ENASRNNCell`, then a `Dense`; the .npz holds an
input batch and its prediction, and the same batch zero-padded (masked by the model's
`Masking` layer) and its prediction.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nascell import ENASRNNCell, NASCell, TreeCell, rnn_cell_spec  # noqa: E402
from nascell.enas_spec import enas_rnn_cell_spec  # noqa: E402

TREE_SPEC = rnn_cell_spec(
    4, [("add", "tanh"), ("mult", "sigmoid"), ("max", "relu"), ("add", "identity"),
        ("mult", "tanh"), ("add", "sin"), ("max", "sigmoid")],
    inject=("add", "tanh"), inject_node=4, output_node=1)
ENAS_SPEC = enas_rnn_cell_spec([0, 1, 1], ["tanh", "relu", "sigmoid", "identity"])


def build() -> keras.Model:
    keras.utils.set_random_seed(12)
    inputs = keras.Input((None, 3))
    masked = keras.layers.Masking(0.0)(inputs)
    x = keras.layers.RNN(TreeCell(TREE_SPEC, 5, dropout=0.2, bias_initializer="uniform"),
                         return_sequences=True)(masked)
    x = keras.layers.RNN(NASCell(4, projection=3), return_sequences=True)(x)
    x = keras.layers.RNN(ENASRNNCell(ENAS_SPEC, 4))(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def main(folder: str) -> None:
    model = build()
    rng = np.random.default_rng(12)
    xs = rng.uniform(-1, 1, (3, 6, 3)).astype("float32")
    padded = xs.copy()
    padded[1, 4:] = 0.0          # the Masking layer masks these steps
    padded[2, 2:] = 0.0
    model.save(os.path.join(folder, "legacy_cells.keras"))
    np.savez(os.path.join(folder, "legacy_cells.npz"), inputs=xs,
             outputs=model.predict(xs, verbose=0), padded=padded,
             padded_outputs=model.predict(padded, verbose=0))


if __name__ == "__main__":
    main(sys.argv[1])
