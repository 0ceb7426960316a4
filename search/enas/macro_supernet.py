"""The ENAS macro supernet: one network whose weights every sampled macro architecture shares.

Layout, as `nascell.enas_cells.ENASMacroNet` (a 3x3 conv stem, ``L`` layers in a chain, the
resolution halved after layers ``L//3 - 1`` and ``2L//3 - 1``, global average pooling, a
linear classifier), but every layer position holds the weights of *every* op: a conv 3x3, a
conv 5x5, a separable conv 3x3 and a separable conv 5x5 (each conv -> normalization -> ReLU,
as the macro net's ops), while the two pooling ops have no weights. A layer that sums skip
connections normalizes the sum with its position's own scale and shift, whichever earlier
layers it reads (ENAS' macro search shares them the same way). A sampled `ENASMacroSpec` runs
the subgraph of its choices, built eagerly from the spec, so gradients reach only the weights
it used.

As in the micro supernet (`conv_supernet`), normalization uses the batch's own statistics and
keeps no moving averages, so scoring a batch never changes a weight. Kept small by default
(8 filters): it runs on CPU.
"""

from __future__ import annotations

from typing import Tuple

import keras
import tensorflow as tf

from nascell.enas_cells import macro_pool_layers
from nascell.enas_spec import ENAS_MACRO_OPS, ENASMacroSpec
from nascell.search.enas.conv_supernet import BatchStatNorm, ImageSupernet

CONV_OPS = {"conv_3x3": (3, False), "conv_5x5": (5, False), "sep_conv_3x3": (3, True),
            "sep_conv_5x5": (5, True)}


class _ConvNormReLU(keras.layers.Layer):
    """``relu(norm(conv(x)))``: a macro conv op (plain or depthwise-separable)."""

    def __init__(self, filters: int, kernel_size: int, separable: bool, **kwargs):
        super().__init__(**kwargs)
        cls = keras.layers.SeparableConv2D if separable else keras.layers.Conv2D
        self.conv = cls(filters, kernel_size, padding="same", use_bias=False)
        self.norm = BatchStatNorm()

    def call(self, x):
        return tf.nn.relu(self.norm(self.conv(x)))


class _SharedLayer(keras.layers.Layer):
    """Every op of one layer position, and the normalization of its skip sum."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.ops = {op: _ConvNormReLU(filters, k, sep) for op, (k, sep) in CONV_OPS.items()}
        self.skip_norm = BatchStatNorm()

    def apply_op(self, op: str, x):
        if op in self.ops:
            return self.ops[op](x)
        if op == "max_pool_3x3":
            return tf.nn.max_pool2d(x, 3, 1, "SAME")
        if op == "avg_pool_3x3":
            return tf.nn.avg_pool2d(x, 3, 1, "SAME")
        raise ValueError(f"unknown ENAS macro op {op!r}; known: {list(ENAS_MACRO_OPS)}")

    def build_all(self, x):
        """Create every weight of the position once, whatever the architectures sampled later."""
        for layer in self.ops.values():
            layer(x)
        self.skip_norm(x)


class MacroSupernet(ImageSupernet):
    """Shared-weight macro network over every `ENASMacroSpec` with ``num_layers`` layers.

    Args:
      num_layers: L, the layers of every sampled network.
      num_classes: classifier width.
      filters: width of the stem and of every layer.
      input_shape: image shape (height, width, channels), to create every weight up front.
      seed: initialization seed (Keras' global seed is set from it).
    """

    def __init__(self, num_layers: int = 12, num_classes: int = 10, filters: int = 8,
                 input_shape: Tuple[int, int, int] = (32, 32, 3), seed: int = 0,
                 name: str = "macro_supernet"):
        super().__init__(name=name)
        keras.utils.set_random_seed(seed)
        self.num_layers, self.num_classes = num_layers, num_classes
        self.stem = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.stem_norm = BatchStatNorm()
        self.positions = [_SharedLayer(filters) for _ in range(num_layers)]
        self.pool_after = macro_pool_layers(num_layers)
        self.head = keras.layers.Dense(num_classes)
        # Create every weight now: the variable set never depends on what is sampled.
        x = self.stem_norm(self.stem(tf.zeros((2,) + tuple(input_shape))))
        for i, position in enumerate(self.positions):
            position.build_all(x)
            if i in self.pool_after:
                x = tf.nn.avg_pool2d(x, 2, 2, "SAME")
        self.head(tf.reduce_mean(x, axis=[1, 2]))
        self.built = True

    def _check(self, spec: ENASMacroSpec) -> None:
        if not isinstance(spec, ENASMacroSpec) or spec.num_layers != self.num_layers:
            raise ValueError(f"Argument `spec` must be an ENASMacroSpec of the supernet's "
                             f"{self.num_layers} layers. Received: spec={spec!r}")

    def logits(self, spec: ENASMacroSpec, images):
        self._check(spec)
        x = self.stem_norm(self.stem(tf.convert_to_tensor(images, tf.float32)))
        outs = []
        for i, (layer, position) in enumerate(zip(spec.layers, self.positions)):
            out = position.apply_op(layer.op, x)
            if layer.skips:
                out = position.skip_norm(out + tf.add_n([outs[j] for j in layer.skips]))
            outs.append(out)
            if i in self.pool_after:
                outs = [tf.nn.avg_pool2d(o, 2, 2, "SAME") for o in outs]
            x = outs[-1]
        return self.head(tf.reduce_mean(x, axis=[1, 2]))
