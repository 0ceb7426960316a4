"""Forward plus backward time of one recurrent layer, by implementation of the loop.

Times ``loss = sum(layer(x)**2)`` and its gradients with respect to the input and every weight,
in one ``tf.function`` (no embedding, no softmax: the recurrent layer alone), for:

* ``lstm``: ``keras.layers.LSTM`` (on CPU, Keras' generic loop: ``x W`` and ``h U`` per step);
* ``<cell>_step``: ``keras.layers.RNN(cell)``, step by step;
* ``<cell>_autograd``: ``nascell.RNN(cell, batch_weight_gradients=False)``: the input
  projection hoisted out of the loop, the loop's weight gradients by autograd;
* ``<cell>``: ``nascell.RNN(cell, batch_weight_gradients=True)``: hoisted, and the loop's
  weight gradients as one matmul after it;
* ``<cell>_auto``: ``nascell.RNN(cell)``, the default (``batch_weight_gradients="auto"``).

``<cell>`` is ``nas`` (the NAS cell, base 8) or ``fig5`` (the paper's base-2 Figure 5 cell).
Repeats are interleaved across the variants; prints the median wall and process CPU ms per
call. This is what set ``nascell.fast_rnn.AUTO_MIN_KERNEL_SIZE``.

    python benchmarks/rnn_layer_cost.py --units 650
    python benchmarks/rnn_layer_cost.py --units 48 --batch 32 --seq_len 50 --input_dim 16
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import statistics  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from nascell.fast_rnn import RNN  # noqa: E402
from nascell.nas_cell import NASCell  # noqa: E402
from nascell.spec import FIGURE5_SPEC  # noqa: E402
from nascell.tree_cell import TreeCell  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("units", 650, "Units of the layer.")
flags.DEFINE_integer("input_dim", None, "Input features (default: units).")
flags.DEFINE_integer("batch", 20, "Batch size.")
flags.DEFINE_integer("seq_len", 35, "Time steps.")
flags.DEFINE_integer("calls", 3, "Timed calls per variant per repeat.")
flags.DEFINE_integer("repeats", 5, "Interleaved repeats.")
flags.DEFINE_list("variants", ["lstm", "nas_step", "nas_autograd", "nas", "fig5_step",
                               "fig5_autograd", "fig5"], "Variants to time (see the docstring).")


def make_layer(variant: str) -> keras.layers.Layer:
    if variant == "lstm":
        return keras.layers.LSTM(FLAGS.units, return_sequences=True)
    cell_kind, _, loop = variant.partition("_")
    if cell_kind == "nas":
        cell = NASCell(FLAGS.units)
    elif cell_kind == "fig5":
        cell = TreeCell(FIGURE5_SPEC, FLAGS.units)
    else:
        raise app.UsageError(f"unknown variant {variant!r}")
    if loop == "step":
        return keras.layers.RNN(cell, return_sequences=True)
    modes = {"": True, "autograd": False, "auto": "auto"}
    if loop not in modes:
        raise app.UsageError(f"unknown variant {variant!r}")
    return RNN(cell, return_sequences=True, batch_weight_gradients=modes[loop])


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(FLAGS.batch, FLAGS.seq_len,
                                     FLAGS.input_dim or FLAGS.units)).astype("float32"))
    functions = {}
    for variant in FLAGS.variants:
        keras.utils.set_random_seed(0)
        layer = make_layer(variant)
        layer(x)

        @tf.function
        def forward_backward(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.square(layer(x, training=True)))
            return loss, tape.gradient(loss, [x, *layer.trainable_weights])

        for _ in range(2):
            forward_backward(x)
        functions[variant] = forward_backward
    wall = {v: [] for v in functions}
    cpu = {v: [] for v in functions}
    for _ in range(FLAGS.repeats):
        for variant, function in functions.items():
            w, c = time.perf_counter(), time.process_time()
            for _ in range(FLAGS.calls):
                loss, grads = function(x)
                grads[-1].numpy()
            wall[variant].append(1000 * (time.perf_counter() - w) / FLAGS.calls)
            cpu[variant].append(1000 * (time.process_time() - c) / FLAGS.calls)
    print(f"units {FLAGS.units}, input {FLAGS.input_dim or FLAGS.units}, batch {FLAGS.batch}, "
          f"seq_len {FLAGS.seq_len}; median of {FLAGS.repeats} interleaved repeats")
    print("| variant | wall ms | CPU ms |")
    print("|---|---:|---:|")
    for variant in functions:
        print(f"| {variant} | {statistics.median(wall[variant]):.1f} | "
              f"{statistics.median(cpu[variant]):.1f} |")


if __name__ == "__main__":
    app.run(main)
