"""Search efficiency on NAS-Bench-201: best accuracy found and regret after N trials.

Runs the ``reinforce``, ``random`` and ``evolution`` strategies on the tabular NAS-Bench-201
benchmark (`NASBench201Evaluator`: a trial is a table look-up, so the comparison measures the
strategies, not the children) for many seeds, and reports for each budget the best CIFAR-10
test accuracy found and its regret to the table's best (94.37): mean, std and inter-quartile
range over seeds. Prints a table and saves a plot.

    python benchmarks/search_efficiency.py --seeds=50 --nb201_csv=../shared/data/nasbench201/nb201_cifar10.csv

REINFORCE runs with the ``small_budget`` preset unless ``--reinforce_options`` says otherwise
(JSON, e.g. '{"preset": "paper"}'); see benchmarks/README.md for the defaults and why.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("seeds", 50, "independent runs per strategy")
flags.DEFINE_integer("first_seed", 0, "seeds are first_seed .. first_seed + seeds - 1")
flags.DEFINE_list("budgets", ["25", "50", "100", "200", "400"], "trial counts to report")
flags.DEFINE_list("strategies", ["reinforce", "random", "evolution"], "strategies to compare")
flags.DEFINE_string("nb201_csv", None, "nb201_cifar10.csv (default: NASCELL_NB201_CSV, "
                    "NASCELL_DATA_DIR, or ../shared/data relative to the project)")
flags.DEFINE_string("reinforce_options", '{"preset": "small_budget"}',
                    "JSON options for the reinforce strategy")
flags.DEFINE_string("evolution_options", "{}", "JSON options for the evolution strategy")
flags.DEFINE_bool("dedupe", True, "every strategy proposes each architecture at most once "
                  "(the trial budget counts distinct evaluations); --nodedupe for the plain "
                  "strategies")
flags.DEFINE_integer("processes", 2, "worker processes (the runs are independent)")
flags.DEFINE_string("plot", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                         "search_efficiency.png"), "where to save the plot")
flags.DEFINE_string("json_out", None, "optional: write the per-budget statistics here")

BEST = 94.37  # the table's best, rounded; regrets use the exact maximum (94.3733)


def _default_csv() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "shared", "data", "nasbench201", "nb201_cifar10.csv")


def run_seeds(args):
    """Worker: run one strategy for several seeds; returns best-so-far curves (accuracy)."""
    name, options, seeds, budget, csv_path = args
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
    from nascell.search.spaces import create_space
    from nascell.search.strategy import create_strategy
    if name == "reinforce":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    space = create_space("nasbench201")
    evaluator = NASBench201Evaluator(csv_path)
    curves, strategy = [], None
    for seed in seeds:
        if name == "reinforce" and strategy is not None:
            strategy.reseed(seed)  # same as a fresh strategy, without recompiling
        else:
            strategy = create_strategy(name, space, seed=seed, **options)
        batch = getattr(strategy, "m", 1)
        best, curve = 0.0, []
        while len(curve) < budget:
            for trial in strategy.ask(min(batch, budget - len(curve))):
                acc = evaluator.accuracy(trial.spec)
                strategy.tell(trial, acc / 100.0)
                best = max(best, acc)
                curve.append(best)
        curves.append(curve)
    return name, np.array(curves)


def summarize(curves, budgets, best):
    import numpy as np
    rows = []
    for b in budgets:
        acc = curves[:, b - 1]
        regret = best - acc
        q1, q3 = np.percentile(regret, [25, 75])
        rows.append({"budget": b, "acc_mean": float(acc.mean()), "acc_std": float(acc.std()),
                     "regret_mean": float(regret.mean()), "regret_std": float(regret.std()),
                     "regret_median": float(np.median(regret)), "regret_q1": float(q1),
                     "regret_q3": float(q3), "found_best": float(np.mean(regret < 1e-6))})
    return rows


def main(argv):
    del argv
    import numpy as np
    budgets = sorted(int(b) for b in FLAGS.budgets)
    csv_path = (FLAGS.nb201_csv or os.environ.get("NASCELL_NB201_CSV") or _default_csv())
    if not os.path.exists(csv_path):
        sys.exit(f"NAS-Bench-201 table not found at {csv_path}; pass --nb201_csv")
    options = {"reinforce": json.loads(FLAGS.reinforce_options),
               "evolution": json.loads(FLAGS.evolution_options), "random": {}}
    for name in options:
        options[name].setdefault("dedupe", FLAGS.dedupe)
    from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
    best = max(NASBench201Evaluator(csv_path).table.values())
    seeds = list(range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds))
    jobs = []
    for name in FLAGS.strategies:
        chunks = max(1, FLAGS.processes) if name == "reinforce" else 1
        for c in range(chunks):
            jobs.append((name, options.get(name, {}), seeds[c::chunks], budgets[-1], csv_path))
    start = time.time()
    if FLAGS.processes > 1:
        with multiprocessing.get_context("spawn").Pool(FLAGS.processes) as pool:
            results = pool.map(run_seeds, jobs)
    else:
        results = [run_seeds(j) for j in jobs]
    curves = {}
    for name, c in results:
        curves[name] = c if name not in curves else np.concatenate([curves[name], c])
    seconds = time.time() - start

    stats = {name: summarize(curves[name], budgets, best) for name in FLAGS.strategies}
    print(f"NAS-Bench-201 CIFAR-10, {FLAGS.seeds} seeds, regret = {best:.4f} - best test "
          f"accuracy found (percent points); {seconds:.0f} s wall")
    print(f"options: {json.dumps(options, sort_keys=True)}")
    header = "| trials | " + " | ".join(
        f"{n}: best acc mean±std | {n}: regret mean [IQR]" for n in FLAGS.strategies) + " |"
    print(header)
    print("|" + "---|" * (1 + 2 * len(FLAGS.strategies)))
    for i, b in enumerate(budgets):
        cells = []
        for n in FLAGS.strategies:
            r = stats[n][i]
            cells.append(f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f}")
            cells.append(f"{r['regret_mean']:.2f} [{r['regret_q1']:.2f}, {r['regret_q3']:.2f}]")
        print(f"| {b} | " + " | ".join(cells) + " |")
    np.savez(os.path.splitext(FLAGS.plot)[0] + "_curves.npz", best=best, **curves)
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump({"seeds": FLAGS.seeds, "stats": stats,
                       "options": options}, f, indent=2)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(1, budgets[-1] + 1)
    for name in FLAGS.strategies:
        regret = best - curves[name]
        q1, q3 = np.percentile(regret, [25, 75], axis=0)
        line, = ax.plot(x, np.mean(regret, axis=0), label=f"{name} (mean)")
        ax.fill_between(x, q1, q3, alpha=0.2, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("trials")
    ax.set_ylabel(f"regret to {BEST}% (test accuracy points)")
    ax.set_title(f"NAS-Bench-201 CIFAR-10, {FLAGS.seeds} seeds (band: IQR)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.plot)), exist_ok=True)
    fig.savefig(FLAGS.plot, dpi=120)
    print(f"plot: {FLAGS.plot}")


if __name__ == "__main__":
    app.run(main)
