"""The ENAS arm of `ptb_search`: a weight-sharing search given the CPU time of the others.

An ``enas@SEED`` run is the real binary, ``nascell-search --dataset=ptb --space=enas_rnn
--strategy=enas`` (the ``enas`` strategy with the ``supernet`` evaluator: nascell-search's
defaults, 64 units, 100 shared steps and 20 controller updates of 4 cells per epoch, then 16
derive candidates), with one setting chosen here: its number of supernet epochs.

**The CPU-matching rule.** An ENAS search cannot be extended in place (its epochs are part of
the run directory's identity, and more trials are only more derive candidates), so its epochs
are chosen before it starts, from a probe:

1. the target ``T`` is the mean search CPU seconds of the campaign's finished non-ENAS runs
   (the sum of each run's ``search_invocations.jsonl``); with none finished, the ENAS run
   waits;
2. the probe is the same search with ``PROBE_EPOCHS`` (2) epochs in a run directory of its
   own; it costs ``C`` CPU seconds over ``W`` wall seconds (its invocations' sums);
3. one epoch's CPU ``e`` is the probe's last epoch's share of it, by wall time
   (``e = C * s / W``, ``s`` that epoch's wall seconds from the strategy's history; the CPU
   per wall second taken as constant across the run); the fixed cost is
   ``F = C - PROBE_EPOCHS * e`` (start-up, epoch 1's tracing, the derive phase);
4. ``epochs = max(1, round((T - F) / e))``, predicted CPU ``F + epochs * e``.

The choice (``T`` and the runs it came from, the probe's ``C``, ``W``, ``s``, ``e``, ``F``, the
epochs and the prediction) is the run's ``budget`` record, written once; the report gives
the run's actual CPU beside it. The probe's CPU is reported, not counted in the search's.

**Its trials.** The search phase scores ``epochs * 80`` controller samples, each on the next
validation batch (32 x 35 tokens) under the shared weights of its epoch; the derive phase then
scores the derive candidates on the first validation batch under the final weights. The
best-so-far curve is over supernet-training epochs (not CPU, not trials): after epoch k, the
best search-phase supernet perplexity so far; its end point is the best derive candidate. The
cells retrained at the reference are the best distinct derive candidates by supernet score
(the search's own final ranking): ENAS runs no proxy trials, and the report does not count its
samples as such.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Dict, List, Optional

PROBE_EPOCHS = 2
# tiny budgets of --smoke (every other setting: nascell-search's ENAS defaults)
SMOKE_OPTIONS: Dict[str, Any] = {"shared_steps": 3, "controller_steps": 2,
                                 "controller_batch": 2, "derive_samples": 4, "units": 16,
                                 "max_train_tokens": 20_000, "max_valid_tokens": 4_000}


def options(epochs: int, smoke: bool) -> Dict[str, Any]:
    """The flat ENAS settings of a run (``--enas_option``): ``epochs``, and --smoke's."""
    return {**(SMOKE_OPTIONS if smoke else {}), "epochs": int(epochs)}


def planned_trials(opts: Dict[str, Any]) -> int:
    """Trials of one ENAS run with ``opts``: the search phase, then the derive candidates."""
    from nascell.search.strategies.enas import ENAS_CONTROLLER_DEFAULTS, ENAS_SCHEDULE_DEFAULTS

    def get(key: str, default: int) -> int:
        return int(opts.get(key, default))

    return (get("epochs", ENAS_SCHEDULE_DEFAULTS["epochs"])
            * get("controller_steps", ENAS_SCHEDULE_DEFAULTS["controller_steps"])
            * get("controller_batch", ENAS_CONTROLLER_DEFAULTS["m"])
            + get("derive_samples", ENAS_SCHEDULE_DEFAULTS["derive_samples"]))


def command(seed: int, run_dir: str, opts: Dict[str, Any], data_dir: Optional[str]) -> List[str]:
    """The nascell-search invocation of an ENAS run (or probe) in ``run_dir``."""
    cmd = [sys.executable, "-m", "nascell.search.bin.search", "--dataset=ptb",
           "--space=enas_rnn", "--strategy=enas", f"--seed={seed}", f"--run_dir={run_dir}",
           "--noexport", "--keep_weights=0"]
    cmd += [f"--enas_option={k}={v}" for k, v in sorted(opts.items())]
    if data_dir:
        cmd.append(f"--data_dir={data_dir}")
    return cmd


