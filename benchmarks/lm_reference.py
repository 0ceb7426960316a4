"""The reference training of the discovery benchmarks (`proxy_fidelity`, `enas_fidelity`,
`ptb_search`).

Zaremba et al.'s "small" protocol, as `ptb_reproduction` trains it: two layers, untied
embedding and softmax, every cell sized to the LSTM model's 4,651,600 parameters, SGD with
global-norm clipping at 5, batch 20 x 20 steps, the state carried across batches, uniform
[-0.1, 0.1] weights, no dropout, a constant learning rate. Every cell gets the same
learning-rate grid, chosen on validation by successive halving: each rate trains one epoch,
the rate with the best validation perplexity after it trains on to ``epochs``, and the
reference score is that run's best validation perplexity. A run whose loss turns non-finite,
or whose validation perplexity is no better than the uniform guess over the vocabulary, has
diverged; a cell that diverges at every rate scores +inf (ranks last).

Records are small JSON files (`Records`), one per unit of work, written atomically and never
rewritten, so a campaign killed at any point resumes where it stopped; epoch checkpoints live
in a separate folder and are resumed when present.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

VOCAB = 10_000
LSTM_UNITS = 200


class Records:
    """``<root>/<cell>/<job>.json``: one finished unit of work each (schema 1)."""

    def __init__(self, root: str):
        self.root = root

    def path(self, cell: str, job: str) -> str:
        return os.path.join(self.root, cell, f"{job}.json")

    def load(self, cell: str, job: str) -> Optional[Dict[str, Any]]:
        path = self.path(cell, job)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def save(self, cell: str, job: str, record: Dict[str, Any]) -> Dict[str, Any]:
        from nascell import _io

        record = {"schema": 1, "cell": cell, "job": job, **record,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "loadavg": os.getloadavg()[0]}
        _io.atomic_write_json(self.path(cell, job), record)
        return record


def diverged(ppl: Optional[float]) -> bool:
    return ppl is None or not math.isfinite(ppl) or ppl >= VOCAB


def score(record: Optional[Dict[str, Any]]) -> Optional[float]:
    """A record's validation perplexity, lower is better; +inf when it diverged."""
    if record is None:
        return None
    return math.inf if record["diverged"] else float(record["valid_ppl"])


def timed(fn: Callable[..., Dict[str, Any]], *args: Any, **kwargs: Any) -> Dict[str, Any]:
    """``fn(*args, **kwargs)`` with its process CPU seconds (every thread) and wall seconds
    added."""
    cpu, wall = time.process_time(), time.time()
    out = fn(*args, **kwargs)
    out["cpu_seconds"] = time.process_time() - cpu
    out["wall_seconds"] = time.time() - wall
    return out


def best_lr(ppls: Dict[str, Optional[float]]) -> Optional[str]:
    ok = {lr: p for lr, p in ppls.items() if not diverged(p)}
    return min(ok, key=ok.get) if ok else None


def named_spec(name: str, flag: str):
    """``"lstm"``, or the spec of the registry cell ``name`` (`nascell.cell_card`); any other
    name is a usage error that names flag ``--<flag>`` and the registered cells."""
    from absl import app

    import nascell

    if name == "lstm":
        return "lstm"
    if name not in nascell.available_cells():
        raise app.UsageError(f"Flag `--{flag}` must name 'lstm' or cells of nascell's registry "
                             f"{nascell.available_cells()}. Received: --{flag}={name}")
    return nascell.cell_card(name).spec


