r"""Transfer to character-level Penn Treebank: the LSTM, the NAS cell and nascell's found cells
at equal parameter count, trained with one fixed budget, in bits per character.

Issue 18, item 5: a cell found on word-level PTB is worth more if it also helps elsewhere. The
paper's NAS cell reached 1.228 bpc against the LSTM's 1.243 at 6.57M parameters; this
benchmark asks the same question at a CPU-sized scale.

Cells are named: ``lstm`` (Keras' `LSTMCell`, as the children's baseline) or any cell of
nascell's registry (`nascell.named_cells`: ``nas`` is the paper's cell with biases). The
default set is ``lstm``, ``nas`` and every registry cell whose card says a nascell search
found it (its card has a ``strategy``).

The model and the budget, one setting for every cell (`BUDGET`, not flags):

* the search's language-model child (`RNNLanguageModelEvaluator`, ``dataset="ptb_char"``): the
  character-level PTB of the NAS and HyperNetworks papers (5.0M / 393k / 442k characters,
  derived from the word-level files by the published rule; 50 symbols, the vocabulary of the
  training split); embedding -> one recurrent layer -> softmax, untied, the embedding as wide
  as the hidden size, uniform [-0.1, 0.1] weights, no dropout;
* every model sized to ``--target_params`` parameters in all (each cell's ``units`` solved by
  `units_for_params`; the LSTM counts as a base-4 cell);
* trained with the state carried across batches (truncated BPTT, the package's carried-state
  trainer `nascell.search.training.stateful_lm`, which takes any ``[ids, *states]`` model and so
  a character model as it is): batch 32 x 100 characters, 6 full epochs (1,567 steps each),
  Adam at 2e-3 halved every epoch from epoch 4 (2e-3, 2e-3, 2e-3, 1e-3, 5e-4, 2.5e-4); the
  gradient is that of the loss summed over the 100 unrolled steps (the trainer's scale), its
  global norm clipped at 100, which is 1.0 on the per-character mean (the example's clip);
* validation on the whole validation split after every epoch (the state carried, 32 rows);
  the best epoch's weights are measured once on the whole test split the same way.

Reported per cell and seed: validation bpc (the best epoch's) and test bpc (of that epoch's
weights), then per cell the mean and range over seeds, and CPU seconds (the process's, every
thread) per run. A run whose loss turns non-finite, or runs away from the uniform guess,
diverged: its row says so.

Every unit of work (one cell, one seed) writes its record as JSON under ``--results_dir``
(`lm_reference.Records`: atomic, never rewritten) and is skipped when present; its epoch
checkpoints live under ``--out_dir`` and a killed run resumes after its last finished epoch.
CPU seconds of resumed runs add up the epochs of every process (lost partial epochs are not
counted):

    mkdir -p benchmarks/out && nice -n 19 python benchmarks/char_ptb.py \
        --data_dir=../shared/data/ptb > benchmarks/out/char_ptb.log 2>&1 &
    python benchmarks/char_ptb.py --report                 # the table from the records so far
    python benchmarks/char_ptb.py --time_steps=50          # each cell's step time, the cost
    python benchmarks/char_ptb.py --smoke --results_dir=/tmp/cp --out_dir=/tmp/cp-out

Cost of the defaults (``--time_steps=50``, measured on this project's 2-core machine under a
load of about 4.6; benchmarks/README.md, "char_ptb"): ``--target_params=300000`` gives the LSTM
187 units (0.110 s a training step) and the NAS cell 134 (0.151 s); one run (6 epochs, its
validation and test passes) is about 0.29 hours (LSTM) and 0.40 hours (NAS cell) on about one
core, so the default campaign, 3 cells x 2 seeds with a found cell no dearer than the NAS cell
(a base-8 cell costs about as much), is about 2.2 hours and 2.2 CPU-hours.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import lm_reference
from absl import app, flags, logging

flags.DEFINE_string("data_dir", None, "Folder of ptb.{train,valid,test}.txt or "
                    "ptb.char.{train,valid,test}.txt (default: the treebank package).")
flags.DEFINE_string("results_dir", None, "Finished records (small JSON files, kept in the "
                    "repository); default benchmarks/results/char_ptb, with --smoke a "
                    "temporary folder.")
flags.DEFINE_string("out_dir", None, "Epoch checkpoints (large, not kept); default "
                    "benchmarks/out/char_ptb, with --smoke a temporary folder.")
flags.DEFINE_list("cells", [], "Cells to train, in order: 'lstm' or registry names "
                  "(nascell.available_cells()); default: lstm, nas and every found cell.")
flags.DEFINE_list("seeds", ["0", "1"], "Seeds of each cell (its initial weights; every seed "
                  "sees the same batches).")
flags.DEFINE_integer("target_params", 300_000, "Parameters of every model in all.")
flags.DEFINE_bool("report", False, "Print the table from the records so far; train nothing.")
flags.DEFINE_bool("smoke", False, "Tiny budget (a few steps, 20k parameters) to check the "
                  "pipeline end to end, the report included.")
flags.DEFINE_integer("time_steps", 0, "Train each cell for this many steps (twice, the "
                     "second timed), print its step time and the cost of a full run; train "
                     "nothing else.")
FLAGS = flags.FLAGS

DEFAULT_RESULTS = "benchmarks/results/char_ptb"
DEFAULT_OUT = "benchmarks/out/char_ptb"
LSTM = "lstm"

# The one budget every cell gets (see the module docstring).
BUDGET: Dict[str, Any] = {
    "num_layers": 1, "tie_weights": False, "dropout": 0.0, "batch_size": 32, "seq_len": 100,
    "optimizer": "adam", "lr": 2e-3, "clipnorm": 100.0, "lr_decay": 0.5, "lr_decay_epoch": 4,
    "epochs": 6, "steps_per_epoch": None, "max_valid_steps": None,
}
# --smoke: the whole pipeline in about a minute.
SMOKE = {"epochs": 2, "steps_per_epoch": 10, "max_valid_steps": 2}
SMOKE_PARAMS = 20_000


# --- the cells ----------------------------------------------------------------------------------

def found_cells() -> List[str]:
    """Registry cells a nascell search found (their card names a ``strategy``), sorted."""
    import nascell

    return [n for n in nascell.available_cells() if nascell.cell_card(n).strategy]


def default_cells() -> List[str]:
    return [LSTM, "nas"] + [n for n in found_cells() if n != "nas"]


# --- one unit of work ---------------------------------------------------------------------------

def settings(target_params: int, smoke: bool) -> Dict[str, Any]:
    """What a record was trained with; records of other settings are refused."""
    return {"dataset": "ptb_char", "target_params": int(target_params), "smoke": bool(smoke),
            **BUDGET, **(SMOKE if smoke else {})}


def evaluator(spec, seed: int, setting: Dict[str, Any], data_dir: Optional[str], **overrides):
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    kw = {k: v for k, v in setting.items() if k not in ("smoke",)}
    kw.update(overrides)
    return RNNLanguageModelEvaluator(data_dir=data_dir, seed=seed, carry_state=True, **kw)


class CpuLedger:
    """CPU seconds per finished epoch of one run, across the processes that trained it
    (``<path>``, JSON, written atomically after each epoch's checkpoint)."""

    def __init__(self, path: str):
        self.path = path
        self.epochs: Dict[str, float] = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.epochs = json.load(f)["epochs"]
        self.mark = time.process_time()

    def epoch_done(self, record: Dict[str, Any]) -> None:
        from nascell import _io

        now = time.process_time()
        self.epochs[str(record["epoch"])] = now - self.mark
        self.mark = now
        _io.atomic_write_json(self.path, {"epochs": self.epochs})

    def total(self, epochs: int) -> float:
        """The finished epochs' seconds (1..``epochs``) and this process's since the last."""
        done = sum(s for e, s in self.epochs.items() if int(e) <= epochs)
        return done + time.process_time() - self.mark


def bits(ppl: Optional[float]) -> Optional[float]:
    """Bits per character of a per-character perplexity."""
    return None if ppl is None else math.log2(ppl)


def train_unit(cell: str, seed: int, setting: Dict[str, Any], out_dir: str,
               data_dir: Optional[str]) -> Dict[str, Any]:
    """Train ``cell`` with ``seed`` (resuming its checkpoints); the record's fields."""
    from nascell.search.evaluators._child import ChildDiverged, clear_child_memory

    spec = lm_reference.named_spec(cell, "cells")
    ev = evaluator(spec, seed, setting, data_dir)
    run_dir = os.path.join(out_dir, cell, f"seed{seed}")
    os.makedirs(run_dir, exist_ok=True)
    ledger = CpuLedger(os.path.join(out_dir, cell, f"seed{seed}.cpu.json"))
    wall = time.time()
    try:
        model, m = ev.train_model(spec, run_dir, evaluate_test=True,
                                  on_epoch=ledger.epoch_done)
    except ChildDiverged as e:
        clear_child_memory()
        return {"diverged": True, "failure": str(e), "valid_bpc": None, "test_bpc": None,
                "cpu_seconds": ledger.total(len(ledger.epochs)),
                "wall_seconds": time.time() - wall, "evaluator": ev.config()}
    del model
    clear_child_memory()
    valid_bpc, test_bpc = bits(m["valid_ppl"]), bits(m["test_ppl"])
    ok = all(b is not None and math.isfinite(b) for b in (valid_bpc, test_bpc))
    if not ok:  # a run that ended non-finite is a divergence, not a number
        valid_bpc = test_bpc = None
    return {"diverged": not ok, "valid_bpc": valid_bpc, "test_bpc": test_bpc,
            "train_bpc": bits(m["train_ppl"]), "best_epoch": m["best_epoch"],
            "units": m["units"], "params": m["params"], "epochs": m["epochs"],
            "steps": m["steps"], "resumed_after_epoch": m["resumed_after_epoch"],
            "history": [{"epoch": h["epoch"], "lr": h["lr"], "train_bpc": bits(h["train_ppl"]),
                         "valid_bpc": bits(h["valid_ppl"]), "seconds": h["seconds"]}
                        for h in m["history"]],
            "cpu_seconds": ledger.total(m["epochs"]),
            "wall_seconds": _earlier_wall(m) + m["seconds"],
            "evaluator": ev.config()}


def _earlier_wall(metrics: Dict[str, Any]) -> float:
    """Wall seconds of the epochs earlier processes trained (before a resume)."""
    done = metrics["resumed_after_epoch"]
    return metrics["history"][done - 1]["wall_seconds"] if done else 0.0


def load_record(records: lm_reference.Records, cell: str, seed: int,
                setting: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The record of ``(cell, seed)`` if present; one of other settings is a usage error."""
    record = records.load(cell, f"seed{seed}")
    if record is not None and record["settings"] != json.loads(json.dumps(setting)):
        raise app.UsageError(
            f"{records.path(cell, f'seed{seed}')} was trained with other settings "
            f"({record['settings']}): pass another --results_dir and --out_dir for these "
            f"({setting})")
    return record


def run_unit(records: lm_reference.Records, cell: str, seed: int, setting: Dict[str, Any],
             out_dir: str, data_dir: Optional[str]) -> Dict[str, Any]:
    """The record of ``(cell, seed)``: loaded when present, else trained and saved."""
    record = load_record(records, cell, seed, setting)
    if record is not None:
        print(f"{cell} seed {seed}: record present, skipped", flush=True)
        return record
    print(f"{cell} seed {seed}: training ...", flush=True)
    fields = train_unit(cell, seed, setting, out_dir, data_dir)
    record = records.save(cell, f"seed{seed}", {"seed": seed, "settings": setting, **fields})
    print(f"{cell} seed {seed}: valid bpc {_f(record['valid_bpc'])}, test bpc "
          f"{_f(record['test_bpc'])}, {record['cpu_seconds']:.0f} cpu s", flush=True)
    return record


# --- the report ---------------------------------------------------------------------------------

def _f(x: Optional[float], digits: int = 4) -> str:
    return "diverged" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def report(records: lm_reference.Records, cells: Sequence[str],
           seeds: Sequence[int]) -> str:
    """Markdown: one row per cell (mean and range over its finished seeds), then per run."""
    rows: List[Tuple[str, int, Dict[str, Any]]] = []
    for cell in cells:
        for seed in seeds:
            record = records.load(cell, f"seed{seed}")
            if record is not None:
                rows.append((cell, seed, record))
    kept = sorted({json.dumps(r["settings"], sort_keys=True) for _, _, r in rows})
    lines = ([f"records in {records.root}; settings: {k}" for k in kept] + [""]) if kept else []
    lines += ["| cell | units | params | seeds done | valid bpc, mean (range) | "
             "test bpc, mean (range) | CPU s per run |", "|---|---:|---:|---:|---:|---:|---:|"]
    for cell in cells:
        mine = [r for c, _, r in rows if c == cell]
        ok = [r for r in mine if not r["diverged"]]
        size = (ok or mine or [{}])[0]
        done = f"{len(mine)}/{len(seeds)}" + (
            f" ({len(mine) - len(ok)} diverged)" if len(ok) < len(mine) else "")
        cpu = f"{sum(r['cpu_seconds'] for r in mine) / len(mine):,.0f}" if mine else "-"
        params = f"{size['params']:,}" if "params" in size else "-"
        lines.append(f"| {cell} | {size.get('units', '-')} | {params} | {done} | "
                     f"{lm_reference.mean_range([r['valid_bpc'] for r in ok], 4, '-')} | "
                     f"{lm_reference.mean_range([r['test_bpc'] for r in ok], 4, '-')} | {cpu} |")
    lines += ["", "| cell | seed | best epoch | valid bpc | test bpc | CPU s | wall s | "
              "finished | load |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for cell, seed, r in rows:
        lines.append(f"| {cell} | {seed} | {r.get('best_epoch', '-')} | {_f(r['valid_bpc'])} | "
                     f"{_f(r['test_bpc'])} | {r['cpu_seconds']:,.0f} | "
                     f"{r['wall_seconds']:,.0f} | {r['finished']} | {r['loadavg']:.1f} |")
    return "\n".join(lines)


# --- step time ----------------------------------------------------------------------------------

def time_cells(cells: Sequence[str], setting: Dict[str, Any], steps: int,
               data_dir: Optional[str]) -> str:
    """Each cell trained for two ``steps``-step epochs (the first pays for tracing), the second
    timed: seconds per training step and per validation batch, and what a full run costs."""
    from nascell.search.data.text import num_lm_batches
    from nascell.search.evaluators._child import clear_child_memory
    from nascell.search.evaluators.rnn_lm import load_corpus

    _, ids = load_corpus("ptb_char", data_dir)
    b, t = setting["batch_size"], setting["seq_len"]
    full = {s: num_lm_batches(len(ids[s]), b, t) for s in ("train", "valid", "test")}
    lines = [f"{steps} timed steps of batch {b} x {t}; a full run: {setting['epochs']} epochs of "
             f"{full['train']} steps, {full['valid']} validation batches an epoch, "
             f"{full['test']} test batches", "",
             "| cell | units | params | s / train step | s / eval batch | CPU s of this | "
             "full run, h (estimate) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for cell in cells:
        spec = lm_reference.named_spec(cell, "cells")
        ev = evaluator(spec, 0, setting, data_dir, epochs=2, steps_per_epoch=steps,
                       max_valid_steps=steps, lr_decay_epoch=None)
        cpu = time.process_time()
        model, m = ev.train_model(spec, None, evaluate_test=False)
        cpu = time.process_time() - cpu
        del model
        clear_child_memory()
        h = m["history"][1]
        train_s = h["train_steps"] * b * t / h["words_per_second"]
        step = train_s / h["train_steps"]
        eval_batch = (h["seconds"] - train_s) / min(steps, full["valid"])
        hours = (setting["epochs"] * (full["train"] * step + full["valid"] * eval_batch)
                 + full["test"] * eval_batch) / 3600
        lines.append(f"| {cell} | {m['units']} | {m['params']:,} | {step:.3f} | "
                     f"{eval_batch:.3f} | {cpu:.0f} | {hours:.2f} |")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------

def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise app.UsageError(f"Flag `--seeds` must be a list of integers. Received: "
                             f"--seeds={','.join(FLAGS.seeds)}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise app.UsageError(f"Flag `--seeds` must list distinct seeds. Received: "
                             f"--seeds={','.join(FLAGS.seeds)}")
    if FLAGS.target_params < 1_000:
        raise app.UsageError(f"Flag `--target_params` must be at least 1000. Received: "
                             f"--target_params={FLAGS.target_params}")
    if FLAGS.time_steps < 0:
        raise app.UsageError(f"Flag `--time_steps` must be >= 0. Received: "
                             f"--time_steps={FLAGS.time_steps}")
    cells = list(FLAGS.cells) or default_cells()
    for cell in cells:
        lm_reference.named_spec(cell, "cells")
    if len(set(cells)) != len(cells):
        raise app.UsageError(f"Flag `--cells` must list each cell once. Received: "
                             f"--cells={','.join(cells)}")
    smoke = FLAGS.smoke
    target = SMOKE_PARAMS if smoke and not FLAGS["target_params"].present else \
        FLAGS.target_params
    setting = settings(target, smoke)
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.INFO)  # the trainer's epoch lines go to the log
    if FLAGS.time_steps:
        print(time_cells(cells, setting, FLAGS.time_steps, FLAGS.data_dir), flush=True)
        return
    results_dir, out_dir = FLAGS.results_dir, FLAGS.out_dir
    if smoke and not (results_dir and out_dir):  # never into the campaign's folders
        scratch = tempfile.mkdtemp(prefix="char_ptb_smoke_")
        results_dir = results_dir or os.path.join(scratch, "results")
        out_dir = out_dir or os.path.join(scratch, "out")
    results_dir, out_dir = results_dir or DEFAULT_RESULTS, out_dir or DEFAULT_OUT
    records = lm_reference.Records(results_dir)
    if not FLAGS.report:
        for cell in cells:  # records of other settings are refused before anything trains
            for seed in seeds:
                load_record(records, cell, seed, setting)
        print(f"char_ptb: cells {cells}, seeds {seeds}, {target:,} parameters; records in "
              f"{results_dir}, checkpoints in {out_dir}", flush=True)
        for cell in cells:
            for seed in seeds:
                run_unit(records, cell, seed, setting, out_dir, FLAGS.data_dir)
    print(report(records, cells, seeds), flush=True)


if __name__ == "__main__":
    app.run(main)
