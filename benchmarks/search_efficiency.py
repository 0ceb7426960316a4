"""Search efficiency on tabular benchmarks: regret after N trials, every strategy, many seeds.

Runs each strategy configuration on each table for ``--seeds`` independent seeds and reports,
per budget (25, 50, 100, 200, 400 trials), the mean regret (the table's best accuracy minus
the best accuracy found, in percent points) with its standard error over seeds, and the share
of seeds that found the optimum. Tables:

* ``nasbench201``: NAS-Bench-201's CIFAR-10 test accuracies (15,625 cells; best 94.37);
* ``synthetic_pairwise``: the synthetic table with strong pairwise interactions and a known
  optimum of 95.0 (`nascell.search.spaces.synthetic_pairwise`, seed 0; 248,832 architectures).

Every strategy runs through ask/tell with the library's dedupe (no architecture is evaluated
twice); the script checks that every run of N trials saw N distinct architectures. Each
finished run is appended to ``--out``_runs.jsonl; a restart with the same ``--out`` skips the
runs already there (runs go seed by seed, so a stopped run leaves every configuration with the
same seeds; a run is reused only while its settings, preset values included, are unchanged),
and the report covers the seeds that every configuration finished. It writes a
Markdown table (``--out``.md), the statistics as JSON (``--out``.json), the per-seed curves
(``--out``_curves.npz) and a plot (``--out``.png: mean regret against trials, one panel per
table, shaded +- one standard error).

    python benchmarks/search_efficiency.py --seeds=50 --first_seed=2000 --processes=2 \\
        --nb201_csv=../shared/data/nasbench201/nb201_cifar10.csv --out=benchmarks/search_efficiency

Configurations (``--configs``) are ``strategy`` or ``strategy:preset`` (reinforce presets),
plus any ``name=JSON`` given with ``--extra`` (e.g. ``--extra='lr05={"strategy": "reinforce",
"preset": "guided", "learning_rate": 0.05}'``), which is how the defaults were tuned (on seeds
1000-1199; the reported runs use seeds 2000-2049, and the first report used 0-49).
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("seeds", 50, "independent runs per configuration and table")
flags.DEFINE_integer("first_seed", 0, "seeds are first_seed .. first_seed + seeds - 1")
flags.DEFINE_list("budgets", ["25", "50", "100", "200", "400"], "trial counts to report")
flags.DEFINE_list("tables", ["nasbench201", "synthetic_pairwise"], "tables to search")
flags.DEFINE_list("configs", ["reinforce", "reinforce:paper", "reinforce:small_budget",
                              "reinforce:rank_ppo", "local_search",
                              "local_search:predictor", "evolution", "random"],
                  "strategy configurations (strategy or strategy:preset; see --extra)")
flags.DEFINE_multi_string("extra", [], "name=JSON: an extra configuration ({'strategy': ...,"
                          " options...}); add its name to --configs")
flags.DEFINE_string("nb201_csv", None, "nb201_cifar10.csv (default: NASCELL_NB201_CSV, or "
                    "../shared/data relative to the project)")
flags.DEFINE_integer("processes", 2, "worker processes (runs are independent)")
flags.DEFINE_bool("report_only", False, "run nothing; report the finished runs of --out")
flags.DEFINE_string("out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "out",
                                        "search_efficiency"),
                    "output prefix: .md, .json, _curves.npz, .png")


def _default_csv() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "shared", "data", "nasbench201", "nb201_cifar10.csv")


def config_options(name: str, extra: dict) -> dict:
    """``{"strategy": ..., options}`` of a configuration name."""
    if name in extra:
        return dict(extra[name])
    strategy, _, variant = name.partition(":")
    options = {"strategy": strategy}
    if variant:
        options["preset" if strategy == "reinforce" else "order"] = variant
    return options


def config_settings(options: dict) -> dict:
    """What a configuration runs with, preset values spelled out: a finished run is reused
    only while this is unchanged (so a retuned preset is run again, not mixed in)."""
    settings = dict(options)
    if settings.get("strategy") == "reinforce":
        from nascell.search.strategies.reinforce import DEFAULT_PRESET, PRESETS
        preset = settings.get("preset") or DEFAULT_PRESET
        settings = {**PRESETS.get(preset, {}), **settings, "preset": preset}
    return settings


_TABLES: dict = {}


def _table(table: str, csv_path: str):
    """(space, evaluator) of a table, built once per worker process."""
    if table not in _TABLES:
        from nascell.search.evaluators import create_evaluator
        from nascell.search.spaces import create_space
        evaluator = (create_evaluator(table, csv_path=csv_path) if table == "nasbench201"
                     else create_evaluator(table))
        _TABLES[table] = (create_space(table), evaluator)
    return _TABLES[table]


def run_job(job) -> dict:
    """Worker: one configuration on one table for one seed -> a record with its curve."""
    name, options, table, seed, budget, csv_path = job
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nascell.search.core.strategy import create_strategy
    options = dict(options)
    strategy_name = options.pop("strategy")
    if strategy_name == "reinforce":
        import tensorflow as tf
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialized by an earlier run in this worker
            pass
    space, evaluator = _table(table, csv_path)
    start, wall_start = time.process_time(), time.time()
    strategy = create_strategy(strategy_name, space, seed=seed, **options)
    batch = strategy.m or 1
    best, curve, seen, from_controller = 0.0, [], set(), 0
    while len(curve) < budget:
        for trial in strategy.ask(min(batch, budget - len(curve))):
            from_controller += (trial.meta or {}).get("origin", "controller") == "controller"
            acc = evaluator.evaluate(trial.spec).metrics["accuracy"]
            strategy.tell(trial, acc / 100.0)
            seen.add(json.dumps(trial.decisions, sort_keys=True, default=list))
            best = max(best, acc)
            curve.append(best)
    if len(seen) != budget:
        raise AssertionError(f"{name} on {table}, seed {seed}: {len(seen)} distinct "
                             f"architectures in {budget} trials")
    record = {"table": table, "config": name, "seed": seed, "budget": budget,
              "curve": curve, "cpu_s": time.process_time() - start,
              "wall_s": time.time() - wall_start, "novel": strategy.num_novel,
              "sampled": (from_controller / budget if strategy_name == "reinforce" else None)}
    del strategy
    return record


def load_runs(path: str) -> dict:
    """Finished runs of earlier invocations: (table, config, seed, budget) -> record.

    A torn last line (a run killed while writing) is skipped; it is simply run again.
    """
    runs = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue
                runs[(r["table"], r["config"], r["seed"], r["budget"])] = r
    return runs


def optimum(table: str, csv_path: str) -> float:
    if table == "nasbench201":
        from nascell.search.evaluators.nasbench201 import NASBench201Evaluator
        return max(NASBench201Evaluator(csv_path).table.values())
    from nascell.search.spaces import synthetic_pairwise
    return float(synthetic_pairwise.table(0).max())


def summarize(curves, budgets, best):
    import numpy as np
    rows = []
    for b in budgets:
        regret = best - curves[:, b - 1]
        rows.append({"budget": b, "regret_mean": float(regret.mean()),
                     "regret_se": float(regret.std(ddof=1) / np.sqrt(len(regret)))
                     if len(regret) > 1 else 0.0,
                     "regret_median": float(np.median(regret)),
                     "found_best": float(np.mean(regret < 1e-6))})
    return rows


def main(argv):
    del argv
    import numpy as np
    budgets = sorted(int(b) for b in FLAGS.budgets)
    csv_path = FLAGS.nb201_csv or os.environ.get("NASCELL_NB201_CSV") or _default_csv()
    if "nasbench201" in FLAGS.tables and not os.path.exists(csv_path):
        sys.exit(f"NAS-Bench-201 table not found at {csv_path}; pass --nb201_csv")
    extra = {}
    for item in FLAGS.extra:
        key, _, value = item.partition("=")
        extra[key] = json.loads(value)
    seeds = list(range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds))
    procs = max(1, FLAGS.processes)
    out = os.path.abspath(FLAGS.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    runs_path = out + "_runs.jsonl"
    runs = {k: r for k, r in load_runs(runs_path).items()
            if r.get("settings") == config_settings(config_options(r["config"], extra))}
    # Seed-major order: wherever the run is stopped, every configuration has about the same
    # seeds done, and a restart (same --out) skips the finished runs.
    jobs = [(name, config_options(name, extra), table, seed, budgets[-1], csv_path)
            for seed in seeds for table in FLAGS.tables for name in FLAGS.configs
            if (table, name, seed, budgets[-1]) not in runs]
    print(f"{len(runs)} finished runs in {runs_path}; {len(jobs)} to run", file=sys.stderr,
          flush=True)
    start = time.time()
    if jobs and not FLAGS.report_only:
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(procs) as pool, open(runs_path, "a") as f:
            for done, r in enumerate(pool.imap_unordered(run_job, jobs, chunksize=1), 1):
                r["options"] = config_options(r["config"], extra)
                r["settings"] = config_settings(r["options"])
                f.write(json.dumps(r) + "\n")
                f.flush()
                runs[(r["table"], r["config"], r["seed"], r["budget"])] = r
                print(f"[{time.time() - start:.0f} s] {done}/{len(jobs)}: {r['table']} "
                      f"{r['config']} seed {r['seed']} ({r['wall_s']:.0f} s)",
                      file=sys.stderr, flush=True)
    wall = time.time() - start
    # Report the seeds every (table, configuration) finished, so all rows share their seeds.
    complete = [s for s in seeds if all((t, n, s, budgets[-1]) in runs
                                        for t in FLAGS.tables for n in FLAGS.configs)]
    if not complete:
        sys.exit("no seed has finished every configuration yet")
    curves, cpu, novel, sampled = {}, {}, {}, {}
    for table in FLAGS.tables:
        for name in FLAGS.configs:
            rs = [runs[(table, name, s, budgets[-1])] for s in complete]
            key = (table, name)
            curves[key] = np.array([r["curve"] for r in rs])
            cpu[key] = np.array([r["cpu_s"] for r in rs])
            novel[key] = np.array([r["novel"] for r in rs])
            sampled[key] = np.array([np.nan if r["sampled"] is None else r["sampled"]
                                     for r in rs])
    seeds = complete
    missing = FLAGS.seeds - len(complete)

    span = (f"seeds {seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1))
            else f"seeds {','.join(map(str, seeds))}")
    lines = [f"{span} ({len(seeds)} seeds"
             + (f"; {missing} requested seeds not finished" if missing else "")
             + f"), {budgets[-1]} trials a run, "
             + (f"{wall:.0f} s wall this invocation, {procs} process(es)" if jobs
                and not FLAGS.report_only else
                f"{sum(float(c.sum()) for c in cpu.values()):.0f} s CPU over these runs")
             + "; regret = optimum - best accuracy found (points), "
             "mean ± standard error over seeds"]
    stats = {}
    for table in FLAGS.tables:
        best = optimum(table, csv_path)
        lines += ["", f"**{table}** (optimum {best:.2f})", "",
                  "| configuration | " + " | ".join(f"{b}" for b in budgets)
                  + f" | found optimum at {budgets[-1]} | CPU s / run "
                  "| fallback trials / run | controller-sampled trials |",
                  "|---|" + "---|" * (len(budgets) + 4)]
        for name in FLAGS.configs:
            rows = summarize(curves[(table, name)], budgets, best)
            share = float(np.mean(sampled[(table, name)]))
            stats[f"{table}/{name}"] = {"rows": rows, "cpu_s": float(cpu[(table, name)].mean()),
                                        "novel": float(novel[(table, name)].mean()),
                                        "controller_share": share,
                                        "options": config_options(name, extra)}
            cells = [f"{r['regret_mean']:.3f} ± {r['regret_se']:.3f}" for r in rows]
            lines.append(f"| {name} | " + " | ".join(cells)
                         + f" | {100 * rows[-1]['found_best']:.0f}% "
                         f"| {cpu[(table, name)].mean():.2f} | {novel[(table, name)].mean():.1f} "
                         f"| {'-' if np.isnan(share) else f'{100 * share:.0f}%'} |")
    text = "\n".join(lines)
    print(text)
    with open(out + ".md", "w") as f:
        f.write(text + "\n")
    with open(out + ".json", "w") as f:
        json.dump({"seeds": seeds, "wall_s": wall, "stats": stats}, f, indent=1)
    np.savez(out + "_curves.npz", **{f"{t}/{n}": c for (t, n), c in curves.items()})
    plot(curves, budgets, csv_path, out + ".png", seeds)


def plot(curves, budgets, csv_path, path, seeds):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    fig, axes = plt.subplots(1, len(FLAGS.tables), figsize=(6 * len(FLAGS.tables), 4.5),
                             squeeze=False)
    x = np.arange(1, budgets[-1] + 1)
    for ax, table in zip(axes[0], FLAGS.tables):
        best = optimum(table, csv_path)
        for name in FLAGS.configs:
            regret = best - curves[(table, name)]
            mean = regret.mean(axis=0)
            se = regret.std(axis=0, ddof=1) / np.sqrt(len(regret))
            style = "-" if name == "reinforce" else "--" if "reinforce" in name else ":"
            line, = ax.plot(x, mean, style, label=name, lw=2.2 if name == "reinforce" else 1.3)
            ax.fill_between(x, np.maximum(mean - se, 0.0), mean + se, alpha=0.15,
                            color=line.get_color())
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(bottom=0)
        ax.set_xlim(10, budgets[-1])
        ax.set_xticks(budgets)
        ax.set_xticklabels([str(b) for b in budgets])
        ax.set_xlabel("trials")
        ax.set_ylabel(f"mean regret to {best:.2f} (points)")
        ax.set_title(f"{table}, {len(seeds)} seeds from {seeds[0]} (band: ±1 s.e.)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices; the machine is shared
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app.run(main)