def choose_epochs(target_cpu: float, probe_cpu: float, probe_wall: float,
                  probe_history: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The rule of the module docstring: the epochs whose predicted CPU is nearest
    ``target_cpu``, from a probe of ``PROBE_EPOCHS`` epochs; returns the figures it used."""
    if len(probe_history) < PROBE_EPOCHS:
        raise ValueError(f"Argument `probe_history` must hold the probe's {PROBE_EPOCHS} "
                         f"epochs. Received: {len(probe_history)} epochs")
    if not (probe_cpu > 0 and probe_wall > 0 and target_cpu > 0):
        raise ValueError(f"Arguments `target_cpu`, `probe_cpu` and `probe_wall` must be > 0. "
                         f"Received: target_cpu={target_cpu}, probe_cpu={probe_cpu}, "
                         f"probe_wall={probe_wall}")
    seconds = float(probe_history[PROBE_EPOCHS - 1]["seconds"])
    epoch_cpu = probe_cpu * seconds / probe_wall
    fixed = max(0.0, probe_cpu - PROBE_EPOCHS * epoch_cpu)
    epochs = max(1, int(round((target_cpu - fixed) / epoch_cpu)))
    return {"rule": "epochs = max(1, round((target - fixed) / epoch)), epoch = probe CPU x "
                    "(its last epoch's wall s / its wall s), fixed = probe CPU - "
                    f"{PROBE_EPOCHS} x epoch",
            "target_cpu_seconds": target_cpu, "probe_epochs": PROBE_EPOCHS,
            "probe_cpu_seconds": probe_cpu, "probe_wall_seconds": probe_wall,
            "probe_last_epoch_wall_seconds": seconds, "epoch_cpu_seconds": epoch_cpu,
            "fixed_cpu_seconds": fixed, "epochs": epochs,
            "predicted_cpu_seconds": fixed + epochs * epoch_cpu}


def history(run_dir: str) -> List[Dict[str, Any]]:
    """The ENAS strategy's per-epoch statistics (``seconds``, ``train_loss``, ...) from the run
    directory's current strategy checkpoint ([] before the first)."""
    from nascell import _io
    from nascell.search.rundir.run_dir import RunDir

    run = RunDir.open_existing(run_dir)
    try:
        folder = run.strategy_dir()
    finally:
        run.close()
    state = _io.read_json_or_none(os.path.join(folder, "strategy_state.json")) if folder else None
    return list(((state or {}).get("enas") or {}).get("history") or [])


def read_run(run_dir: str) -> Dict[str, Any]:
    """An ENAS run's results: ``derive`` (the derive candidates: trial, reward, supernet valid
    ppl, failed, spec), ``epochs`` (per search epoch: trials, best and median supernet ppl) and
    ``history`` (the strategy's); ``trials``, how many finished."""
    import numpy as np

    from nascell.search import TrialStatus, TrialStore

    path = os.path.join(run_dir, "trials.sqlite")
    if not os.path.exists(path):
        return {"trials": 0, "derive": [], "epochs": [], "history": []}
    store = TrialStore(path, readonly=True)
    try:
        finished = sorted(store.finished(), key=lambda t: t.trial_id)
    finally:
        store.close()
    derive, by_epoch = [], {}
    for t in finished:
        ok = t.status == TrialStatus.DONE
        ppl = t.metrics.get("valid_ppl") if ok else None
        meta = t.meta or {}
        if meta.get("phase") == "derive":
            derive.append({"trial": t.trial_id, "reward": t.reward or 0.0, "valid_ppl": ppl,
                           "failed": not ok,
                           "spec": t.spec.to_dict() if t.spec is not None else None})
        else:
            by_epoch.setdefault(int(meta.get("epoch", 0)), []).append(
                math.inf if ppl is None or not math.isfinite(ppl) else float(ppl))
    epochs = [{"epoch": k, "trials": len(v), "best_ppl": _finite(min(v)),
               "median_ppl": _finite(float(np.median(v)))} for k, v in sorted(by_epoch.items())]
    return {"trials": len(finished), "derive": derive, "epochs": epochs,
            "history": history(run_dir)}


def best_so_far(run: Dict[str, Any]) -> List[float]:
    """After each search epoch, the best search-phase supernet perplexity so far; then one
    point more, the best derive candidate's (absent until the derive phase has run)."""
    best, out = math.inf, []
    for e in run["epochs"]:
        if e["best_ppl"] is not None:
            best = min(best, e["best_ppl"])
        out.append(best)
    ppls = [d["valid_ppl"] for d in run["derive"] if d["valid_ppl"] is not None]
    if ppls:
        out.append(min(ppls))
    return out


def top_cells(run: Dict[str, Any], k: int) -> List[Dict[str, Any]]:
    """The ``k`` best distinct derive candidates by supernet reward (the first of repeats)."""
    seen, out = set(), []
    for d in sorted((d for d in run["derive"] if not d["failed"]), key=lambda d: -d["reward"]):
        key = json.dumps(d["spec"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out[:k]


def _finite(value: float) -> Optional[float]:
    return float(value) if math.isfinite(value) else None
