"""nascell's KerasTuner oracle against KerasTuner's own, on NAS-Bench-201 as a KerasTuner task.

The task: a ``build(hp)`` with six ``hp.Choice`` hyperparameters (one per edge of the
NAS-Bench-201 cell, five ops each: 15,625 configurations), and a KerasTuner ``run_trial`` that
looks the cell up in the NAS-Bench-201 table (mean CIFAR-10 test accuracy after 200 epochs)
instead of training it. KerasTuner runs its real loop (trials, oracle state, files); only the
training is replaced by the table, so many seeds cost minutes and the comparison measures the
oracles. Objective: ``accuracy``, maximized.

Oracles, all with the same trial budget and the oracle seed ``seed + 1`` (KerasTuner treats a
seed of 0 as "no seed"):

* ``nascell-reinforce``: ``nascell.search.keras_tuner.Oracle("reinforce")`` with its defaults
  (the default ``guided`` preset, tuned with benchmarks/search_efficiency.py on seeds
  1000-1499, not on the seeds reported here);
* ``nascell-evolution``: ``Oracle("evolution")`` (population 20, tournament 5, dedupe);
* ``kt-random``: ``kt.oracles.RandomSearchOracle``;
* ``kt-bayesian``: ``kt.oracles.BayesianOptimizationOracle`` with its defaults (18 random
  trials, then a Gaussian process with UCB; needs scikit-learn and scipy).

For each budget it reports the best accuracy found (mean ± std over seeds), its regret to the
table's best (94.37), the distinct configurations evaluated (KerasTuner's Bayesian oracle may
propose a configuration again; the others never do) and the CPU seconds per trial of the
whole KerasTuner loop (oracle, trial files; the look-up itself is negligible), one thread per
worker process.

    python benchmarks/keras_tuner_oracles.py --seeds=20 \
        --nb201_csv=../shared/data/nasbench201/nb201_cifar10.csv
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("seeds", 20, "independent runs per oracle")
flags.DEFINE_integer("first_seed", 0, "seeds are first_seed .. first_seed + seeds - 1")
flags.DEFINE_list("budgets", ["25", "50", "100"], "trial counts to report (the largest is "
                  "each run's max_trials)")
flags.DEFINE_list("oracles", ["nascell-reinforce", "nascell-evolution", "kt-random",
                              "kt-bayesian"], "oracles to compare")
flags.DEFINE_string("nb201_csv", None, "nb201_cifar10.csv (default: NASCELL_NB201_CSV, "
                    "NASCELL_DATA_DIR, or ../shared/data relative to the project)")
flags.DEFINE_integer("processes", 1, "worker processes (the runs are independent)")
flags.DEFINE_string("json_out", None, "optional: write per-run curves and the statistics here")
flags.DEFINE_string("runs_log", None, "optional JSON-lines file: each finished run is appended "
                    "as it ends, and runs already there are not repeated (a stopped benchmark "
                    "resumes)")

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = [(i, j) for i in range(1, 4) for j in range(i)]  # (to, from), the table's order


def _default_csv() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "shared", "data", "nasbench201", "nb201_cifar10.csv")


def build(hp):
    """The hypermodel: one Choice per edge (a real one would build the network here)."""
    for i, j in EDGES:
        hp.Choice(f"edge_{j}_{i}", list(OPS))


def arch_string(values) -> str:
    return "+".join("|" + "|".join(f"{values[f'edge_{j}_{i}']}~{j}" for j in range(i)) + "|"
                    for i in range(1, 4))


def make_oracle(name: str, budget: int, seed: int):
    import keras_tuner as kt

    objective = kt.Objective("accuracy", "max")
    if name.startswith("nascell-"):
        import nascell.search.keras_tuner as nkt
        return nkt.Oracle(name[len("nascell-"):], objective=objective, max_trials=budget,
                          seed=seed + 1)
    if name == "kt-random":
        return kt.oracles.RandomSearchOracle(objective=objective, max_trials=budget,
                                             seed=seed + 1)
    if name == "kt-bayesian":
        return kt.oracles.BayesianOptimizationOracle(objective=objective, max_trials=budget,
                                                     seed=seed + 1)
    raise ValueError(f"unknown oracle {name!r}")


def run_one(args):
    """Worker: one search; returns the best-so-far curve and what it cost."""
    name, seed, budget, csv_path = args
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras_tuner as kt

    from nascell.search.evaluators.nasbench201 import NASBench201Evaluator

    table = NASBench201Evaluator(csv_path)
    table.table  # noqa: B018 - load the CSV now, outside the timed search

    class TableTuner(kt.engine.base_tuner.BaseTuner):
        def run_trial(self, trial, **kwargs):
            return {"accuracy": table.accuracy(arch_string(trial.hyperparameters.values))}

    directory = tempfile.mkdtemp(prefix="kt_oracles_")
    try:
        start = time.process_time()
        tuner = TableTuner(oracle=make_oracle(name, budget, seed), hypermodel=build,
                           directory=directory, project_name="nb201", overwrite=True)
        tuner.search(verbose=0)
        seconds = time.process_time() - start
        oracle = tuner.oracle
        trials = [oracle.trials[t] for t in oracle.end_order]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    curve, best, seen, distinct = [], 0.0, set(), []
    for t in trials:
        best = max(best, t.score if t.score is not None else 0.0)
        curve.append(best)
        seen.add(arch_string(t.hyperparameters.values))
        distinct.append(len(seen))
    return {"oracle": name, "seed": seed, "budget": budget, "curve": curve,
            "distinct": distinct, "cpu_seconds": seconds, "trials": len(trials)}


def summarize(runs, budgets, best_acc):
    import numpy as np

    rows = {}
    for name in dict.fromkeys(r["oracle"] for r in runs):
        mine = [r for r in runs if r["oracle"] == name]
        for b in budgets:
            # a run that stopped early (space exhausted) keeps its best
            acc = np.array([r["curve"][min(b, len(r["curve"])) - 1] for r in mine])
            distinct = np.array([r["distinct"][min(b, len(r["distinct"])) - 1] for r in mine])
            rows[(name, b)] = {"mean": float(acc.mean()), "std": float(acc.std()),
                               "regret": float(best_acc - acc.mean()),
                               "found_best": float(np.mean(acc >= best_acc - 1e-9)),
                               "distinct": float(distinct.mean()), "seeds": len(mine)}
        cpu = sum(r["cpu_seconds"] for r in mine) / sum(r["trials"] for r in mine)
        rows[(name, "cpu")] = cpu
    return rows


def main(argv):
    del argv
    csv_path = FLAGS.nb201_csv or os.environ.get("NASCELL_NB201_CSV") or _default_csv()
    if not os.path.exists(csv_path):
        sys.exit(f"NAS-Bench-201 table {csv_path} not found; pass --nb201_csv")
    if "kt-bayesian" in FLAGS.oracles:
        try:
            import scipy  # noqa: F401
            import sklearn  # noqa: F401
        except ImportError:
            sys.exit("kt-bayesian (KerasTuner's BayesianOptimization) needs scikit-learn and "
                     "scipy: pip install scikit-learn, or leave it out of --oracles")
    # One thread per worker: a multi-threaded BLAS (the Gaussian process) or TensorFlow (the
    # controller) only spins on a shared machine, and CPU s/trial should measure the oracle.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(var, "1")
    budgets = sorted(int(b) for b in FLAGS.budgets)
    seeds = list(range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds))
    tasks = [(name, seed, budgets[-1], csv_path) for seed in seeds for name in FLAGS.oracles]
    runs = []
    if FLAGS.runs_log and os.path.exists(FLAGS.runs_log):
        with open(FLAGS.runs_log) as f:  # a run of more trials holds every shorter one
            done = {(r["oracle"], r["seed"]): r for r in map(json.loads, f)
                    if r["budget"] >= budgets[-1]}
        runs = [done[t[:2]] for t in tasks if t[:2] in done]
        tasks = [t for t in tasks if t[:2] not in done]
    start, total = time.time(), len(runs) + len(tasks)
    with multiprocessing.get_context("spawn").Pool(FLAGS.processes) as pool:
        for run in pool.imap_unordered(run_one, tasks, chunksize=1):
            runs.append(run)
            if FLAGS.runs_log:
                with open(FLAGS.runs_log, "a") as f:
                    f.write(json.dumps(run) + "\n")
            print(f"[{len(runs)}/{total}] {run['oracle']} seed {run['seed']}: best "
                  f"{run['curve'][-1]:.2f} after {run['trials']} trials, "
                  f"{run['cpu_seconds']:.1f} CPU s", file=sys.stderr, flush=True)
    from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
    best_acc = max(NASBench201Evaluator(csv_path).table.values())
    rows = summarize(runs, budgets, best_acc)
    print(f"NAS-Bench-201 CIFAR-10 as a KerasTuner search; seeds {seeds[0]}-{seeds[-1]} "
          f"({len(seeds)}); best in table {best_acc:.4f}; {time.time() - start:.0f} s wall")
    head = "| oracle | " + " | ".join(f"{b} trials: best acc mean ± std (regret)"
                                       for b in budgets)
    print(head + f" | distinct at {budgets[-1]} | oracle CPU s/trial |")
    print("|---" * (len(budgets) + 3) + "|")
    for name in FLAGS.oracles:
        cells = [f"{rows[(name, b)]['mean']:.2f} ± {rows[(name, b)]['std']:.2f} "
                 f"({rows[(name, b)]['regret']:.2f})" for b in budgets]
        print(f"| {name} | " + " | ".join(cells) +
              f" | {rows[(name, budgets[-1])]['distinct']:.1f} | {rows[(name, 'cpu')]:.3f} |")
    if FLAGS.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.json_out)), exist_ok=True)
        with open(FLAGS.json_out, "w") as f:
            json.dump({"runs": runs, "stats": {f"{k[0]}@{k[1]}": v for k, v in rows.items()},
                       "seeds": seeds, "budgets": budgets, "csv": csv_path}, f)


if __name__ == "__main__":
    app.run(main)
