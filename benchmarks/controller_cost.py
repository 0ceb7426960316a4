"""What the controller costs: sampling m architectures and one REINFORCE update, on CPU.

Times the controller on the paper's 15-layer conv space (``conv_v1`` at full depth: 60
decisions, skips over up to 14 earlier layers), the base-8 cell space and the NAS-Bench-201
cell (6 decisions), and puts the numbers next to a child's cost to give the controller's
share of a search's wall time. It also times a *second* controller of the same space (another
seed: a new strategy in the same process), which reuses the first one's compiled programs
(`nascell.search.strategies.controller.controller_graph`) instead of tracing and compiling its own.

    python benchmarks/controller_cost.py --repeats=50

The child cost is an assumption, stated in the output: by default 600 s, a small conv child
trained for a few epochs on one GPU (the paper trained each CIFAR-10 child for 50 epochs;
a real child costs minutes to hours, so the share printed is an upper bound for real runs).
"""

from __future__ import annotations

import os
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("m", 8, "architectures per batch (the paper's m)")
flags.DEFINE_integer("repeats", 50, "timed calls per measurement (after a warm-up)")
flags.DEFINE_float("child_seconds", 600.0, "assumed wall time of one child evaluation")
flags.DEFINE_integer("threads", 1, "TensorFlow intra-op threads (the controller is tiny)")
flags.DEFINE_list("spaces", ["conv_v1", "rnn_cell", "nasbench201"],
                  "spaces to time (full depth)")
flags.DEFINE_bool("jit_compile", True, "XLA-compile the controller (the default)")


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    from nascell.search.spaces import create_space
    from nascell.search.strategies.controller.controller import Controller

    m = FLAGS.m
    print(f"CPU, {FLAGS.threads} thread(s), m={m}, jit_compile={FLAGS.jit_compile}, "
          f"median of {FLAGS.repeats} calls")
    print("| space | decisions | first call (trace+compile) s | second controller: create + "
          "first call s | sample m ms (cpu) | update ms (cpu) | controller per m children ms "
          "| share of wall time |")
    print("|---|---|---|---|---|---|---|---|")
    for name in FLAGS.spaces:
        options = {"depth_schedule": False} if name.startswith("conv") else {}
        space = create_space(name, **options)
        n = len(space.decisions)
        c = Controller(space, seed=0, jit_compile=FLAGS.jit_compile,
                       learning_rate=6e-4 if name.startswith("conv") else 5e-4)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        out = c.sample(m)
        c.update([(t, n) for t in out["tokens"]], rng.random(m))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        c2 = Controller(space, seed=1, jit_compile=FLAGS.jit_compile,
                        learning_rate=6e-4 if name.startswith("conv") else 5e-4)
        out = c2.sample(m)
        c2.update([(t, n) for t in out["tokens"]], rng.random(m))
        second = time.perf_counter() - t0
        del c2
        samples, updates, cpu_s, cpu_u = [], [], [], []
        for _ in range(FLAGS.repeats):
            t0, p0 = time.perf_counter(), time.process_time()
            out = c.sample(m)
            t1, p1 = time.perf_counter(), time.process_time()
            c.update([(t, n) for t in out["tokens"]], rng.random(m))
            t2, p2 = time.perf_counter(), time.process_time()
            samples.append(t1 - t0)
            updates.append(t2 - t1)
            cpu_s.append(p1 - p0)
            cpu_u.append(p2 - p1)
        s_ms, u_ms = 1000 * np.median(samples), 1000 * np.median(updates)
        cpu = (1000 * np.median(cpu_s), 1000 * np.median(cpu_u))
        per_batch = s_ms + u_ms
        # m children run in parallel (one per worker): the controller's serial time per batch
        # against one child's wall time.
        share = per_batch / 1000 / (per_batch / 1000 + FLAGS.child_seconds)
        print(f"| {name} | {n} | {first:.1f} | {second:.2f} | {s_ms:.1f} ({cpu[0]:.1f}) | "
              f"{u_ms:.1f} "
              f"({cpu[1]:.1f}) | {per_batch:.1f} | "
              f"{100 * share:.4f}% |")
    print(f"assumption: one child takes {FLAGS.child_seconds:.0f} s and the m children of a "
          "batch train in parallel, so the controller adds (sample + update) per batch of m.")


if __name__ == "__main__":
    app.run(main)
