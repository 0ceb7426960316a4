"""Standalone Keras layers for the three ENAS spaces (Pham et al., 2018).

* `ENASRNNCell(spec, units)`: a recurrent cell for `nascell.RNN` (the fast path: node 0's
  input products of all time steps before the loop) or ``keras.layers.RNN`` (step by step),
  built from an `ENASRNNCellSpec`. Every node is a highway unit, as in the paper (section 2.1):
  ``c_0 = sigmoid(x W_x^c + h_prev W_h^c)``,
  ``h_0 = c_0 * f_0(x W_x^h + h_prev W_h^h) + (1 - c_0) * h_prev``; node ``i`` reading node
  ``j``: ``c_i = sigmoid(h_j W_i^c)``, ``h_i = c_i * f_i(h_j W_i^h) + (1 - c_i) * h_j``. The
  output, and the next state, is the mean of the loose ends. State: ``[h]`` (one tensor of
  ``units``), so ``keras.layers.RNN(cell, return_state=True)`` returns ``(output, h)``.
  Weights (no biases, as in the paper's code): ``kernel`` [input_dim, 2*units] and
  ``recurrent_kernel`` [units, 2*units] for node 0, and ``node{i}_kernel`` [units, 2*units] for
  node ``i > 0``; in each, the first ``units`` columns feed the gate ``c``, the rest ``f``.
* `ENASConvNet(spec, num_classes)`: the micro-space network: a 3x3 conv stem, then three
  stages of ``num_cells`` normal cells with a reduction cell between stages, then global
  average pooling and a linear classifier.
* `ENASMacroNet(spec, num_classes)`: the macro-space network: a 3x3 conv stem, then the spec's
  layers, spatially halved after layers ``L//3 - 1`` and ``2L//3 - 1`` (as ENAS' code).

Each layer's ``get_config`` holds the spec as a dict, so ``.keras`` files reload with only
``import nascell``. The conv building blocks (`ReLUConvBN`, `SepConvBN`, ...) are shared with
the ENAS supernets in ``nascell.search.enas``.

Conventions (documented once, here): a conv op is ReLU -> conv (no bias) -> batch norm, as in
ENAS' micro code; pooling ops are 3x3, stride 1, "same" padding. A reduction cell first halves
both its inputs with a `FactorizedReduce` (ReLU -> two offset 1x1 stride-2 convs, concatenated
-> batch norm) and then runs its nodes at stride 1, as ENAS' ``micro_child.py`` does.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import keras
from keras import ops

from nascell.activations import ACTIVATIONS
from nascell.enas_spec import (
    ENASConvCellSpec,
    ENASConvNode,
    ENASMacroSpec,
    ENASRNNCellSpec,
    conv_cell_loose_ends,
)
from nascell.fast_rnn import dense, matmul_last_axis
from nascell.spec import SpecError, coerce_spec

SpecLike = Union[str, Dict[str, Any], Any]

def _as_spec(spec: SpecLike, cls) -> Any:
    """Accept a spec object, its dict or its JSON; check it is of ``cls``."""
    return coerce_spec(spec, cls)


def highway(projection, h_in, activation: str, units: int):
    """One ENAS node: ``c * f(p_h) + (1 - c) * h_in`` with ``c = sigmoid(p_c)``.

    ``projection`` is ``[batch, 2*units]``: gate pre-activation first, then the candidate's.
    """
    c = ops.sigmoid(projection[:, :units])
    f = ACTIVATIONS[activation](projection[:, units:])
    return c * f + (1.0 - c) * h_in


# ---------------------------------------------------------------------------------------------
# Recurrent cell.
# ---------------------------------------------------------------------------------------------


def _nth(initializer, n: int):
    """``initializer`` for a cell's ``n``-th weight matrix. A seeded Keras 3 initializer gives
    the same values at every call, so the recurrent kernel and the node kernels, all
    ``[units, 2 * units]``, would start equal (and two nodes reading the same node with the
    same activation would stay equal for good); each gets the seed plus ``n`` instead, which
    keeps the layer deterministic. Unseeded initializers are returned as they are."""
    config = initializer.get_config()
    if n == 0 or config.get("seed") is None:
        return initializer
    return initializer.__class__.from_config({**config, "seed": int(config["seed"]) + n})


@keras.saving.register_keras_serializable(package="nascell")
class ENASRNNCell(keras.layers.Layer):
    """The recurrent cell an `ENASRNNCellSpec` describes; use inside `nascell.RNN` (or
    ``keras.layers.RNN``, step by step).

    Args:
      spec: an `ENASRNNCellSpec`, its dict or its JSON.
      units: width of every node and of the state.
      kernel_initializer: for all weights (ENAS' code: uniform in [-0.1, 0.1]).
    """

    def __init__(self, spec: SpecLike, units: int, kernel_initializer: Any = None, **kwargs):
        super().__init__(**kwargs)
        self.spec = _as_spec(spec, ENASRNNCellSpec)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"Argument `units` must be a positive integer. "
                             f"Received: units={units!r}")
        self.units = units
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomUniform(-0.1, 0.1))
        self.state_size = units
        self.output_size = units
        self._loose_ends = self.spec.loose_ends()

    def build(self, input_shape):
        input_dim = input_shape[-1]
        u = self.units
        self.kernel = self.add_weight(name="kernel", shape=(input_dim, 2 * u),
                                      initializer=_nth(self.kernel_initializer, 0))
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, 2 * u),
                                                initializer=_nth(self.kernel_initializer, 1))
        self.node_kernels = [None] + [
            self.add_weight(name=f"node{i}_kernel", shape=(u, 2 * u),
                            initializer=_nth(self.kernel_initializer, 1 + i))
            for i in range(1, self.spec.num_nodes)]
        self.built = True

    def call(self, inputs, states, training=None):
        return self.projected_call(self.project_inputs(inputs), states)

    # The fast-path hook (used by nascell.RNN; see nascell/fast_rnn.py).

    def project_inputs(self, inputs, training=None):
        """``x W_x``, node 0's input product, for one step or a whole ``(batch, time, ...)``."""
        return matmul_last_axis(inputs, self.kernel)

    def projected_call(self, projected, states, training=None, matmul=None):
        """One step from ``projected = project_inputs(x_t)``; every product of the state with
        a weight goes through ``matmul(x, kernel)`` (default: `dense`)."""
        matmul = matmul or dense
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        u = self.units
        nodes = self.spec.nodes
        proj = projected + matmul(h_prev, self.recurrent_kernel)
        outs = [highway(proj, h_prev, nodes[0].activation, u)]
        for i in range(1, len(nodes)):
            h_in = outs[nodes[i].input]
            outs.append(highway(matmul(h_in, self.node_kernels[i]), h_in,
                                nodes[i].activation, u))
        loose = [outs[i] for i in self._loose_ends]
        h = loose[0] if len(loose) == 1 else ops.mean(ops.stack(loose, axis=0), axis=0)
        return h, [h]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"spec": self.spec.to_dict(), "units": self.units,
                       "kernel_initializer": keras.initializers.serialize(
                           self.kernel_initializer)})
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "ENASRNNCell":
        config = dict(config)
        config["kernel_initializer"] = keras.initializers.deserialize(
            config["kernel_initializer"])
        return cls(**config)


