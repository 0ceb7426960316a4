"""What a strategy costs per trial, and whether a process grows as strategies come and go.

A worker process creates ``--strategies`` strategies one after another (seeds 0, 1, ...), as a
benchmark loop, a notebook or an oracle re-created per study does; each searches the tabular
NAS-Bench-201 (or synthetic_pairwise) table for ``--trials`` trials through ask/tell, and is
then dropped. The worker reports, per strategy, the process CPU time and the resident set size
after a garbage collection; the summary gives the CPU milliseconds per trial (median over the
strategies after the first, which also pays for tracing and compiling), the RSS after the
first strategy and after the last, and the growth per strategy (a least-squares slope over
the strategies after the first).

``--pythons`` runs the worker once per interpreter, alternating them ``--rounds`` times (a
``before`` checkout's virtual environment against this one, say), so that load from other
processes hits both alike; ratios are of the medians.

    python benchmarks/strategy_cost.py --strategies=50 --trials=200 --config=reinforce:rank_ppo
    python benchmarks/strategy_cost.py --pythons=../before/.venv/bin/python,.venv/bin/python \\
        --strategies=6 --rounds=2
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("strategies", 50, "strategies created one after another in one process")
flags.DEFINE_integer("trials", 200, "trials each strategy searches")
flags.DEFINE_string("config", "reinforce:rank_ppo", "strategy or strategy:preset")
flags.DEFINE_string("table", "nasbench201", "nasbench201 or synthetic_pairwise")
flags.DEFINE_string("nb201_csv", None, "nb201_cifar10.csv (default: ../shared/data/...)")
flags.DEFINE_list("pythons", [], "interpreters to compare (default: this one)")
flags.DEFINE_integer("rounds", 1, "alternations of the interpreters")
flags.DEFINE_bool("worker", False, "internal: run the strategies here and print JSON lines")
flags.DEFINE_string("json_out", None, "optional: write the per-strategy records here")


def _csv() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return FLAGS.nb201_csv or os.environ.get("NASCELL_NB201_CSV") or os.path.join(
        here, "..", "..", "shared", "data", "nasbench201", "nb201_cifar10.csv")


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def worker() -> None:
    import gc
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from nascell.search.core.strategy import create_strategy
    from nascell.search.spaces import create_space
    name, _, preset = FLAGS.config.partition(":")
    options = {"preset": preset} if preset and name == "reinforce" else (
        {"order": preset} if preset else {})
    space = create_space(FLAGS.table)
    if FLAGS.table == "nasbench201":
        from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
        table = NASBench201Evaluator(_csv())
        accuracy = table.accuracy
    else:
        from nascell.search.evaluators import create_evaluator
        accuracy = create_evaluator(FLAGS.table).accuracy
    print(json.dumps({"rss_start": _rss_mib()}), flush=True)
    for seed in range(FLAGS.strategies):
        cpu, wall = time.process_time(), time.time()
        strategy = create_strategy(name, space, seed=seed, **options)
        batch = strategy.m or 1
        done, best, seen = 0, 0.0, set()
        while done < FLAGS.trials:
            for trial in strategy.ask(min(batch, FLAGS.trials - done)):
                acc = accuracy(trial.spec)
                strategy.tell(trial, acc / 100.0)
                best = max(best, acc)
                seen.add(json.dumps(trial.decisions, sort_keys=True, default=list))
                done += 1
        del strategy
        gc.collect()
        print(json.dumps({"seed": seed, "cpu_s": time.process_time() - cpu,
                          "wall_s": time.time() - wall, "rss_mib": _rss_mib(),
                          "best": best, "distinct": len(seen)}), flush=True)


def summarize(records):
    import numpy as np
    runs = [r for r in records if "seed" in r]
    later = runs[1:] or runs
    rss = np.array([r["rss_mib"] for r in runs])
    slope = float(np.polyfit(np.arange(len(later)), rss[-len(later):], 1)[0]) if len(
        later) > 1 else 0.0
    return {"strategies": len(runs),
            "first_cpu_s": runs[0]["cpu_s"],
            "cpu_ms_per_trial": 1000 * float(np.median([r["cpu_s"] for r in later]))
            / FLAGS.trials,
            "rss_first_mib": float(rss[0]), "rss_last_mib": float(rss[-1]),
            "rss_max_mib": float(rss.max()), "mib_per_strategy": slope,
            "distinct_mean": float(np.mean([r["distinct"] for r in runs])),
            "best_mean": float(np.mean([r["best"] for r in runs]))}


def main(argv):
    del argv
    if FLAGS.worker:
        worker()
        return
    pythons = FLAGS.pythons or [sys.executable]
    args = [f"--strategies={FLAGS.strategies}", f"--trials={FLAGS.trials}",
            f"--config={FLAGS.config}", f"--table={FLAGS.table}", f"--nb201_csv={_csv()}",
            "--worker"]
    results = {p: [] for p in pythons}
    for _ in range(FLAGS.rounds):
        for python in pythons:
            # run from the interpreter's checkout (its editable nascell), not this one
            cwd = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(python))))
            out = subprocess.run([python, os.path.abspath(__file__), *args], cwd=cwd,
                                 capture_output=True, text=True, check=True)
            records = [json.loads(line) for line in out.stdout.splitlines()
                       if line.startswith("{")]
            results[python].append(summarize(records))
            print(python, json.dumps(results[python][-1]), flush=True)
    print(f"\n{FLAGS.config} on {FLAGS.table}: {FLAGS.strategies} strategies x {FLAGS.trials} "
          f"trials in one process, {FLAGS.rounds} round(s)")
    print("| python | CPU ms / trial | first strategy CPU s | RSS after 1st MiB | "
          "RSS after last MiB | MiB / strategy | distinct / run |")
    print("|---|---|---|---|---|---|---|")
    import numpy as np
    for python, runs in results.items():
        med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
        print(f"| {python} | {med['cpu_ms_per_trial']:.1f} | {med['first_cpu_s']:.1f} | "
              f"{med['rss_first_mib']:.0f} | {med['rss_last_mib']:.0f} | "
              f"{med['mib_per_strategy']:.2f} | {med['distinct_mean']:.1f} |")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