def mean_range(values: Sequence[float], digits: int, empty: str = "") -> str:
    """``"mean (min-max)"`` of the seeds' figures, the figure alone for one, ``empty`` for
    none."""
    if not values:
        return empty
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{sum(values) / len(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def reference_size(spec, lstm_units: int = LSTM_UNITS) -> Dict[str, Any]:
    """The LSTM's ``units``, or for any other cell the LSTM model's parameter count."""
    from nascell.search.evaluators.rnn_lm import is_lstm, language_model_params

    if is_lstm(spec):
        return {"units": lstm_units}
    return {"target_params": language_model_params(VOCAB, lstm_units, 4, num_layers=2,
                                                   tie_weights=False)}


def zaremba_evaluator(spec, lr: float, data_dir: Optional[str], lstm_units: int = LSTM_UNITS,
                      lr_decay_epoch: Optional[int] = None, **kw):
    """An `RNNLanguageModelEvaluator` of Zaremba-small's model and optimizer at rate ``lr``
    (constant unless ``lr_decay_epoch``, with ``lr_decay`` in ``kw``), sized to the LSTM of
    ``lstm_units``; `ptb_reproduction` trains with it too."""
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    return RNNLanguageModelEvaluator(
        dataset="ptb", data_dir=data_dir, num_layers=2, tie_weights=False, batch_size=20,
        seq_len=20, optimizer="sgd", lr=lr, clipnorm=5.0, lr_decay_epoch=lr_decay_epoch,
        dropout=0.0, seed=kw.pop("seed", 0), carry_state=True, test_batch_size=1,
        **reference_size(spec, lstm_units), **kw)


def train(spec, lr: str, epochs: int, checkpoint_dir: str, data_dir: Optional[str],
          smoke: bool = False, seed: int = 0, lr_decay_epoch: Optional[int] = None,
          lr_decay: float = 0.5, evaluate_test: bool = False,
          on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Train ``spec`` at rate ``lr`` for ``epochs`` (resuming ``checkpoint_dir``), the rate
    decayed by ``lr_decay`` a epoch from ``lr_decay_epoch`` on when that is given; with
    ``evaluate_test`` the test split too (one stream, the best-validation weights)."""
    from nascell.search.evaluators._child import ChildDiverged, clear_child_memory

    decay = {} if lr_decay_epoch is None else {"lr_decay_epoch": lr_decay_epoch,
                                               "lr_decay": lr_decay}  # else configs as before
    ev = zaremba_evaluator(spec, float(lr), data_dir, epochs=epochs,
                           steps_per_epoch=5 if smoke else None,
                           max_valid_steps=3 if smoke else None, seed=seed, **decay)
    if smoke and evaluate_test:  # a short test stream (the process's cached corpus, cut)
        from nascell.search.evaluators import rnn_lm

        _, ids = rnn_lm.load_corpus("ptb", data_dir)
        ids["test"] = ids["test"][:2000]
    try:
        model, metrics = ev.train_model(spec, checkpoint_dir, evaluate_test=evaluate_test,
                                        on_epoch=on_epoch)
    except ChildDiverged as e:
        clear_child_memory()
        return {"valid_ppl": None, "diverged": True, "failure": str(e), "history": []}
    del model
    clear_child_memory()
    history = [{k: h[k] for k in ("epoch", "lr", "train_ppl", "valid_ppl", "seconds")}
               for h in metrics["history"]]
    ppl = metrics["valid_ppl"]
    out = {"valid_ppl": ppl, "diverged": diverged(ppl), "history": history,
           "params": metrics["params"], "units": metrics["units"],
           "best_epoch": metrics["best_epoch"],
           "resumed_after_epoch": metrics["resumed_after_epoch"], "evaluator": ev.config()}
    if evaluate_test:
        out.update(test_ppl=metrics["test_ppl"], test_tokens=metrics["test_tokens"])
    return out


def reference(records: Records, cell: str, spec, lrs: Sequence[str], epochs: int,
              out_dir: str, data_dir: Optional[str], smoke: bool = False,
              log: Callable[[str], None] = print, final_job: str = "reference",
              **train_kw: Any) -> Dict[str, Any]:
    """The grid's first epochs (records ``ref_e1_lr<lr>``), then the chosen rate on to
    ``epochs`` (record ``final_job``); returns that record. ``train_kw`` (``seed``,
    ``lr_decay_epoch``, ``lr_decay``, ``evaluate_test``, ``on_epoch``) go to `train`; the first
    epochs never evaluate the test split, and a decay that starts after epoch 1 leaves them
    the same, so a fixed rate and a grid share them."""
    first_kw = {k: v for k, v in train_kw.items() if k != "evaluate_test"}
    firsts = {}
    for lr in lrs:
        job = f"ref_e1_lr{lr}"
        record = records.load(cell, job)
        if record is None:
            log(f"{cell}: reference epoch 1 at lr {lr} ...")
            record = records.save(cell, job, timed(
                train, spec, lr, 1, os.path.join(out_dir, cell, f"lr{lr}"), data_dir, smoke,
                **first_kw))
            log(f"{cell}: lr {lr} epoch 1: valid ppl {record['valid_ppl']}, "
                f"{record['cpu_seconds']:.0f} cpu s")
        firsts[lr] = record["valid_ppl"]
    done = records.load(cell, final_job)
    if done is not None:
        return done
    lr = best_lr(firsts)
    if lr is None or (epochs <= 1 and not train_kw.get("evaluate_test")):
        ppl = None if lr is None else firsts[lr]
        return records.save(cell, final_job, {
            "valid_ppl": ppl, "diverged": diverged(ppl), "lr": lr, "ref_epochs": epochs,
            "cpu_seconds": 0.0, "wall_seconds": 0.0, "epoch1_by_lr": firsts})
    log(f"{cell}: lr {lr} on to epoch {epochs} ...")
    record = timed(train, spec, lr, epochs, os.path.join(out_dir, cell, f"lr{lr}"), data_dir,
                   smoke, **train_kw)
    record = records.save(cell, final_job, {**record, "lr": lr, "ref_epochs": epochs,
                                            "epoch1_by_lr": firsts})
    log(f"{cell}: valid ppl {record['valid_ppl']} (lr {lr})"
        + (f", test ppl {record['test_ppl']:.2f}" if "test_ppl" in record else ""))
    return record


def epoch1_scores(records: Records, cell: str, lrs: Sequence[str]
                  ) -> Dict[str, Tuple[float, float]]:
    """The free proxies a cell's reference leaves, ``{name: (score, CPU s)}``: ``ref_epoch1``
    (the grid's best first epoch, once every rate has one) and ``ref_epoch1_lr1`` (the first
    epoch at Zaremba's 1.0, when the grid has it)."""
    firsts = {lr: records.load(cell, f"ref_e1_lr{lr}") for lr in lrs}
    out = {}
    if all(firsts.values()):
        out["ref_epoch1"] = (min(score(r) for r in firsts.values()),
                             sum(r["cpu_seconds"] for r in firsts.values()))
    if firsts.get("1.0"):
        out["ref_epoch1_lr1"] = (score(firsts["1.0"]), firsts["1.0"]["cpu_seconds"])
    return out


def epoch1_divergences(records: Records, cells: Sequence[str], lrs: Sequence[str]) -> str:
    """How many of ``cells`` diverged in epoch 1 at each rate of the grid, as a report line."""
    counts = {lr: sum(1 for cell in cells if (r := records.load(cell, f"ref_e1_lr{lr}"))
                      and r["diverged"]) for lr in lrs}
    return "Reference runs diverged in epoch 1, by learning rate: " + ", ".join(
        f"lr {lr}: {n} of {len(cells)}" for lr, n in counts.items())


def reference_cpu_seconds(records: Records, cell: str, lrs: Sequence[str],
                          final_job: str = "reference") -> float:
    """CPU seconds of a cell's whole reference: the grid's first epochs and the rest."""
    parts = [records.load(cell, f"ref_e1_lr{lr}") for lr in lrs]
    parts.append(records.load(cell, final_job))
    return float(sum(r["cpu_seconds"] for r in parts if r))
