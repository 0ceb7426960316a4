"""The ENAS loop (Pham et al., 2018): alternate shared-weight training and controller training.

Each epoch has two phases:

1. **Shared weights** ``w``: ``shared_steps`` SGD steps on consecutive *training* batches; every
   step samples one architecture from the controller, whose weights stay fixed (phase 1 never
   touches them), and updates only the supernet variables that architecture reads.
2. **Controller** ``theta``: ``controller_steps`` REINFORCE updates; each samples
   ``controller_batch`` architectures and scores each on the next *validation* batch with ``w``
   fixed (phase 2 never assigns a supernet variable). Reward: ``80 / valid_ppl`` (recurrent,
   ENAS' choice) or the batch's validation accuracy (conv).

After the last epoch the final architecture is *derived*: ``derive_samples`` architectures
are sampled, each scored on ``derive_batches`` validation batches by the supernet, and the best
is kept. The candidates go to the run's trial store, so ``best/best.json`` holds the derived
spec in the same format as every other strategy's run (export reads it unchanged).

Controller settings (`ENASOptions`), from the paper unless noted: a one-layer LSTM with 100
units, weights uniform in [-0.1, 0.1], Adam at 3.5e-4, sampling temperature 5, tanh constant
2.5, entropy weight 1e-4 (here a bonus in the REINFORCE objective, which has the same
gradient as ENAS' entropy-augmented reward up to the baseline), baseline decay 0.999 (the
brief's value; the paper does not state one). Shared weights: plain SGD with global-norm
clipping, as ENAS' code (recurrent: learning rate 20, clip 0.25).

Run directory (resumable; see `nascell.search.run_dir` for the shared parts)::

    <run_dir>/config.json, trials.sqlite, best/, tensorboard/   as every search
    <run_dir>/enas/gen-NNNNNN/   supernet.npz, controller.npz, state.json (epoch, data
                                 positions, history); written to a .tmp folder, then renamed
    <run_dir>/enas/current.json  the newest complete generation (atomic JSON)
    <run_dir>/enas/derived.json  the derived architecture, once the search finished

A crash loses at most the epoch in progress; restarting with the same arguments resumes after
the last completed epoch with the same data positions and controller sampling counter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from nascell import _io

ENAS_DIR = "enas"
REWARD_CONSTANT = 80.0
_KEEP = 2


@dataclasses.dataclass
class ENASOptions:
    """Every setting of an ENAS run (stored in config.json; a resume must match)."""

    epochs: int = 10
    shared_steps: int = 100
    controller_steps: int = 20
    controller_batch: int = 4
    derive_samples: int = 16
    derive_batches: int = 4
    num_nodes: Optional[int] = None  # the space's default when None
    # supernet and data
    units: int = 64  # recurrent
    filters: int = 8  # conv
    num_cells: int = 1  # conv
    batch_size: int = 32
    seq_len: int = 35
    max_train_tokens: Optional[int] = None  # truncate PTB for a proxy run
    max_valid_tokens: Optional[int] = None
    shared_lr: Optional[float] = None  # 20 (recurrent) / 0.05 (conv) when None
    shared_clipnorm: Optional[float] = None  # 0.25 / 5.0 when None
    # controller
    controller_units: int = 100
    controller_layers: int = 1
    controller_lr: float = 3.5e-4
    controller_init_range: float = 0.1
    temperature: Optional[float] = 5.0
    tanh_constant: Optional[float] = 2.5
    entropy_weight: float = 1e-4
    baseline_decay: float = 0.999
    controller_jit_compile: bool = True  # XLA: slower to compile, faster per update
    seed: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ENASResult:
    """What `run_enas` returns: the derived spec and its validation score."""

    spec: Any
    decisions: Dict[str, Any]
    metric: float  # validation perplexity (recurrent) or accuracy (conv)
    reward: float
    epochs: int
    history: List[Dict[str, float]]
    run_dir: str


# ---------------------------------------------------------------------------------------------
# Tasks: what a supernet trains on and how a sampled architecture is scored.
# ---------------------------------------------------------------------------------------------


class _RecurrentTask:
    """PTB language modelling with `RNNSupernet`; reward ``80 / ppl``."""

    metric_name = "valid_ppl"

    def __init__(self, space, options: ENASOptions, data: Optional[Dict[str, Any]],
                 data_dir: Optional[str]):
        from nascell.search.data.text import batchify
        from nascell.search.enas.rnn_supernet import RNNSupernet
        if data is None:
            from nascell.search.data.text import Vocabulary, load_ptb
            texts = load_ptb(data_dir)
            vocab = Vocabulary(texts["train"])
            data = {"train": vocab.encode(texts["train"]), "valid": vocab.encode(texts["valid"]),
                    "vocab_size": vocab.size}
        train, valid = np.asarray(data["train"]), np.asarray(data["valid"])
        if options.max_train_tokens:
            train = train[:options.max_train_tokens]
        if options.max_valid_tokens:
            valid = valid[:options.max_valid_tokens]
        bx, by = batchify(train, options.batch_size, options.seq_len)
        vx, vy = batchify(valid, options.batch_size, options.seq_len)
        self.train = list(zip(bx, by))
        self.valid = list(zip(vx, vy))
        self.supernet = RNNSupernet(int(data["vocab_size"]), space.options["num_nodes"],
                                    options.units, seed=options.seed)
        self.lr = 20.0 if options.shared_lr is None else options.shared_lr
        self.clip = 0.25 if options.shared_clipnorm is None else options.shared_clipnorm
        self.h = None

    def reset_state(self) -> None:
        self.h = None

    def train_step(self, spec, index: int) -> float:
        x, y = self.train[index % len(self.train)]
        if index % len(self.train) == 0:
            self.h = None  # a new pass over the corpus starts from a zero state
        loss, self.h = self.supernet.train_step(spec, x, y, self.lr, self.clip, self.h)
        return loss

    def score(self, spec, indices: Sequence[int]) -> Tuple[float, float]:
        batches = [self.valid[i % len(self.valid)] for i in indices]
        ppl = self.supernet.perplexity(spec, batches, carry_state=False)
        if not np.isfinite(ppl):
            return ppl, 0.0
        return ppl, REWARD_CONSTANT / ppl

    def better(self, a: float, b: float) -> bool:
        return a < b


class _ConvTask:
    """Image classification with `ConvSupernet`; reward = validation accuracy of the batch."""

    metric_name = "valid_acc"

    def __init__(self, space, options: ENASOptions, data: Optional[Dict[str, Any]],
                 data_dir: Optional[str]):
        from nascell.search.enas.conv_supernet import ConvSupernet
        if data is None:
            data = load_cifar_subset(data_dir)
        (tx, ty), (vx, vy) = data["train"], data["valid"]
        b = options.batch_size
        self.train = [(tx[i:i + b], ty[i:i + b]) for i in range(0, len(tx) - b + 1, b)]
        self.valid = [(vx[i:i + b], vy[i:i + b]) for i in range(0, len(vx) - b + 1, b)]
        if not self.train or not self.valid:
            raise ValueError(f"conv ENAS needs at least one batch of {b} images in each split")
        self.supernet = ConvSupernet(space.options["num_nodes"], int(data["num_classes"]),
                                     options.filters, options.num_cells,
                                     tuple(np.asarray(tx).shape[1:]), seed=options.seed)
        self.lr = 0.05 if options.shared_lr is None else options.shared_lr
        self.clip = 5.0 if options.shared_clipnorm is None else options.shared_clipnorm

    def reset_state(self) -> None:
        pass

    def train_step(self, spec, index: int) -> float:
        x, y = self.train[index % len(self.train)]
        return self.supernet.train_step(spec, x, y, self.lr, self.clip)

    def score(self, spec, indices: Sequence[int]) -> Tuple[float, float]:
        acc = self.supernet.accuracy(spec, [self.valid[i % len(self.valid)] for i in indices])
        return acc, acc

    def better(self, a: float, b: float) -> bool:
        return a > b


def load_cifar_subset(data_dir: Optional[str], valid_fraction: float = 0.1) -> Dict[str, Any]:
    """CIFAR-10 from ``<data_dir>/cifar10_subset.npz`` (or ``<data_dir>/cifar10/...``), scaled
    to [0, 1], its training images split into train and valid (the search never sees test)."""
    candidates = [] if data_dir is None else [
        data_dir, os.path.join(data_dir, "cifar10_subset.npz"),
        os.path.join(data_dir, "cifar10", "cifar10_subset.npz")]
    path = next((p for p in candidates if os.path.isfile(p)), None)
    if path is None:
        raise FileNotFoundError(
            f"no CIFAR-10 .npz under --data_dir={data_dir!r}; pass the folder holding "
            "cifar10_subset.npz (keys x_train, y_train), or pass data= to run_enas")
    with np.load(path) as f:
        x = f["x_train"].astype(np.float32) / 255.0
        y = f["y_train"].astype(np.int32)
    n_valid = max(1, int(len(x) * valid_fraction))
    return {"train": (x[:-n_valid], y[:-n_valid]), "valid": (x[-n_valid:], y[-n_valid:]),
            "num_classes": 10}


# ---------------------------------------------------------------------------------------------
# The trainer.
# ---------------------------------------------------------------------------------------------


def make_controller(space, options: ENASOptions):
    """The space-generic controller with ENAS' settings."""
    from nascell.search.controller import Controller
    return Controller(space, units=options.controller_units,
                      num_layers=options.controller_layers,
                      init_range=options.controller_init_range,
                      learning_rate=options.controller_lr,
                      baseline_decay=options.baseline_decay, temperature=options.temperature,
                      tanh_constant=options.tanh_constant,
                      entropy_weight=options.entropy_weight, seed=options.seed,
                      jit_compile=options.controller_jit_compile)


