"""The ENAS micro (conv cell) supernet: one network whose weights every sampled cell pair shares.

Layout, as `nascell.enas_cells.ENASConvNet` (stem, three stages of ``num_cells`` normal
cells, a reduction cell between stages), but every cell position holds the weights of *every*
choice: per node ``k``, per input slot (a, b) and per conv op one separable conv, shared
whatever earlier node the slot reads (ENAS' code does the same); pooling and identity have no
weights. A sampled `ENASConvCellSpec` runs the subgraph of its choices, built eagerly from the
spec, so gradients reach only the weights it used (`used_variables`).

Differences from the standalone network, all to keep one set of shapes for every cell:
a cell's loose ends are combined by per-node 1x1 convolutions summed (a 1x1 conv of their
concatenation with the rows of unused nodes dropped, as ENAS' code gathers them), and
normalization uses batch statistics only, with no moving averages, so scoring a batch never
changes a weight. Kept small on purpose (default 8 filters, one cell per stage): it runs on CPU.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from nascell.enas_spec import ENASConvCellSpec, ENASConvNode, conv_cell_loose_ends
from nascell.search.rundir import weights as run_weights

CONV_OPS = {"sep_conv_3x3": 3, "sep_conv_5x5": 5}


class BatchStatNorm(keras.layers.Layer):
    """Normalize with the batch's own mean and variance, then scale and shift (no running stats)."""

    def build(self, input_shape):
        c = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(c,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(c,), initializer="zeros", name="beta")

    def call(self, x):
        mean, var = tf.nn.moments(x, axes=[0, 1, 2], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-5) * self.gamma + self.beta


class _ReLUConvNorm(keras.layers.Layer):
    def __init__(self, filters: int, kernel_size: int = 1, strides: int = 1,
                 separable: bool = False, **kwargs):
        super().__init__(**kwargs)
        cls = keras.layers.SeparableConv2D if separable else keras.layers.Conv2D
        self.conv = cls(filters, kernel_size, strides=strides, padding="same", use_bias=False)
        self.norm = BatchStatNorm()

    def call(self, x):
        return self.norm(self.conv(tf.nn.relu(x)))


class _SharedCell(keras.layers.Layer):
    """Every choice of one cell position. ``reduce_inputs``: as `nascell.enas_cells.ENASCell`."""

    def __init__(self, num_nodes: int, filters: int, reduce_inputs: int, **kwargs):
        super().__init__(**kwargs)
        self.num_nodes = num_nodes
        self.pre0 = _ReLUConvNorm(filters, 1, 2 if reduce_inputs >= 1 else 1)
        self.pre1 = _ReLUConvNorm(filters, 1, 2 if reduce_inputs == 2 else 1)
        # ops[k][slot][op]: the only weighted ops are the separable convs.
        self.ops = [[{op: _ReLUConvNorm(filters, k_size, separable=True)
                      for op, k_size in CONV_OPS.items()} for _slot in range(2)]
                    for _k in range(num_nodes)]
        self.out_convs = [keras.layers.Conv2D(filters, 1, use_bias=False)
                          for _k in range(num_nodes)]
        self.out_norm = BatchStatNorm()

    def _apply(self, op: str, k: int, slot: int, x):
        if op in CONV_OPS:
            return self.ops[k][slot][op](x)
        if op == "avg_pool_3x3":
            return tf.nn.avg_pool2d(x, 3, 1, "SAME")
        if op == "max_pool_3x3":
            return tf.nn.max_pool2d(x, 3, 1, "SAME")
        return x  # identity

    def call(self, x0, x1, nodes: Sequence[ENASConvNode]):
        states = [self.pre0(x0), self.pre1(x1)]
        for k, node in enumerate(nodes):
            a = self._apply(node.ops[0], k, 0, states[node.inputs[0]])
            b = self._apply(node.ops[1], k, 1, states[node.inputs[1]])
            states.append(a + b)
        ends = conv_cell_loose_ends(nodes)
        return self.out_norm(tf.add_n([self.out_convs[k](tf.nn.relu(states[k + 2]))
                                       for k in ends]))

    def build_all(self, x0, x1):
        """Create every weight of the position once, whatever the architectures sampled later."""
        states = [self.pre0(x0), self.pre1(x1)]
        for k in range(self.num_nodes):
            for slot in range(2):
                for layer in self.ops[k][slot].values():
                    layer(states[1])
            self.out_convs[k](states[1])
        self.out_norm(states[1])
        return states[1]


