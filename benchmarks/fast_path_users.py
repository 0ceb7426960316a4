"""Training step time of the models that run tree cells, on the fast path and step by step.

Each model is built by the code that builds it for real: the search's child language model
(`nascell.search.evaluators.rnn_lm.build_language_model`, compiled as the evaluator compiles
it), the character-level PTB model of ``examples/char_ptb.py`` and the attention translator of
``examples/translate.py`` (both with the cell loaded from an export folder, as the examples
do). Every one is built twice from the same seed; in the ``step`` copy each `nascell.RNN` is
switched to ``fast_path=False``, i.e. the step-by-step loop of ``keras.layers.RNN``. Both copies
are timed in one process, their repeats interleaved, on random token ids. Prints ms per
training step (wall-clock and process CPU time, medians of the repeats) and the ratios.

    python benchmarks/fast_path_users.py --steps 10 --repeats 3
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from nascell.fast_rnn import RNN  # noqa: E402
from nascell.search.bin.child_flags import PROXY_DEFAULTS  # noqa: E402
from nascell.search.evaluators.rnn_lm import build_language_model  # noqa: E402
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("warmup", 3, "Untimed training steps per model (tracing included).")
flags.DEFINE_integer("steps", 10, "Timed training steps per model per repeat.")
flags.DEFINE_integer("repeats", 3, "Interleaved timing repeats.")
flags.DEFINE_list("models", ["child_nas", "child_fig5", "child_nas_200", "child_nas_650",
                            "char_ptb", "translate"],
                  "child_nas, child_fig5: the search's proxy child (64 units) with the NAS cell "
                  "or the Figure 5 cell; child_nas_200, child_nas_650: 200 and 650 units (650: "
                  "the paper's ~20M-parameter children); char_ptb, translate: the examples at "
                  "their default sizes (the NAS cell).")
flags.DEFINE_integer("seed", 0, "Random seed.")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"nascell_example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def child(spec, units: int):
    """The search's child and a batch, as `RNNLanguageModelEvaluator` builds and feeds it."""
    d = PROXY_DEFAULTS["rnn_lm"]
    vocab = 10000
    model = build_language_model(spec, vocab, units, d["num_layers"], d["tie_weights"],
                                 seed=d["seed"])
    model.compile(keras.optimizers.Adam(d["lr"], global_clipnorm=d["clipnorm"]),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    shape = (d["batch_size"], d["seq_len"])
    return model, lambda rng: ((rng.integers(0, vocab, shape),), rng.integers(0, vocab, shape))


def char_ptb(workdir: str):
    example = _example("char_ptb")
    cfg, vocab = example.Config(), 50
    cell = example.exported_cell_layer(cfg, workdir)
    model = example.language_model(vocab, cfg.embedding_dim, cell, cfg.dropout, "char_ptb")
    model.compile(keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.clipnorm),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    shape = (cfg.batch_size, cfg.seq_len)
    return model, lambda rng: ((rng.integers(0, vocab, shape),), rng.integers(0, vocab, shape))


def translate(workdir: str):
    example = _example("translate")
    cfg, vocab = example.Config(), 400
    model = example.build_model(cfg, vocab, vocab, workdir)
    model.compile(keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.clipnorm),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    shape = (cfg.batch_size, cfg.max_len + 2)

    def batch(rng):
        src, tgt = rng.integers(4, vocab, shape), rng.integers(4, vocab, shape)
        src[::3, 7:] = 0          # padded (masked) tails
        tgt[1::3, 9:] = 0
        return (src, tgt), tgt
    return model, batch


def build(kind: str, workdir: str):
    if kind == "child_nas":
        return child(NAS_CELL_SPEC, 64)
    if kind == "child_fig5":
        return child(FIGURE5_SPEC, 64)
    if kind == "child_nas_200":
        return child(NAS_CELL_SPEC, 200)
    if kind == "child_nas_650":
        return child(NAS_CELL_SPEC, 650)
    if kind == "char_ptb":
        return char_ptb(workdir)
    if kind == "translate":
        return translate(workdir)
    raise app.UsageError(f"unknown model {kind!r}; see --models")


def set_fast_path(model: keras.Model, on: bool) -> int:
    """Switch every `nascell.RNN` of ``model``; returns how many there are."""
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, RNN)]
    for layer in layers:
        layer.fast_path = on
    return len(layers)


def time_steps(model, batches, steps: int):
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        inputs, targets = batches[i % len(batches)]
        model.train_on_batch(list(inputs) if len(inputs) > 1 else inputs[0], targets)
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv):
    del argv
    rng = np.random.default_rng(FLAGS.seed)
    models, batches = {}, {}
    with tempfile.TemporaryDirectory() as workdir:
        for kind in FLAGS.models:
            for variant in ("fast", "step"):
                keras.utils.set_random_seed(FLAGS.seed)
                model, make_batch = build(kind, os.path.join(workdir, f"{kind}_{variant}"))
                if set_fast_path(model, variant == "fast") == 0:
                    raise RuntimeError(f"{kind} has no nascell.RNN layer")
                batches[kind] = batches.get(kind) or [make_batch(rng) for _ in range(4)]
                time_steps(model, batches[kind], max(FLAGS.warmup, 1))
                models[(kind, variant)] = model
    load_before = os.getloadavg()[0]
    wall = {key: [] for key in models}
    cpu = {key: [] for key in models}
    for repeat in range(FLAGS.repeats):
        for key, model in models.items():
            w, c = time_steps(model, batches[key[0]], FLAGS.steps)
            wall[key].append(1000 * w / FLAGS.steps)
            cpu[key].append(1000 * c / FLAGS.steps)
        print(f"repeat {repeat + 1}: " + "  ".join(
            f"{k}/{v} {wall[(k, v)][-1]:.1f} ms ({cpu[(k, v)][-1]:.1f} cpu)" for k, v in models),
            flush=True)
    print(f"\n{FLAGS.steps} steps x {FLAGS.repeats} interleaved repeats; ms per training step; "
          f"load average {load_before:.1f} before timing, {os.getloadavg()[0]:.1f} after")
    print("| model | step by step | fast path | fast / step | CPU step by step | CPU fast "
          "| CPU fast / step |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in FLAGS.models:
        fw, sw = wall[(kind, "fast")], wall[(kind, "step")]
        fc, sc = cpu[(kind, "fast")], cpu[(kind, "step")]
        ratio = statistics.median(f / s for f, s in zip(fw, sw))
        cpu_ratio = statistics.median(f / s for f, s in zip(fc, sc))
        print(f"| {kind} | {statistics.median(sw):.1f} | {statistics.median(fw):.1f} | "
              f"{ratio:.2f}x | {statistics.median(sc):.1f} | {statistics.median(fc):.1f} | "
              f"{cpu_ratio:.2f}x |")


if __name__ == "__main__":
    app.run(main)
