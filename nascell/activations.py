"""The activations and combine ops that specs name, as Keras ops: one table for every cell.

`TreeCell` (the paper's cell tree: ``identity``, ``tanh``, ``sigmoid``, ``relu`` and the
extended ``sin``; combines ``add``, ``mult`` and the extended ``max``) and the ENAS cells and
supernets (``tanh``, ``relu``, ``identity``, ``sigmoid``) look their ops up here, so a name
means the same function everywhere. The names a spec may use are checked by the spec classes
(`nascell.spec`, `nascell.enas_spec`); see docs/specs.md.
"""

from __future__ import annotations

from typing import Callable, Dict

from keras import ops


def identity(x):
    return x


ACTIVATIONS: Dict[str, Callable] = {
    "identity": identity,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "sin": ops.sin,
}

COMBINES: Dict[str, Callable] = {"add": ops.add, "mult": ops.multiply, "max": ops.maximum}

__all__ = ["ACTIVATIONS", "COMBINES", "identity"]