class ImageSupernet(keras.Model):
    """What the image supernets share: loss, one SGD step on exactly the variables a sampled
    architecture reads, accuracy with the weights fixed, and checkpoints. Subclasses define
    ``logits(spec, images)`` (the subgraph of ``spec``, built eagerly) and ``_check``."""

    def _check(self, spec) -> None:
        raise NotImplementedError

    def logits(self, spec, images):
        raise NotImplementedError

    def batch_loss(self, spec, images, labels):
        logits = self.logits(spec, images)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.convert_to_tensor(labels, tf.int32), logits=logits)
        return tf.reduce_mean(ce), logits

    def used_variables(self, spec, images) -> List[tf.Variable]:
        """The variables the subgraph of ``spec`` reads (traced on ``images``)."""
        with tf.GradientTape(watch_accessed_variables=True) as tape:
            self.batch_loss(spec, images[:2], np.zeros(len(images[:2]), np.int32))
        return list(tape.watched_variables())

    def train_step(self, spec, images, labels, learning_rate: float,
                   clipnorm: Optional[float] = 5.0) -> float:
        """One SGD step on exactly the variables ``spec`` reads; returns the loss. A
        non-finite loss or gradient skips the step (the shared weights stay clean)."""
        with tf.GradientTape() as tape:
            loss, _ = self.batch_loss(spec, images, labels)
        variables = list(tape.watched_variables())
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads = [tf.convert_to_tensor(g) for g, _ in pairs]
        norm = tf.linalg.global_norm(grads)
        if not (np.isfinite(float(loss)) and np.isfinite(float(norm))):
            return float(loss)
        if clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, clipnorm, use_norm=norm)
        for (_, v), g in zip(pairs, grads):
            v.assign_sub(learning_rate * g)
        return float(loss)

    def accuracy(self, spec, batches: Sequence[Tuple[np.ndarray, np.ndarray]]) -> float:
        """Accuracy of ``spec`` over ``(images, labels)`` batches, weights fixed."""
        correct = total = 0
        for x, y in batches:
            pred = np.argmax(self.logits(spec, x).numpy(), axis=-1)
            correct += int(np.sum(pred == np.asarray(y)))
            total += len(y)
        return correct / max(1, total)

    def state_bytes(self) -> bytes:
        return run_weights.weights_to_bytes(self.weights)

    def load_state_bytes(self, data: bytes) -> None:
        run_weights.load_weights_bytes(self.weights, data)


class ConvSupernet(ImageSupernet):
    """Shared-weight micro network over every `ENASConvCellSpec` with ``num_nodes`` nodes.

    Args:
      num_nodes: B, nodes per cell.
      num_classes: classifier width.
      filters: stem and first-stage width (doubled at each reduction).
      num_cells: normal cells per stage.
      input_shape: image shape (height, width, channels), to create every weight up front.
      seed: initialization seed (Keras' global seed is set from it).
    """

    def __init__(self, num_nodes: int = 5, num_classes: int = 10, filters: int = 8,
                 num_cells: int = 1, input_shape: Tuple[int, int, int] = (32, 32, 3),
                 seed: int = 0, name: str = "conv_supernet"):
        super().__init__(name=name)
        keras.utils.set_random_seed(seed)
        self.num_nodes, self.num_classes = num_nodes, num_classes
        self.stem = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.stem_norm = BatchStatNorm()
        self.positions: List[Tuple[str, _SharedCell]] = []
        f, after_reduction = filters, False
        for stage in range(3):
            if stage > 0:
                f *= 2
                self.positions.append(("reduction", _SharedCell(num_nodes, f, 2)))
                after_reduction = True
            for _ in range(num_cells):
                self.positions.append(("normal", _SharedCell(
                    num_nodes, f, 1 if after_reduction else 0)))
                after_reduction = False
        self.cells = [cell for _, cell in self.positions]
        self.head = keras.layers.Dense(num_classes)
        # Create every weight now: the variable set never depends on what is sampled.
        x = self.stem_norm(self.stem(tf.zeros((2,) + tuple(input_shape))))
        prev, cur = x, x
        for _, cell in self.positions:
            prev, cur = cur, cell.build_all(prev, cur)
        self.head(tf.reduce_mean(cur, axis=[1, 2]))
        self.built = True

    def _check(self, spec: ENASConvCellSpec) -> None:
        if not isinstance(spec, ENASConvCellSpec) or spec.num_nodes != self.num_nodes:
            raise ValueError(f"Argument `spec` must be an ENASConvCellSpec of the supernet's "
                             f"{self.num_nodes} nodes per cell. Received: spec={spec!r}")

    def logits(self, spec: ENASConvCellSpec, images):
        self._check(spec)
        x = self.stem_norm(self.stem(tf.convert_to_tensor(images, tf.float32)))
        prev, cur = x, x
        for kind, cell in self.positions:
            prev, cur = cur, cell(prev, cur, nodes=getattr(spec, kind))
        return self.head(tf.reduce_mean(tf.nn.relu(cur), axis=[1, 2]))