def make_space(space_name: str, num_nodes: Optional[int] = None):
    from nascell.search.spaces import enas as enas_spaces
    factories = {"enas_rnn": enas_spaces.enas_rnn_space, "enas_conv": enas_spaces.enas_conv_space}
    if space_name not in factories:
        known = sorted(factories)
        hint = (" (the macro space has no supernet here; search it with the 'enas' strategy "
                "through ask/tell and an evaluator)" if space_name == "enas_macro" else "")
        raise ValueError(f"run_enas: unknown space {space_name!r}; use one of {known}{hint}")
    return factories[space_name]() if num_nodes is None else factories[space_name](num_nodes)


class ENASTrainer:
    """Owns the space, supernet task, controller and run directory of one ENAS search.

    ``data`` replaces the default data sets (tests, custom corpora): recurrent
    ``{"train": ids, "valid": ids, "vocab_size": V}``; conv
    ``{"train": (x, y), "valid": (x, y), "num_classes": C}``.
    """

    def __init__(self, space_name: str, run_dir: str, options: ENASOptions,
                 data: Optional[Dict[str, Any]] = None, data_dir: Optional[str] = None):
        from nascell.search.run_dir import RunDir
        self.options = options
        self.space = make_space(space_name, options.num_nodes)
        # The budget (epochs) may grow on resume; everything else must match.
        identity = {k: v for k, v in options.to_dict().items() if k != "epochs"}
        config = {"strategy": "enas", "space": self.space.config()["name"],
                  "space_options": self.space.options, "enas": identity,
                  "data": "custom" if data is not None else (data_dir or "default")}
        self.run = RunDir.open_or_create(run_dir, config)
        self.root = os.path.join(self.run.path, ENAS_DIR)
        task_cls = _RecurrentTask if space_name == "enas_rnn" else _ConvTask
        self.task = task_cls(self.space, options, data, data_dir)
        self.controller = make_controller(self.space, options)
        self.epoch = 0
        self.train_pos = 0
        self.valid_pos = 0
        self.history: List[Dict[str, float]] = []
        self.resumed_from = self._restore()

    # --- sampling ------------------------------------------------------------------------------

    def sample(self, m: int) -> Tuple[List[Any], List[Dict[str, Any]], List[List[Any]], Dict]:
        """``m`` architectures from the controller: specs, decisions, token rows, raw sample."""
        out = self.controller.sample(m)
        n = len(self.space.decisions)
        rows = self.controller.tokens_to_rows(out["tokens"], n)
        decisions = [self.space.from_tokens(r) for r in rows]
        return [self.space.decode(d) for d in decisions], decisions, rows, out

    # --- the two phases ------------------------------------------------------------------------

    def train_shared(self, steps: int) -> float:
        """Phase 1: ``steps`` shared-weight steps, one sampled architecture each.

        The recurrent state is carried from batch to batch within a phase and starts from
        zeros at each phase, so a resumed run computes exactly what an uninterrupted one does.
        """
        self.task.reset_state()
        losses = []
        for _ in range(steps):
            spec = self.sample(1)[0][0]
            losses.append(self.task.train_step(spec, self.train_pos))
            self.train_pos += 1
        return _finite_mean(losses)

    def train_controller(self, steps: int) -> Dict[str, float]:
        """Phase 2: ``steps`` REINFORCE updates on validation batches, shared weights fixed."""
        m = self.options.controller_batch
        rewards, metrics, entropies = [], [], []
        for _ in range(steps):
            specs, _, rows, out = self.sample(m)
            batch_rewards = []
            for spec in specs:
                metric, reward = self.task.score(spec, [self.valid_pos])
                self.valid_pos += 1
                batch_rewards.append(reward)
                metrics.append(metric)
            n = len(self.space.decisions)
            self.controller.update([(row, n) for row in out["tokens"]], batch_rewards)
            rewards += batch_rewards
            entropies += list(out["entropy"])
        return {"reward": _finite_mean(rewards), self.task.metric_name: _finite_mean(metrics),
                "entropy": _finite_mean(entropies),
                "baseline": float(self.controller.baseline or 0.0)}

    def run_epoch(self) -> Dict[str, float]:
        """Phase 1, phase 2, then `end_epoch` (statistics, summaries, checkpoint)."""
        start = time.time()
        loss = self.train_shared(self.options.shared_steps)
        stats = self.train_controller(self.options.controller_steps)
        return self.end_epoch(loss, stats, time.time() - start)

    def end_epoch(self, train_loss: float, stats: Dict[str, float],
                  seconds: float = 0.0) -> Dict[str, float]:
        """Count the epoch, log it (absl + TensorBoard scalars) and checkpoint the run."""
        self.epoch += 1
        stats = dict(stats)
        stats.update({"epoch": self.epoch, "train_loss": train_loss, "seconds": seconds})
        if self.task.metric_name == "valid_ppl":
            stats["train_ppl"] = float(np.exp(min(train_loss, 50.0)))
        self.history.append(stats)
        self.run.write_scalars(self.epoch, {f"enas/{k}": v for k, v in stats.items()
                                            if k != "epoch"})
        self.checkpoint()
        logging.info("ENAS epoch %d: %s", self.epoch,
                     ", ".join(f"{k}={v:.4g}" for k, v in stats.items() if k != "epoch"))
        return stats

    # --- deriving the final architecture -------------------------------------------------------

    def derive(self) -> ENASResult:
        """Sample ``derive_samples`` cells, score each on ``derive_batches`` validation batches
        with the supernet, keep the best; record every candidate as a trial."""
        from nascell.search.trial import Trial, TrialStatus
        saved = _io.read_json_or_none(os.path.join(self.root, "derived.json"))
        if saved is not None and saved["epochs"] == self.epoch:
            return self._result(saved)
        specs, decisions, rows, _ = self.sample(self.options.derive_samples)
        indices = list(range(self.options.derive_batches))
        next_id = self.run.store.max_trial_id() + 1
        best = None
        trials = []
        for k, (spec, dec) in enumerate(zip(specs, decisions)):
            metric, reward = self.task.score(spec, indices)
            trial = Trial(trial_id=next_id + k, decisions=dec, spec=spec,
                          meta={"enas": "derive", "epoch": self.epoch})
            trial.reward = float(reward) if np.isfinite(reward) else 0.0
            trial.metrics = {self.task.metric_name: float(metric)}
            trial.status = TrialStatus.DONE
            trials.append(trial)
            if best is None or self.task.better(metric, best[0]):
                best = (metric, reward, spec, dec)
        self.run.store.add(trials)
        for t in trials:
            t.status = TrialStatus.DONE
            self.run.store.finish(t)
            self.run.write_trial_summary(t, self.space)  # its TensorBoard HParams session
        # best/ holds this derivation's candidates, best first (an earlier derivation of a
        # shorter run stays in the store but is superseded), in the run directory's format.
        ranked = sorted(trials, key=lambda t: -t.reward)
        entries = [{"trial_id": t.trial_id, "reward": t.reward,
                    "spec": json.loads(t.spec.to_json()), "decisions": _jsonable(t.decisions),
                    "metrics": t.metrics} for t in ranked]
        best_dir = os.path.join(self.run.path, "best")
        _io.atomic_write_json(os.path.join(best_dir, "top_k.json"), entries[:5])
        _io.atomic_write_json(os.path.join(best_dir, "best.json"), entries[0])
        metric, reward, spec, dec = best
        saved = {"spec": json.loads(spec.to_json()), "decisions": _jsonable(dec),
                 "metric": float(metric), "metric_name": self.task.metric_name,
                 "reward": float(reward), "epochs": self.epoch, "history": self.history}
        _io.atomic_write_json(os.path.join(self.root, "derived.json"), saved)
        return self._result(saved)

    def _result(self, saved: Dict[str, Any]) -> ENASResult:
        from nascell.spec import spec_from_dict
        return ENASResult(spec=spec_from_dict(saved["spec"]), decisions=saved["decisions"],
                          metric=saved["metric"], reward=saved["reward"],
                          epochs=saved["epochs"], history=saved["history"],
                          run_dir=self.run.path)

    # --- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self) -> str:
        """Write supernet, controller and counters as generation ``epoch``, then point to it."""
        final = os.path.join(self.root, f"gen-{self.epoch:06d}")
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        _io.atomic_write_bytes(os.path.join(tmp, "supernet.npz"),
                               self.task.supernet.state_bytes())
        _io.atomic_write_bytes(os.path.join(tmp, "controller.npz"),
                               self.controller.state_bytes())
        _io.atomic_write_json(os.path.join(tmp, "state.json"), {
            "epoch": self.epoch, "train_pos": self.train_pos, "valid_pos": self.valid_pos,
            "history": self.history})
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _io.atomic_write_json(os.path.join(self.root, "current.json"),
                              {"generation": self.epoch, "dir": os.path.basename(final)})
        for name in os.listdir(self.root):
            if name.startswith("gen-") and not name.endswith(".tmp"):
                if int(name[4:]) <= self.epoch - _KEEP:
                    shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        return final

    def _restore(self) -> int:
        current = _io.read_json_or_none(os.path.join(self.root, "current.json"))
        if current is None:
            return 0
        directory = os.path.join(self.root, current["dir"])
        with open(os.path.join(directory, "supernet.npz"), "rb") as f:
            self.task.supernet.load_state_bytes(f.read())
        self.controller.load_state(os.path.join(directory, "controller.npz"))
        state = _io.read_json_or_none(os.path.join(directory, "state.json"))
        self.epoch, self.train_pos = int(state["epoch"]), int(state["train_pos"])
        self.valid_pos, self.history = int(state["valid_pos"]), list(state["history"])
        logging.info("ENAS: resumed %s after epoch %d", self.run.path, self.epoch)
        return self.epoch

    def fit(self, progress: Optional[Callable[[Dict[str, float]], None]] = None) -> ENASResult:
        """Run the remaining epochs, then derive (or return the stored derivation)."""
        while self.epoch < self.options.epochs:
            stats = self.run_epoch()
            if progress is not None:
                progress(stats)
        return self.derive()

    def close(self) -> None:
        self.run.close()


def _finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values (a diverged cell's inf/NaN is reported by its reward of 0)."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _jsonable(decisions: Dict[str, Any]) -> Dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in decisions.items()}


def run_enas(space_name: str, run_dir: str, *, data_dir: Optional[str] = None,
             data: Optional[Dict[str, Any]] = None,
             progress: Optional[Callable[[Dict[str, float]], None]] = None,
             **options: Any) -> ENASResult:
    """Run (or resume) an ENAS search of ``space_name`` ("enas_rnn" or "enas_conv") in ``run_dir``.

    Keyword ``options`` are `ENASOptions` fields (epochs, shared_steps, controller_steps, ...).
    Restarting with the same arguments resumes after the last completed epoch; a finished run
    returns its stored result. Returns an `ENASResult` (derived spec, its validation metric).
    """
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(ENASOptions)})
    if unknown:
        raise ValueError(f"run_enas: unknown option(s) {unknown}; known: "
                         f"{sorted(f.name for f in dataclasses.fields(ENASOptions))}")
    trainer = ENASTrainer(space_name, run_dir, ENASOptions(**options), data=data,
                          data_dir=data_dir)
    try:
        return trainer.fit(progress)
    finally:
        trainer.close()
