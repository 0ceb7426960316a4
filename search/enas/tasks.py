"""What an ENAS supernet trains on and how a sampled architecture is scored with it.

A *task* holds one supernet (recurrent, micro or macro), its training and validation batches,
where shared-weight training stands, and the scoring rule. The ENAS strategy trains it (the
shared phase of every epoch, on consecutive training batches, one sampled architecture per
step); the supernet evaluator scores trials with it (weights fixed):

* a search-phase trial ``k`` is scored on validation batch ``k mod n`` (the next batch, as
  ENAS' controller phase reads them);
* a derive-phase trial (id ``>= derive_from``) on the first ``derive_batches`` validation
  batches, the same for every candidate, so they compare fairly.

Rewards: ``80 / perplexity`` for a recurrent cell (ENAS' choice; a diverged cell scores 0),
the batch's accuracy for an image network. A task saves its supernet and counters into a
strategy checkpoint folder; unchanged weights are hard-linked from the previous checkpoint
instead of written again (the controller is checkpointed after every trial, the shared weights
change once per epoch).
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import logging

from nascell import _io

REWARD_CONSTANT = 80.0
WEIGHTS_FILE = "supernet.npz"
STATE_FILE = "supernet.json"


class SupernetTask:
    """A supernet with its data and training position. Subclasses implement `train_step`,
    `score` and `reset_state`, and set ``metric_name``."""

    metric_name = ""

    def __init__(self, supernet, train_batches: List[Tuple[Any, Any]],
                 valid_batches: List[Tuple[Any, Any]], learning_rate: float,
                 clipnorm: Optional[float], derive_batches: int = 1):
        if not train_batches or not valid_batches:
            raise ValueError("the supernet needs at least one training and one validation "
                             "batch; use a smaller batch_size (or more data)")
        self.supernet = supernet
        self.train_batches, self.valid_batches = train_batches, valid_batches
        self.learning_rate, self.clipnorm = learning_rate, clipnorm
        self.derive_batches = derive_batches
        self.train_pos = 0  # training batches consumed so far (all epochs)
        self.epochs_trained = 0  # shared phases completed
        self.last_loss = float("nan")
        self.weights_id = "init"  # changes whenever the weights change
        #: set by the strategy: trial ids from here on are derive candidates.
        self.derive_from: Optional[int] = None

    # --- training ------------------------------------------------------------------------------

    def reset_state(self) -> None:
        """Forget any state carried from batch to batch (a new shared phase starts)."""

    def train_step(self, spec: Any, index: int) -> float:
        raise NotImplementedError

    def train_epoch(self, specs: Sequence[Any]) -> float:
        """The shared phase: one SGD step per spec on the next training batches; returns the
        mean finite loss (a diverged step is skipped, not applied)."""
        self.reset_state()
        losses = []
        for spec in specs:
            losses.append(self.train_step(spec, self.train_pos))
            self.train_pos += 1
        self.epochs_trained += 1
        self.weights_id = uuid.uuid4().hex
        self.last_loss = finite_mean(losses)
        return self.last_loss

    # --- scoring -------------------------------------------------------------------------------

    def score(self, spec: Any, indices: Sequence[int]) -> Tuple[float, float]:
        """``(metric, reward)`` of ``spec`` on the validation batches ``indices``."""
        raise NotImplementedError

    def batches_for(self, trial_id: int) -> List[int]:
        if self.derive_from is not None and trial_id >= self.derive_from:
            return list(range(min(self.derive_batches, len(self.valid_batches))))
        return [trial_id % len(self.valid_batches)]

    def evaluate(self, spec: Any, trial_id: int) -> Tuple[float, float]:
        return self.score(spec, self.batches_for(trial_id))

    # --- checkpoints ---------------------------------------------------------------------------

    def save(self, directory: str) -> None:
        """Write the supernet and counters into ``directory`` (a checkpoint folder). Weights
        unchanged since a sibling checkpoint are hard-linked from it."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, WEIGHTS_FILE)
        if not self._link_unchanged(directory, path):
            _io.atomic_write_bytes(path, self.supernet.state_bytes())
        _io.atomic_write_json(os.path.join(directory, STATE_FILE), {
            "train_pos": self.train_pos, "epochs_trained": self.epochs_trained,
            "weights_id": self.weights_id, "last_loss": _json_float(self.last_loss)})

    def _link_unchanged(self, directory: str, path: str) -> bool:
        parent = os.path.dirname(os.path.abspath(directory))
        here = os.path.basename(os.path.abspath(directory))
        for name in sorted(os.listdir(parent), reverse=True):
            other = os.path.join(parent, name)
            if name == here or not os.path.isdir(other):
                continue
            try:
                state = _io.read_json_or_none(os.path.join(other, STATE_FILE))
            except ValueError:
                continue
            source = os.path.join(other, WEIGHTS_FILE)
            if state and state.get("weights_id") == self.weights_id and os.path.isfile(source):
                if os.path.exists(path):
                    os.unlink(path)
                try:
                    os.link(source, path)
                except OSError:
                    return False
                return True
        return False

    def restore(self, directory: str) -> bool:
        """Load what `save` wrote; False when ``directory`` holds no supernet."""
        state = _io.read_json_or_none(os.path.join(directory, STATE_FILE))
        path = os.path.join(directory, WEIGHTS_FILE)
        if state is None or not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            self.supernet.load_state_bytes(f.read())
        self.train_pos, self.epochs_trained = int(state["train_pos"]), int(state["epochs_trained"])
        self.weights_id = str(state["weights_id"])
        self.last_loss = float(state.get("last_loss") or float("nan"))
        logging.info("supernet restored from %s (%d shared phases done)", directory,
                     self.epochs_trained)
        return True


