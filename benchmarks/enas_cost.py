"""ENAS vs NAS-RL: compute per architecture scored, measured in one run on PTB.

* ENAS: a short ENAS search (the ``enas`` strategy and the ``supernet`` evaluator run by
  `nascell.search.core.loop.run_search`, in a run directory like every search's) on a PTB proxy:
  its whole cost (shared-weight training, controller training, derivation, graph tracing, and
  the run directory's store, checkpoints and TensorBoard summaries included) divided by the
  number of architectures it scored (each on one validation batch with the shared weights).
* NAS-RL: one child of the same space and size (the derived cell), trained from scratch for
  the proxy budget (``--child_epochs`` passes over the same training tokens) and scored on the
  validation tokens; its cost is the cost of one architecture scored.

The ratio child / ENAS-per-architecture is reported for wall-clock time and for process CPU
time (which moves much less with other processes' load on a shared machine). The paper's
anchor is ~1000x (under 16 GPU hours vs NAS-RL's 450 GPUs x 3-4 days), where NAS-RL's
children train far longer than this proxy's, so the ratio here is a conservative floor.

    python benchmarks/enas_cost.py --epochs=2 --shared_steps=40 --controller_steps=10
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_nodes", 8, "nodes of the ENAS recurrent cell")
flags.DEFINE_integer("units", 32, "embedding / node / state width (ENAS and child alike)")
flags.DEFINE_integer("epochs", 2, "ENAS epochs (shared phase + controller phase)")
flags.DEFINE_integer("shared_steps", 40, "shared-weight SGD steps per ENAS epoch")
flags.DEFINE_integer("controller_steps", 10, "controller updates per ENAS epoch")
flags.DEFINE_integer("controller_batch", 10, "architectures scored per controller update")
flags.DEFINE_integer("derive_samples", 10, "architectures scored when deriving")
flags.DEFINE_integer("child_epochs", 1, "proxy budget of the independently trained child")
flags.DEFINE_integer("max_train", 100000, "PTB training tokens used")
flags.DEFINE_integer("max_valid", 20000, "PTB validation tokens used")
flags.DEFINE_integer("batch", 20, "batch size")
flags.DEFINE_integer("seq_len", 35, "unrolled steps")
flags.DEFINE_string("json_out", None, "optional: write the figures here")


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from enas_common import load_ptb_proxy, train_child

    from nascell.search.core.loop import run_search
    from nascell.search.enas import build

    data = load_ptb_proxy(FLAGS.max_train, FLAGS.max_valid, None)
    data["test"] = None
    space, strategy, evaluator = build(
        "enas_rnn", data=data, epochs=FLAGS.epochs, shared_steps=FLAGS.shared_steps,
        controller_steps=FLAGS.controller_steps, controller_batch=FLAGS.controller_batch,
        derive_samples=FLAGS.derive_samples, derive_batches=1, num_nodes=FLAGS.num_nodes,
        units=FLAGS.units, batch_size=FLAGS.batch, seq_len=FLAGS.seq_len)
    strategy.on_epoch = lambda s: print(f"  enas epoch {int(s['epoch'])}: valid ppl "
                                        f"{s['valid_ppl']:.1f}, {s['seconds']:.1f}s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.time(), time.process_time()
        result = run_search(space, strategy, evaluator, os.path.join(tmp, "run"),
                            num_trials=strategy.planned_trials(), m=strategy.m, progress=False,
                            checkpoint_every=strategy.checkpoint_every)
        enas_wall, enas_cpu = time.time() - wall, time.process_time() - cpu
        # Post-training scoring alone: one architecture, one validation batch.
        task = evaluator.supernet_task(space)
        specs = [t.spec for t in strategy.ask(5)]
        wall = time.time()
        for i, spec in enumerate(specs):
            task.score(spec, [i])
        score_only = (time.time() - wall) / len(specs)
    scored = len(result.trials)
    enas_per_arch_wall, enas_per_arch_cpu = enas_wall / scored, enas_cpu / scored

    wall, cpu = time.time(), time.process_time()
    child = train_child(result.best.spec, data, FLAGS.units, FLAGS.child_epochs, FLAGS.batch,
                        FLAGS.seq_len)
    child_wall, child_cpu = time.time() - wall, time.process_time() - cpu

    out = {
        "space": f"enas_rnn, {FLAGS.num_nodes} nodes, units {FLAGS.units}, PTB vocab "
                 f"{data['vocab_size']}",
        "enas_total_s": enas_wall, "enas_total_cpu_s": enas_cpu,
        "architectures_scored": scored,
        "enas_per_arch_s": enas_per_arch_wall, "enas_per_arch_cpu_s": enas_per_arch_cpu,
        "enas_score_only_s": score_only,
        "child_s": child_wall, "child_cpu_s": child_cpu, "child_steps": child["steps"],
        "child_params": child["params"], "child_valid_ppl": child["valid_ppl"],
        "ratio_wall": child_wall / enas_per_arch_wall,
        "ratio_cpu": child_cpu / enas_per_arch_cpu,
    }
    print(f"space: {out['space']}; proxy: {FLAGS.max_train} train / {FLAGS.max_valid} valid "
          f"tokens, batch {FLAGS.batch} x {FLAGS.seq_len}")
    print(f"ENAS: {FLAGS.epochs} epochs x ({FLAGS.shared_steps} shared steps + "
          f"{FLAGS.controller_steps} x {FLAGS.controller_batch} scored) + "
          f"{FLAGS.derive_samples} derived = {scored} architectures in {enas_wall:.1f}s "
          f"wall / {enas_cpu:.1f}s cpu -> {enas_per_arch_wall:.3f}s wall / "
          f"{enas_per_arch_cpu:.3f}s cpu per architecture (scoring alone "
          f"{score_only:.3f}s)")
    print(f"child: {child['params']} params, {child['steps']} steps ({FLAGS.child_epochs} "
          f"epoch), valid ppl {child['valid_ppl']:.1f}, {child_wall:.1f}s wall / "
          f"{child_cpu:.1f}s cpu")
    print(f"ratio child / ENAS per architecture: {out['ratio_wall']:.0f}x wall, "
          f"{out['ratio_cpu']:.0f}x cpu")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    app.run(main)
