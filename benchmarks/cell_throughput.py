"""Training throughput of NASCell and TreeCell against keras.layers.LSTM on a PTB-medium LM.

The model is Zaremba et al.'s medium PTB language model: Embedding(vocab, units) -> RNN -> RNN
-> Dense(vocab), batch 20, 35 unrolled steps, 650 units, SGD with gradient clipping, trained on
random token ids (throughput does not depend on the data). The models are timed in one process
and their timing repeats are interleaved (LSTM, NASCell, TreeCell, ..., LSTM, ...), so that load
from other processes on the machine hits all of them alike.

The cells run in `nascell.RNN` (the fast path: input projections hoisted out of the loop,
batched weight gradients); the ``*_step`` models run the same cells step by step in
``keras.layers.RNN``, as before the fast path, so one run gives the before and after rows.

    python benchmarks/cell_throughput.py --warmup 3 --steps 6 --repeats 3
    python benchmarks/cell_throughput.py --jit --units 200   # XLA, smaller model

Prints one line per timed repeat, then a table: median steps/s over the repeats, each model's
step time as a multiple of the LSTM's (the median of the per-repeat ratios), and the same for
process CPU time per step, which other processes' load disturbs much less than wall time.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import statistics  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from nascell.fast_rnn import RNN  # noqa: E402
from nascell.nas_cell import NASCell  # noqa: E402
from nascell.spec import FIGURE5_SPEC, RNNCellSpec  # noqa: E402
from nascell.tree_cell import TreeCell  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("warmup", 5, "Untimed training steps per model before timing (traces it).")
flags.DEFINE_integer("steps", 10, "Timed training steps per model per repeat.")
flags.DEFINE_integer("repeats", 3, "Interleaved timing repeats.")
flags.DEFINE_integer("batch", 20, "Batch size.")
flags.DEFINE_integer("seq_len", 35, "Unrolled time steps.")
flags.DEFINE_integer("units", 650, "Units of each recurrent layer.")
flags.DEFINE_integer("vocab", 10000, "Vocabulary size (embedding rows and softmax width).")
flags.DEFINE_integer("layers", 2, "Stacked recurrent layers.")
flags.DEFINE_bool("jit", False, "Compile the train step with XLA (model.compile(jit_compile=)).")
flags.DEFINE_bool("unroll", False, "keras.layers.RNN(unroll=True) for every model.")
flags.DEFINE_string("tree_spec", None, "JSON of the TreeCell spec; default: the paper's base-2 "
                    "Figure 5 cell (nascell.spec.FIGURE5_SPEC).")
flags.DEFINE_list("models", ["lstm", "nascell", "treecell", "nascell_step", "treecell_step"],
                  "Models to time, the reference first: lstm, nascell, treecell (nascell.RNN, "
                  "the fast path), nascell_step, treecell_step (keras.layers.RNN, step by step), "
                  "nascell_autograd, treecell_autograd (fast path without batched weight "
                  "gradients); a _jit suffix (e.g. lstm_jit, nascell_jit) compiles that "
                  "model's train step with XLA.")
flags.DEFINE_integer("seed", 0, "Random seed.")


def recurrent_layer(kind: str, units: int, unroll: bool) -> keras.layers.Layer:
    if kind == "lstm":
        return keras.layers.LSTM(units, return_sequences=True, unroll=unroll)
    cell_kind, _, variant = kind.partition("_")
    if cell_kind == "nascell":
        cell = NASCell(units)
    elif cell_kind == "treecell":
        spec = RNNCellSpec.from_json(FLAGS.tree_spec) if FLAGS.tree_spec else FIGURE5_SPEC
        cell = TreeCell(spec, units)
    else:
        raise app.UsageError(f"unknown model {kind!r}; see --models")
    if variant == "step":
        return keras.layers.RNN(cell, return_sequences=True, unroll=unroll)
    if variant not in ("", "autograd"):
        raise app.UsageError(f"unknown model {kind!r}; see --models")
    return RNN(cell, return_sequences=True, unroll=unroll,
               batch_weight_gradients=variant != "autograd")


def build_model(kind: str) -> keras.Model:
    """The model ``kind`` names; a ``_jit`` suffix compiles its train step with XLA."""
    jit = FLAGS.jit or kind.endswith("_jit")
    layer_kind = kind[:-len("_jit")] if kind.endswith("_jit") else kind
    layers = [keras.Input((FLAGS.seq_len,), batch_size=FLAGS.batch, dtype="int32"),
              keras.layers.Embedding(FLAGS.vocab, FLAGS.units)]
    layers += [recurrent_layer(layer_kind, FLAGS.units, FLAGS.unroll)
               for _ in range(FLAGS.layers)]
    layers += [keras.layers.Dense(FLAGS.vocab)]
    model = keras.Sequential(layers, name=kind)
    model.compile(keras.optimizers.SGD(learning_rate=1.0, global_clipnorm=5.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
    return model


def time_steps(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int):
    """(wall seconds, process CPU seconds) for `steps` training steps.

    train_on_batch returns host numbers, so each step has finished when it returns. CPU time
    (all threads of this process) is reported too: on a shared machine it moves much less
    with other processes' load than wall time does.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    if not np.isfinite(loss):
        raise RuntimeError(f"{model.name}: loss is {loss}")
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    rng = np.random.default_rng(FLAGS.seed)
    x = rng.integers(0, FLAGS.vocab, (FLAGS.batch, FLAGS.seq_len)).astype("int32")
    y = rng.integers(0, FLAGS.vocab, (FLAGS.batch, FLAGS.seq_len)).astype("int32")

    models = {}
    for kind in FLAGS.models:
        models[kind] = build_model(kind)
        start = time.perf_counter()
        time_steps(models[kind], x, y, max(FLAGS.warmup, 1))
        print(f"{kind}: {models[kind].count_params():,} parameters, warmup "
              f"{time.perf_counter() - start:.1f}s", flush=True)

    load_before = os.getloadavg()[0]
    rates = {kind: [] for kind in models}       # wall-clock steps/s, one per repeat
    cpu_ms = {kind: [] for kind in models}      # process CPU ms per step, one per repeat
    for repeat in range(FLAGS.repeats):
        for kind, model in models.items():
            wall, cpu = time_steps(model, x, y, FLAGS.steps)
            rates[kind].append(FLAGS.steps / wall)
            cpu_ms[kind].append(1000 * cpu / FLAGS.steps)
        print(f"repeat {repeat + 1}: " + "  ".join(
            f"{k} {rates[k][-1]:.3f} steps/s ({cpu_ms[k][-1]:.0f} cpu ms/step)" for k in models),
              flush=True)

    first = next(iter(models))
    print(f"\nbatch {FLAGS.batch}, seq_len {FLAGS.seq_len}, units {FLAGS.units}, vocab "
          f"{FLAGS.vocab}, layers {FLAGS.layers}, jit {FLAGS.jit}, unroll {FLAGS.unroll}; "
          f"{FLAGS.steps} steps x {FLAGS.repeats} interleaved repeats; load average "
          f"{load_before:.1f} before timing, {os.getloadavg()[0]:.1f} after")
    print(f"| model | params | steps/s (median) | step ms | step time vs {first} "
          f"| CPU ms/step | CPU time vs {first} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, model in models.items():
        ratio = statistics.median(a / b for a, b in zip(rates[first], rates[kind]))
        cpu_ratio = statistics.median(b / a for a, b in zip(cpu_ms[first], cpu_ms[kind]))
        median = statistics.median(rates[kind])
        print(f"| {kind} | {model.count_params():,} | {median:.3f} | {1000 / median:.0f} | "
              f"{ratio:.2f}x | {statistics.median(cpu_ms[kind]):.0f} | {cpu_ratio:.2f}x |")


if __name__ == "__main__":
    app.run(main)