class RecurrentTask(SupernetTask):
    """Language modelling with `RNNSupernet` (Zaremba's contiguous batches); reward
    ``80 / ppl``. The recurrent state is carried from batch to batch within a shared phase and
    starts from zeros at each phase (and whenever the corpus wraps around)."""

    metric_name = "valid_ppl"

    def __init__(self, supernet, train_ids, valid_ids, batch_size: int, seq_len: int,
                 learning_rate: float, clipnorm: Optional[float], derive_batches: int = 1):
        from nascell.search.data.text import batchify
        tx, ty = batchify(np.asarray(train_ids), batch_size, seq_len)
        vx, vy = batchify(np.asarray(valid_ids), batch_size, seq_len)
        super().__init__(supernet, list(zip(tx, ty)), list(zip(vx, vy)), learning_rate,
                         clipnorm, derive_batches)
        self.h = None

    def reset_state(self) -> None:
        self.h = None

    def train_step(self, spec, index: int) -> float:
        x, y = self.train_batches[index % len(self.train_batches)]
        if index % len(self.train_batches) == 0:
            self.h = None  # a new pass over the corpus starts from a zero state
        loss, self.h = self.supernet.train_step(spec, x, y, self.learning_rate, self.clipnorm,
                                                self.h)
        return loss

    def score(self, spec, indices):
        ppl = self.supernet.perplexity(spec, [self.valid_batches[i] for i in indices],
                                       carry_state=False)
        return ppl, (REWARD_CONSTANT / ppl if np.isfinite(ppl) and ppl > 0 else 0.0)


class ImageTask(SupernetTask):
    """Image classification with `ConvSupernet` or `MacroSupernet`; reward = the validation
    batches' accuracy."""

    metric_name = "valid_acc"

    def __init__(self, supernet, train: Tuple[np.ndarray, np.ndarray],
                 valid: Tuple[np.ndarray, np.ndarray], batch_size: int, learning_rate: float,
                 clipnorm: Optional[float], derive_batches: int = 1):
        super().__init__(supernet, _chunks(*train, batch_size), _chunks(*valid, batch_size),
                         learning_rate, clipnorm, derive_batches)

    def train_step(self, spec, index: int) -> float:
        x, y = self.train_batches[index % len(self.train_batches)]
        return self.supernet.train_step(spec, x, y, self.learning_rate, self.clipnorm)

    def score(self, spec, indices):
        acc = self.supernet.accuracy(spec, [self.valid_batches[i] for i in indices])
        return acc, acc


def _chunks(x, y, batch_size: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    return [(x[i:i + batch_size], np.asarray(y[i:i + batch_size], np.int32))
            for i in range(0, len(x) - batch_size + 1, batch_size)]


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values (a diverged step or cell shows as a reward of 0 instead)."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _json_float(value: float) -> Optional[float]:
    return float(value) if np.isfinite(value) else None


def describe(task: SupernetTask) -> Dict[str, Any]:
    """Counts for logs: batches and where training stands."""
    return {"train_batches": len(task.train_batches), "valid_batches": len(task.valid_batches),
            "train_pos": task.train_pos, "epochs_trained": task.epochs_trained}