# ---------------------------------------------------------------------------------------------
# Conv building blocks (shared with the supernets).
# ---------------------------------------------------------------------------------------------


class ReLUConvBN(keras.layers.Layer):
    """ReLU -> ``k x k`` conv (no bias) -> batch norm."""

    def __init__(self, filters: int, kernel_size: int = 1, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                                        use_bias=False)
        self.bn = keras.layers.BatchNormalization()

    def call(self, x, training=None):
        return self.bn(self.conv(ops.relu(x)), training=training)


class SepConvBN(keras.layers.Layer):
    """ReLU -> ``k x k`` depthwise-separable conv (no bias) -> batch norm."""

    def __init__(self, filters: int, kernel_size: int, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.SeparableConv2D(filters, kernel_size, padding="same",
                                                 use_bias=False)
        self.bn = keras.layers.BatchNormalization()

    def call(self, x, training=None):
        return self.bn(self.conv(ops.relu(x)), training=training)


class FactorizedReduce(keras.layers.Layer):
    """Halve height and width: ReLU, two 1x1 stride-2 convs (one offset by a pixel), concat, BN."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.conv_a = keras.layers.Conv2D(filters // 2, 1, strides=2, padding="same",
                                          use_bias=False)
        self.conv_b = keras.layers.Conv2D(filters - filters // 2, 1, strides=2, padding="same",
                                          use_bias=False)
        self.bn = keras.layers.BatchNormalization()

    def call(self, x, training=None):
        x = ops.relu(x)
        shifted = ops.pad(x[:, 1:, 1:, :], [[0, 0], [0, 1], [0, 1], [0, 0]])
        out = ops.concatenate([self.conv_a(x), self.conv_b(shifted)], axis=-1)
        return self.bn(out, training=training)


def make_cell_op(op: str, filters: int, **kwargs) -> Optional[keras.layers.Layer]:
    """The layer for an ENAS micro op (None for identity)."""
    if op == "sep_conv_3x3":
        return SepConvBN(filters, 3, **kwargs)
    if op == "sep_conv_5x5":
        return SepConvBN(filters, 5, **kwargs)
    if op == "avg_pool_3x3":
        return keras.layers.AveragePooling2D(3, strides=1, padding="same", **kwargs)
    if op == "max_pool_3x3":
        return keras.layers.MaxPooling2D(3, strides=1, padding="same", **kwargs)
    if op == "identity":
        return None
    raise SpecError(f"unknown ENAS conv op {op!r}")


def apply_op(layer: Optional[keras.layers.Layer], x, training=None):
    if layer is None:
        return x
    if isinstance(layer, (keras.layers.AveragePooling2D, keras.layers.MaxPooling2D)):
        return layer(x)
    return layer(x, training=training)


class ENASCell(keras.layers.Layer):
    """One fixed micro cell: calibrate both inputs to ``filters``, run the nodes, concat ends.

    ``reduce_inputs``: 0 (no reduction), 1 (only input 0 is at twice the resolution: the cell
    after a reduction cell) or 2 (a reduction cell: both inputs halved).
    """

    def __init__(self, nodes: Sequence[ENASConvNode], filters: int, reduce_inputs: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.nodes = tuple(nodes)
        self.filters = filters
        self.pre0 = FactorizedReduce(filters) if reduce_inputs >= 1 else ReLUConvBN(filters)
        self.pre1 = FactorizedReduce(filters) if reduce_inputs == 2 else ReLUConvBN(filters)
        self.node_ops = [[make_cell_op(op, filters) for op in node.ops] for node in self.nodes]
        self.loose_ends = conv_cell_loose_ends(self.nodes)

    def call(self, x0, x1, training=None):
        states = [self.pre0(x0, training=training), self.pre1(x1, training=training)]
        for node, layers in zip(self.nodes, self.node_ops):
            a = apply_op(layers[0], states[node.inputs[0]], training)
            b = apply_op(layers[1], states[node.inputs[1]], training)
            states.append(a + b)
        return ops.concatenate([states[k + 2] for k in self.loose_ends], axis=-1)


@keras.saving.register_keras_serializable(package="nascell")
class ENASConvNet(keras.layers.Layer):
    """The ENAS micro network for an `ENASConvCellSpec`.

    Args:
      spec: an `ENASConvCellSpec`, its dict or JSON.
      num_classes: classifier width; with ``include_top=False`` the layer returns the
        globally pooled features instead of logits.
      filters: stem and first-stage width; doubled at each reduction.
      num_cells: normal cells per stage (N in the paper); 3 stages, 2 reduction cells.
    """

    def __init__(self, spec: SpecLike, num_classes: int = 10, filters: int = 16,
                 num_cells: int = 1, include_top: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.spec = _as_spec(spec, ENASConvCellSpec)
        self.num_classes, self.filters, self.num_cells = num_classes, filters, num_cells
        self.include_top = include_top
        self.stem_conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.stem_bn = keras.layers.BatchNormalization()
        self.cells: List[ENASCell] = []
        f, after_reduction = filters, False
        for stage in range(3):
            if stage > 0:
                f *= 2
                self.cells.append(ENASCell(self.spec.reduction, f, reduce_inputs=2))
                after_reduction = True
            for _ in range(num_cells):
                self.cells.append(ENASCell(self.spec.normal, f,
                                           reduce_inputs=1 if after_reduction else 0))
                after_reduction = False
        self.head = keras.layers.Dense(num_classes) if include_top else None

    def build(self, input_shape):
        # Run once on a dummy batch so every sub-layer creates its weights (needed before
        # loading a .keras file's weights).
        self.call(ops.zeros((1,) + tuple(int(d) for d in input_shape[1:])), training=False)
        self.built = True

    def call(self, images, training=None):
        x = self.stem_bn(self.stem_conv(images), training=training)
        prev, cur = x, x
        for cell in self.cells:
            prev, cur = cur, cell(prev, cur, training=training)
        features = ops.mean(ops.relu(cur), axis=(1, 2))
        return self.head(features) if self.head is not None else features

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"spec": self.spec.to_dict(), "num_classes": self.num_classes,
                       "filters": self.filters, "num_cells": self.num_cells,
                       "include_top": self.include_top})
        return config


# ---------------------------------------------------------------------------------------------
# Macro network.
# ---------------------------------------------------------------------------------------------


def macro_pool_layers(num_layers: int) -> List[int]:
    """After which layers the macro network halves the resolution (ENAS' code)."""
    distance = num_layers // 3
    return [i for i in (distance - 1, 2 * distance - 1) if 0 <= i < num_layers - 1]


class MacroOp(keras.layers.Layer):
    """A macro-space op: conv/sep conv ``k x k`` -> batch norm -> ReLU, or a 3x3 pool."""

    def __init__(self, op: str, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.op = op
        if op.startswith("conv_") or op.startswith("sep_conv_"):
            k = int(op[-1])
            conv_cls = keras.layers.SeparableConv2D if op.startswith("sep") else keras.layers.Conv2D
            self.conv = conv_cls(filters, k, padding="same", use_bias=False)
            self.bn = keras.layers.BatchNormalization()
        elif op == "max_pool_3x3":
            self.pool = keras.layers.MaxPooling2D(3, strides=1, padding="same")
        elif op == "avg_pool_3x3":
            self.pool = keras.layers.AveragePooling2D(3, strides=1, padding="same")
        else:
            raise SpecError(f"unknown ENAS macro op {op!r}")

    def call(self, x, training=None):
        if hasattr(self, "conv"):
            return ops.relu(self.bn(self.conv(x), training=training))
        return self.pool(x)


@keras.saving.register_keras_serializable(package="nascell")
class ENASMacroNet(keras.layers.Layer):
    """The ENAS macro network for an `ENASMacroSpec`.

    Layer ``i`` computes ``BN(op_i(out_{i-1}) + sum_{j in skips_i} out_j)`` (the plain op when
    it has no skips); layer 0 reads the stem. After `macro_pool_layers` every stored output is
    halved by 2x2 average pooling so later skips line up. Width is ``filters`` throughout.
    """

    def __init__(self, spec: SpecLike, num_classes: int = 10, filters: int = 24,
                 include_top: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.spec = _as_spec(spec, ENASMacroSpec)
        self.num_classes, self.filters, self.include_top = num_classes, filters, include_top
        self.stem_conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.stem_bn = keras.layers.BatchNormalization()
        self.layer_ops = [MacroOp(layer.op, filters) for layer in self.spec.layers]
        self.skip_bns = [keras.layers.BatchNormalization() if layer.skips else None
                         for layer in self.spec.layers]
        self.pool_after = macro_pool_layers(self.spec.num_layers)
        self.head = keras.layers.Dense(num_classes) if include_top else None

    def build(self, input_shape):
        # Run once on a dummy batch so every sub-layer creates its weights (needed before
        # loading a .keras file's weights).
        self.call(ops.zeros((1,) + tuple(int(d) for d in input_shape[1:])), training=False)
        self.built = True

    def call(self, images, training=None):
        x = self.stem_bn(self.stem_conv(images), training=training)
        outs: List[Any] = []
        for i, layer in enumerate(self.spec.layers):
            out = self.layer_ops[i](x, training=training)
            if layer.skips:
                out = out + ops.sum(ops.stack([outs[j] for j in layer.skips], axis=0), axis=0)
                out = self.skip_bns[i](out, training=training)
            outs.append(out)
            if i in self.pool_after:
                outs = [ops.average_pool(o, 2, strides=2, padding="same") for o in outs]
            x = outs[-1]
        features = ops.mean(x, axis=(1, 2))
        return self.head(features) if self.head is not None else features

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config.update({"spec": self.spec.to_dict(), "num_classes": self.num_classes,
                       "filters": self.filters, "include_top": self.include_top})
        return config
